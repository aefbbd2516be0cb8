//! Messages (`/api/v1/app/{app_id}/msg/…`): publishing an event (stored with its deliveries in one durable
//! transaction before the 202) and reading messages back.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use hookrelay_core::model::Message;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::validate::check_name;
use hookrelay_core::{AppId, MessageId};
use hookrelay_store::{EVENT_ID_TAKEN, MessageFilter, Order, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::app::{AppIn, find_app, find_or_create_app};
use crate::error::{ApiError, OrNotFound};
use crate::event_type::check_event_type_name;
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::idempotency::{AlreadyRemembered, IdempotencyScope};
use crate::openapi::{AdminBodyErrors, AdminErrors, AppPath, Conflict, MessagePath, NotFound, PageParams};
use crate::pagination::{ListOut, page_request};
use crate::time::Rfc3339;
use crate::validate::check_channels;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/app/{app_id}/msg", get(list).post(publish))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}", get(read).post(post_on_message))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}/content", delete(expunge_content))
}

/// `MessageIn`. The payload is kept as raw JSON text so it is stored and delivered byte for byte as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MessageIn {
    /// The event type's name; `^[a-zA-Z0-9\-_.]+$`, at most 256 characters.
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256, example = "invoice.paid")]
    event_type: String,
    /// Your id of the event, unique per application (a repeat is a 409).
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256)]
    event_id: Option<String>,
    /// The JSON object delivered to the endpoints, byte for byte (`data` is accepted too); `{}` with a raw
    /// payload in `transformationsParams.rawPayload`.
    #[serde(alias = "data")]
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    channels: Option<Vec<String>>,
    /// Free-form tags the message lists can be filtered by (`tag=`): at most 5, each 1–128 characters of
    /// `^[a-zA-Z0-9\-_./\\#]+$`.
    #[serde(default)]
    #[schema(max_items = 5)]
    tags: Option<Vec<String>>,
    /// `rawPayload`: a body of any text, delivered byte for byte instead of `payload`; `headers`: only
    /// `content-type`, the content type it is delivered with (default `application/json`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    transformations_params: Option<serde_json::Map<String, serde_json::Value>>,
    /// No attempt before this time (RFC 3339): at most 30 days ahead; up to an hour in the past means now.
    #[serde(default)]
    #[schema(format = DateTime)]
    deliver_at: Option<String>,
    /// Days to keep the payload (1–90) instead of the server's retention.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    payload_retention_period: Option<i64>,
    /// Hours to keep the payload (1–2160) instead of the server's retention; not with `payloadRetentionPeriod`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    payload_retention_hours: Option<i64>,
    /// Creates the application with the message when the path names one that does not exist yet.
    #[serde(default)]
    application: Option<AppIn>,
}

/// Most tags on one message, and the longest tag (Svix's limits).
const MAX_TAGS: usize = 5;
const MAX_TAG_LEN: usize = 128;
/// How far ahead `deliverAt` may be, and how far in the past it is still taken as "now".
const MAX_DELIVER_AHEAD_MS: i64 = 30 * 24 * 3_600_000;
const DELIVER_AT_PAST_GRACE_MS: i64 = 3_600_000;
/// The longest content type a raw payload may name.
const MAX_CONTENT_TYPE_LEN: usize = 256;

/// A raw payload from `transformationsParams`, and the content type it is delivered with.
struct RawPayload {
    body: String,
    content_type: Option<String>,
}

