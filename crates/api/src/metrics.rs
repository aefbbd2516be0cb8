//! `GET /metrics` (Prometheus text format) and the middleware that counts and times every API request.
//!
//! The route is outside the v1 bearer auth, so a Prometheus server needs no admin token; when
//! `HOOKRELAY_METRICS_TOKEN` is set it must present that one instead (`Authorization: Bearer …`). The queue
//! gauges come from the shared [`QueueSnapshot`](crate::queue_snapshot) (counted at most every few seconds, not
//! per scrape), and whether the database takes writes from the store's flag: a scrape does no database work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookrelay_core::time::now_ms;
use hookrelay_metrics::Metrics;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiState;
use crate::error::ApiError;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/metrics", get(scrape))
}

/// Prometheus text; outside the v1 bearer auth (`HOOKRELAY_METRICS_TOKEN`, when set, is required instead).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics.scrape",
    tag = "Health",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "Counters, histograms and queue gauges in the Prometheus text format.",
         content_type = "text/plain", body = String),
        (status = 401, response = crate::openapi::Unauthorized),
    ),
)]
async fn scrape(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &state.metrics_token
        && !presents(&headers, expected)
    {
        return Err(ApiError::Unauthorized);
    }
    state.metrics.set_store_writable(state.store.operations.unwritable().is_none());
    match state.queue.get(&state.store.operations).await.stats {
        Ok(queue) => {
            let overdue = queue.oldest_due_at.map_or(0, |due| now_ms().saturating_sub(due).max(0));
            state.metrics.set_queue(queue.depth, Duration::from_millis(overdue as u64));
        }
        Err(err) => {
            // The other metrics are still worth serving; `hookrelay_database_up` says the queue ones are stale.
            tracing::warn!(error = %err, "metrics scrape could not read the queue");
            state.metrics.set_database_down();
        }
    }
    Ok(([(CONTENT_TYPE, hookrelay_metrics::CONTENT_TYPE)], state.metrics.render()).into_response())
}

/// Whether the request carries `Authorization: Bearer <expected>`, compared in constant time (as digests, so
/// not even the length leaks).
fn presents(headers: &HeaderMap, expected: &str) -> bool {
    let Some(presented) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()))
    else {
        return false;
    };
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let expected: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    presented.ct_eq(&expected).into()
}

/// Middleware: counts and times the request under its route template (never its raw path, which holds ids).
pub async fn track_requests(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.http_request(
        method.as_str(),
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, accepted: bool) {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert(AUTHORIZATION, value.parse().expect("test header"));
        }
        assert_eq!(presents(&headers, "scrape-me"), accepted, "{header:?}");
    }

    #[test]
    fn the_metrics_token_is_a_bearer_token() {
        check(Some("Bearer scrape-me"), true);
        check(Some("bearer  scrape-me "), true);
        check(Some("Bearer scrape-m"), false);
        check(Some("Basic scrape-me"), false);
        check(Some("scrape-me"), false);
        check(None, false);
    }
}
