//! Home-grown senders (like those our users' own backends talk to): an HMAC-SHA256 keyed with the secret
//! string's bytes, in a header of the sender's choosing. By default `X-Webhook-Signature: sha256=<hex>` over the
//! raw body; the header, the encoding (hex or base64) and the prefix are options. With a `timestamp_header`, the
//! signed content becomes `"{timestamp}.{body}"` and the timestamp must be within the tolerance (a timestamp
//! that is not signed would stop no replay).

use super::fields::EventFields;
use super::mac::{any_matches, b64_decode, b64_encode, hex_decode, hex_encode, hmac_sha256};
use super::{InboundRequest, Rejection, Verifier, check_timestamp};

/// How the digest is written in the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

impl SignatureEncoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hex" => Some(Self::Hex),
            "base64" => Some(Self::Base64),
            _ => None,
        }
    }

    fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Self::Hex => hex_decode(text),
            Self::Base64 => b64_decode(text),
        }
    }

    fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex_encode(bytes),
            Self::Base64 => b64_encode(bytes),
        }
    }
}

/// The generic scheme's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericHmac {
    pub signature_header: String,
    pub encoding: SignatureEncoding,
    /// Written before the digest, e.g. `sha256=`; a value without it is accepted too (some senders send bare hex).
    pub prefix: String,
    /// A header carrying the unix-seconds timestamp that is signed along with the body.
    pub timestamp_header: Option<String>,
    pub fields: EventFields,
}

impl Default for GenericHmac {
    fn default() -> Self {
        Self {
            signature_header: "X-Webhook-Signature".to_owned(),
            encoding: SignatureEncoding::Hex,
            prefix: "sha256=".to_owned(),
            timestamp_header: None,
            fields: EventFields { event_type_field: "type".to_owned(), event_id_header: None, event_id_field: None },
        }
    }
}

impl GenericHmac {
    /// The digest in the signature header's value.
    pub(crate) fn parse_header(&self, value: &str) -> Result<Vec<u8>, Rejection> {
        let value = value.trim();
        let digest = value.strip_prefix(self.prefix.as_str()).unwrap_or(value);
        self.encoding.decode(digest).ok_or_else(|| {
            let problem = format!("expected `{}<{}>`", self.prefix, self.encoding.name());
            Rejection::malformed(&self.signature_header, problem)
        })
    }

    fn digest(&self, secret: &str, timestamp: Option<&str>, body: &[u8]) -> [u8; 32] {
        match timestamp {
            Some(timestamp) => hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]),
            None => hmac_sha256(secret.as_bytes(), &[body]),
        }
    }
}

impl Verifier for GenericHmac {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection> {
        let signature = self.parse_header(request.headers.require(&self.signature_header)?)?;
        let timestamp = match &self.timestamp_header {
            Some(header) => Some(request.headers.require(header)?),
            None => None,
        };
        let expected: Vec<_> = secrets.iter().map(|secret| self.digest(secret, timestamp, request.body)).collect();
        if !any_matches(&expected, &[signature]) {
            return Err(Rejection::SignatureMismatch);
        }
        if let (Some(header), Some(timestamp)) = (&self.timestamp_header, timestamp) {
            check_timestamp(header, timestamp, now_secs, tolerance_secs)?;
        }
        Ok(())
    }

    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, event_id: &str) -> Vec<(String, String)> {
        let timestamp = self.timestamp_header.as_ref().map(|_| timestamp_secs.to_string());
        let digest = self.digest(secret, timestamp.as_deref(), body);
        let mut headers =
            vec![(self.signature_header.clone(), format!("{}{}", self.prefix, self.encoding.encode(&digest)))];
        if let (Some(header), Some(timestamp)) = (&self.timestamp_header, timestamp) {
            headers.push((header.clone(), timestamp));
        }
        if let Some(header) = &self.fields.event_id_header {
            headers.push((header.clone(), event_id.to_owned()));
        }
        headers
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        self.fields.event_id(request)
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        self.fields.event_type(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    const SECRET: &str = "my-webhook-secret";
    const BODY: &[u8] = br#"{"type": "user.created", "id": "evt_9"}"#;
    // printf '%s' '{"type": "user.created", "id": "evt_9"}' | openssl dgst -sha256 -hmac my-webhook-secret
    const HEX: &str = "726116bd9497233c5bb014d72aa5c95009fd735c32c26738c4be001a91ef0710";

    fn verify(scheme: &GenericHmac, headers: &[(&str, &str)], body: &[u8], now: i64) -> Result<(), Rejection> {
        let headers = Headers::from_pairs(headers.iter().copied());
        scheme.verify(&InboundRequest { headers: &headers, body }, &[SECRET], now, 300)
    }

    #[test]
    fn default_is_sha256_hex_of_the_body() {
        let scheme = GenericHmac::default();
        assert_eq!(scheme.sign(BODY, SECRET, 0, "")[0].1, format!("sha256={HEX}"));
        assert_eq!(verify(&scheme, &[("X-Webhook-Signature", &format!("sha256={HEX}"))], BODY, 0), Ok(()));
        assert_eq!(verify(&scheme, &[("x-webhook-signature", HEX)], BODY, 0), Ok(()));
        assert_eq!(verify(&scheme, &[("X-Webhook-Signature", HEX)], b"{}", 0), Err(Rejection::SignatureMismatch));
        assert_eq!(
            verify(&scheme, &[("X-Webhook-Signature", "sha256=zz")], BODY, 0).unwrap_err().reason(),
            "malformed_header"
        );
        assert_eq!(verify(&scheme, &[], BODY, 0).unwrap_err().reason(), "missing_header");
    }

    #[test]
    fn options_change_header_encoding_and_signed_content() {
        let scheme = GenericHmac {
            signature_header: "X-Corp-Signature".into(),
            encoding: SignatureEncoding::Base64,
            prefix: String::new(),
            timestamp_header: Some("X-Corp-Timestamp".into()),
            fields: EventFields {
                event_type_field: "event".into(),
                event_id_header: Some("X-Corp-Id".into()),
                event_id_field: None,
            },
        };
        let signed = scheme.sign(BODY, SECRET, 1_700_000_000, "id-1");
        let pairs: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs.len(), 3);
        assert_eq!(verify(&scheme, &pairs, BODY, 1_700_000_000), Ok(()));
        assert_eq!(
            verify(&scheme, &pairs, BODY, 1_700_000_000 + 301),
            Err(Rejection::TimestampOutsideTolerance { age_secs: 301, tolerance_secs: 300 })
        );
        let moved: Vec<(&str, &str)> =
            pairs.iter().map(|&(k, v)| if k == "X-Corp-Timestamp" { (k, "1700000001") } else { (k, v) }).collect();
        assert_eq!(verify(&scheme, &moved, BODY, 1_700_000_000), Err(Rejection::SignatureMismatch));
    }
}
