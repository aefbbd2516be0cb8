//! The HMAC-SHA256 arithmetic every provider shares, with constant-time comparison and the hex/base64 codecs
//! their headers use.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub(super) type Digest = [u8; 32];

/// HMAC-SHA256 of the concatenated `parts`, keyed with `key`.
pub(super) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Digest {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether any candidate signature equals any expected digest, comparing in constant time (every pair is
/// compared, so the time does not tell which one matched or how much of it).
pub(super) fn any_matches(expected: &[Digest], candidates: &[Vec<u8>]) -> bool {
    let mut found = subtle::Choice::from(0);
    for digest in expected {
        for candidate in candidates {
            found |= digest.as_slice().ct_eq(candidate.as_slice());
        }
    }
    found.into()
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes hex in either case; `None` for odd lengths or other characters.
pub(super) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

pub(super) fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub(super) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex_decode("00ffA1"), Some(vec![0, 255, 161]));
        assert_eq!(hex_encode(&[0, 255, 161]), "00ffa1");
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("é1"), None);
    }

    #[test]
    fn matching_needs_an_exact_digest() {
        let digest = hmac_sha256(b"k", &[b"body"]);
        assert!(any_matches(&[digest], &[vec![1, 2], digest.to_vec()]));
        assert!(!any_matches(&[digest], &[digest[..31].to_vec()]));
        assert!(!any_matches(&[digest], &[]));
    }
}
