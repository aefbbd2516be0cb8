//! The live attempt stream `hookrelay tail` follows: every attempt this server process makes, as it makes it,
//! as server-sent `attempt` events, filtered by application, endpoint and outcome. Admin tokens follow every
//! application (`/api/v1/attempt/stream`), application tokens their own (`/api/v1/app/{app_id}/attempt/stream`).
//! Nothing is replayed: the stream starts now. A follower that falls behind gets a `lagged` event with the number
//! of attempts it missed. The feed itself is [`hookrelay_live::feed`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use futures_util::stream;
use hookrelay_core::retry::NextStep;
use hookrelay_core::rfc3339;
use hookrelay_live::feed::AttemptEvent;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::app::find_app;
use crate::endpoint::find_endpoint;
use crate::error::ApiError;
use crate::event_stream::{json_event, respond};
use crate::extract::{ApiPath, QueryParams};
use crate::openapi::{AdminErrors, AppPath, NotFound};
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/attempt/stream", get(all_apps))
        .route_both("/api/v1/app/{app_id}/attempt/stream", get(one_app))
}

/// Which attempts a follower wants.
#[derive(Default)]
struct Filter {
    app_id: Option<String>,
    endpoint_id: Option<String>,
    succeeded: Option<bool>,
}

impl Filter {
    fn wants(&self, event: &AttemptEvent) -> bool {
        self.app_id.as_ref().is_none_or(|app| *app == event.app_id)
            && self.endpoint_id.as_ref().is_none_or(|endpoint| *endpoint == event.endpoint_id)
            && self.succeeded.is_none_or(|succeeded| succeeded == event.succeeded)
    }
}

/// Query parameters of the attempt streams (the handlers read them with `QueryParams`; this type documents them).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only this application's attempts (id or uid); on the application route, its own.
    pub app: Option<String>,
    /// Only this endpoint's attempts (id or uid); needs the application.
    pub endpoint: Option<String>,
    /// `success` or `fail`: only attempts with that outcome.
    pub status: Option<String>,
}

/// GET: every attempt of every application (admin tokens), as it is made.
#[utoipa::path(
    get,
    path = "/api/v1/attempt/stream/",
    operation_id = "v1.attempt.stream",
    tag = "Message Attempt",
    params(StreamParams),
    responses(
        (status = 200, description = "Server-sent `attempt` events (and `lagged` when the follower fell behind).",
            content_type = "text/event-stream", body = String),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn all_apps(State(state): State<ApiState>, query: QueryParams) -> Result<Response, ApiError> {
    let app = query.get("app").map(str::to_owned);
    follow(state, app, &query).await
}

/// GET: every attempt of this application, as it is made.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/stream/",
    operation_id = "v1.attempt.stream-app",
    tag = "Message Attempt",
    params(AppPath, StreamParams),
    responses(
        (status = 200, description = "Server-sent `attempt` events (and `lagged` when the follower fell behind).",
            content_type = "text/event-stream", body = String),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn one_app(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    follow(state, Some(app_id), &query).await
}

async fn follow(state: ApiState, app: Option<String>, query: &QueryParams) -> Result<Response, ApiError> {
    let mut filter = Filter::default();
    let app = match app {
        Some(app) => Some(find_app(&state, &app).await?),
        None => None,
    };
    if let Some(endpoint) = query.get("endpoint") {
        let Some(app) = &app else {
            return Err(ApiError::query("endpoint", "an endpoint is named within its application: give `app` too"));
        };
        filter.endpoint_id = Some(find_endpoint(&state, &app.id, endpoint).await?.id.to_string());
    }
    filter.app_id = app.map(|app| app.id.to_string());
    filter.succeeded = match query.get("status") {
        None => None,
        Some("success") => Some(true),
        Some("fail") => Some(false),
        Some(other) => return Err(ApiError::query("status", format!("`{other}` is not `success` or `fail`"))),
    };
    let attempts = state.live.attempts.follow();
    let events = stream::unfold((attempts, filter), |(mut attempts, filter)| async move {
        loop {
            let event = match attempts.recv().await {
                Ok(event) if filter.wants(&event) => json_event("attempt", &attempt_json(&event)),
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => json_event("lagged", &json!({ "missed": missed })),
                Err(RecvError::Closed) => return None,
            };
            return Some((event, (attempts, filter)));
        }
    });
    Ok(respond(events, state.live.closed()))
}

/// An attempt as the stream sends it: the fields of Svix's `MessageAttemptOut` where they match, plus the
/// event type, the attempt's number and what happens next.
fn attempt_json(event: &Arc<AttemptEvent>) -> Value {
    let (next, next_attempt) = match event.next {
        NextStep::Succeeded => ("succeeded", None),
        NextStep::RetryAt(at) => ("retry", Some(rfc3339::format(at))),
        NextStep::GiveUp => ("failed", None),
    };
    json!({
        "id": event.attempt_id,
        "appId": event.app_id,
        "msgId": event.msg_id,
        "endpointId": event.endpoint_id,
        "eventType": event.event_type,
        "url": event.url,
        "responseStatusCode": event.status_code,
        "status": if event.succeeded { "success" } else { "fail" },
        "responseDurationMs": event.duration_ms,
        "timestamp": rfc3339::format(event.at),
        "attemptNumber": event.attempt_number,
        "next": next,
        "nextAttempt": next_attempt,
        "response": event.response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(app: &str, endpoint: &str, succeeded: bool) -> AttemptEvent {
        AttemptEvent {
            attempt_id: "atmpt_1".into(),
            app_id: app.into(),
            msg_id: "msg_1".into(),
            endpoint_id: endpoint.into(),
            event_type: "invoice.paid".into(),
            url: "http://127.0.0.1:9/".into(),
            status_code: if succeeded { 200 } else { 500 },
            succeeded,
            duration_ms: 4,
            at: 1_700_000_000_000,
            attempt_number: 2,
            next: if succeeded { NextStep::Succeeded } else { NextStep::RetryAt(1_700_000_005_000) },
            response: "nope".into(),
        }
    }

    #[test]
    fn filters_match_application_endpoint_and_outcome() {
        let all = Filter::default();
        assert!(all.wants(&event("app_1", "ep_1", true)));
        let failures_of_one_endpoint =
            Filter { app_id: Some("app_1".into()), endpoint_id: Some("ep_1".into()), succeeded: Some(false) };
        assert!(failures_of_one_endpoint.wants(&event("app_1", "ep_1", false)));
        assert!(!failures_of_one_endpoint.wants(&event("app_1", "ep_1", true)));
        assert!(!failures_of_one_endpoint.wants(&event("app_1", "ep_2", false)));
        assert!(!failures_of_one_endpoint.wants(&event("app_2", "ep_1", false)));
    }

    #[test]
    fn attempts_are_sent_with_typed_fields() {
        let json = attempt_json(&Arc::new(event("app_1", "ep_1", false)));
        assert_eq!(json["responseStatusCode"], 500);
        assert_eq!(json["status"], "fail");
        assert_eq!(json["next"], "retry");
        assert_eq!(json["nextAttempt"], "2023-11-14T22:13:25.000Z");
        assert_eq!(json["attemptNumber"], 2);
    }
}
