//! An endpoint's own signature headers (a hookrelay extension): each one HMAC of the exact bytes delivered, in the
//! header, algorithm, encoding and prefix its receivers were written for, such as
//! `X-Corp-Astro-Signature: <hex HMAC-SHA256>` or `X-Webhook-Signature: sha256=<hex>`; and which of the Standard
//! Webhooks header families (`webhook-*`, `svix-*`) are sent beside them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

use crate::inbound::mac::hex_encode;
use crate::signing::EndpointSecret;

/// The most signature headers one endpoint may have.
pub const MAX_SIGNATURE_HEADERS: usize = 4;
/// The longest prefix a signature header may have, in characters.
pub const MAX_PREFIX_LEN: usize = 64;

/// One header whose value is `prefix` + `encoding`(HMAC-`algorithm`(key, body)), keyed with
/// [`EndpointSecret::text_key`]: a plain secret's bytes, or the whole `whsec_…` string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureHeader {
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

impl HmacAlgorithm {
    pub const ALL: [HmacAlgorithm; 3] = [Self::Sha1, Self::Sha256, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|algorithm| algorithm.name() == name)
    }

    fn mac(self, key: &[u8], body: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1 => run::<Hmac<sha1::Sha1>>(key, body),
            Self::Sha256 => run::<Hmac<sha2::Sha256>>(key, body),
            Self::Sha512 => run::<Hmac<sha2::Sha512>>(key, body),
        }
    }
}

impl SignatureEncoding {
    pub const ALL: [SignatureEncoding; 2] = [Self::Hex, Self::Base64];

    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|encoding| encoding.name() == name)
    }
}

impl SignatureHeader {
    /// The header's value for one delivery of `body`.
    pub fn value(&self, secret: &EndpointSecret, body: &[u8]) -> String {
        let digest = self.algorithm.mac(&secret.text_key(), body);
        let encoded = match self.encoding {
            SignatureEncoding::Hex => hex_encode(&digest),
            SignatureEncoding::Base64 => B64.encode(digest),
        };
        format!("{}{encoded}", self.prefix)
    }
}

/// Checks a signature header's prefix: at most 64 printable ASCII characters (spaces allowed inside).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!("prefix is {} characters; at most {MAX_PREFIX_LEN} are allowed", prefix.len()));
    }
    if !prefix.bytes().all(|byte| byte == b' ' || byte.is_ascii_graphic()) {
        return Err("prefix must be printable ASCII (it goes into an HTTP header)".into());
    }
    Ok(())
}

/// Which Standard Webhooks header families a delivery carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StandardHeaders {
    /// `webhook-id`/`-timestamp`/`-signature` and the same values as `svix-*` (the default).
    #[default]
    Both,
    Webhook,
    Svix,
    /// Neither: the endpoint's receivers check only its signature headers.
    None,
}

impl StandardHeaders {
    pub const ALL: [StandardHeaders; 4] = [Self::Both, Self::Webhook, Self::Svix, Self::None];

    pub fn name(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Webhook => "webhook",
            Self::Svix => "svix",
            Self::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|families| families.name() == name)
    }

    pub fn webhook(self) -> bool {
        matches!(self, Self::Both | Self::Webhook)
    }

    pub fn svix(self) -> bool {
        matches!(self, Self::Both | Self::Svix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(algorithm: HmacAlgorithm, encoding: SignatureEncoding, prefix: &str) -> SignatureHeader {
        SignatureHeader { header: "X-Signature".into(), algorithm, encoding, prefix: prefix.into() }
    }

    /// Reference values: `printf '%s' '{"a":1}' | openssl dgst -<algorithm> -hmac 'corp_astro_secret_1' [-binary | base64]`.
    #[test]
    fn values_match_openssl() {
        let secret = EndpointSecret::plain("corp_astro_secret_1").unwrap();
        let body = br#"{"a":1}"#;
        for (algorithm, encoding, prefix, expected) in [
            (
                HmacAlgorithm::Sha256,
                SignatureEncoding::Hex,
                "",
                "23e9d0064042efecf43f99f1932ace62f8302542ebec0b24616e633ea731b889",
            ),
            (
                HmacAlgorithm::Sha256,
                SignatureEncoding::Hex,
                "sha256=",
                "sha256=23e9d0064042efecf43f99f1932ace62f8302542ebec0b24616e633ea731b889",
            ),
            (HmacAlgorithm::Sha1, SignatureEncoding::Hex, "sha1=", "sha1=f42a15fac6878e5576278d066e037e4f26214138"),
            (
                HmacAlgorithm::Sha512,
                SignatureEncoding::Base64,
                "",
                "pNufqRiwjyLTrfmasrH7uRTLVgWqeTWd5Y13owTMpF9KxVkK4+G7UVxCLxWZvM2cNxtRvc4TnNX9NI+cH+FMDw==",
            ),
        ] {
            assert_eq!(
                header(algorithm, encoding, prefix).value(&secret, body),
                expected,
                "{algorithm:?} {encoding:?}"
            );
        }
    }

    #[test]
    fn a_whsec_secret_is_keyed_as_its_text_like_the_legacy_header() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let legacy = crate::signing::hmac_hex_signature(&secret, b"{}");
        assert_eq!(header(HmacAlgorithm::Sha256, SignatureEncoding::Hex, "sha256=").value(&secret, b"{}"), legacy);
    }

    #[test]
    fn names_round_trip_and_prefixes_are_bounded() {
        for algorithm in HmacAlgorithm::ALL {
            assert_eq!(HmacAlgorithm::from_name(algorithm.name()), Some(algorithm));
        }
        for encoding in SignatureEncoding::ALL {
            assert_eq!(SignatureEncoding::from_name(encoding.name()), Some(encoding));
        }
        for families in StandardHeaders::ALL {
            assert_eq!(StandardHeaders::from_name(families.name()), Some(families));
        }
        assert_eq!(HmacAlgorithm::from_name("md5"), None);
        assert!(check_prefix("v1=").is_ok());
        assert!(check_prefix(&"x".repeat(65)).is_err());
        assert!(check_prefix("a\r\nb").is_err());
    }
}
