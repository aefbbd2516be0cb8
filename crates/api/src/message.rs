//! Messages (`/api/v1/app/{app_id}/msg/…`): publishing an event (stored with its deliveries in one durable
//! transaction before the 202) and reading messages back.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookrelay_core::model::Message;
use hookrelay_core::time::now_ms;
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
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}", get(read))
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
    /// The JSON object delivered to the endpoints, byte for byte (`data` is accepted too).
    #[serde(alias = "data")]
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    channels: Option<Vec<String>>,
    /// Creates the application with the message when the path names one that does not exist yet.
    #[serde(default)]
    application: Option<AppIn>,
    /// Svix fields hookrelay does not handle yet: each is a 422 rather than dropped (`null` is accepted).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    tags: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    transformations_params: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    deliver_at: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    payload_retention_period: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    payload_retention_hours: Option<serde_json::Value>,
}

impl MessageIn {
    /// 422 for a Svix field this version cannot honour, so nothing a publisher asked for is dropped in silence.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        let unsupported = [
            ("tags", self.tags.is_some(), "message tags are not supported yet"),
            (
                "transformationsParams",
                self.transformations_params.is_some(),
                "raw payloads (transformationsParams) are not supported yet: send the payload as a JSON object",
            ),
            ("deliverAt", self.deliver_at.is_some(), "scheduled delivery (deliverAt) is not supported yet"),
            (
                "payloadRetentionPeriod",
                self.payload_retention_period.is_some(),
                "a per-message retention is not supported yet: the server's HOOKRELAY_PAYLOAD_RETENTION_DAYS applies",
            ),
            (
                "payloadRetentionHours",
                self.payload_retention_hours.is_some(),
                "a per-message retention is not supported yet: the server's HOOKRELAY_PAYLOAD_RETENTION_DAYS applies",
            ),
        ];
        match unsupported.into_iter().find(|(_, present, _)| *present) {
            Some((field, _, msg)) => Err(ApiError::body(&[field], msg)),
            None => Ok(()),
        }
    }
}

/// `MessageOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    id: String,
    event_type: String,
    event_id: Option<String>,
    /// `{}` when listed or read with `with_content=false`.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    channels: Option<Vec<String>>,
    timestamp: Rfc3339,
}

impl MessageOut {
    /// `with_content=false` (which the SDKs send by default) answers `payload: {}` to keep responses small.
    pub fn new(msg: Message, with_content: bool) -> Result<Self, ApiError> {
        let payload = if with_content { msg.payload } else { "{}".to_owned() };
        let payload = RawValue::from_string(payload)
            .map_err(|err| ApiError::Internal(format!("stored payload of {} is not JSON: {err}", msg.id)))?;
        Ok(Self {
            id: msg.id.into_string(),
            event_type: msg.event_type,
            event_id: msg.event_id,
            payload,
            channels: msg.channels,
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
    let input = crate::extract::parse_json::<MessageIn>(body)?;
    input.refuse_unsupported()?;
    new_message(app_id, input)
}

/// Checks the input and builds the message to store (`refuse_unsupported` comes first, before the application is
/// looked up).
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
    let now = now_ms();
    Ok(Message {
        id: MessageId::at(now),
        app_id,
        event_id: input.event_id,
        event_type: input.event_type,
        payload: input.payload.get().to_owned(),
        channels: input.channels,
        forwarded_headers: Default::default(),
        created_at: now,
    })
}

/// The message filters a list takes as query parameters ([`MessageListParams`] but `with_content`).
pub fn message_filter(query: &QueryParams) -> Result<MessageFilter, ApiError> {
    Ok(MessageFilter {
        event_types: query.names("event_types")?,
        channel: query.get("channel").map(str::to_owned),
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
    // Before the application is looked up (or created with the message).
    input.refuse_unsupported()?;
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
    if published.deliveries > 0 {
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

    #[test]
    fn without_content_the_payload_is_empty() {
        let msg = Message {
            id: MessageId::new(),
            app_id: AppId::new(),
            event_id: None,
            event_type: "a".into(),
            payload: r#"{"big": true}"#.into(),
            channels: None,
            forwarded_headers: Default::default(),
            created_at: 0,
        };
        let out = serde_json::to_value(MessageOut::new(msg, false).expect("valid")).expect("serializes");
        assert_eq!(out["payload"], serde_json::json!({}));
        assert_eq!(out["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(out["eventId"], serde_json::Value::Null);
    }
}
