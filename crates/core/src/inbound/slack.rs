//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret bytes, "v0:{ts}:{body}")>` with the timestamp in
//! `X-Slack-Request-Timestamp`. Event type: the body's `type` by default (`event.type` is a common choice for the
//! Events API); event id: the body's `event_id` by default. Both places are options of the source.

use super::fields::EventFields;
use super::mac::{any_matches, hex_decode, hex_encode, hmac_sha256};
use super::{InboundRequest, Rejection, Verifier, check_timestamp};

const HEADER: &str = "X-Slack-Signature";
const TIMESTAMP: &str = "X-Slack-Request-Timestamp";

/// Slack's scheme, with where to find the event type and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slack {
    pub fields: EventFields,
}

impl Default for Slack {
    fn default() -> Self {
        Self {
            fields: EventFields {
                event_type_field: "type".to_owned(),
                event_id_header: None,
                event_id_field: Some("event_id".to_owned()),
            },
        }
    }
}

pub(crate) fn parse_header(value: &str) -> Result<Vec<u8>, Rejection> {
    let hex = value.strip_prefix("v0=").ok_or_else(|| Rejection::malformed(HEADER, "expected `v0=<hex>`"))?;
    hex_decode(hex).ok_or_else(|| Rejection::malformed(HEADER, "the signature is not hex"))
}

fn digest(secret: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(secret.as_bytes(), &[b"v0:", timestamp.as_bytes(), b":", body])
}

impl Verifier for Slack {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection> {
        let signature = parse_header(request.headers.require(HEADER)?)?;
        let timestamp = request.headers.require(TIMESTAMP)?;
        let expected: Vec<_> = secrets.iter().map(|secret| digest(secret, timestamp, request.body)).collect();
        if !any_matches(&expected, &[signature]) {
            return Err(Rejection::SignatureMismatch);
        }
        check_timestamp(TIMESTAMP, timestamp, now_secs, tolerance_secs)?;
        Ok(())
    }

    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, _event_id: &str) -> Vec<(String, String)> {
        let timestamp = timestamp_secs.to_string();
        let signature = format!("v0={}", hex_encode(&digest(secret, &timestamp, body)));
        vec![(HEADER.to_owned(), signature), (TIMESTAMP.to_owned(), timestamp)]
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

    // Slack's documented example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1531420618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn verify(signature: &str, ts: &str, body: &[u8], secrets: &[&str], now: i64) -> Result<(), Rejection> {
        let headers = Headers::from_pairs([(HEADER, signature), (TIMESTAMP, ts)]);
        Slack::default().verify(&InboundRequest { headers: &headers, body }, secrets, now, 300)
    }

    #[test]
    fn documented_test_vector() {
        assert_eq!(Slack::default().sign(BODY, SECRET, TS, "")[0].1, SIGNATURE);
        assert_eq!(verify(SIGNATURE, "1531420618", BODY, &[SECRET], TS + 10), Ok(()));
    }

    #[test]
    fn checks() {
        let ts = "1531420618";
        assert_eq!(verify(SIGNATURE, ts, b"token=x", &[SECRET], TS), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(SIGNATURE, ts, BODY, &["0000"], TS), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(SIGNATURE, ts, BODY, &["0000", SECRET], TS), Ok(()));
        assert_eq!(verify(SIGNATURE, "1531420619", BODY, &[SECRET], TS), Err(Rejection::SignatureMismatch));
        assert_eq!(
            verify(SIGNATURE, ts, BODY, &[SECRET], TS + 301),
            Err(Rejection::TimestampOutsideTolerance { age_secs: 301, tolerance_secs: 300 })
        );
        assert_eq!(verify("a2114d", ts, BODY, &[SECRET], TS).unwrap_err().reason(), "malformed_header");
        assert_eq!(verify(SIGNATURE, "", BODY, &[SECRET], TS), Err(Rejection::MissingHeader(TIMESTAMP.into())));
    }
}
