//! Delivery attempts and destinations: the attempt log of an application, by endpoint or by message, one
//! attempt, a message's per-endpoint delivery state, and manual resends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use hookrelay_core::model::{Attempt, Delivery, DeliveryStatus, Endpoint};
use hookrelay_store::{AttemptFilter, MessageFilter, Order};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::app::find_app;
use crate::endpoint::{EndpointOut, find_endpoint};
use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiPath, QueryParams};
use crate::message::{MessageListParams, MessageOut, find_message, message_filter};
use crate::openapi::{AdminErrors, AppPath, ContentGone, EndpointPath, MessagePath, NotFound, PageParams};
use crate::pagination::{ListOut, page_request};
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/app/{app_id}/attempt", get(list_by_app))
        .route_both("/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", get(list_by_endpoint))
        .route_both("/api/v1/app/{app_id}/attempt/msg/{msg_id}", get(list_by_message))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", get(read))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", delete(expunge_content))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}/endpoint", get(list_destinations))
        .route_both("/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", get(list_attempted_messages))
        .route_both("/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", post(resend))
}

/// `MessageAttemptOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessageAttemptOut)]
struct AttemptOut {
    id: String,
    msg_id: String,
    endpoint_id: String,
    url: String,
    /// The receiver's response body, truncated.
    response: String,
    /// 0 when there was no response (connection error, timeout).
    response_status_code: u16,
    response_duration_ms: i64,
    /// 0 success, 1 pending, 2 fail, 3 sending (the names `success`, `pending`, `fail`, `sending` are accepted
    /// too).
    #[schema(maximum = 3)]
    status: u8,
    /// `success`, `pending`, `fail` or `sending`.
    status_text: &'static str,
    /// 0 scheduled, 1 manual.
    #[schema(maximum = 1)]
    trigger_type: u8,
    timestamp: Rfc3339,
    /// The attempt's message (without its payload), with `with_msg=true` on the endpoint's attempt list.
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<MessageOut>,
}

impl From<Attempt> for AttemptOut {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id.into_string(),
            msg_id: attempt.msg_id.into_string(),
            endpoint_id: attempt.endpoint_id.into_string(),
            url: attempt.url,
            response: attempt.response,
            response_status_code: attempt.response_status_code,
            response_duration_ms: attempt.response_duration_ms,
            status: attempt.status.code(),
            status_text: attempt.status.text(),
            trigger_type: attempt.trigger_type as u8,
            timestamp: Rfc3339(attempt.created_at),
            msg: None,
        }
    }
}

/// `MessageEndpointOut`: the endpoint and where this message's delivery to it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessageEndpointOut)]
struct DestinationOut {
    #[serde(flatten)]
    endpoint: EndpointOut,
    status: u8,
    status_text: &'static str,
    next_attempt: Option<Rfc3339>,
}

impl From<(Endpoint, Delivery)> for DestinationOut {
    fn from((endpoint, delivery): (Endpoint, Delivery)) -> Self {
        Self {
            endpoint: endpoint.into(),
            status: delivery.status.code(),
            status_text: delivery.status.text(),
            next_attempt: delivery.next_attempt_at.map(Rfc3339),
        }
    }
}

/// `EndpointMessageOut`: a message and where its delivery to one endpoint stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EndpointMessageOut)]
struct EndpointMessageOut {
    #[serde(flatten)]
    message: MessageOut,
    status: u8,
    status_text: &'static str,
    next_attempt: Option<Rfc3339>,
}

/// The endpoint's message list's own filter, beside the message list's ([`MessageListParams`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryStatusParam {
    /// Only deliveries in this state: 0 success, 1 pending, 2 fail, 3 sending (or those names).
    #[param(maximum = 3)]
    pub status: Option<u8>,
}

/// The filters both attempt lists take, as query parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptListParams {
    /// 0 success, 1 pending, 2 fail, 3 sending (the names `success`, `pending`, `fail`, `sending` are accepted
    /// too).
    #[param(maximum = 3)]
    pub status: Option<u8>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    #[param(maximum = 500)]
    pub status_code_class: Option<u16>,
    /// Only attempts of messages of these event types (comma-separated or repeated).
    pub event_types: Option<Vec<String>>,
    /// Only attempts of messages on this channel.
    pub channel: Option<String>,
    /// Only attempts made before this time (RFC 3339).
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// Only attempts made after this time (RFC 3339).
    #[param(format = DateTime)]
    pub after: Option<String>,
}

