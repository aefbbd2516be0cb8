//! Standard Webhooks signing: `whsec_` secrets (and plain secrets, a hookrelay extension) and
//! `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` signatures, the scheme every Svix and Standard Webhooks
//! verifier library checks.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
/// Key sizes Svix accepts for a user-supplied secret, in bytes.
const KEY_LEN_RANGE: std::ops::RangeInclusive<usize> = 24..=64;
/// Size of the secrets hookrelay generates.
const GENERATED_KEY_LEN: usize = 32;
/// Lengths of a plain secret, in characters.
pub const PLAIN_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=256;

/// Why a secret string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret must look like `whsec_<base64>`")]
    MissingPrefix,
    #[error("secret must be base64 after `whsec_`")]
    NotBase64,
    #[error("secret key must be 24 to 64 bytes long once base64-decoded, got {0}")]
    BadLength(usize),
    #[error(
        "a plain secret (one without `whsec_`) must be 16 to 256 printable ASCII characters without spaces, got {0} \
         characters"
    )]
    PlainLength(usize),
    #[error("a plain secret (one without `whsec_`) must be printable ASCII characters without spaces")]
    PlainCharacters,
}

/// An endpoint's signing secret: the raw key bytes behind a `whsec_…` string, or a plain secret (a hookrelay
/// extension for receivers whose users chose their own secret), whose UTF-8 bytes are the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    key: Vec<u8>,
    plain: bool,
}

impl EndpointSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::fill(&mut key[..]);
        Self { key, plain: false }
    }

    /// Parses a `whsec_<base64>` string as users and the Svix API write it.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = B64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !KEY_LEN_RANGE.contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self { key, plain: false })
    }

    /// A plain secret: 16 to 256 printable ASCII characters without spaces, not starting with `whsec_`.
    pub fn plain(text: &str) -> Result<Self, SecretError> {
        if text.starts_with(SECRET_PREFIX) {
            return Self::parse(text);
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(SecretError::PlainCharacters);
        }
        if !PLAIN_LEN_RANGE.contains(&text.len()) {
            return Err(SecretError::PlainLength(text.len()));
        }
        Ok(Self { key: text.as_bytes().to_vec(), plain: true })
    }

    /// Reads a secret back from [`to_text`](Self::to_text): `whsec_…`, or else a plain secret.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        if text.starts_with(SECRET_PREFIX) { Self::parse(text) } else { Self::plain(text) }
    }

    /// The form shown to users: `whsec_<base64>`, or a plain secret as it was given.
    pub fn to_text(&self) -> String {
        if self.plain {
            String::from_utf8_lossy(&self.key).into_owned()
        } else {
            format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
        }
    }

    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// The key of signatures in other schemes than Standard Webhooks (`X-Webhook-Signature`, an endpoint's
    /// signature headers): the secret as users see it, so a receiver configured with that string verifies the
    /// way it verifies GitHub's or Stripe's HMACs. For a plain secret, its bytes, as for every scheme.
    pub fn text_key(&self) -> Vec<u8> {
        if self.plain { self.key.clone() } else { self.to_text().into_bytes() }
    }

    /// The `v1,<base64>` signature of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// The legacy `X-Webhook-Signature` value some receivers are written for: `sha256=<hex HMAC-SHA256>` of the
/// raw body, keyed with [`EndpointSecret::text_key`] (the whole `whsec_…` string, or the plain secret).
pub fn hmac_hex_signature(secret: &EndpointSecret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.text_key()).expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// The `webhook-signature` header value: one `v1,…` signature per valid secret, space-separated, so a receiver
/// that still holds the previous secret during a rotation keeps verifying.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a EndpointSecret>,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    secrets.into_iter().map(|secret| secret.sign(msg_id, timestamp_secs, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_are_validated() {
        let generated = EndpointSecret::generate();
        assert_eq!(EndpointSecret::parse(&generated.to_text()), Ok(generated.clone()));
        assert_eq!(EndpointSecret::from_text(&generated.to_text()), Ok(generated));
        assert_eq!(EndpointSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::MissingPrefix));
        assert_eq!(EndpointSecret::parse("whsec_!!!"), Err(SecretError::NotBase64));
        assert_eq!(EndpointSecret::parse("whsec_c2hvcnQ="), Err(SecretError::BadLength(5)));
    }

    #[test]
    fn header_carries_one_signature_per_secret() {
        let a = EndpointSecret::generate();
        let b = EndpointSecret::generate();
        let header = signature_header([&a, &b], "msg_x", 1, b"{}");
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts, vec![a.sign("msg_x", 1, b"{}"), b.sign("msg_x", 1, b"{}")]);
    }

    #[test]
    fn hmac_hex_is_keyed_with_the_whsec_string() {
        // Reference value: `printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'`
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            hmac_hex_signature(&secret, br#"{"a":1}"#),
            "sha256=45ec03b2b33403c8043a90de06bedad0827183927115fd7e448ef97eeb13c5be"
        );
    }

    #[test]
    fn plain_secrets_are_their_own_key_in_every_scheme() {
        let plain = EndpointSecret::plain("your_webhook_secret").unwrap();
        assert!(plain.is_plain());
        assert_eq!(plain.to_text(), "your_webhook_secret");
        assert_eq!(EndpointSecret::from_text("your_webhook_secret"), Ok(plain.clone()));
        // Reference: `printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac 'your_webhook_secret'`
        assert_eq!(
            hmac_hex_signature(&plain, br#"{"a":1}"#),
            "sha256=42a19bfcd01d64694d8fd36a6b5fe2debf4139b5acc0c59827126c51433f301c"
        );
        // The Standard Webhooks signature is keyed with the same bytes: what `whsec_` + base64 of them gives.
        let long = EndpointSecret::plain("a_secret_the_user_picked_2026").unwrap();
        let same_key =
            EndpointSecret::parse(&format!("whsec_{}", B64.encode("a_secret_the_user_picked_2026"))).unwrap();
        assert_eq!(long.sign("msg_1", 1, b"{}"), same_key.sign("msg_1", 1, b"{}"));
        assert_eq!(EndpointSecret::plain("short"), Err(SecretError::PlainLength(5)));
        assert_eq!(EndpointSecret::plain(&"x".repeat(257)), Err(SecretError::PlainLength(257)));
        assert_eq!(EndpointSecret::plain("has a space in it!"), Err(SecretError::PlainCharacters));
        assert_eq!(EndpointSecret::plain("naïve-secret-value"), Err(SecretError::PlainCharacters));
        assert!(!format!("{plain:?}").contains("your_webhook"));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
