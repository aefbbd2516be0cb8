//! Standard Webhooks signing: `whsec_` secrets (and plain secrets, a hookrelay extension) and
//! `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` signatures, the scheme every Svix and Standard Webhooks
//! verifier library checks; and ed25519 keys (`whsk_` secrets, `whpk_` public keys) and their
//! `v1a,<base64 ed25519 signature>` over the same content, as Svix signs for receivers that hold no shared secret.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const SECRET_PREFIX: &str = "whsec_";
/// Prefix of an ed25519 secret key (Svix's form: base64 of the 64-byte seed ‖ public key).
const SIGNING_KEY_PREFIX: &str = "whsk_";
/// Prefix of an ed25519 public key, what receivers verify `v1a` signatures with.
const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Key sizes Svix accepts for a user-supplied secret, in bytes.
const KEY_LEN_RANGE: std::ops::RangeInclusive<usize> = 24..=64;
/// Size of the secrets hookrelay generates.
const GENERATED_KEY_LEN: usize = 32;
/// Lengths of a plain secret, in characters.
pub const PLAIN_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=256;
/// Size of an ed25519 seed and of a public key, in bytes.
const ED25519_LEN: usize = 32;

/// Why a secret string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret must look like `whsec_<base64>` (or `whsk_<base64>` for an ed25519 key)")]
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
    #[error("an ed25519 key must be standard base64 after `whsk_`")]
    SigningKeyNotBase64,
    #[error(
        "an ed25519 key must be 32 bytes (the seed) or 64 bytes (the seed, then its public key) once \
         base64-decoded, got {0}"
    )]
    SigningKeyLength(usize),
    #[error("the last 32 bytes of this 64-byte ed25519 key are not the public key of its first 32 (the seed)")]
    PublicKeyMismatch,
    #[error("`whpk_` is an ed25519 public key, which verifies but cannot sign: give the secret key, `whsk_<base64>`")]
    PublicKeyGiven,
}

/// An endpoint's signing secret: the raw key bytes behind a `whsec_…` string, a plain secret (a hookrelay
/// extension for receivers whose users chose their own secret) whose UTF-8 bytes are the key, or an ed25519 key
/// behind a `whsk_…` string.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    key: Key,
}

#[derive(Clone, PartialEq, Eq)]
enum Key {
    /// The HMAC key of a `whsec_` secret.
    Hmac(Vec<u8>),
    /// A plain secret's UTF-8 bytes, its HMAC key.
    Plain(Vec<u8>),
    Ed25519(Ed25519Key),
}

/// An ed25519 key: the seed it was given as (and is stored as, with its public key), and the key pair made from
/// it once.
#[derive(Clone)]
struct Ed25519Key {
    seed: [u8; ED25519_LEN],
    pair: Arc<Ed25519KeyPair>,
}

impl Ed25519Key {
    /// Reads the base64 after `whsk_`: the 64-byte seed ‖ public key (Svix's form, the public half checked) or
    /// the 32-byte seed alone (the Standard Webhooks libraries' form).
    fn parse(encoded: &str) -> Result<Self, SecretError> {
        let bytes = B64.decode(encoded).map_err(|_| SecretError::SigningKeyNotBase64)?;
        let (seed, public) = match bytes.len() {
            ED25519_LEN => (&bytes[..], None),
            64 => (&bytes[..ED25519_LEN], Some(&bytes[ED25519_LEN..])),
            len => return Err(SecretError::SigningKeyLength(len)),
        };
        let pair = match public {
            Some(public) => {
                Ed25519KeyPair::from_seed_and_public_key(seed, public).map_err(|_| SecretError::PublicKeyMismatch)?
            }
            None => Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| SecretError::SigningKeyLength(seed.len()))?,
        };
        let seed = seed.try_into().map_err(|_| SecretError::SigningKeyLength(bytes.len()))?;
        Ok(Self { seed, pair: Arc::new(pair) })
    }

    fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

/// Two keys are the same key when their seeds are (the public key follows from the seed), compared in
/// constant time.
impl PartialEq for Ed25519Key {
    fn eq(&self, other: &Self) -> bool {
        self.seed.ct_eq(&other.seed).into()
    }
}

impl Eq for Ed25519Key {}

