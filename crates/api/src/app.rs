//! Applications (`/api/v1/app/…`): one per customer of the SaaS, owning endpoints and messages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hookrelay_core::AppId;
use hookrelay_core::id::ALL_PREFIXES;
use hookrelay_core::model::{Application, Metadata};
use hookrelay_core::time::now_ms;
use hookrelay_core::validate::check_uid;
use hookrelay_store::{Order, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::pagination::{ListOut, page_request};
use crate::patch::Patch;
use crate::time::Rfc3339;
use crate::validate::{check_metadata, check_rate};
use crate::{ApiState, Routes};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/app", get(list).post(create))
        .route_both("/api/v1/app/{app_id}", get(read).put(upsert).patch(patch).delete(delete))
}

/// `ApplicationIn`, for POST and PUT, and inside `MessageIn.application`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppIn {
    name: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default, alias = "rateLimit")]
    throttle_rate: Option<u32>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// `ApplicationPatch`: absent keeps, `null` clears.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppPatch {
    #[serde(default)]
    name: Patch<String>,
    #[serde(default)]
    uid: Patch<String>,
    #[serde(default, alias = "rateLimit")]
    throttle_rate: Patch<u32>,
    #[serde(default)]
    metadata: Patch<Metadata>,
}

/// `ApplicationOut`, with both the current (`throttleRate`) and the older (`rateLimit`) name of the rate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppOut {
    id: String,
    uid: Option<String>,
    name: String,
    throttle_rate: Option<u32>,
    rate_limit: Option<u32>,
    metadata: Metadata,
    created_at: Rfc3339,
    updated_at: Rfc3339,
}

impl From<Application> for AppOut {
    fn from(app: Application) -> Self {
        Self {
            id: app.id.into_string(),
            uid: app.uid,
            name: app.name,
            throttle_rate: app.rate_limit,
            rate_limit: app.rate_limit,
            metadata: app.metadata,
            created_at: Rfc3339(app.created_at),
            updated_at: Rfc3339(app.updated_at),
        }
    }
}

fn check_name_field(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::body(&["name"], "the application name must not be empty"));
    }
    Ok(())
}

fn check_uid_field(uid: &str) -> Result<(), ApiError> {
    check_uid(uid).map_err(|err| ApiError::body(&["uid"], format!("uid {err}")))
}

impl AppIn {
    fn validate(&self) -> Result<(), ApiError> {
        check_name_field(&self.name)?;
        if let Some(uid) = &self.uid {
            check_uid_field(uid)?;
        }
        if let Some(rate) = self.throttle_rate {
            check_rate(rate).map_err(|msg| ApiError::body(&["throttleRate"], msg))?;
        }
        if let Some(metadata) = &self.metadata {
            check_metadata(metadata).map_err(|msg| ApiError::body(&["metadata"], msg))?;
        }
        Ok(())
    }

