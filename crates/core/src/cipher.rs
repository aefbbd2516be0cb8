//! Encryption of secrets at rest: endpoint and source secrets are sealed with ChaCha20-Poly1305 before they are
//! written to the database, when the operator gives a key (`HOOKRELAY_ENCRYPTION_KEY`).
//!
//! A sealed value is text, so it fits the existing secret columns: `enc:v1:<key id>:<base64(nonce ‖ ciphertext)>`,
//! with a fresh random 96-bit nonce per value. The key id (8 hex digits of a hash of the key) says which key
//! sealed a value, so old keys (`HOOKRELAY_ENCRYPTION_KEY_PREVIOUS`) can still open values written before a
//! rotation, and a value sealed with a key nobody gave is an error that names the setting, never garbage or an
//! empty secret. Values written before encryption was turned on stay readable as they are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

/// What every sealed value starts with; the version lets a later format live beside this one.
const SEALED_PREFIX: &str = "enc:v1:";
/// Any value in the `enc:` namespace is taken for a sealed one.
const SEALED_NAMESPACE: &str = "enc:";
/// Marks a plaintext value that would otherwise look sealed (an inbound secret chosen as `enc:…`), written only
/// when there is no key.
const PLAIN_PREFIX: &str = "plain:";
const NONCE_LEN: usize = 12;

/// Why a key setting or a stored value cannot be used. Messages never contain key material or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("invalid {setting}: give 32 random bytes in base64, e.g. from `openssl rand -base64 32` ({reason})")]
    InvalidKey { setting: &'static str, reason: &'static str },
    #[error(
        "a stored secret is encrypted (key id {key_id}) but HOOKRELAY_ENCRYPTION_KEY is not set: set it to the key \
         the secrets were encrypted with"
    )]
    NoKey { key_id: String },
    #[error(
        "a stored secret is encrypted with key id {key_id}, which is neither HOOKRELAY_ENCRYPTION_KEY nor one of \
         HOOKRELAY_ENCRYPTION_KEY_PREVIOUS: add the key it was encrypted with to HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"
    )]
    UnknownKey { key_id: String },
    #[error(
        "a stored secret (key id {key_id}) does not decrypt: it was damaged, or another key has the same id; \
         check HOOKRELAY_ENCRYPTION_KEY and HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"
    )]
    Damaged { key_id: String },
}

/// One 256-bit key and its id.
#[derive(Clone)]
struct SealingKey {
    id: String,
    aead: ChaCha20Poly1305,
}

impl SealingKey {
    fn parse(text: &str, setting: &'static str) -> Result<Self, CipherError> {
        let bytes =
            STANDARD.decode(text.trim()).map_err(|_| CipherError::InvalidKey { setting, reason: "not base64" })?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| CipherError::InvalidKey { setting, reason: "not 32 bytes long" })?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        // The id is a hash under a fixed context, so it says which key was used without revealing anything of it.
        let digest = Sha256::new().chain_update(b"hookrelay secret key id\0").chain_update(bytes).finalize();
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, aead: ChaCha20Poly1305::new(Key::from_slice(bytes)) }
    }
}

