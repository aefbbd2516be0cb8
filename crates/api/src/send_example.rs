//! Test sends (`POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example`): a message delivered to one
//! endpoint alone, whatever its filters, so a receiver can be tried before real events flow. The payload is the
//! event type's example (Svix's `EventExampleIn`: the `examples` of its newest schema, `exampleIndex` choosing
//! one) or, a hookrelay extension, the `payload` given.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use hookrelay_core::model::{EventType, Message, newest_schema_examples};
use hookrelay_core::time::now_ms;
use hookrelay_store::StoreError;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::app::find_app;
use crate::endpoint::find_endpoint;
use crate::error::ApiError;
use crate::event_type::check_event_type_name;
use crate::extract::{ApiJson, ApiPath};
use crate::idempotency::IdempotencyScope;
use crate::message::{MessageOut, accepted};
use crate::openapi::{AdminBodyErrors, EndpointPath, NotFound};
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", post(send_example))
}

/// `EventExampleIn`, plus hookrelay's `payload`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EventExampleIn)]
struct ExampleIn {
    /// The event type of the message.
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256, example = "invoice.paid")]
    event_type: String,
    /// Which of the `examples` of the event type's newest schema to send (default the first).
    #[serde(default)]
    example_index: Option<i64>,
    /// hookrelay extension: send this JSON object instead of an example from the event type's schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    payload: Option<Box<RawValue>>,
}

/// POST: stores the example message with one delivery, to this endpoint, then answers 202 with the message.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example/",
    operation_id = "v1.endpoint.send-example",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = ExampleIn,
    responses(
        (status = 202, description = "Stored with one delivery, to this endpoint; delivery follows.", body = MessageOut),
        (status = 404, response = NotFound),
        AdminBodyErrors,
    ),
)]
async fn send_example(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    scope: Option<Extension<IdempotencyScope>>,
    ApiJson(input): ApiJson<ExampleIn>,
) -> Result<Response, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    if endpoint.disabled {
        return Err(ApiError::body(
            &[],
            "the endpoint is disabled; enable it (PATCH with {\"disabled\": false}) to send it an example",
        ));
    }
    check_event_type_name(&input.event_type).map_err(|msg| ApiError::body(&["eventType"], msg))?;
    let payload = match input.payload {
        Some(payload) if payload.get().trim_start().starts_with('{') => payload.get().to_owned(),
        Some(_) => return Err(ApiError::body(&["payload"], "the payload must be a JSON object, e.g. {\"id\": 1}")),
        None => {
            let event_type = match state.store.catalog.get_event_type(&input.event_type).await {
                Ok(event_type) => event_type,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::body(
                        &["eventType"],
                        format!(
                            "there is no event type `{}`: create it with an example in its schema, or send `payload`",
                            input.event_type
                        ),
                    ));
                }
                Err(err) => return Err(err.into()),
            };
            example(&event_type, input.example_index)?.to_string()
        }
    };
    let message = Message::new(app.id.clone(), input.event_type, payload, now_ms());
    let body = serde_json::to_vec(&MessageOut::new(message.clone(), true)?)
        .map_err(|err| ApiError::Internal(format!("serializing a message response: {err}")))?;
    let remembered =
        scope.map(|Extension(scope)| scope.response(StatusCode::ACCEPTED, body.clone(), message.created_at));
    match state.store.messages.publish_to_endpoint(&message, &endpoint.id, remembered.as_ref()).await {
        Ok(_) => {}
        // Deleted or disabled since it was looked up.
        Err(StoreError::NotFound) => return Err(ApiError::not_found("endpoint", &endpoint_id)),
        Err(err) => return Err(err.into()),
    }
    state.on_new_work.notify_one();
    state.metrics.message_published(&message.event_type);
    Ok(accepted(body, remembered.is_some()))
}

/// The example to send: `index` (default 0) of the `examples` of the event type's newest schema version (the
/// highest numeric key of `schemas`), which must be a JSON object.
fn example(event_type: &EventType, index: Option<i64>) -> Result<&Value, ApiError> {
    let examples = event_type.schemas.as_ref().map_or(&[][..], newest_schema_examples);
    if examples.is_empty() {
        return Err(ApiError::body(
            &["eventType"],
            format!(
                "event type `{}` has no example to send: add `examples` to its schema (PATCH \
                 /api/v1/event-type/{}/ with {{\"schemas\": {{\"1\": {{\"examples\": [{{…}}]}}}}}}), or send `payload`",
                event_type.name, event_type.name
            ),
        ));
    }
    let chosen = usize::try_from(index.unwrap_or(0)).ok().and_then(|index| examples.get(index)).ok_or_else(|| {
        ApiError::body(
            &["exampleIndex"],
            format!(
                "exampleIndex must be between 0 and {}: the schema has {} examples",
                examples.len() - 1,
                examples.len()
            ),
        )
    })?;
    if !chosen.is_object() {
        return Err(ApiError::body(&["exampleIndex"], "that example is not a JSON object, which a payload must be"));
    }
    Ok(chosen)
}