/// `status=0..3`, or the status's name (`status=fail`).
fn parse_status(query: &QueryParams) -> Result<Option<DeliveryStatus>, ApiError> {
    let Some(raw) = query.get("status") else { return Ok(None) };
    let named = [DeliveryStatus::Success, DeliveryStatus::Pending, DeliveryStatus::Fail, DeliveryStatus::Sending]
        .into_iter()
        .find(|status| status.text() == raw);
    named.or_else(|| raw.parse().ok().and_then(DeliveryStatus::from_code)).map(Some).ok_or_else(|| {
        ApiError::query("status", "must be 0 (success), 1 (pending), 2 (fail) or 3 (sending), or one of those names")
    })
}

/// `status_code_class=0|100|200|300|400|500` (0: no response at all).
fn parse_status_code_class(query: &QueryParams) -> Result<Option<u16>, ApiError> {
    query
        .number("status_code_class")?
        .map(|class| match class {
            0 | 100 | 200 | 300 | 400 | 500 => Ok(class as u16),
            _ => Err(ApiError::query("status_code_class", "must be one of 0, 100, 200, 300, 400, 500")),
        })
        .transpose()
}

/// The filters both attempt lists share; `endpoint_id` is resolved by the caller.
fn attempt_filter(query: &QueryParams) -> Result<AttemptFilter, ApiError> {
    let MessageFilter { event_types, channel, tag, before, after } = message_filter(query)?;
    Ok(AttemptFilter {
        status: parse_status(query)?,
        status_code_class: parse_status_code_class(query)?,
        endpoint_id: None,
        event_types,
        channel,
        tag,
        before,
        after,
    })
}

