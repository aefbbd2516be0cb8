//! Standard Webhooks signing: `whsec_` secrets and `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`
//! signatures, the scheme every Svix and Standard Webhooks verifier library checks.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
/// Key sizes Svix accepts for a user-supplied secret, in bytes.
const KEY_LEN_RANGE: std::ops::RangeInclusive<usize> = 24..=64;
/// Size of the secrets hookrelay generates.
const GENERATED_KEY_LEN: usize = 32;

/// Why a secret string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret must look like `whsec_<base64>`")]
    MissingPrefix,
    #[error("secret must be base64 after `whsec_`")]
    NotBase64,
    #[error("secret key must be 24 to 64 bytes long once base64-decoded, got {0}")]
    BadLength(usize),
}

/// An endpoint's signing secret: the raw key bytes behind a `whsec_…` string.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    key: Vec<u8>,
}

impl EndpointSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::fill(&mut key[..]);
        Self { key }
    }

    /// Parses a `whsec_<base64>` string as users and the Svix API write it.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = B64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !KEY_LEN_RANGE.contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self { key })
    }

    /// The `whsec_<base64>` form shown to users.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
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
/// raw body, keyed with the secret exactly as users see it (the whole `whsec_…` string), so a receiver
/// configured with that string verifies it the way it verifies GitHub's or Stripe's HMACs.
pub fn hmac_hex_signature(secret: &EndpointSecret, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.to_whsec().as_bytes()).expect("HMAC accepts keys of any length");
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
        assert_eq!(EndpointSecret::parse(&generated.to_whsec()), Ok(generated));
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
    fn debug_never_prints_the_key() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
