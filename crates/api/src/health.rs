//! Health routes, served without authentication so load balancers and the SDK's `health.get()` can call them:
//! `/api/v1/health` checks the database answers and reports the delivery queue, `/api/v1/health/ping` only
//! that the process does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hookrelay_core::time::now_ms;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::{ApiState, Routes};

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
}

/// 200 with the queue when the store answers, 503 (with the usual `{code, detail}` body the SDKs parse) when it
/// does not.
#[utoipa::path(
    get,
    path = "/api/v1/health/",
    operation_id = "v1.health.get",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "The database answers; the delivery queue.", body = HealthOut,
         example = json!({"status": "ok", "database": "ok", "queue": {"depth": 0, "oldestAgeSeconds": 0.0}})),
        (status = 500, response = crate::openapi::Internal),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
async fn health(State(state): State<ApiState>) -> Result<Json<HealthOut>, ApiError> {
    state.store.ping().await?;
    let queue = state.store.queue_stats().await?;
    let oldest_age_ms = queue.oldest_due_at.map_or(0, |due| now_ms().saturating_sub(due).max(0));
    Ok(Json(HealthOut {
        status: "ok",
        database: "ok",
        queue: QueueOut { depth: queue.depth, oldest_age_seconds: oldest_age_ms as f64 / 1000.0 },
    }))
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