/// Seals and opens secrets for the store. Without a current key it writes plaintext (and still opens values
/// sealed with a previous key, if any is given).
#[derive(Clone, Default)]
pub struct SecretCipher {
    current: Option<SealingKey>,
    previous: Vec<SealingKey>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("current_key_id", &self.current.as_ref().map(|k| k.id.as_str()))
            .field("previous_key_ids", &self.previous.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl SecretCipher {
    /// A cipher that writes plaintext and opens nothing sealed.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Reads the settings: `current` is one base64 key (`HOOKRELAY_ENCRYPTION_KEY`), `previous` a comma-separated
    /// list of older ones (`HOOKRELAY_ENCRYPTION_KEY_PREVIOUS`).
    pub fn from_settings(current: Option<&str>, previous: Option<&str>) -> Result<Self, CipherError> {
        let current = current
            .filter(|text| !text.trim().is_empty())
            .map(|text| SealingKey::parse(text, "HOOKRELAY_ENCRYPTION_KEY"))
            .transpose()?;
        let previous = previous
            .unwrap_or_default()
            .split(',')
            .filter(|text| !text.trim().is_empty())
            .map(|text| SealingKey::parse(text, "HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"))
            .collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    /// A cipher with one current key, from its raw bytes (tests and tools).
    pub fn with_key(key: &[u8; 32]) -> Self {
        Self { current: Some(SealingKey::from_bytes(key)), previous: Vec::new() }
    }

    /// This cipher with `text` (one base64 key, read from `setting`) as the key new values are sealed with; the
    /// previous keys stay. For the key a server keeps in its data directory when none is configured.
    pub fn with_current(mut self, text: &str, setting: &'static str) -> Result<Self, CipherError> {
        self.current = Some(SealingKey::parse(text, setting)?);
        Ok(self)
    }

    /// Adds an older key that still opens what it sealed.
    pub fn with_previous(mut self, key: &[u8; 32]) -> Self {
        self.previous.push(SealingKey::from_bytes(key));
        self
    }

    /// Whether new values are sealed.
    pub fn encrypts(&self) -> bool {
        self.current.is_some()
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_ref().map(|key| key.id.as_str())
    }

    /// The stored form of `secret`: sealed under the current key, or plaintext without one.
    pub fn seal(&self, secret: &str) -> String {
        match &self.current {
            Some(key) => seal_with(key, secret.as_bytes()),
            None if secret.starts_with(SEALED_NAMESPACE) || secret.starts_with(PLAIN_PREFIX) => {
                format!("{PLAIN_PREFIX}{secret}")
            }
            None => secret.to_owned(),
        }
    }

    /// The secret behind a stored value, which may be plaintext (written without a key) or sealed.
    pub fn open(&self, stored: &str) -> Result<String, CipherError> {
        if let Some(plain) = stored.strip_prefix(PLAIN_PREFIX) {
            return Ok(plain.to_owned());
        }
        let Some(rest) = stored.strip_prefix(SEALED_NAMESPACE) else {
            return Ok(stored.to_owned());
        };
        let (key_id, plain) = self.open_sealed(rest)?;
        String::from_utf8(plain).map_err(|_| CipherError::Damaged { key_id: key_id.to_owned() })
    }

    /// [`seal`](Self::seal) for bytes (a remembered response that may carry a secret): the sealed form is the
    /// same text, as bytes.
    pub fn seal_bytes(&self, plain: Vec<u8>) -> Vec<u8> {
        match &self.current {
            Some(key) => seal_with(key, &plain).into_bytes(),
            None if plain.starts_with(SEALED_NAMESPACE.as_bytes()) || plain.starts_with(PLAIN_PREFIX.as_bytes()) => {
                [PLAIN_PREFIX.as_bytes(), &plain].concat()
            }
            None => plain,
        }
    }

    /// [`open`](Self::open) for bytes; plaintext comes back as it is, without a copy.
    pub fn open_bytes(&self, stored: Vec<u8>) -> Result<Vec<u8>, CipherError> {
        if let Some(plain) = stored.strip_prefix(PLAIN_PREFIX.as_bytes()) {
            return Ok(plain.to_vec());
        }
        let Some(rest) = stored.strip_prefix(SEALED_NAMESPACE.as_bytes()) else {
            return Ok(stored);
        };
        let rest = std::str::from_utf8(rest).map_err(|_| CipherError::Damaged { key_id: "unknown".into() })?;
        Ok(self.open_sealed(rest)?.1)
    }

    /// Opens what follows `enc:` in a sealed value; returns the key id with the plaintext.
    fn open_sealed<'a>(&self, rest: &'a str) -> Result<(&'a str, Vec<u8>), CipherError> {
        let (key_id, payload) = match rest.strip_prefix("v1:").and_then(|rest| rest.split_once(':')) {
            Some(parts) => parts,
            None => return Err(CipherError::Damaged { key_id: "unknown (not an enc:v1 value)".into() }),
        };
        let key = self.key(key_id)?;
        let damaged = || CipherError::Damaged { key_id: key_id.to_owned() };
        let bytes = STANDARD.decode(payload).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = key.aead.decrypt(Nonce::from_slice(nonce), ciphertext).map_err(|_| damaged())?;
        Ok((key_id, plain))
    }

    /// Whether a stored value is already in the form [`seal`](Self::seal) would write now (sealed under the
    /// current key, or plaintext when there is none), so a re-encryption can skip it.
    pub fn is_current(&self, stored: &str) -> bool {
        match &self.current {
            Some(key) => stored
                .strip_prefix(SEALED_PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(id, _)| id == key.id),
            None => !stored.starts_with(SEALED_NAMESPACE),
        }
    }

    /// Checks that a stored value's key is known, without opening it (a cheap check at start).
    pub fn check_key_id(&self, key_id: &str) -> Result<(), CipherError> {
        self.key(key_id).map(|_| ())
    }

    /// The key id of a sealed value, `None` for plaintext.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored.strip_prefix(SEALED_PREFIX).and_then(|rest| rest.split_once(':')).map(|(id, _)| id)
    }

    fn key(&self, key_id: &str) -> Result<&SealingKey, CipherError> {
        if self.current.is_none() && self.previous.is_empty() {
            return Err(CipherError::NoKey { key_id: key_id.to_owned() });
        }
        self.current
            .iter()
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| CipherError::UnknownKey { key_id: key_id.to_owned() })
    }
}

