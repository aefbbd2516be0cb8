//! Event types (`/api/v1/event-type/…`): the kinds of events publishers send, which endpoints filter on.
//! Deleting one archives it (it stays valid in filters); `?expunge=true` removes it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hookrelay_core::model::EventType;
use hookrelay_core::time::now_ms;
use hookrelay_core::validate::check_name;
use hookrelay_store::{Order, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::openapi::{AdminBodyErrors, AdminErrors, Conflict, NotFound, PageParams};
use crate::pagination::{ListOut, page_request};
use crate::patch::Patch;
use crate::time::Rfc3339;
use crate::validate::check_schemas_size;
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/event-type", get(list).post(create))
        .route_both("/api/v1/event-type/{name}", get(read).put(upsert).patch(patch).delete(delete))
}

/// `EventTypeIn` (POST) and `EventTypeUpsertIn` (PUT, where the name comes from the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventTypeIn {
    /// Required on POST; on PUT it comes from the path. `^[a-zA-Z0-9\-_.]+$`, at most 256 characters.
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256, example = "invoice.paid")]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    /// JSON Schemas of the payload, keyed by version: `{"1": {…}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schemas: Option<serde_json::Value>,
    #[serde(default)]
    feature_flag: Option<String>,
    /// The newer SDKs' list form; hookrelay keeps one flag per event type.
    #[serde(default)]
    feature_flags: Option<Vec<String>>,
    /// The group a dashboard lists the event type under; `^[a-zA-Z0-9\-_.]+$`, at most 256 characters.
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256, example = "billing")]
    group_name: Option<String>,
}

/// `EventTypePatch`: absent keeps, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventTypePatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    archived: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    deprecated: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schemas: Patch<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    feature_flag: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    feature_flags: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    group_name: Patch<String>,
}

/// `EventTypeOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventTypeOut {
    name: String,
    description: String,
    archived: bool,
    deprecated: bool,
    #[schema(value_type = Option<Object>)]
    schemas: Option<serde_json::Value>,
    feature_flag: Option<String>,
    feature_flags: Option<Vec<String>>,
    group_name: Option<String>,
    created_at: Rfc3339,
    updated_at: Rfc3339,
}

impl EventTypeOut {
    /// `with_content=false` leaves the schemas out, as Svix does, to keep long lists small.
    fn new(event_type: EventType, with_content: bool) -> Self {
        Self {
            name: event_type.name,
            description: event_type.description,
            archived: event_type.archived,
            deprecated: event_type.deprecated,
            schemas: event_type.schemas.filter(|_| with_content),
            feature_flags: event_type.feature_flag.clone().map(|flag| vec![flag]),
            feature_flag: event_type.feature_flag,
            group_name: event_type.group_name,
            created_at: Rfc3339(event_type.created_at),
            updated_at: Rfc3339(event_type.updated_at),
        }
    }
}

impl From<EventType> for EventTypeOut {
    fn from(event_type: EventType) -> Self {
        Self::new(event_type, true)
    }
}

fn check_schemas(schemas: &serde_json::Value) -> Result<(), ApiError> {
    if !schemas.is_object() {
        return Err(ApiError::body(&["schemas"], "schemas must be a JSON object keyed by version, e.g. {\"1\": {…}}"));
    }
    check_schemas_size(schemas).map_err(|msg| ApiError::body(&["schemas"], msg))
}

/// The one feature flag from `featureFlag` or the one-item list `featureFlags`.
fn one_flag(single: Option<String>, list: Option<Vec<String>>) -> Result<Option<String>, ApiError> {
    let flag = match (single, list) {
        (Some(flag), _) => Some(flag),
        (None, Some(mut flags)) if flags.len() <= 1 => flags.pop(),
        (None, Some(_)) => {
            return Err(ApiError::body(&["featureFlags"], "hookrelay supports one feature flag per event type"));
        }
        (None, None) => None,
    };
    if let Some(flag) = &flag {
        check_name(flag).map_err(|err| ApiError::body(&["featureFlag"], format!("feature flag {err}")))?;
    }
    Ok(flag)
}

fn check_group_name(group: &str) -> Result<(), ApiError> {
    check_name(group).map_err(|err| ApiError::body(&["groupName"], format!("groupName {err}")))
}

/// An event type's name rules, with the message every route that takes one gives.
pub fn check_event_type_name(name: &str) -> Result<(), String> {
    check_name(name).map_err(|err| format!("event type name {err}"))
}

impl EventTypeIn {
    /// Validates and builds a new event type named `name`.
    fn into_event_type(self, name: String) -> Result<EventType, ApiError> {
        if let Some(schemas) = &self.schemas {
            check_schemas(schemas)?;
        }
        let now = now_ms();
        Ok(EventType {
            name,
            description: self.description,
            archived: self.archived,
            deprecated: self.deprecated,
            schemas: self.schemas,
            feature_flag: one_flag(self.feature_flag, self.feature_flags)?,
            group_name: self.group_name.map(|group| check_group_name(&group).map(|()| group)).transpose()?,
            created_at: now,
            updated_at: now,
        })
    }
}

async fn find_event_type(state: &ApiState, name: &str) -> Result<EventType, ApiError> {
    state.store.catalog.get_event_type(name).await.or_not_found("event type", name)
}

#[utoipa::path(
    get,
    path = "/api/v1/event-type/",
    operation_id = "v1.event-type.list",
    tag = "Event Type",
    params(
        PageParams,
        ("include_archived" = Option<bool>, Query, description = "Include archived event types."),
        ("with_content" = Option<bool>, Query, description = "`false` leaves the schemas out."),
    ),
    responses((status = 200, description = "A page of event types, by name.", body = ListOut<EventTypeOut>), AdminErrors),
)]
async fn list(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ListOut<EventTypeOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    let include_archived = query.bool("include_archived")?.unwrap_or(false);
    let with_content = query.bool("with_content")?.unwrap_or(true);
    let page = state.store.catalog.list_event_types(&request, include_archived).await?;
    let out = ListOut::from_page(page, &request, |et| et.name.clone(), |et| Ok(EventTypeOut::new(et, with_content)))?;
    Ok(Json(out))
}

