//! Health routes, served without authentication so load balancers and the SDK's `health.get()` can call them:
//! `/api/v1/health` checks that the database answers and takes writes, and reports the delivery queue;
//! `/api/v1/health/ping` only that the process answers.
//!
//! A call does no database work, so it costs the same whatever the backlog and however busy the connection pool
//! is: whether the database answers and takes writes is a flag the store keeps (set by failed writes and by the
//! write probe that runs every few seconds, cleared by the probe), and the queue comes from the shared
//! [`QueueSnapshot`](crate::queue_snapshot), whose count also fails while the database does not answer. (A
//! per-call `SELECT 1` waited for a pooled connection: 80 ms at the median, 600 ms at worst on PostgreSQL under a
//! publishing load.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookrelay_core::time::now_ms;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

/// The `code` of the 503 answered while the database refuses writes.
pub const STORE_UNWRITABLE: &str = "store_unwritable";

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/health", get(health)).route_both("/api/v1/health/ping", get(ping))
}

/// `{status, database, queue: {depth, oldestAgeSeconds}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthOut)]
struct HealthOut {
    /// `ok`.
    status: &'static str,
    /// `ok`: the database answered (otherwise the answer is a 503).
    database: &'static str,
    queue: QueueOut,
}

/// The delivery queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = HealthQueueOut)]
struct QueueOut {
    /// Deliveries pending (due now or later) or being sent.
    depth: u64,
    /// How far behind the oldest due delivery is, in seconds (0 when the queue is empty or nothing is overdue).
    oldest_age_seconds: f64,
    /// When the queue was counted: the figures are a snapshot shared by every caller, refreshed at most every
    /// few seconds (longer when counting a large backlog takes long).
    as_of: Rfc3339,
}

/// 200 with the queue when the store answers and takes writes; 503 (with the usual `{code, detail}` body the
/// SDKs parse) when it does not answer (`service_unavailable`) or refuses writes (`store_unwritable`, the reason in
/// `detail`), so a load balancer stops sending publishes to an instance that cannot store them.
#[utoipa::path(
    get,
    path = "/api/v1/health/",
    operation_id = "v1.health.get",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "The database answers; the delivery queue.", body = HealthOut,
         example = json!({"status": "ok", "database": "ok",
             "queue": {"depth": 0, "oldestAgeSeconds": 0.0, "asOf": "2026-11-22T13:04:29.000Z"}})),
        (status = 500, response = crate::openapi::Internal),
        (status = 503, description = "The database is unreachable (`service_unavailable`) or refuses writes \
            (`store_unwritable`: disk full, read-only, refused; `detail` says which). Answered until a write probe \
            succeeds again, within seconds of the cause being fixed.", body = ErrorBody),
    ),
)]
async fn health(State(state): State<ApiState>) -> Response {
    if let Some(unwritable) = state.store.operations.unwritable() {
        let body = ErrorBody {
            code: STORE_UNWRITABLE.to_owned(),
            detail: format!(
                "the database refuses writes ({}) since {}; nothing new can be accepted until an operator fixes \
                 it, and health recovers by itself within seconds after that",
                unwritable.reason,
                crate::time::format(unwritable.since)
            ),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    match queue(&state).await {
        Ok(health) => Json(health).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn queue(state: &ApiState) -> Result<HealthOut, ApiError> {
    let taken = state.queue.get(&state.store.operations).await;
    let queue = taken.stats?;
    let oldest_age_ms = queue.oldest_due_at.map_or(0, |due| now_ms().saturating_sub(due).max(0));
    Ok(HealthOut {
        status: "ok",
        database: "ok",
        queue: QueueOut {
            depth: queue.depth,
            oldest_age_seconds: oldest_age_ms as f64 / 1000.0,
            as_of: Rfc3339(taken.at),
        },
    })
}

/// Answers as long as the process runs; does not touch the database.
#[utoipa::path(
    get,
    path = "/api/v1/health/ping/",
    operation_id = "v1.health.ping",
    tag = "Health",
    security(()),
    responses((status = 204, description = "The server process is up.")),
)]
async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