    fn into_new_app(self) -> Application {
        let now = now_ms();
        Application {
            id: AppId::at(now),
            uid: self.uid,
            name: self.name,
            rate_limit: self.throttle_rate,
            metadata: self.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// Finds an application by id or uid, or answers 404.
pub async fn find_app(state: &ApiState, id_or_uid: &str) -> Result<Application, ApiError> {
    state.store.get_app(id_or_uid).await.or_not_found("application", id_or_uid)
}

/// Finds an application by id or uid; when it does not exist and `create` is given (Svix's
/// `MessageIn.application`), creates it, with the path's reference as uid unless the body names one.
pub async fn find_or_create_app(
    state: &ApiState,
    id_or_uid: &str,
    create: Option<AppIn>,
) -> Result<Application, ApiError> {
    let Some(input) = create else {
        return find_app(state, id_or_uid).await;
    };
    match state.store.get_app(id_or_uid).await {
        Ok(app) => return Ok(app),
        Err(StoreError::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    input.validate().map_err(|err| err.under(&["application"]))?;
    let path_uid = uid_for_upsert("application", id_or_uid, "app_id")?;
    let mut app = input.into_new_app();
    app.uid = app.uid.or(Some(path_uid));
    match state.store.create_app(&app).await {
        Ok(()) => Ok(app),
        // Another request created it first: use that one.
        Err(StoreError::Conflict(_)) => find_app(state, id_or_uid).await,
        Err(err) => Err(err.into()),
    }
}

/// A path segment that can become the uid of a resource created by PUT: not an id (those are never chosen by
/// clients, so an unknown id is simply not found) and a valid uid.
pub fn uid_for_upsert(what: &str, reference: &str, param: &str) -> Result<String, ApiError> {
    if ALL_PREFIXES.iter().any(|prefix| reference.starts_with(prefix)) {
        return Err(ApiError::not_found(what, reference));
    }
    check_uid(reference).map_err(|err| ApiError::path(param, format!("uid {err}")))?;
    Ok(reference.to_owned())
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ListOut<AppOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    let page = state.store.list_apps(&request).await?;
    Ok(Json(ListOut::from_page(page, &request, |app| app.id.to_string(), |app| Ok(app.into()))?))
}

async fn create(
    State(state): State<ApiState>,
    query: QueryParams,
    ApiJson(input): ApiJson<AppIn>,
) -> Result<(StatusCode, Json<AppOut>), ApiError> {
    input.validate()?;
    let get_if_exists = query.bool("get_if_exists")?.unwrap_or(false);
    if get_if_exists && let Some(uid) = &input.uid {
        match state.store.get_app(uid).await {
            Ok(existing) => return Ok((StatusCode::OK, Json(existing.into()))),
            Err(StoreError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let uid = input.uid.clone();
    let app = input.into_new_app();
    match state.store.create_app(&app).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(app.into()))),
        // Another request created the same uid between our read and our write: that one is "the existing".
        Err(StoreError::Conflict(detail)) => match uid.filter(|_| get_if_exists) {
            Some(uid) => Ok((StatusCode::OK, Json(find_app(&state, &uid).await?.into()))),
            None => Err(ApiError::Conflict(detail)),
        },
        Err(err) => Err(err.into()),
    }
}

async fn read(State(state): State<ApiState>, ApiPath(app_id): ApiPath<String>) -> Result<Json<AppOut>, ApiError> {
    Ok(Json(find_app(&state, &app_id).await?.into()))
}

/// PUT: replaces the application, or creates it (201) when the path names an unknown uid (the SDK's `upsert`).
async fn upsert(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(input): ApiJson<AppIn>,
) -> Result<(StatusCode, Json<AppOut>), ApiError> {
    input.validate()?;
    match state.store.get_app(&app_id).await {
        Ok(mut app) => {
            // A body without a uid keeps the uid the path addressed it by, so an upsert by uid stays
            // addressable by that uid.
            let addressed_by_uid = app.uid.as_deref() == Some(app_id.as_str());
            app.uid = input.uid.or(if addressed_by_uid { app.uid } else { None });
            app.name = input.name;
            app.rate_limit = input.throttle_rate;
            app.metadata = input.metadata.unwrap_or_default();
            app.updated_at = now_ms();
            state.store.update_app(&app).await.or_not_found("application", &app_id)?;
            state.app_ids.forget_all();
            Ok((StatusCode::OK, Json(app.into())))
        }
        Err(StoreError::NotFound) => {
            let path_uid = uid_for_upsert("application", &app_id, "app_id")?;
            let mut app = input.into_new_app();
            app.uid = app.uid.or(Some(path_uid));
            state.store.create_app(&app).await?;
            Ok((StatusCode::CREATED, Json(app.into())))
        }
        Err(err) => Err(err.into()),
    }
}

async fn patch(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(input): ApiJson<AppPatch>,
) -> Result<Json<AppOut>, ApiError> {
    if let Some(name) = input.name.as_set() {
        check_name_field(name)?;
    }
    if let Some(uid) = input.uid.as_set() {
        check_uid_field(uid)?;
    }
    if let Some(rate) = input.throttle_rate.as_set() {
        check_rate(*rate).map_err(|msg| ApiError::body(&["throttleRate"], msg))?;
    }
    if let Some(metadata) = input.metadata.as_set() {
        check_metadata(metadata).map_err(|msg| ApiError::body(&["metadata"], msg))?;
    }
    let mut app = find_app(&state, &app_id).await?;
    input.name.apply_required(&mut app.name, "name")?;
    input.uid.apply_to_option(&mut app.uid);
    input.throttle_rate.apply_to_option(&mut app.rate_limit);
    input.metadata.apply_or(&mut app.metadata, Metadata::new());
    app.updated_at = now_ms();
    state.store.update_app(&app).await.or_not_found("application", &app_id)?;
    state.app_ids.forget_all();
    Ok(Json(app.into()))
}

async fn delete(State(state): State<ApiState>, ApiPath(app_id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    state.store.delete_app(&app.id).await.or_not_found("application", &app_id)?;
    state.app_ids.forget_all();
    Ok(StatusCode::NO_CONTENT)
}
