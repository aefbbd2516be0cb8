//! API tokens kept in the database: named admin tokens and application-scoped (app portal) tokens. Only a
//! SHA-256 digest of a token is stored; the token itself is shown once, when it is made.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::id::{AppId, TokenId};
use crate::time::UnixMillis;

/// Random bytes in a token: 256 bits, so guessing one is hopeless and a plain (unsalted) digest is safe to store.
const TOKEN_BYTES: usize = 32;

/// The SHA-256 digest by which a token is stored and looked up.
pub type TokenDigest = [u8; 32];

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything, like the bootstrap admin token.
    Admin,
    /// One application's endpoints, messages and attempts (and reading the application itself); with
    /// `read_only`, only reads.
    App { app_id: AppId, read_only: bool },
}

/// A token as the store keeps it: never the secret, only its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    /// An admin token's name (unique among admin tokens); an app token is named after its application's id.
    pub name: String,
    pub scope: TokenScope,
    pub digest: TokenDigest,
    pub created_at: UnixMillis,
    /// After this instant the token is refused; `None` never expires (admin tokens).
    pub expires_at: Option<UnixMillis>,
}

impl ApiToken {
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The digest of a presented token.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token with the given prefix (`hr_admin_`, `hr_app_`), and its digest.
pub fn generate(prefix: &str) -> (String, TokenDigest) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::fill(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let digest = digest(&token);
    (token, digest)
}

/// Why an admin token name is refused, if it is: names are how the CLI revokes a token, so they must be short,
/// printable and never look like a token id.
pub fn check_admin_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 128 {
        return Err("must be 1 to 128 characters long");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("may only contain letters, digits, `-`, `_` and `.`");
    }
    if name.starts_with(TokenId::PREFIX) {
        return Err("must not start with `tok_`, which is how token ids start");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_digested() {
        let (a, digest_a) = generate("hr_app_");
        let (b, _) = generate("hr_app_");
        assert_ne!(a, b);
        assert!(a.starts_with("hr_app_"));
        // 32 bytes in unpadded base64url is 43 characters.
        assert_eq!(a.len(), "hr_app_".len() + 43);
        assert_eq!(digest(&a), digest_a);
        assert_ne!(digest(&b), digest_a);
    }

    fn check(name: &str, ok: bool) {
        assert_eq!(check_admin_name(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn admin_names() {
        check("ci", true);
        check("deploy-bot_2.prod", true);
        check("", false);
        check("has space", false);
        check("tok_abc", false);
        check(&"x".repeat(129), false);
    }

    #[test]
    fn expiry() {
        let token = ApiToken {
            id: TokenId::new(),
            name: "n".into(),
            scope: TokenScope::Admin,
            digest: [0; 32],
            created_at: 0,
            expires_at: Some(100),
        };
        assert!(!token.is_expired(99));
        assert!(token.is_expired(100));
        assert!(!ApiToken { expires_at: None, ..token }.is_expired(i64::MAX));
    }
}