/// Every attempt of the application (`endpoint_id` narrows it to one endpoint), newest first: e.g. its failures
/// with `?status=fail`.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/",
    operation_id = "v1.message-attempt.list-by-app",
    tag = "Message Attempt",
    params(
        AppPath,
        PageParams,
        AttemptListParams,
        ("endpoint_id" = Option<String>, Query, description = "Only attempts to this endpoint (id or uid)."),
    ),
    responses(
        (status = 200, description = "A page of the application's attempts, newest first.", body = ListOut<AttemptOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_by_app(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<ListOut<AttemptOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let mut filter = attempt_filter(&query)?;
    let app = find_app(&state, &app_id).await?;
    if let Some(endpoint_ref) = query.get("endpoint_id") {
        filter.endpoint_id = Some(find_endpoint(&state, &app.id, endpoint_ref).await?.id);
    }
    let page = state.store.messages.list_attempts_for_app(&app.id, &filter, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |a| a.id.to_string(), |a| Ok(a.into()))?))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}/",
    operation_id = "v1.message-attempt.list-by-endpoint",
    tag = "Message Attempt",
    params(
        EndpointPath,
        PageParams,
        AttemptListParams,
        ("with_msg" = Option<bool>, Query, description = "Include each attempt's message (without its payload)."),
    ),
    responses(
        (status = 200, description = "A page of the endpoint's attempts, newest first.", body = ListOut<AttemptOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_by_endpoint(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<ListOut<AttemptOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let filter = attempt_filter(&query)?;
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let page = state.store.messages.list_attempts_for_endpoint(&ep.id, &filter, &request).await?;
    let mut out = ListOut::from_page(page, &request, |a| a.id.to_string(), |a| Ok(AttemptOut::from(a)))?;
    if query.bool("with_msg")?.unwrap_or(false) {
        // One read per attempt of the page (at most its limit); the messages are read without their payloads.
        for attempt in &mut out.data {
            let msg = find_message(&state, &app.id, &attempt.msg_id).await?;
            attempt.msg = Some(MessageOut::new(msg, false)?);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}/",
    operation_id = "v1.message-attempt.list-by-msg",
    tag = "Message Attempt",
    params(
        MessagePath,
        PageParams,
        AttemptListParams,
        ("endpoint_id" = Option<String>, Query, description = "Only attempts to this endpoint (id or uid)."),
    ),
    responses(
        (status = 200, description = "A page of the message's attempts, newest first.", body = ListOut<AttemptOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_by_message(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<ListOut<AttemptOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let mut filter = attempt_filter(&query)?;
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    if let Some(endpoint_ref) = query.get("endpoint_id") {
        filter.endpoint_id = Some(find_endpoint(&state, &app.id, endpoint_ref).await?.id);
    }
    let page = state.store.messages.list_attempts_for_message(&msg.id, &filter, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |a| a.id.to_string(), |a| Ok(a.into()))?))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/",
    operation_id = "v1.message-attempt.get",
    tag = "Message Attempt",
    params(MessagePath, ("attempt_id" = String, Path, description = "The attempt's id (`atmpt_…`).")),
    responses((status = 200, description = "The attempt.", body = AttemptOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id, attempt_id)): ApiPath<(String, String, String)>,
) -> Result<Json<AttemptOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    let attempt = state.store.messages.get_attempt(&msg.id, &attempt_id).await.or_not_found("attempt", &attempt_id)?;
    Ok(Json(attempt.into()))
}

/// Replaces the response body recorded with the attempt by `EXPUNGED`, as Svix does: for a receiver that answered
/// with something it should not have.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content/",
    operation_id = "v1.message-attempt.expunge-content",
    tag = "Message Attempt",
    params(MessagePath, ("attempt_id" = String, Path, description = "The attempt's id (`atmpt_…`).")),
    responses((status = 204, description = "The response body is gone."), (status = 404, response = NotFound), AdminErrors),
)]
async fn expunge_content(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id, attempt_id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    state.store.messages.expunge_attempt_content(&msg.id, &attempt_id).await.or_not_found("attempt", &attempt_id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/",
    operation_id = "v1.message-attempt.list-attempted-destinations",
    tag = "Message Attempt",
    params(MessagePath, PageParams),
    responses(
        (status = 200, description = "The message's endpoints and its delivery state at each.", body = ListOut<DestinationOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_destinations(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<ListOut<DestinationOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    let page = state.store.messages.list_message_deliveries(&msg.id, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |(ep, _)| ep.id.to_string(), |pair| Ok(pair.into()))?))
}

/// The messages sent (or being sent) to one endpoint, newest first, with their delivery's state there.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg/",
    operation_id = "v1.message-attempt.list-attempted-messages",
    tag = "Message Attempt",
    params(EndpointPath, PageParams, MessageListParams, DeliveryStatusParam),
    responses(
        (status = 200, description = "A page of the endpoint's messages, newest first.", body = ListOut<EndpointMessageOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_attempted_messages(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<ListOut<EndpointMessageOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let with_content = query.bool("with_content")?.unwrap_or(true);
    let status = parse_status(&query)?;
    let filter = message_filter(&query)?;
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let page = state.store.messages.list_endpoint_messages(&ep.id, &filter, status, &request).await?;
    let out = ListOut::from_page(
        page,
        &request,
        |(msg, _)| msg.id.to_string(),
        |(msg, delivery)| {
            Ok(EndpointMessageOut {
                message: MessageOut::new(msg, with_content)?,
                status: delivery.status.code(),
                status_text: delivery.status.text(),
                next_attempt: delivery.next_attempt_at.map(Rfc3339),
            })
        },
    )?;
    Ok(Json(out))
}

/// Schedules one manual attempt, due now; answers 202 `{}` like Svix.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend/",
    operation_id = "v1.message-attempt.resend",
    tag = "Message Attempt",
    params(MessagePath, ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    responses(
        (status = 202, description = "A manual attempt is due now (`{}`).", body = Object, example = json!({})),
        (status = 404, response = NotFound),
        (status = 409, response = ContentGone),
        AdminErrors,
    ),
)]
async fn resend(
    State(state): State<ApiState>,
    ApiPath((app_id, msg_id, endpoint_id)): ApiPath<(String, String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let app = find_app(&state, &app_id).await?;
    let msg = find_message(&state, &app.id, &msg_id).await?;
    if msg.is_expunged() {
        return Err(ApiError::Conflict(format!(
            "message {msg_id} cannot be sent again: its content was expunged or its retention ended"
        )));
    }
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    state.store.messages.resend(&msg.id, &ep.id).await.or_not_found("message or endpoint", &msg_id)?;
    state.on_new_work.notify_one();
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/x?{q}").parse().expect("test uri")).expect("parses")
    }

    #[test]
    fn attempt_filters() {
        let filter = attempt_filter(&query("status=2&status_code_class=500&event_types=a,b&channel=c")).ok();
        assert_eq!(filter.as_ref().and_then(|f| f.status), Some(DeliveryStatus::Fail));
        assert_eq!(filter.as_ref().and_then(|f| f.status_code_class), Some(500));
        assert_eq!(filter.as_ref().and_then(|f| f.channel.clone()).as_deref(), Some("c"));
        assert!(attempt_filter(&query("status=4")).is_err());
        assert_eq!(attempt_filter(&query("status=fail")).ok().and_then(|f| f.status), Some(DeliveryStatus::Fail));
        assert_eq!(attempt_filter(&query("status=0")).ok().and_then(|f| f.status), Some(DeliveryStatus::Success));
        assert!(attempt_filter(&query("status=failed")).is_err());
        assert!(attempt_filter(&query("status=x")).is_err());
        assert!(attempt_filter(&query("status_code_class=250")).is_err());
        assert!(attempt_filter(&query("status_code_class=0")).is_ok());
        assert!(attempt_filter(&query("before=nope")).is_err());
    }
}
