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
use utoipa::ToSchema;

use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::openapi::{AdminBodyErrors, AdminErrors, AppPath, Conflict, NotFound, PageParams};
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApplicationIn)]
pub struct AppIn {
    #[schema(min_length = 1)]
    name: String,
    /// An id of your own to address the application by; `^[a-zA-Z0-9\-_.]+$`, at most 256 characters.
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256)]
    uid: Option<String>,
    /// Deliveries per second to each endpoint (`rateLimit` is accepted too).
    #[serde(default, alias = "rateLimit")]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    throttle_rate: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Metadata>,
}

/// `ApplicationPatch`: absent keeps, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApplicationPatch)]
struct AppPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    uid: Patch<String>,
    #[serde(default, alias = "rateLimit")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 4294967295_u64, format = Int64)]
    throttle_rate: Patch<u32>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Patch<Metadata>,
}

/// `ApplicationOut`, with both the current (`throttleRate`) and the older (`rateLimit`) name of the rate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApplicationOut)]
struct AppOut {
    id: String,
    uid: Option<String>,
    name: String,
    throttle_rate: Option<u32>,
    rate_limit: Option<u32>,
    #[schema(value_type = BTreeMap<String, String>)]
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
    state.store.catalog.get_app(id_or_uid).await.or_not_found("application", id_or_uid)
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
    match state.store.catalog.get_app(id_or_uid).await {
        Ok(app) => return Ok(app),
        Err(StoreError::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    input.validate().map_err(|err| err.under(&["application"]))?;
    let path_uid = uid_for_upsert("application", id_or_uid, "app_id")?;
    let mut app = input.into_new_app();
    app.uid = app.uid.or(Some(path_uid));
    match state.store.catalog.create_app(&app).await {
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

#[utoipa::path(
    get,
    path = "/api/v1/app/",
    operation_id = "v1.application.list",
    tag = "Application",
    params(PageParams),
    responses((status = 200, description = "A page of applications.", body = ListOut<AppOut>), AdminErrors),
)]
async fn list(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ListOut<AppOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    query.refuse_unsupported(
        &[
            "exclude_apps_with_no_endpoints",
            "exclude_apps_with_disabled_endpoints",
            "exclude_apps_with_svix_play_endpoints",
        ],
        "every application is listed",
    )?;
    let page = state.store.catalog.list_apps(&request).await?;
    Ok(Json(ListOut::from_page(page, &request, |app| app.id.to_string(), |app| Ok(app.into()))?))
}

/// Creates an application; with `get_if_exists=true` and a taken uid, answers 200 with the existing one.
#[utoipa::path(
    post,
    path = "/api/v1/app/",
    operation_id = "v1.application.create",
    tag = "Application",
    params(("get_if_exists" = Option<bool>, Query, description = "Answer 200 with the application that has this uid instead of 409.")),
    request_body = AppIn,
    responses(
        (status = 201, description = "Created.", body = AppOut),
        (status = 200, description = "`get_if_exists`: the existing application.", body = AppOut),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn create(
    State(state): State<ApiState>,
    query: QueryParams,
    ApiJson(input): ApiJson<AppIn>,
) -> Result<(StatusCode, Json<AppOut>), ApiError> {
    input.validate()?;
    let get_if_exists = query.bool("get_if_exists")?.unwrap_or(false);
    if get_if_exists && let Some(uid) = &input.uid {
        match state.store.catalog.get_app(uid).await {
            Ok(existing) => return Ok((StatusCode::OK, Json(existing.into()))),
            Err(StoreError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let uid = input.uid.clone();
    let app = input.into_new_app();
    match state.store.catalog.create_app(&app).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(app.into()))),
        // Another request created the same uid between our read and our write: that one is "the existing".
        Err(StoreError::Conflict(detail)) => match uid.filter(|_| get_if_exists) {
            Some(uid) => Ok((StatusCode::OK, Json(find_app(&state, &uid).await?.into()))),
            None => Err(ApiError::Conflict(detail)),
        },
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/",
    operation_id = "v1.application.get",
    tag = "Application",
    params(AppPath),
    responses((status = 200, description = "The application.", body = AppOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(State(state): State<ApiState>, ApiPath(app_id): ApiPath<String>) -> Result<Json<AppOut>, ApiError> {
    Ok(Json(find_app(&state, &app_id).await?.into()))
}

/// PUT: replaces the application, or creates it (201) when the path names an unknown uid (the SDK's `upsert`).
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/",
    operation_id = "v1.application.update",
    tag = "Application",
    params(AppPath),
    request_body = AppIn,
    responses(
        (status = 200, description = "Replaced.", body = AppOut),
        (status = 201, description = "Created with the path's uid.", body = AppOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn upsert(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(input): ApiJson<AppIn>,
) -> Result<(StatusCode, Json<AppOut>), ApiError> {
    input.validate()?;
    match state.store.catalog.get_app(&app_id).await {
        Ok(mut app) => {
            // A body without a uid keeps the uid the path addressed it by, so an upsert by uid stays
            // addressable by that uid.
            let addressed_by_uid = app.uid.as_deref() == Some(app_id.as_str());
            app.uid = input.uid.or(if addressed_by_uid { app.uid } else { None });
            app.name = input.name;
            app.rate_limit = input.throttle_rate;
            app.metadata = input.metadata.unwrap_or_default();
            app.updated_at = now_ms();
            state.store.catalog.update_app(&app).await.or_not_found("application", &app_id)?;
            state.app_ids.forget_all();
            Ok((StatusCode::OK, Json(app.into())))
        }
        Err(StoreError::NotFound) => {
            let path_uid = uid_for_upsert("application", &app_id, "app_id")?;
            let mut app = input.into_new_app();
            app.uid = app.uid.or(Some(path_uid));
            state.store.catalog.create_app(&app).await?;
            Ok((StatusCode::CREATED, Json(app.into())))
        }
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/",
    operation_id = "v1.application.patch",
    tag = "Application",
    params(AppPath),
    request_body = AppPatch,
    responses(
        (status = 200, description = "Updated.", body = AppOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
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
    state.store.catalog.update_app(&app).await.or_not_found("application", &app_id)?;
    state.app_ids.forget_all();
    Ok(Json(app.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/",
    operation_id = "v1.application.delete",
    tag = "Application",
    params(AppPath),
    responses((status = 204, description = "Deleted, with its endpoints and messages."), (status = 404, response = NotFound), AdminErrors),
)]
async fn delete(State(state): State<ApiState>, ApiPath(app_id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    state.store.catalog.delete_app(&app.id).await.or_not_found("application", &app_id)?;
    state.app_ids.forget_all();
    Ok(StatusCode::NO_CONTENT)
}
