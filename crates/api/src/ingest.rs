//! The public ingest route, `POST /ingest/{source id or uid}`: no bearer token, the provider's signature is the
//! authentication. The source's rate limit (if it has one) is checked first, then the raw body is read (up to
//! the ingest limit) and verified byte for byte; a verified, new event is stored and published to the source's
//! application in one transaction, then fans out to its endpoints like any message. Verified requests are
//! recorded one by one (the source's event list); rejected ones are only counted, per source, reason and minute
//! with one sample without body ([`crate::rejections`]), so that forged requests cost nothing durable each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hookrelay_core::inbound::{Headers, InboundRequest, Provider, Verifier};
use hookrelay_core::model::{InboundEvent, InboundStatus, Message, Source};
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::validate::{MAX_NAME_LEN, check_name};
use hookrelay_core::{InboundEventId, MessageId, SourceId};
use hookrelay_metrics::InboundResult;
use hookrelay_store::{Inbound, IngestOutcome};
use serde_json::json;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, MAX_JSON_DEPTH, nests_deeper_than};
use crate::rate_limit::{Buckets, Rate, retry_after_secs};
use crate::rejections::{RejectionLog, sample};
use crate::source::find_source;
use crate::{ApiState, Routes};

/// The event type of a message whose provider named none.
const UNKNOWN_EVENT_TYPE: &str = "unknown";
/// The reason (and error code) of a request over its source's rate limit.
pub const RATE_LIMITED: &str = "rate_limit_exceeded";

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/ingest/{source}", post(ingest))
}

/// What the ingest route keeps in this process's memory between requests.
pub struct IngestState {
    /// Rejected requests counted but not yet written.
    pub rejections: Arc<RejectionLog>,
    /// The buckets of sources that have a rate limit.
    limits: Buckets<SourceId>,
}

impl IngestState {
    pub fn new(store: Arc<dyn Inbound>) -> Self {
        Self { rejections: Arc::new(RejectionLog::new(store)), limits: Buckets::default() }
    }

    /// A refusal when the source has a rate limit and this request is over it.
    fn over_rate_limit(&self, source: &Source) -> Option<Refusal> {
        let per_sec = source.rate_limit?;
        let wait = self.limits.check(&source.id, Rate::new(per_sec, 0)?, Instant::now()).err()?;
        let retry_after = retry_after_secs(wait);
        Some(Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: RATE_LIMITED,
            detail: format!(
                "this source accepts at most {per_sec} requests per second (its `rateLimit`); retry in {retry_after} s"
            ),
            retry_after: Some(retry_after),
        })
    }
}

/// Why a request to a source is refused before anything is published.
struct Refusal {
    status: StatusCode,
    reason: &'static str,
    detail: String,
    /// Seconds to wait, sent as `Retry-After`.
    retry_after: Option<u64>,
}

