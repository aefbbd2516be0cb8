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
#[utoipa::path(
    get,
    path = "/api/v1/health/",
    operation_id = "v1.health.get",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "The database answers.", body = Object, example = json!({"status": "ok"})),
        (status = 500, response = crate::openapi::Internal),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
async fn health(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
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
