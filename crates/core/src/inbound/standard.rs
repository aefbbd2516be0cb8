//! Standard Webhooks, as Svix (and so Clerk) sends them: `svix-id`, `svix-timestamp` and `svix-signature` (or the
//! same with the `webhook-` prefix); the signature header is a space-separated list of `v1,<base64>` HMAC-SHA256
//! values of `"{id}.{timestamp}.{body}"`, keyed with the base64-decoded part of the `whsec_…` secret. Several
//! values come while the sender rotates its secret. Event id: the id header; event type: the body's `type`.

use super::fields::body_field;
use super::mac::{any_matches, b64_decode, b64_encode, hmac_sha256};
use super::{BadSecret, InboundRequest, Rejection, Verifier, check_timestamp};

pub(super) struct StandardWebhooks;

/// The header names of one of the two spellings.
struct Names {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const SVIX: Names = Names { id: "svix-id", timestamp: "svix-timestamp", signature: "svix-signature" };
const WEBHOOK: Names = Names { id: "webhook-id", timestamp: "webhook-timestamp", signature: "webhook-signature" };

/// The spelling the request uses: `svix-*` if it has a `svix-signature`, else `webhook-*`.
fn names_of(request: &InboundRequest<'_>) -> &'static Names {
    if request.headers.get(SVIX.signature).is_some() { &SVIX } else { &WEBHOOK }
}

/// The key bytes of a secret, with or without the `whsec_` prefix (the Svix libraries accept both).
fn key_of(secret: &str) -> Option<Vec<u8>> {
    b64_decode(secret.strip_prefix("whsec_").unwrap_or(secret)).filter(|key| !key.is_empty())
}

/// The base64 values of the `v1,…` entries of a signature header; other versions are ignored.
pub(crate) fn parse_signatures(header: &str, value: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    let mut v1 = Vec::new();
    let mut any_v1 = false;
    for entry in value.split_whitespace() {
        let (version, signature) = entry
            .split_once(',')
            .ok_or_else(|| Rejection::malformed(header, "expected space-separated `v1,<base64>` entries"))?;
        if version == "v1" {
            any_v1 = true;
            v1.extend(b64_decode(signature));
        }
    }
    if !any_v1 {
        return Err(Rejection::malformed(header, "no `v1,` signature"));
    }
    Ok(v1)
}

impl Verifier for StandardWebhooks {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection> {
        let names = names_of(request);
        let signatures = parse_signatures(names.signature, request.headers.require(names.signature)?)?;
        let id = request.headers.require(names.id)?;
        let timestamp = request.headers.require(names.timestamp)?;
        let expected: Vec<_> = secrets
            .iter()
            .filter_map(|secret| key_of(secret))
            .map(|key| hmac_sha256(&key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", request.body]))
            .collect();
        if !any_matches(&expected, &signatures) {
            return Err(Rejection::SignatureMismatch);
        }
        check_timestamp(names.timestamp, timestamp, now_secs, tolerance_secs)?;
        Ok(())
    }

    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, event_id: &str) -> Vec<(String, String)> {
        let timestamp = timestamp_secs.to_string();
        let key = key_of(secret).unwrap_or_default();
        let digest = hmac_sha256(&key, &[event_id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
        vec![
            (SVIX.id.to_owned(), event_id.to_owned()),
            (SVIX.timestamp.to_owned(), timestamp),
            (SVIX.signature.to_owned(), format!("v1,{}", b64_encode(&digest))),
        ]
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        request.headers.get(names_of(request).id).map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned)
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        body_field(request.body, "type")
    }

    fn check_secret(&self, secret: &str) -> Result<(), BadSecret> {
        match key_of(secret) {
            Some(_) => Ok(()),
            None => Err(BadSecret("a Svix / Standard Webhooks secret is `whsec_` followed by base64".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    // The Standard Webhooks specification's test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn verify(prefix: &str, signature: &str, body: &[u8], secrets: &[&str], now: i64) -> Result<(), Rejection> {
        let headers = Headers::from_pairs([
            (format!("{prefix}-id"), ID.to_owned()),
            (format!("{prefix}-timestamp"), TIMESTAMP.to_string()),
            (format!("{prefix}-signature"), signature.to_owned()),
        ]);
        StandardWebhooks.verify(&InboundRequest { headers: &headers, body }, secrets, now, 300)
    }

    #[test]
    fn specification_test_vector() {
        let signed = StandardWebhooks.sign(BODY, SECRET, TIMESTAMP, ID);
        assert_eq!(signed[2], ("svix-signature".to_owned(), SIGNATURE.to_owned()));
        assert_eq!(verify("svix", SIGNATURE, BODY, &[SECRET], TIMESTAMP), Ok(()));
        assert_eq!(verify("webhook", SIGNATURE, BODY, &[SECRET], TIMESTAMP + 300), Ok(()));
        // The Svix libraries also accept the secret without its prefix.
        assert_eq!(verify("svix", SIGNATURE, BODY, &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], TIMESTAMP), Ok(()));
    }

    #[test]
    fn checks() {
        let rotating = format!("v1a,xyz v1,AAAA {SIGNATURE}");
        assert_eq!(verify("svix", &rotating, BODY, &[SECRET], TIMESTAMP), Ok(()));
        assert_eq!(
            verify("svix", SIGNATURE, b"{\"test\": 1}", &[SECRET], TIMESTAMP),
            Err(Rejection::SignatureMismatch)
        );
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(verify("svix", SIGNATURE, BODY, &[other], TIMESTAMP), Err(Rejection::SignatureMismatch));
        assert_eq!(verify("svix", SIGNATURE, BODY, &[other, SECRET], TIMESTAMP), Ok(()));
        assert_eq!(
            verify("svix", SIGNATURE, BODY, &[SECRET], TIMESTAMP - 301),
            Err(Rejection::TimestampOutsideTolerance { age_secs: -301, tolerance_secs: 300 })
        );
        assert_eq!(verify("svix", "v1a,abc", BODY, &[SECRET], TIMESTAMP).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify("svix", "nocomma", BODY, &[SECRET], TIMESTAMP).unwrap_err().reason(), "malformed_header");
        let headers = Headers::from_pairs([("svix-signature", SIGNATURE)]);
        let request = InboundRequest { headers: &headers, body: BODY };
        assert_eq!(
            StandardWebhooks.verify(&request, &[SECRET], TIMESTAMP, 300),
            Err(Rejection::MissingHeader("svix-id".into()))
        );
        let none = Headers::default();
        let request = InboundRequest { headers: &none, body: BODY };
        assert_eq!(
            StandardWebhooks.verify(&request, &[SECRET], TIMESTAMP, 300),
            Err(Rejection::MissingHeader("webhook-signature".into()))
        );
    }

    #[test]
    fn secrets_must_be_base64() {
        assert!(StandardWebhooks.check_secret(SECRET).is_ok());
        assert!(StandardWebhooks.check_secret("whsec_!!").is_err());
        assert!(StandardWebhooks.check_secret("whsec_").is_err());
    }
}