/// Reads `transformationsParams`: `rawPayload` and a `content-type` header; anything else is a 422 rather than
/// dropped, since hookrelay passes no other parameters to transformations.
fn raw_payload(params: serde_json::Map<String, serde_json::Value>) -> Result<Option<RawPayload>, ApiError> {
    const FIELD: &str = "transformationsParams";
    let mut body = None;
    let mut content_type = None;
    for (key, value) in params {
        match (key.as_str(), value) {
            ("rawPayload", serde_json::Value::String(text)) => body = Some(text),
            ("rawPayload", serde_json::Value::Null) | ("headers", serde_json::Value::Null) => {}
            ("rawPayload", _) => return Err(ApiError::body(&[FIELD, "rawPayload"], "rawPayload must be a string")),
            ("headers", serde_json::Value::Object(headers)) => {
                for (name, value) in headers {
                    let path = [FIELD, "headers", name.as_str()];
                    if !name.eq_ignore_ascii_case("content-type") {
                        return Err(ApiError::body(
                            &path,
                            "only the content-type header of a raw payload is supported",
                        ));
                    }
                    match value {
                        serde_json::Value::String(value) if is_content_type(&value) => content_type = Some(value),
                        _ => {
                            return Err(ApiError::body(
                                &path,
                                format!(
                                    "content-type must be a header value of 1 to {MAX_CONTENT_TYPE_LEN} visible ASCII characters"
                                ),
                            ));
                        }
                    }
                }
            }
            ("headers", _) => return Err(ApiError::body(&[FIELD, "headers"], "headers must be an object")),
            (other, _) => {
                return Err(ApiError::body(
                    &[FIELD, other],
                    "not supported: transformationsParams takes rawPayload and headers (content-type) only",
                ));
            }
        }
    }
    match body {
        Some(body) if body.contains('\0') => {
            Err(ApiError::body(&[FIELD, "rawPayload"], "rawPayload cannot contain NUL characters"))
        }
        Some(body) => Ok(Some(RawPayload { body, content_type })),
        None if content_type.is_some() => {
            Err(ApiError::body(&[FIELD, "headers"], "a content-type needs a rawPayload to go with"))
        }
        None => Ok(None),
    }
}

fn is_content_type(value: &str) -> bool {
    (1..=MAX_CONTENT_TYPE_LEN).contains(&value.len()) && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// Checks Svix's tag rules; a repeated tag counts once, as in Svix's set.
fn check_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./\\#".contains(c);
        if tag.is_empty() || tag.len() > MAX_TAG_LEN || !tag.chars().all(allowed) {
            return Err(ApiError::body(
                &["tags"],
                format!("a tag must be 1 to {MAX_TAG_LEN} characters of letters, digits and -_./\\#, got `{tag}`"),
            ));
        }
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    if unique.len() > MAX_TAGS {
        return Err(ApiError::body(&["tags"], format!("at most {MAX_TAGS} tags, got {}", unique.len())));
    }
    Ok(unique)
}

/// When the first attempt is due, from `deliverAt`.
fn check_deliver_at(text: &str, now: UnixMillis) -> Result<UnixMillis, ApiError> {
    let at = crate::time::parse(text).map_err(|err| ApiError::body(&["deliverAt"], format!("deliverAt {err}")))?;
    if at < now - DELIVER_AT_PAST_GRACE_MS {
        return Err(ApiError::body(&["deliverAt"], "deliverAt is more than an hour in the past"));
    }
    if at > now + MAX_DELIVER_AHEAD_MS {
        return Err(ApiError::body(&["deliverAt"], "deliverAt is more than 30 days ahead"));
    }
    Ok(at)
}

/// When the payload is purged, if the message sets its own retention.
fn payload_expiry(days: Option<i64>, hours: Option<i64>, now: UnixMillis) -> Result<Option<UnixMillis>, ApiError> {
    const HOUR_MS: i64 = 3_600_000;
    match (days, hours) {
        (Some(_), Some(_)) => Err(ApiError::body(
            &["payloadRetentionHours"],
            "give payloadRetentionPeriod (days) or payloadRetentionHours, not both",
        )),
        (Some(days), None) if !(1..=90).contains(&days) => {
            Err(ApiError::body(&["payloadRetentionPeriod"], "payloadRetentionPeriod must be 1 to 90 days"))
        }
        (None, Some(hours)) if !(1..=90 * 24).contains(&hours) => {
            Err(ApiError::body(&["payloadRetentionHours"], "payloadRetentionHours must be 1 to 2160 hours"))
        }
        (Some(days), None) => Ok(Some(now + days * 24 * HOUR_MS)),
        (None, Some(hours)) => Ok(Some(now + hours * HOUR_MS)),
        (None, None) => Ok(None),
    }
}

