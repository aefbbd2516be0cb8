//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each v1 a hex HMAC-SHA256 of `"{t}.{body}"` keyed
//! with the whole `whsec_…` string's bytes. Several v1 values come during a secret roll; v0 (test-mode legacy)
//! is ignored. Event id and type are the body's `id` and `type`.

use super::fields::body_field;
use super::mac::{any_matches, hex_decode, hex_encode, hmac_sha256};
use super::{InboundRequest, Rejection, Verifier, check_timestamp};

const HEADER: &str = "Stripe-Signature";

pub(super) struct Stripe;

/// The parts of a `Stripe-Signature` value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StripeSignature<'a> {
    pub timestamp: &'a str,
    pub v1: Vec<&'a str>,
}

/// Parses `t=…,v1=…,…`; unknown keys are ignored, as Stripe asks.
pub(crate) fn parse_header(value: &str) -> Result<StripeSignature<'_>, Rejection> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        let (key, val) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| Rejection::malformed(HEADER, "expected comma-separated `key=value` items"))?;
        match key {
            "t" => timestamp = Some(val),
            "v1" => v1.push(val),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| Rejection::malformed(HEADER, "no `t=` timestamp"))?;
    if v1.is_empty() {
        return Err(Rejection::malformed(HEADER, "no `v1=` signature"));
    }
    Ok(StripeSignature { timestamp, v1 })
}

fn digest(secret: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body])
}

impl Verifier for Stripe {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection> {
        let header = parse_header(request.headers.require(HEADER)?)?;
        let expected: Vec<_> = secrets.iter().map(|secret| digest(secret, header.timestamp, request.body)).collect();
        let candidates: Vec<_> = header.v1.iter().filter_map(|sig| hex_decode(sig)).collect();
        if !any_matches(&expected, &candidates) {
            return Err(Rejection::SignatureMismatch);
        }
        check_timestamp(HEADER, header.timestamp, now_secs, tolerance_secs)?;
        Ok(())
    }

    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, _event_id: &str) -> Vec<(String, String)> {
        let timestamp = timestamp_secs.to_string();
        let signature = hex_encode(&digest(secret, &timestamp, body));
        vec![(HEADER.to_owned(), format!("t={timestamp},v1={signature}"))]
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        body_field(request.body, "id")
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        body_field(request.body, "type")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id": "evt_1", "type": "invoice.paid"}"#;

    fn verify(header: &str, secrets: &[&str], now: i64) -> Result<(), Rejection> {
        let headers = Headers::from_pairs([("stripe-signature", header)]);
        Stripe.verify(&InboundRequest { headers: &headers, body: BODY }, secrets, now, 300)
    }

    #[test]
    fn reference_value() {
        // printf '%s' '1700000000.{"id": "evt_1", "type": "invoice.paid"}' | openssl dgst -sha256 -hmac whsec_test_secret
        let signed = Stripe.sign(BODY, SECRET, 1_700_000_000, "");
        assert_eq!(
            signed,
            vec![(
                "Stripe-Signature".to_owned(),
                "t=1700000000,v1=7ef65ed813bf41da1cbc5b86f0ee4a40dfb95e601ad9736c60f916708e64c5a1".to_owned()
            )]
        );
    }

    #[test]
    fn checks() {
        let good = Stripe.sign(BODY, SECRET, 1_700_000_000, "").remove(0).1;
        let sig = good.split_once("v1=").unwrap().1;
        assert_eq!(verify(&good, &[SECRET], 1_700_000_100), Ok(()));
        // A secret roll: the header carries two v1 values, the source knows one of them.
        assert_eq!(
            verify(&format!("t=1700000000,v1={},v1={sig},v0=zz", "ab".repeat(32)), &[SECRET], 1_700_000_000),
            Ok(())
        );
        // Rotation on our side: the previous secret still verifies.
        assert_eq!(verify(&good, &["whsec_new", SECRET], 1_700_000_000), Ok(()));
        assert_eq!(verify(&good, &["whsec_other"], 1_700_000_000), Err(Rejection::SignatureMismatch));
        assert_eq!(
            verify(&good, &[SECRET], 1_700_000_301),
            Err(Rejection::TimestampOutsideTolerance { age_secs: 301, tolerance_secs: 300 })
        );
        // A changed timestamp breaks the signature rather than passing as fresh.
        assert_eq!(
            verify(&format!("t=1700000999,v1={sig}"), &[SECRET], 1_700_000_999),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(verify("v1=ab", &[SECRET], 0).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify("t=1", &[SECRET], 0).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify("garbage", &[SECRET], 0).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify(" ", &[SECRET], 0), Err(Rejection::MissingHeader("Stripe-Signature".into())));
    }

    #[test]
    fn event_fields_come_from_the_body() {
        let headers = Headers::default();
        let request = InboundRequest { headers: &headers, body: BODY };
        assert_eq!(Stripe.event_id(&request).as_deref(), Some("evt_1"));
        assert_eq!(Stripe.event_type(&request).as_deref(), Some("invoice.paid"));
    }
}