#[utoipa::path(
    post,
    path = "/api/v1/event-type/",
    operation_id = "v1.event-type.create",
    tag = "Event Type",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created.", body = EventTypeOut),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn create(
    State(state): State<ApiState>,
    ApiJson(mut input): ApiJson<EventTypeIn>,
) -> Result<(StatusCode, Json<EventTypeOut>), ApiError> {
    let Some(name) = input.name.take() else {
        return Err(ApiError::body(&["name"], "missing field `name`"));
    };
    check_event_type_name(&name).map_err(|msg| ApiError::body(&["name"], msg))?;
    let event_type = input.into_event_type(name)?;
    match state.store.catalog.create_event_type(&event_type).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(event_type.into()))),
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(format!(
            "an event type named `{}` already exists; use PUT /api/v1/event-type/{} to update it",
            event_type.name, event_type.name
        ))),
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/event-type/{name}/",
    operation_id = "v1.event-type.get",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name.")),
    responses((status = 200, description = "The event type.", body = EventTypeOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(State(state): State<ApiState>, ApiPath(name): ApiPath<String>) -> Result<Json<EventTypeOut>, ApiError> {
    Ok(Json(find_event_type(&state, &name).await?.into()))
}

/// PUT: replaces the event type, or creates it (201) when missing.
#[utoipa::path(
    put,
    path = "/api/v1/event-type/{name}/",
    operation_id = "v1.event-type.update",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name.")),
    request_body = EventTypeIn,
    responses(
        (status = 200, description = "Replaced.", body = EventTypeOut),
        (status = 201, description = "Created.", body = EventTypeOut),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn upsert(
    State(state): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(input): ApiJson<EventTypeIn>,
) -> Result<(StatusCode, Json<EventTypeOut>), ApiError> {
    check_event_type_name(&name).map_err(|msg| ApiError::path("name", msg))?;
    if input.name.as_ref().is_some_and(|body_name| *body_name != name) {
        return Err(ApiError::body(&["name"], "the name in the body must match the name in the path (or be left out)"));
    }
    let replacement = input.into_event_type(name.clone())?;
    match state.store.catalog.get_event_type(&name).await {
        Ok(existing) => {
            let event_type = EventType { created_at: existing.created_at, ..replacement };
            state.store.catalog.update_event_type(&event_type).await.or_not_found("event type", &name)?;
            Ok((StatusCode::OK, Json(event_type.into())))
        }
        Err(StoreError::NotFound) => {
            state.store.catalog.create_event_type(&replacement).await?;
            Ok((StatusCode::CREATED, Json(replacement.into())))
        }
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/event-type/{name}/",
    operation_id = "v1.event-type.patch",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name.")),
    request_body = EventTypePatch,
    responses((status = 200, description = "Updated.", body = EventTypeOut), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn patch(
    State(state): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(input): ApiJson<EventTypePatch>,
) -> Result<Json<EventTypeOut>, ApiError> {
    if let Some(schemas) = input.schemas.as_set() {
        check_schemas(schemas)?;
    }
    if let Some(group) = input.group_name.as_set() {
        check_group_name(group)?;
    }
    let mut event_type = find_event_type(&state, &name).await?;
    input.group_name.apply_to_option(&mut event_type.group_name);
    input.description.apply_or(&mut event_type.description, String::new());
    input.archived.apply_or(&mut event_type.archived, false);
    input.deprecated.apply_or(&mut event_type.deprecated, false);
    input.schemas.apply_to_option(&mut event_type.schemas);
    let flag = match (input.feature_flag, input.feature_flags) {
        (Patch::Set(flag), _) => Patch::Set(one_flag(Some(flag), None)?),
        (_, Patch::Set(flags)) => Patch::Set(one_flag(None, Some(flags))?),
        (Patch::Null, _) | (_, Patch::Null) => Patch::Null,
        (Patch::Absent, Patch::Absent) => Patch::Absent,
    };
    match flag {
        Patch::Set(flag) => event_type.feature_flag = flag,
        Patch::Null => event_type.feature_flag = None,
        Patch::Absent => {}
    }
    event_type.updated_at = now_ms();
    state.store.catalog.update_event_type(&event_type).await.or_not_found("event type", &name)?;
    Ok(Json(event_type.into()))
}

/// DELETE archives (endpoints filtering on it keep working); `?expunge=true` removes it for good.
#[utoipa::path(
    delete,
    path = "/api/v1/event-type/{name}/",
    operation_id = "v1.event-type.delete",
    tag = "Event Type",
    params(
        ("name" = String, Path, description = "The event type's name."),
        ("expunge" = Option<bool>, Query, description = "Delete for good instead of archiving."),
    ),
    responses((status = 204, description = "Archived (or deleted)."), (status = 404, response = NotFound), AdminErrors),
)]
async fn delete(
    State(state): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    query: QueryParams,
) -> Result<StatusCode, ApiError> {
    if query.bool("expunge")?.unwrap_or(false) {
        state.store.catalog.expunge_event_type(&name).await.or_not_found("event type", &name)?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut event_type = find_event_type(&state, &name).await?;
    if !event_type.archived {
        event_type.archived = true;
        event_type.updated_at = now_ms();
        state.store.catalog.update_event_type(&event_type).await.or_not_found("event type", &name)?;
    }
    Ok(StatusCode::NO_CONTENT)
}