/// `MessageOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    id: String,
    event_type: String,
    event_id: Option<String>,
    /// `{}` when listed or read with `with_content=false`, and for a raw payload that is not a JSON object;
    /// `{"expired": true}` once the content was expunged or its retention ended.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    /// A raw payload that is not a JSON object, as text (a hookrelay extension; only with content).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_payload: Option<String>,
    channels: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    deliver_at: Option<Rfc3339>,
    timestamp: Rfc3339,
}

impl MessageOut {
    /// `with_content=false` (which the SDKs send by default) answers `payload: {}` to keep responses small.
    pub fn new(msg: Message, with_content: bool) -> Result<Self, ApiError> {
        let object = |text: &str| RawValue::from_string(text.to_owned()).expect("a JSON literal");
        let (payload, raw_payload) = if !with_content {
            (object("{}"), None)
        } else if msg.is_expunged() {
            (object(r#"{"expired":true}"#), None)
        } else if msg.payload.trim_start().starts_with('{')
            && let Ok(json) = RawValue::from_string(msg.payload.clone())
        {
            (json, None)
        } else {
            (object("{}"), Some(msg.payload))
        };
        Ok(Self {
            id: msg.id.into_string(),
            event_type: msg.event_type,
            event_id: msg.event_id,
            payload,
            raw_payload,
            channels: msg.channels,
            tags: msg.tags,
            deliver_at: msg.deliver_at.map(Rfc3339),
            timestamp: Rfc3339(msg.created_at),
        })
    }
}

/// The filters of the message list, as query parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    /// `false` answers `payload: {}`.
    pub with_content: Option<bool>,
    /// Only these event types (comma-separated or repeated).
    pub event_types: Option<Vec<String>>,
    /// Only messages on this channel.
    pub channel: Option<String>,
    /// Only messages with this tag.
    pub tag: Option<String>,
    /// Only messages created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// Only messages created after this time (RFC 3339).
    #[param(format = DateTime)]
    pub after: Option<String>,
}

/// A publish request's body as the API takes it in: parsed, checked and built into the message to store (the
/// handler does the same in two steps, around creating the application). Public for the fuzz target.
pub fn message_from_body(app_id: AppId, body: &[u8]) -> Result<Message, ApiError> {
    new_message(app_id, crate::extract::parse_json::<MessageIn>(body)?)
}

/// Checks the input and builds the message to store.
fn new_message(app_id: AppId, input: MessageIn) -> Result<Message, ApiError> {
    check_event_type_name(&input.event_type).map_err(|msg| ApiError::body(&["eventType"], msg))?;
    if let Some(event_id) = &input.event_id {
        check_name(event_id).map_err(|err| ApiError::body(&["eventId"], format!("eventId {err}")))?;
    }
    if let Some(channels) = &input.channels {
        check_channels(channels).map_err(|msg| ApiError::body(&["channels"], msg))?;
    }
    if !input.payload.get().trim_start().starts_with('{') {
        return Err(ApiError::body(&["payload"], "the payload must be a JSON object, e.g. {\"id\": 1}"));
    }
    let raw = input.transformations_params.map(raw_payload).transpose()?.flatten();
    let (payload, content_type) = match raw {
        Some(_) if input.payload.get().chars().any(|c| !"{} \t\r\n".contains(c)) => {
            return Err(ApiError::body(
                &["payload"],
                "the payload must be {} when transformationsParams.rawPayload is given",
            ));
        }
        Some(RawPayload { body, content_type }) => (body, content_type),
        None => (input.payload.get().to_owned(), None),
    };
    let now = now_ms();
    Ok(Message {
        id: MessageId::at(now),
        app_id,
        event_id: input.event_id,
        event_type: input.event_type,
        payload,
        content_type,
        channels: input.channels,
        tags: input.tags.map(check_tags).transpose()?,
        deliver_at: input.deliver_at.as_deref().map(|at| check_deliver_at(at, now)).transpose()?,
        payload_expires_at: payload_expiry(input.payload_retention_period, input.payload_retention_hours, now)?,
        forwarded_headers: Default::default(),
        created_at: now,
    })
}

/// The message filters a list takes as query parameters ([`MessageListParams`] but `with_content`).
pub fn message_filter(query: &QueryParams) -> Result<MessageFilter, ApiError> {
    Ok(MessageFilter {
        event_types: query.names("event_types")?,
        channel: query.get("channel").map(str::to_owned),
        tag: query.get("tag").map(str::to_owned),
        before: query.time("before")?,
        after: query.time("after")?,
    })
}

/// Finds a message of the application by id or eventId, or answers 404.
pub async fn find_message(state: &ApiState, app_id: &AppId, id_or_event_id: &str) -> Result<Message, ApiError> {
    state.store.messages.get_message(app_id, id_or_event_id).await.or_not_found("message", id_or_event_id)
}

/// POST: stores the message and its deliveries, then answers 202. The response body is built first so that,
/// under an idempotency key, it is committed in the same transaction as the message.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg/",
    operation_id = "v1.message.create",
    tag = "Message",
    params(AppPath, ("with_content" = Option<bool>, Query, description = "`false` answers `payload: {}`.")),
    request_body = MessageIn,
    responses(
        (status = 202, description = "Stored with its deliveries; delivery follows.", body = MessageOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn publish(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    query: QueryParams,
    scope: Option<Extension<IdempotencyScope>>,
    ApiJson(mut input): ApiJson<MessageIn>,
) -> Result<Response, ApiError> {
    let with_content = query.bool("with_content")?.unwrap_or(true);
    let app_id_ref = app_id;
    let app_id = match state.app_ids.get(&app_id_ref) {
        Some(id) => id,
        None => {
            let app = find_or_create_app(&state, &app_id_ref, input.application.take()).await?;
            state.app_ids.put(&app_id_ref, &app.id);
            app.id
        }
    };
    let message = new_message(app_id, input)?;
    let body = serde_json::to_vec(&MessageOut::new(message.clone(), with_content)?)
        .map_err(|err| ApiError::Internal(format!("serializing a message response: {err}")))?;
    let remembered =
        scope.map(|Extension(scope)| scope.response(StatusCode::ACCEPTED, body.clone(), message.created_at));

    let published = match state.store.messages.publish_message(&message, remembered.as_ref()).await {
        Ok(published) => published,
        // Deleted since it was looked up (by another process, within the cache's second).
        Err(StoreError::NotFound) => return Err(ApiError::not_found("application", &app_id_ref)),
        Err(StoreError::Conflict(detail)) => {
            // Either the eventId was used before, or (on a shared database) another process was answering the
            // same idempotency key at that moment; the store's text says which.
            return Err(ApiError::Conflict(match &message.event_id {
                Some(event_id) if detail == EVENT_ID_TAKEN => {
                    format!("a message with eventId `{event_id}` was already published to this application")
                }
                _ => detail,
            }));
        }
        Err(err) => return Err(err.into()),
    };
    if published.to_claim > 0 {
        state.on_new_work.notify_one();
    }
    state.metrics.message_published(&message.event_type);
    Ok(accepted(body, remembered.is_some()))
}

/// The 202 of a stored message, with the body built before storing it; `remembered` when that body was committed
/// under the request's idempotency key with the message.
pub fn accepted(body: Vec<u8>, remembered: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if remembered {
        response.extensions_mut().insert(AlreadyRemembered);
    }
    response
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/",
    operation_id = "v1.message.list",
    tag = "Message",
    params(AppPath, PageParams, MessageListParams),
    responses(
        (status = 200, description = "A page of the application's messages, newest first.", body = ListOut<MessageOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<ListOut<MessageOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let with_content = query.bool("with_content")?.unwrap_or(true);
    let filter = message_filter(&query)?;
    let app = find_app(&state, &app_id).await?;
    let page = state.store.messages.list_messages(&app.id, &filter, &request).await?;
    let out = ListOut::from_page(page, &request, |msg| msg.id.to_string(), |msg| MessageOut::new(msg, with_content))?;
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/",
    operation_id = "v1.message.get",
    tag = "Message",
    params(MessagePath, ("with_content" = Option<bool>, Query, description = "`false` answers `payload: {}`.")),
    responses((status = 200, description = "The message.", body = MessageOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<MessageOut>, ApiError> {
    let with_content = query.bool("with_content")?.unwrap_or(true);
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    Ok(Json(MessageOut::new(msg, with_content)?))
}

/// Erases the message's payload for good (GDPR erasure): it reads back as `{"expired": true}`, and deliveries
/// still owed fail unsent. Attempts and their response bodies stay (see the attempt's own `content` route).
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/content/",
    operation_id = "v1.message.expunge-content",
    tag = "Message",
    params(MessagePath),
    responses((status = 204, description = "The payload is gone."), (status = 404, response = NotFound), AdminErrors),
)]
async fn expunge_content(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    state.store.messages.expunge_message_content(&msg.id).await.or_not_found("message", &msg_id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// POST on a message's path: only Svix's bulk operations are sent there (`expunge-all-contents`, `bulk-expunge`,
/// `precheck`), which hookrelay does not offer: a 404 saying so, rather than a puzzling 405.
async fn post_on_message(ApiPath((_, operation)): ApiPath<(String, String)>) -> ApiError {
    ApiError::NotFound(format!(
        "POST /api/v1/app/{{app_id}}/msg/{operation} is not supported by hookrelay; to erase payloads, DELETE \
         /api/v1/app/{{app_id}}/msg/{{msg_id}}/content one message at a time, or publish with payloadRetentionPeriod"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected_payload: Result<&str, &[&str]>) {
        let got = message_from_body(AppId::new(), body.as_bytes()).map(|msg| msg.payload);
        match (got, expected_payload) {
            (Ok(payload), Ok(expected)) => assert_eq!(payload, expected, "{body}"),
            (Err(ApiError::Validation(errors)), Err(loc)) => assert_eq!(errors[0].loc, loc, "{body}"),
            (got, expected) => panic!("{body}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn payload_is_kept_byte_for_byte() {
        check(r#"{"eventType": "a", "payload": {"test": 2432232314}}"#, Ok(r#"{"test": 2432232314}"#));
        check(r#"{"eventType": "a", "payload": {"b":1,  "a" : [1.50, 1e3]}}"#, Ok(r#"{"b":1,  "a" : [1.50, 1e3]}"#));
        check(r#"{"eventType": "a", "data": {"x": "é\u00e9"}}"#, Ok(r#"{"x": "é\u00e9"}"#));
    }

    #[test]
    fn message_input_is_validated() {
        check(r#"{"eventType": "a", "payload": [1]}"#, Err(&["body", "payload"]));
        check(r#"{"eventType": "a", "payload": "text"}"#, Err(&["body", "payload"]));
        check(r#"{"eventType": "a b", "payload": {}}"#, Err(&["body", "eventType"]));
        check(r#"{"eventType": "a", "eventId": "", "payload": {}}"#, Err(&["body", "eventId"]));
        check(r#"{"eventType": "a", "payload": {}, "channels": []}"#, Err(&["body", "channels"]));
        check(r#"{"eventType": "a"}"#, Err(&["body", "payload"]));
        check(r#"{"payload": {}}"#, Err(&["body", "eventType"]));
    }

    /// The payload is kept as raw text, which serde_json skips without a depth limit: the body's depth is
    /// checked before parsing (the publish body counts one level more than its payload).
    #[test]
    fn payloads_nested_deeper_than_the_limit_are_refused() {
        let body = |deep_levels: usize| {
            let payload = format!("{}{{}}{}", "[".repeat(deep_levels - 1), "]".repeat(deep_levels - 1));
            format!(r#"{{"eventType": "a", "payload": {{"deep": {payload}}}}}"#)
        };
        let limit = crate::extract::MAX_JSON_DEPTH;
        check(&body(limit - 2), Ok(&format!(r#"{{"deep": {}{{}}{}}}"#, "[".repeat(limit - 3), "]".repeat(limit - 3))));
        check(&body(limit - 1), Err(&["body"]));
        check(&body(520_000), Err(&["body"]));
    }

    fn message(body: &str) -> Result<Message, Vec<String>> {
        message_from_body(AppId::new(), body.as_bytes()).map_err(|err| match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.loc[1..].join(".")).collect(),
            other => panic!("{body}: {other:?}"),
        })
    }

    #[test]
    fn a_raw_payload_replaces_the_empty_json_one_with_its_content_type() {
        let raw = message(
            r#"{"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": "a=1&b=2",
               "headers": {"content-type": "application/x-www-form-urlencoded"}}}"#,
        )
        .expect("valid");
        assert_eq!(
            (raw.payload.as_str(), raw.content_type.as_deref()),
            ("a=1&b=2", Some("application/x-www-form-urlencoded"))
        );
        let untyped =
            message(r#"{"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": "[1, 2]"}}"#);
        assert_eq!(untyped.map(|m| (m.payload, m.content_type)), Ok(("[1, 2]".into(), None)));
        let refused = |params: &str, payload: &str| {
            message(&format!(r#"{{"eventType": "a", "payload": {payload}, "transformationsParams": {params}}}"#)).err()
        };
        assert_eq!(refused(r#"{"rawPayload": "x"}"#, r#"{"a": 1}"#), Some(vec!["payload".into()]));
        assert_eq!(refused(r#"{"rawPayload": 1}"#, "{}"), Some(vec!["transformationsParams.rawPayload".into()]));
        assert_eq!(
            refused(r#"{"rawPayload": "x\u0000"}"#, "{}"),
            Some(vec!["transformationsParams.rawPayload".into()])
        );
        assert_eq!(refused(r#"{"other": 1}"#, "{}"), Some(vec!["transformationsParams.other".into()]));
        assert_eq!(
            refused(r#"{"rawPayload": "x", "headers": {"x-extra": "1"}}"#, "{}"),
            Some(vec!["transformationsParams.headers.x-extra".into()])
        );
        assert_eq!(
            refused(r#"{"rawPayload": "x", "headers": {"content-type": "bad\nvalue"}}"#, "{}"),
            Some(vec!["transformationsParams.headers.content-type".into()])
        );
        assert_eq!(
            refused(r#"{"headers": {"content-type": "text/plain"}}"#, "{}"),
            Some(vec!["transformationsParams.headers".into()])
        );
        assert_eq!(
            message(r#"{"eventType": "a", "payload": {}, "transformationsParams": null}"#).map(|m| m.payload),
            Ok("{}".into())
        );
    }

    #[test]
    fn tags_follow_svix_limits_and_count_once() {
        let tags =
            |list: &str| message(&format!(r#"{{"eventType": "a", "payload": {{}}, "tags": {list}}}"#)).map(|m| m.tags);
        assert_eq!(tags(r#"["a", "b/c.d#e\\f", "a"]"#), Ok(Some(vec!["a".into(), r"b/c.d#e\f".into()])));
        assert_eq!(tags("null"), Ok(None));
        assert_eq!(tags(r#"["a", "b", "c", "d", "e", "f"]"#), Err(vec!["tags".into()]));
        assert_eq!(tags(r#"["has space"]"#), Err(vec!["tags".into()]));
        assert_eq!(tags(r#"[""]"#), Err(vec!["tags".into()]));
        assert_eq!(tags(&format!(r#"["{}"]"#, "x".repeat(129))), Err(vec!["tags".into()]));
    }

    #[test]
    fn deliver_at_is_bounded() {
        let at = |offset_ms: i64| {
            let when = crate::time::format(now_ms() + offset_ms);
            message(&format!(r#"{{"eventType": "a", "payload": {{}}, "deliverAt": "{when}"}}"#))
        };
        let hour = 3_600_000;
        let later = at(hour).expect("an hour ahead");
        assert!(
            later.deliver_at.is_some_and(|due| due > later.created_at)
                && later.first_due() == later.deliver_at.unwrap()
        );
        let just_past = at(-60_000).expect("a minute ago is now");
        assert_eq!(just_past.first_due(), just_past.created_at);
        assert_eq!(at(-2 * hour).err(), Some(vec!["deliverAt".into()]));
        assert_eq!(at(31 * 24 * hour).err(), Some(vec!["deliverAt".into()]));
        assert_eq!(
            message(r#"{"eventType": "a", "payload": {}, "deliverAt": "tomorrow"}"#).err(),
            Some(vec!["deliverAt".into()])
        );
    }

    #[test]
    fn a_message_may_set_its_own_payload_retention() {
        let kept = |fields: &str| {
            message(&format!(r#"{{"eventType": "a", "payload": {{}}, {fields}}}"#))
                .map(|m| m.payload_expires_at.map(|at| (at - m.created_at) / 3_600_000))
        };
        assert_eq!(kept(r#""payloadRetentionPeriod": 5"#), Ok(Some(5 * 24)));
        assert_eq!(kept(r#""payloadRetentionHours": 3"#), Ok(Some(3)));
        assert_eq!(kept(r#""payloadRetentionPeriod": null"#), Ok(None));
        assert_eq!(kept(r#""payloadRetentionPeriod": 0"#), Err(vec!["payloadRetentionPeriod".into()]));
        assert_eq!(kept(r#""payloadRetentionPeriod": 91"#), Err(vec!["payloadRetentionPeriod".into()]));
        assert_eq!(kept(r#""payloadRetentionHours": 2161"#), Err(vec!["payloadRetentionHours".into()]));
        assert_eq!(
            kept(r#""payloadRetentionPeriod": 1, "payloadRetentionHours": 1"#),
            Err(vec!["payloadRetentionHours".into()])
        );
    }

    #[test]
    fn message_out_shows_raw_and_expired_payloads_as_svix_does() {
        let out = |payload: &str| {
            let mut msg = message(r#"{"eventType": "a", "payload": {}, "tags": ["t"]}"#).expect("valid");
            msg.payload = payload.into();
            serde_json::to_value(MessageOut::new(msg, true).expect("valid")).expect("serializes")
        };
        assert_eq!(out(r#"{"a": 1}"#)["payload"], serde_json::json!({"a": 1}));
        assert_eq!(out(r#"{"a": 1}"#)["tags"], serde_json::json!(["t"]));
        assert!(out(r#"{"a": 1}"#).get("rawPayload").is_none());
        assert_eq!(out("a=1")["payload"], serde_json::json!({}));
        assert_eq!(out("a=1")["rawPayload"], "a=1");
        assert_eq!(out("")["payload"], serde_json::json!({"expired": true}));
    }

    #[test]
    fn without_content_the_payload_is_empty() {
        let msg = Message::new(AppId::new(), "a".into(), r#"{"big": true}"#.into(), 0);
        let out = serde_json::to_value(MessageOut::new(msg, false).expect("valid")).expect("serializes");
        assert_eq!(out["payload"], serde_json::json!({}));
        assert_eq!(out["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(out["eventId"], serde_json::Value::Null);
    }
}
