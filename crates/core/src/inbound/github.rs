//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret bytes, body)>`. No timestamp is signed, so there
//! is no replay window: deduplication by `X-GitHub-Delivery` is what stops replays. Event type:
//! `X-GitHub-Event`, then `.` and the body's `action` when it has one (`pull_request.opened`).

use super::fields::body_field;
use super::mac::{any_matches, hex_decode, hex_encode, hmac_sha256};
use super::{InboundRequest, Rejection, Verifier};

const HEADER: &str = "X-Hub-Signature-256";
pub(crate) const EVENT: &str = "X-GitHub-Event";
const DELIVERY: &str = "X-GitHub-Delivery";

pub(super) struct Github;

/// The digest in a `sha256=<hex>` value.
pub(crate) fn parse_header(value: &str) -> Result<Vec<u8>, Rejection> {
    let hex = value.strip_prefix("sha256=").ok_or_else(|| Rejection::malformed(HEADER, "expected `sha256=<hex>`"))?;
    hex_decode(hex).ok_or_else(|| Rejection::malformed(HEADER, "the signature is not hex"))
}

impl Verifier for Github {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        _now: i64,
        _tolerance: i64,
    ) -> Result<(), Rejection> {
        let signature = parse_header(request.headers.require(HEADER)?)?;
        let expected: Vec<_> = secrets.iter().map(|secret| hmac_sha256(secret.as_bytes(), &[request.body])).collect();
        if any_matches(&expected, &[signature]) { Ok(()) } else { Err(Rejection::SignatureMismatch) }
    }

    fn sign(&self, body: &[u8], secret: &str, _timestamp_secs: i64, event_id: &str) -> Vec<(String, String)> {
        let digest = hmac_sha256(secret.as_bytes(), &[body]);
        vec![(HEADER.to_owned(), format!("sha256={}", hex_encode(&digest))), (DELIVERY.to_owned(), event_id.to_owned())]
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        request.headers.get(DELIVERY).map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned)
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        let event = request.headers.get(EVENT).map(str::trim).filter(|event| !event.is_empty())?;
        Some(match body_field(request.body, "action") {
            Some(action) => format!("{event}.{action}"),
            None => event.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    // GitHub's documented test values ("Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verify(signature: &str, body: &[u8], secrets: &[&str]) -> Result<(), Rejection> {
        let headers = Headers::from_pairs([("x-hub-signature-256", signature)]);
        Github.verify(&InboundRequest { headers: &headers, body }, secrets, 0, 300)
    }

    #[test]
    fn documented_test_vector() {
        assert_eq!(Github.sign(BODY, SECRET, 0, "d1")[0].1, SIGNATURE);
        assert_eq!(verify(SIGNATURE, BODY, &[SECRET]), Ok(()));
        assert_eq!(verify(&SIGNATURE.to_uppercase().replace("SHA256=", "sha256="), BODY, &[SECRET]), Ok(()));
    }

    #[test]
    fn checks() {
        assert_eq!(verify(SIGNATURE, b"Hello, World?", &[SECRET]), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(SIGNATURE, BODY, &["another secret"]), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(SIGNATURE, BODY, &["another secret", SECRET]), Ok(()));
        assert_eq!(verify("757107ea", BODY, &[SECRET]).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify("sha256=xyz", BODY, &[SECRET]).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify("", BODY, &[SECRET]).unwrap_err().reason(), "missing_header");
    }

    #[test]
    fn event_type_joins_the_event_and_action() {
        let headers = Headers::from_pairs([("X-GitHub-Event", "pull_request"), ("X-GitHub-Delivery", "72d3162e")]);
        let opened = InboundRequest { headers: &headers, body: br#"{"action": "opened"}"# };
        assert_eq!(Github.event_type(&opened).as_deref(), Some("pull_request.opened"));
        assert_eq!(Github.event_id(&opened).as_deref(), Some("72d3162e"));
        let push = InboundRequest { headers: &headers, body: br#"{"ref": "main"}"# };
        assert_eq!(Github.event_type(&push).as_deref(), Some("pull_request"));
    }
}
