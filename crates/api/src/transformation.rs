//! An endpoint's transformation (`/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation`, Svix's paths):
//! reading and setting its JavaScript `handler(webhook)`, checked in the sandbox before it is stored, and
//! simulating it on a payload. The dispatcher runs it on every delivery ([`hookrelay_transform`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookrelay_core::model::Transformation;
use hookrelay_core::time::now_ms;
use hookrelay_core::{MessageId, rfc3339};
use hookrelay_transform::{Method, TransformError, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::app::find_app;
use crate::endpoint::find_endpoint;
use crate::error::ApiError;
use crate::event_type::check_event_type_name;
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::{AdminBodyErrors, AdminErrors, EndpointPath, NotFound};
use crate::patch::Patch;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", get(read).patch(set))
        .route_both("/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate", post(simulate))
}

/// `EndpointTransformationOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TransformationOut {
    /// The JavaScript that declares `function handler(webhook)`; `null` when the endpoint has none.
    code: Option<String>,
    /// Whether it runs on the endpoint's deliveries.
    enabled: bool,
}

/// `EndpointTransformationPatch`: absent keeps; `code: null` removes the transformation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TransformationPatch {
    /// At most 64 KiB; it must compile and declare `function handler(webhook)` (a 422 names the line otherwise).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    code: Patch<String>,
    /// Whether it runs on the endpoint's deliveries (a new transformation starts disabled).
    #[serde(default)]
    enabled: Option<bool>,
    /// Svix's transformation variables, which hookrelay does not have: a 422 says to put the values in the code.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Value>,
}

/// The body of a simulation: the code and a message to run it on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SimulateIn {
    code: String,
    #[schema(example = "invoice.paid")]
    event_type: String,
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
}

/// What a delivery would be after the transformation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SimulateOut {
    /// `POST` or `PUT`.
    method: &'static str,
    url: String,
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    headers: BTreeMap<String, String>,
    /// Whether the handler cancelled the delivery.
    cancel: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/",
    operation_id = "v1.endpoint.transformation-get",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 200, body = TransformationOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<Json<TransformationOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let (code, enabled) = endpoint.transformation.map_or((None, false), |t| (Some(t.code), t.enabled));
    Ok(Json(TransformationOut { code, enabled }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/",
    operation_id = "v1.endpoint.transformation-partial-update",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = TransformationPatch,
    responses((status = 204, description = "Stored."), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn set(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<TransformationPatch>,
) -> Result<StatusCode, ApiError> {
    if input.variables.is_some() {
        return Err(ApiError::body(
            &["variables"],
            "hookrelay has no transformation variables: write the values into the code",
        ));
    }
    let app = find_app(&state, &app_id).await?;
    let mut endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let mut transformation = endpoint.transformation.take();
    match input.code {
        Patch::Absent => {}
        Patch::Null => transformation = None,
        Patch::Set(code) => {
            state.sandbox.check(&code).await.map_err(|err| code_error(&err))?;
            let enabled = transformation.as_ref().is_some_and(|t| t.enabled);
            transformation = Some(Transformation { code, enabled });
        }
    }
    if let Some(enabled) = input.enabled {
        match &mut transformation {
            Some(transformation) => transformation.enabled = enabled,
            None if enabled => {
                return Err(ApiError::body(
                    &["enabled"],
                    "the endpoint has no transformation to enable: send `code` too",
                ));
            }
            None => {}
        }
    }
    endpoint.transformation = transformation;
    endpoint.updated_at = now_ms();
    state.store.catalog.update_endpoint(&endpoint).await?;
    (state.on_endpoint_changed)(&endpoint.id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate/",
    operation_id = "v1.endpoint.transformation-simulate",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = SimulateIn,
    responses(
        (status = 200, description = "What the delivery would be.", body = SimulateOut),
        (status = 404, response = NotFound),
        AdminBodyErrors,
    ),
)]
async fn simulate(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<SimulateIn>,
) -> Result<Json<SimulateOut>, ApiError> {
    check_event_type_name(&input.event_type).map_err(|msg| ApiError::body(&["eventType"], msg))?;
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let now = now_ms();
    let (msg_id, timestamp) = (MessageId::at(now), rfc3339::format(now));
    let webhook = Webhook {
        method: Method::Post,
        url: &endpoint.url,
        payload: &input.payload,
        event_type: &input.event_type,
        msg_id: msg_id.as_str(),
        event_id: None,
        timestamp: &timestamp,
    };
    let transformed = state.sandbox.run(Arc::from(input.code), &webhook).await.map_err(|err| code_error(&err))?;
    let payload = RawValue::from_string(transformed.payload)
        .map_err(|err| ApiError::Internal(format!("a transformation's payload is not JSON: {err}")))?;
    Ok(Json(SimulateOut {
        method: match transformed.method {
            Method::Post => "POST",
            Method::Put => "PUT",
        },
        url: transformed.url,
        payload,
        headers: transformed.headers,
        cancel: transformed.cancel,
    }))
}

/// A 422 on `code` that says what went wrong and where (`… (line 3): …`); a sandbox that is not running is a 503.
fn code_error(err: &TransformError) -> ApiError {
    match err {
        TransformError::Unavailable => ApiError::Unavailable(err.to_string()),
        _ => ApiError::body(&["code"], err),
    }
}