impl Refusal {
    fn response(&self) -> Response {
        let mut response = (self.status, Json(json!({ "code": self.reason, "detail": self.detail }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Counts, maybe logs, and answers a rejected request. What is kept and logged is never the body, a secret, or
/// a signature or credential header's value.
fn reject(
    state: &ApiState,
    source: &Source,
    refusal: &Refusal,
    headers: &HeaderMap,
    body_bytes: Option<usize>,
    at: UnixMillis,
) -> Response {
    state.metrics.inbound_request(source_label(source), InboundResult::Rejected);
    let first = state.ingest.rejections.add(&source.id, refusal.reason, at, || {
        let options = source.provider.options();
        let signature_header = options.get("signatureHeader").and_then(serde_json::Value::as_str);
        sample(&refusal.detail, headers, signature_header, body_bytes)
    });
    // At `warn` only the first of its source and reason since the counts were last written (one line every few
    // seconds at most), so that a flood does not flood the log; every one at `debug`.
    if first {
        tracing::warn!(source = %source.id, provider = source.provider.name(), reason = refusal.reason,
            status = refusal.status.as_u16(), "inbound request rejected");
    } else {
        tracing::debug!(source = %source.id, provider = source.provider.name(), reason = refusal.reason,
            status = refusal.status.as_u16(), "inbound request rejected");
    }
    refusal.response()
}

/// A provider's webhook. Verified byte for byte against the source's secret before anything else is looked at.
#[utoipa::path(
    post,
    path = "/ingest/{source}/",
    operation_id = "ingest.receive",
    tag = "Ingest",
    security(()),
    params(("source" = String, Path, description = "The source's id (`src_…`) or uid.")),
    request_body(
        content = Object,
        description = "The provider's JSON event, with its signature headers (`Stripe-Signature`, `webhook-signature`, \
                       `X-Hub-Signature-256`, …).",
    ),
    responses(
        (status = 200, description = "Verified: published, or a duplicate of an earlier event (or a Slack challenge, echoed).",
            body = Object, example = json!({"received": true, "duplicate": false, "messageId": "msg_2mBwDgnWeUw6HbqoOsJ8lxOMBvx"})),
        (status = 400, description = "Malformed signature headers, or a body that is not a JSON object or nests too deep.", body = ErrorBody),
        (status = 401, description = "The signature does not verify, or the timestamp is outside the tolerance.", body = ErrorBody),
        (status = 404, response = crate::openapi::NotFound),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::Invalid),
        (status = 429, description = "Over the source's `rateLimit` (`rate_limit_exceeded`), checked before the signature; \
            `Retry-After` says when to retry.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
        (status = 500, response = crate::openapi::Internal),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
async fn ingest(
    State(state): State<ApiState>,
    ApiPath(source_ref): ApiPath<String>,
    raw_headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source = find_source(&state, &source_ref).await?;
    let received_at = now_ms();
    // Before the body is read or verified: the limit is what protects the server from a flood.
    if let Some(refusal) = state.ingest.over_rate_limit(&source) {
        return Ok(reject(&state, &source, &refusal, &raw_headers, None, received_at));
    }
    let bytes = match axum::body::to_bytes(body, state.ingest_max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let refusal = Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                reason: "payload_too_large",
                detail: format!(
                    "the body is larger than this server's ingest limit of {} bytes (HOOKRELAY_INGEST_MAX_BODY_BYTES)",
                    state.ingest_max_body_bytes
                ),
                retry_after: None,
            };
            return Ok(reject(&state, &source, &refusal, &raw_headers, None, received_at));
        }
    };
    let headers = to_headers(&raw_headers);
    let payload = match check(&source, &headers, &bytes, received_at) {
        Ok(payload) => payload,
        Err(refusal) => return Ok(reject(&state, &source, &refusal, &raw_headers, Some(bytes.len()), received_at)),
    };
    let mut event = InboundEvent {
        id: InboundEventId::at(received_at),
        source_id: source.id.clone(),
        status: InboundStatus::Verified,
        reason: None,
        event_id: None,
        event_type: None,
        msg_id: None,
        received_at,
    };

    let request = InboundRequest { headers: &headers, body: &bytes };
    event.event_id = source.provider.event_id(&request);
    let event_type = event_type_name(source.provider.event_type(&request));
    event.event_type = Some(event_type.clone());

    // Slack checks a new request URL with a signed challenge, which it expects echoed; it is not an event.
    if let Some(challenge) = slack_challenge(&source.provider, &bytes) {
        state.store.inbound.ingest(&event, None).await?;
        state.metrics.inbound_request(source_label(&source), InboundResult::Verified);
        return Ok(Json(json!({ "challenge": challenge })).into_response());
    }

    let message = Message {
        forwarded_headers: forwarded_headers(&source, &raw_headers),
        ..Message::new(source.app_id.clone(), event_type, payload, received_at)
    };
    let body = match state.store.inbound.ingest(&event, Some(&message)).await? {
        IngestOutcome::Recorded(published) => {
            state.metrics.inbound_request(source_label(&source), InboundResult::Verified);
            if let Some(published) = published {
                state.metrics.message_published(&message.event_type);
                if published.to_claim > 0 {
                    state.on_new_work.notify_one();
                }
            }
            tracing::info!(source = %source.id, msg_id = %message.id, event_type = %message.event_type,
                "inbound event verified and published");
            json!({ "received": true, "duplicate": false, "messageId": message.id.as_str() })
        }
        IngestOutcome::Duplicate { original_msg_id } => {
            state.metrics.inbound_request(source_label(&source), InboundResult::Duplicate);
            tracing::info!(source = %source.id, event_id = event.event_id.as_deref(),
                "inbound event is a duplicate; ignored");
            json!({ "received": true, "duplicate": true, "messageId": original_msg_id.as_ref().map(MessageId::as_str) })
        }
    };
    Ok(Json(body).into_response())
}

/// How metrics name a source: its uid when it has one (chosen by the operator, readable), else its id.
fn source_label(source: &Source) -> &str {
    source.uid.as_deref().unwrap_or(source.id.as_str())
}

/// Verifies the request and returns the body as the message payload: verification first, so that an
/// unauthenticated caller learns nothing about what the body should look like.
fn check(source: &Source, headers: &Headers, body: &[u8], now: i64) -> Result<String, Refusal> {
    let request = InboundRequest { headers, body };
    let secrets = source.secrets.valid_at(now);
    source.provider.verify(&request, &secrets, now.div_euclid(1000), source.tolerance_secs).map_err(|rejection| {
        let status = if rejection.is_malformed() { StatusCode::BAD_REQUEST } else { StatusCode::UNAUTHORIZED };
        Refusal { status, reason: rejection.reason(), detail: rejection.to_string(), retry_after: None }
    })?;
    let not_json = || Refusal {
        status: StatusCode::BAD_REQUEST,
        reason: "body_not_json",
        detail: "the body must be a JSON object: hookrelay forwards JSON events (set the provider's content type \
                 to application/json)"
            .to_owned(),
        retry_after: None,
    };
    let text = std::str::from_utf8(body).map_err(|_| not_json())?;
    // The same depth limit as every API body; deeper bodies would reach endpoints whose parsers give up.
    if nests_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: "body_too_deep",
            detail: format!("the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"),
            retry_after: None,
        });
    }
    // Checked as JSON without building the tree the check would throw away.
    let is_object = text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    if is_object { Ok(text.to_owned()) } else { Err(not_json()) }
}

/// The longest forwarded header value kept, in bytes (a provider's signature header is a few hundred).
const MAX_FORWARDED_VALUE_BYTES: usize = 8 * 1024;

/// The request headers the source forwards, under the names it lists them by; several values of one header are
/// joined with `, `. A value that cannot be sent on (not visible ASCII, or over 8 KiB) is left out and logged.
fn forwarded_headers(source: &Source, headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut forwarded = BTreeMap::new();
    for name in &source.forward_headers {
        let values: Vec<_> = headers.get_all(name.as_str()).iter().collect();
        if values.is_empty() {
            continue;
        }
        let joined = values.iter().map(|value| value.to_str()).collect::<Result<Vec<_>, _>>().map(|v| v.join(", "));
        match joined {
            Ok(value) if value.len() <= MAX_FORWARDED_VALUE_BYTES => {
                forwarded.insert(name.clone(), value);
            }
            _ => tracing::warn!(source_id = %source.id, header = %name,
                "a forwarded header's value is not visible ASCII or is over 8 KiB; it is not forwarded"),
        }
    }
    forwarded
}

fn to_headers(headers: &HeaderMap) -> Headers {
    // A header value that is not visible ASCII cannot carry a signature; it is kept lossily for event ids.
    Headers::from_pairs(headers.iter().map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes()))))
}

