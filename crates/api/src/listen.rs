//! The routes of `hookrelay listen`: an endpoint whose URL is `listen://<name>` is delivered to through the
//! connection its listener holds open here (`GET …/listen`, a stream of `delivery` events), and the listener
//! posts what its local URL answered (`POST …/listen`), which the dispatcher records as the attempt's response.
//! The sessions themselves are [`hookrelay_live::listeners`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use futures_util::stream::{self, StreamExt};
use hookrelay_live::listeners::{self, Answer, Forward};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::app::find_app;
use crate::endpoint::find_endpoint;
use crate::error::ApiError;
use crate::event_stream::{json_event, respond};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::{AdminBodyErrors, AdminErrors, EndpointPath, NotFound};
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/app/{app_id}/endpoint/{endpoint_id}/listen", get(stream).post(answer))
}

/// Whether deliveries to `url` go to a `hookrelay listen` session.
pub fn is_listen_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| scheme == listeners::SCHEME)
}

/// GET: this endpoint's deliveries, as they are made, for `hookrelay listen`: a `ready` event, then one
/// `delivery` event each (`{id, msgId, eventType, method, headers, body}`; the headers are the signed ones the
/// endpoint would get). A new connection replaces the endpoint's previous one. The stream ends after five
/// minutes; the client reconnects.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/listen/",
    operation_id = "v1.endpoint.listen",
    tag = "Endpoint",
    params(EndpointPath),
    responses(
        (status = 200, description = "Server-sent events: `ready`, then a `delivery` event per delivery.",
            content_type = "text/event-stream", body = String),
        (status = 404, response = NotFound),
        (status = 409, description = "The endpoint's URL is not `listen://…`.", body = crate::error::ErrorBody),
        AdminErrors,
    ),
)]
async fn stream(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    if !is_listen_url(&endpoint.url) {
        return Err(ApiError::Conflict(format!(
            "endpoint `{endpoint_id}` delivers to its URL, not to `hookrelay listen`: give it a `listen://<name>` URL \
             (hookrelay listen creates one for you)"
        )));
    }
    let connection = state.live.listeners.connect(endpoint.id.as_str()).map_err(|_| {
        ApiError::Unavailable(format!(
            "this server already holds {} listen sessions; close one, or use another server process",
            listeners::MAX_SESSIONS
        ))
    })?;
    tracing::info!(app_id = %app.id, endpoint_id = %endpoint.id, "hookrelay listen connected");
    let ready = json_event("ready", &json!({ "appId": app.id.as_str(), "endpointId": endpoint.id.as_str() }));
    let deliveries = stream::unfold(connection, |mut connection| async move {
        let forward = connection.deliveries.recv().await?;
        Some((json_event("delivery", &delivery_json(&forward)), connection))
    });
    Ok(respond(stream::once(async move { ready }).chain(deliveries), state.live.closed()))
}

fn delivery_json(forward: &Forward) -> Value {
    let headers: Map<String, Value> =
        forward.headers.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect();
    json!({
        "id": forward.id,
        "msgId": forward.msg_id,
        "eventType": forward.event_type,
        "method": forward.method,
        "headers": headers,
        "body": forward.body,
    })
}

/// What a listener's local URL answered to one delivery.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListenAnswerIn {
    /// The `id` of the `delivery` event.
    id: u64,
    /// The local URL's HTTP status; 0 when it gave none (then `body` says why).
    status_code: u16,
    /// The answer's body (the first 20,000 bytes are kept on the attempt).
    #[serde(default)]
    body: String,
}

/// POST: the answer to one delivery of the stream; the attempt records it.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/listen/",
    operation_id = "v1.endpoint.listen-answer",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = ListenAnswerIn,
    responses(
        (status = 204, description = "Passed to the waiting delivery."),
        (status = 404, response = NotFound),
        AdminBodyErrors,
    ),
)]
async fn answer(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<ListenAnswerIn>,
) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let answer = Answer { status_code: input.status_code, body: input.body };
    if state.live.listeners.answer(endpoint.id.as_str(), input.id, answer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no delivery of endpoint `{endpoint_id}` waits for answer {}: it timed out, was answered already, or \
             was sent to another server process",
            input.id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_urls() {
        assert!(is_listen_url("listen://alice-laptop"));
        assert!(!is_listen_url("https://listen.example.com/"));
        assert!(!is_listen_url("listen:alice"));
    }
}
