//! Health routes, served without authentication so load balancers and the SDK's `health.get()` can call them:
//! `/api/v1/health` checks the database answers and reports the delivery queue, `/api/v1/health/ping` only
//! that the process does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hookrelay_core::time::now_ms;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/health", get(health)).route_both("/api/v1/health/ping", get(ping))
}

/// 200 with the queue when the store answers, 503 (with the usual `{code, detail}` body the SDKs parse) when it
/// does not.
async fn health(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    let queue = state.store.queue_stats().await?;
    let oldest_age_ms = queue.oldest_due_at.map_or(0, |due| now_ms().saturating_sub(due).max(0));
    Ok(Json(json!({
        "status": "ok",
        "database": "ok",
        "queue": { "depth": queue.depth, "oldestAgeSeconds": oldest_age_ms as f64 / 1000.0 },
    })))
}

async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
