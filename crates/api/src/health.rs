//! Health routes, served without authentication so load balancers and the SDK's `health.get()` can call them:
//! `/api/v1/health` checks the database answers, `/api/v1/health/ping` only that the process does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/health", get(health)).route_both("/api/v1/health/ping", get(ping))
}

/// 200 when the store answers, 503 (with the usual `{code, detail}` body the SDKs parse) when it does not.
async fn health(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