/// The provider's event type as a valid event type name: characters outside `[A-Za-z0-9._-]` become `_`.
fn event_type_name(provided: Option<String>) -> String {
    let Some(name) = provided else {
        return UNKNOWN_EVENT_TYPE.to_owned();
    };
    if check_name(&name).is_ok() {
        return name;
    }
    let cleaned: String = name
        .chars()
        .take(MAX_NAME_LEN)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if cleaned.is_empty() { UNKNOWN_EVENT_TYPE.to_owned() } else { cleaned }
}

/// The `challenge` of a Slack `url_verification` request.
fn slack_challenge(provider: &Provider, body: &[u8]) -> Option<String> {
    if !matches!(provider, Provider::Slack(_)) {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    if json.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    json.get("challenge")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_become_valid_names() {
        assert_eq!(event_type_name(Some("invoice.paid".into())), "invoice.paid");
        assert_eq!(event_type_name(Some("user signed up!".into())), "user_signed_up_");
        assert_eq!(event_type_name(Some("x".repeat(300))).len(), MAX_NAME_LEN);
        assert_eq!(event_type_name(None), "unknown");
    }

    #[test]
    fn only_slack_answers_challenges() {
        let body =
            br#"{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
        let slack = Provider::from_name("slack").expect("known");
        assert_eq!(
            slack_challenge(&slack, body).as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert_eq!(slack_challenge(&slack, br#"{"type": "event_callback"}"#), None);
        assert_eq!(slack_challenge(&Provider::Stripe, body), None);
    }
}