impl EndpointSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::fill(&mut key[..]);
        Self { key: Key::Hmac(key) }
    }

    /// Parses a `whsec_<base64>` secret or a `whsk_<base64>` ed25519 key as users and the Svix API write them.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        if let Some(encoded) = s.strip_prefix(SIGNING_KEY_PREFIX) {
            return Ok(Self { key: Key::Ed25519(Ed25519Key::parse(encoded)?) });
        }
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = B64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !KEY_LEN_RANGE.contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self { key: Key::Hmac(key) })
    }

    /// A plain secret: 16 to 256 printable ASCII characters without spaces. One starting with `whsec_` or
    /// `whsk_` is parsed as that kind of secret instead; a `whpk_` public key is refused.
    pub fn plain(text: &str) -> Result<Self, SecretError> {
        if text.starts_with(SECRET_PREFIX) || text.starts_with(SIGNING_KEY_PREFIX) {
            return Self::parse(text);
        }
        if text.starts_with(PUBLIC_KEY_PREFIX) {
            return Err(SecretError::PublicKeyGiven);
        }
        Self::plain_unprefixed(text)
    }

    fn plain_unprefixed(text: &str) -> Result<Self, SecretError> {
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(SecretError::PlainCharacters);
        }
        if !PLAIN_LEN_RANGE.contains(&text.len()) {
            return Err(SecretError::PlainLength(text.len()));
        }
        Ok(Self { key: Key::Plain(text.as_bytes().to_vec()) })
    }

    /// Reads a secret back from [`to_text`](Self::to_text): `whsec_…`, `whsk_…`, or else a plain secret. Plain
    /// secrets stored before ed25519 keys existed may begin with `whsk_` or `whpk_`: one that is no valid
    /// `whsk_` key is read as the plain secret it was.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        if text.starts_with(SECRET_PREFIX) {
            Self::parse(text)
        } else if text.starts_with(SIGNING_KEY_PREFIX) {
            Self::parse(text).or_else(|err| Self::plain_unprefixed(text).map_err(|_| err))
        } else {
            Self::plain_unprefixed(text)
        }
    }

    /// The form stored (sealed) and given back to the secret's owner: `whsec_<base64>`, a plain secret as it
    /// was given, or `whsk_` + base64 of an ed25519 key's 64-byte seed ‖ public key.
    pub fn to_text(&self) -> String {
        match &self.key {
            Key::Hmac(key) => format!("{SECRET_PREFIX}{}", B64.encode(key)),
            Key::Plain(key) => String::from_utf8_lossy(key).into_owned(),
            Key::Ed25519(key) => {
                let mut both = Vec::with_capacity(2 * ED25519_LEN);
                both.extend_from_slice(&key.seed);
                both.extend_from_slice(key.public_key());
                format!("{SIGNING_KEY_PREFIX}{}", B64.encode(&both))
            }
        }
    }

    /// What the API shows as the endpoint's key (`GET …/secret`, a rotation's answer): for an ed25519 key its
    /// public key, `whpk_<base64>`, which receivers verify with (as Svix shows it); else [`to_text`](Self::to_text).
    pub fn shown_text(&self) -> String {
        match &self.key {
            Key::Ed25519(key) => format!("{PUBLIC_KEY_PREFIX}{}", B64.encode(key.public_key())),
            _ => self.to_text(),
        }
    }

    pub fn is_plain(&self) -> bool {
        matches!(self.key, Key::Plain(_))
    }

    /// Whether this is an ed25519 key, which signs only the Standard Webhooks headers (`v1a,…`).
    pub fn is_ed25519(&self) -> bool {
        matches!(self.key, Key::Ed25519(_))
    }

    /// The key of signatures in other schemes than Standard Webhooks (`X-Webhook-Signature`, an endpoint's
    /// signature headers): the secret as users see it, so a receiver configured with that string verifies the
    /// way it verifies GitHub's or Stripe's HMACs. For a plain secret, its bytes, as for every scheme.
    ///
    /// An ed25519 key has no such HMAC form (its receivers hold only the public key), and the API refuses those
    /// schemes for it. Should one be signed anyway, the key is 32 fresh random bytes: the signature then
    /// verifies for nobody, and neither the key nor its public half (which anyone could sign with) is used.
    pub fn text_key(&self) -> Vec<u8> {
        match &self.key {
            Key::Hmac(_) => self.to_text().into_bytes(),
            Key::Plain(key) => key.clone(),
            Key::Ed25519(_) => {
                let mut unusable = vec![0u8; ED25519_LEN];
                rand::fill(&mut unusable[..]);
                unusable
            }
        }
    }

    /// The signature of one delivery over `{msg_id}.{timestamp}.{body}`: `v1,<base64 HMAC-SHA256>`, or
    /// `v1a,<base64 ed25519 signature>` for an ed25519 key.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let timestamp = timestamp_secs.to_string();
        match &self.key {
            Key::Hmac(key) | Key::Plain(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
            }
            Key::Ed25519(key) => {
                let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
                content.extend_from_slice(msg_id.as_bytes());
                content.push(b'.');
                content.extend_from_slice(timestamp.as_bytes());
                content.push(b'.');
                content.extend_from_slice(body);
                format!("v1a,{}", B64.encode(key.pair.sign(&content)))
            }
        }
    }
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// The legacy `X-Webhook-Signature` value some receivers are written for: `sha256=<hex HMAC-SHA256>` of the
/// raw body, keyed with [`EndpointSecret::text_key`] (the whole `whsec_…` string, or the plain secret; never an
/// ed25519 key's material).
pub fn hmac_hex_signature(secret: &EndpointSecret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.text_key()).expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// The `webhook-signature` header value: one signature per valid secret (`v1,…` for an HMAC secret, `v1a,…` for
/// an ed25519 key), space-separated, so a receiver that still holds the previous secret during a rotation keeps
/// verifying.
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

    /// The seed 0x00, 0x01, …, 0x1f, its public key and a signature of the Standard Webhooks test message, made
    /// with an independent implementation (Python's `cryptography` 51.0.1):
    /// `k = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))`,
    /// `k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)` and
    /// `k.sign(b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}')`, each base64-encoded.
    const ED25519_SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const ED25519_PUBLIC: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    const ED25519_SIGNATURE: &str =
        "yoUrgEkc12aGqm0n4Sydmdz55xJfTz4AsAgieHFjmkR7LJtqVCZOQYzvvHjI5kAey+r4iaBGxTFRrl2iBQxtDQ==";

    fn ed25519_64() -> String {
        let mut both = B64.decode(ED25519_SEED).unwrap();
        both.extend(B64.decode(ED25519_PUBLIC).unwrap());
        format!("whsk_{}", B64.encode(both))
    }

    #[test]
    fn ed25519_known_answer() {
        let key = EndpointSecret::parse(&ed25519_64()).unwrap();
        assert!(key.is_ed25519() && !key.is_plain());
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
            format!("v1a,{ED25519_SIGNATURE}")
        );
    }

    #[test]
    fn ed25519_seed_and_svix_forms_are_one_key() {
        let from_seed = EndpointSecret::parse(&format!("whsk_{ED25519_SEED}")).unwrap();
        let from_pair = EndpointSecret::parse(&ed25519_64()).unwrap();
        assert_eq!(from_seed, from_pair);
        // Stored as Svix's 64-byte form, which reads back as the same key.
        assert_eq!(from_seed.to_text(), ed25519_64());
        assert_eq!(EndpointSecret::from_text(&from_seed.to_text()), Ok(from_pair.clone()));
        assert_eq!(EndpointSecret::plain(&ed25519_64()), Ok(from_pair.clone()));
        assert_eq!(from_seed.sign("msg_1", 1, b"{}"), from_pair.sign("msg_1", 1, b"{}"));
        assert_ne!(from_pair, EndpointSecret::parse(&format!("whsk_{}", B64.encode([7u8; 32]))).unwrap());
    }

    #[test]
    fn ed25519_keys_are_validated() {
        let mut both = B64.decode(ED25519_SEED).unwrap();
        let mut other_public = B64.decode(ED25519_PUBLIC).unwrap();
        other_public[0] ^= 1;
        both.extend(other_public);
        assert_eq!(EndpointSecret::parse(&format!("whsk_{}", B64.encode(both))), Err(SecretError::PublicKeyMismatch));
        assert_eq!(EndpointSecret::parse("whsk_!!!"), Err(SecretError::SigningKeyNotBase64));
        assert_eq!(EndpointSecret::parse("whsk_c2hvcnQ="), Err(SecretError::SigningKeyLength(5)));
        let public_given = format!("whpk_{ED25519_PUBLIC}");
        assert_eq!(EndpointSecret::plain(&public_given), Err(SecretError::PublicKeyGiven));
        assert_eq!(EndpointSecret::plain("whsk_not-a-key-at-all"), Err(SecretError::SigningKeyNotBase64));
        // A plain secret stored before ed25519 keys existed still reads back as that plain secret.
        let legacy = EndpointSecret::from_text("whsk_was_a_plain_secret").unwrap();
        assert!(legacy.is_plain());
        assert_eq!(legacy.to_text(), "whsk_was_a_plain_secret");
        assert!(EndpointSecret::from_text(&public_given).unwrap().is_plain());
    }

    #[test]
    fn ed25519_shows_its_public_key_and_hides_the_rest() {
        let key = EndpointSecret::parse(&format!("whsk_{ED25519_SEED}")).unwrap();
        assert_eq!(key.shown_text(), format!("whpk_{ED25519_PUBLIC}"));
        let whsec = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(whsec.shown_text(), whsec.to_text());
        let debug = format!("{key:?}");
        assert_eq!(debug, "EndpointSecret(<redacted>)");
        assert!(!debug.contains("AAECAwQF") && !debug.contains("A6EH"));
    }

    #[test]
    fn ed25519_never_keys_an_hmac_with_its_material() {
        let key = EndpointSecret::parse(&ed25519_64()).unwrap();
        let text_key = key.text_key();
        let seed = B64.decode(ED25519_SEED).unwrap();
        let public = B64.decode(ED25519_PUBLIC).unwrap();
        assert_ne!(text_key, seed);
        assert_ne!(text_key, public);
        assert_ne!(text_key, key.to_text().into_bytes());
        assert_ne!(text_key, key.shown_text().into_bytes());
        // Unverifiable by anyone, and carrying nothing of the key.
        let header = hmac_hex_signature(&key, b"{}");
        assert!(header.starts_with("sha256="));
        assert_ne!(header, hmac_hex_signature(&key, b"{}"));
        for material in [ED25519_SEED, ED25519_PUBLIC] {
            assert!(!header.contains(&material[..8]));
        }
    }

    #[test]
    fn rotation_header_mixes_hmac_and_ed25519() {
        let hmac = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let ed = EndpointSecret::parse(&ed25519_64()).unwrap();
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature_header([&hmac, &ed], id, 1614265330, body),
            format!("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,{ED25519_SIGNATURE}")
        );
    }

    #[test]
    fn debug_never_prints_the_key() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