/// `plain` sealed under `key` with a fresh nonce, in the stored text form.
fn seal_with(key: &SealingKey, plain: &[u8]) -> String {
    let nonce: [u8; NONCE_LEN] = rand::random();
    // Sealing in memory cannot fail for inputs this small (the AEAD limit is 256 GiB).
    let ciphertext = key.aead.encrypt(Nonce::from_slice(&nonce), plain).unwrap_or_default();
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ciphertext);
    format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(sealed))
}

/// A new random key in the form `HOOKRELAY_ENCRYPTION_KEY` takes.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::fill(&mut key[..]);
    STANDARD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn sealed_values_hide_the_secret_and_open_again() {
        let cipher = SecretCipher::with_key(&[7; 32]);
        let sealed = cipher.seal(SECRET);
        assert!(sealed.starts_with("enc:v1:"), "{sealed}");
        assert!(!sealed.contains("MfKQ9r8"), "{sealed}");
        assert_ne!(sealed, cipher.seal(SECRET), "every value gets its own nonce");
        assert_eq!(cipher.open(&sealed).unwrap(), SECRET);
        assert!(cipher.is_current(&sealed));
        assert_eq!(SecretCipher::key_id_of(&sealed), cipher.current_key_id());
    }

    #[test]
    fn plaintext_stays_readable_and_is_written_without_a_key() {
        let plain = SecretCipher::plaintext();
        assert_eq!(plain.seal(SECRET), SECRET);
        assert_eq!(plain.open(SECRET).unwrap(), SECRET);
        assert_eq!(SecretCipher::with_key(&[1; 32]).open(SECRET).unwrap(), SECRET);
        assert!(!SecretCipher::with_key(&[1; 32]).is_current(SECRET));
        // An inbound secret that happens to look sealed survives a round trip without a key.
        for tricky in ["enc:v1:abcd:xyz", "plain:x"] {
            let stored = plain.seal(tricky);
            assert_eq!(plain.open(&stored).unwrap(), tricky);
            assert!(plain.is_current(&stored));
        }
    }

    #[test]
    fn bytes_seal_and_open_like_text() {
        let body = br#"{"key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#.to_vec();
        let cipher = SecretCipher::with_key(&[4; 32]);
        let sealed = cipher.seal_bytes(body.clone());
        assert!(sealed.starts_with(b"enc:v1:"));
        assert_eq!(cipher.open_bytes(sealed).unwrap(), body);
        let plain = SecretCipher::plaintext();
        assert_eq!(plain.seal_bytes(body.clone()), body);
        assert_eq!(cipher.open_bytes(body.clone()).unwrap(), body, "plaintext written before the key");
        let tricky = b"enc:not sealed".to_vec();
        assert_eq!(plain.open_bytes(plain.seal_bytes(tricky.clone())).unwrap(), tricky);
    }

    #[test]
    fn a_previous_key_opens_what_it_sealed() {
        let old = SecretCipher::with_key(&[1; 32]);
        let sealed = old.seal(SECRET);
        let rotated = SecretCipher::with_key(&[2; 32]).with_previous(&[1; 32]);
        assert_eq!(rotated.open(&sealed).unwrap(), SECRET);
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal(SECRET)));
    }

    #[test]
    fn wrong_or_missing_keys_are_errors_that_name_the_setting() {
        let sealed = SecretCipher::with_key(&[1; 32]).seal(SECRET);
        let err = SecretCipher::with_key(&[2; 32]).open(&sealed).unwrap_err();
        assert!(matches!(err, CipherError::UnknownKey { .. }));
        assert!(err.to_string().contains("HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"), "{err}");
        let err = SecretCipher::plaintext().open(&sealed).unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_ENCRYPTION_KEY is not set"), "{err}");
        let mut tampered = sealed.clone();
        tampered.replace_range(tampered.len() - 6..tampered.len() - 2, "AAAA");
        assert!(matches!(SecretCipher::with_key(&[1; 32]).open(&tampered), Err(CipherError::Damaged { .. })));
    }

    #[test]
    fn key_settings_are_base64_of_32_bytes_and_errors_never_echo_them() {
        let key = generate_key();
        let cipher =
            SecretCipher::from_settings(Some(&key), Some(&format!("{},{}", generate_key(), generate_key()))).unwrap();
        assert!(cipher.encrypts());
        assert_eq!(cipher.previous.len(), 2);
        assert!(!SecretCipher::from_settings(None, None).unwrap().encrypts());
        let err = SecretCipher::from_settings(Some("c2hvcnQ="), None).unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_ENCRYPTION_KEY"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ="), "{err}");
        let err = SecretCipher::from_settings(Some(&key), Some("not base64!")).unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"), "{err}");
        assert!(!format!("{cipher:?}").contains(&key));
    }
}
