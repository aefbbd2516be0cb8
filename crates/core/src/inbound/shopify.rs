//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret bytes, body)>`. No timestamp is signed;
//! deduplication by `X-Shopify-Webhook-Id` stops replays. Event type: `X-Shopify-Topic` with `/` turned into
//! `.` (`orders/create` becomes `orders.create`, as event type names allow only letters, digits, `-`, `_`, `.`).

use super::mac::{any_matches, b64_decode, b64_encode, hmac_sha256};
use super::{InboundRequest, Rejection, Verifier};

const HEADER: &str = "X-Shopify-Hmac-Sha256";
pub(crate) const TOPIC: &str = "X-Shopify-Topic";
const WEBHOOK_ID: &str = "X-Shopify-Webhook-Id";

pub(super) struct Shopify;

pub(crate) fn parse_header(value: &str) -> Result<Vec<u8>, Rejection> {
    b64_decode(value.trim()).ok_or_else(|| Rejection::malformed(HEADER, "the signature is not base64"))
}

impl Verifier for Shopify {
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
        vec![(HEADER.to_owned(), b64_encode(&digest)), (WEBHOOK_ID.to_owned(), event_id.to_owned())]
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        request.headers.get(WEBHOOK_ID).map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned)
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        request.headers.get(TOPIC).map(str::trim).filter(|topic| !topic.is_empty()).map(|topic| topic.replace('/', "."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    const SECRET: &str = "shpss_test";
    const BODY: &[u8] = br#"{"id": 820982911946154508}"#;

    fn verify(signature: &str, body: &[u8], secrets: &[&str]) -> Result<(), Rejection> {
        let headers = Headers::from_pairs([("x-shopify-hmac-sha256", signature)]);
        Shopify.verify(&InboundRequest { headers: &headers, body }, secrets, 0, 300)
    }

    #[test]
    fn reference_value() {
        // printf '%s' '{"id": 820982911946154508}' | openssl dgst -sha256 -hmac shpss_test -binary | base64
        let signature = "n3DDmvdvAaVHSXItd62PuYpZju6Vks5vsAzitnCCo58=";
        assert_eq!(Shopify.sign(BODY, SECRET, 0, "w1")[0].1, signature);
        assert_eq!(verify(signature, BODY, &[SECRET]), Ok(()));
        assert_eq!(verify(signature, b"{}", &[SECRET]), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(signature, BODY, &["shpss_other"]), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(signature, BODY, &["shpss_other", SECRET]), Ok(()));
        assert_eq!(verify("not base64!", BODY, &[SECRET]).unwrap_err().reason(), "malformed_header");
    }

    #[test]
    fn topic_becomes_an_event_type_name() {
        let headers = Headers::from_pairs([("X-Shopify-Topic", "orders/create"), ("X-Shopify-Webhook-Id", "b54557e4")]);
        let request = InboundRequest { headers: &headers, body: BODY };
        assert_eq!(Shopify.event_type(&request).as_deref(), Some("orders.create"));
        assert_eq!(Shopify.event_id(&request).as_deref(), Some("b54557e4"));
    }
}
