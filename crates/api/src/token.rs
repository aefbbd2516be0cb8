//! Token routes (`/api/v1/auth/…`, admin only): application-scoped tokens in Svix's app-portal shape, and
//! named admin tokens that can be listed and revoked. Tokens are shown once, in the answer that creates them;
//! the database keeps only their SHA-256 digest. Who may use a token for what is decided in [`crate::auth`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use hookrelay_core::TokenId;
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{self, ApiToken, TokenScope, check_admin_name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::{AppIn, find_or_create_app};
use crate::auth::{Authenticator, Caller};
use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, OptionalJson};
use crate::idempotency::CarriesSecret;
use crate::openapi::{AdminBodyErrors, AdminErrors, AppPath, ConflictOrNotReplayable, NotFound, NotReplayable};
use crate::pagination::ListOut;
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

/// An app portal token's lifetime when the request names none: 7 days, as Svix's.
pub const DEFAULT_APP_TOKEN_SECS: u64 = 7 * 24 * 3600;
/// The longest lifetime an app portal token may ask for (also 7 days, Svix's limit).
pub const MAX_APP_TOKEN_SECS: u64 = DEFAULT_APP_TOKEN_SECS;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/auth/app-portal-access/{app_id}", post(app_portal_access))
        .route_both("/api/v1/auth/token", post(create_admin_token).get(list_admin_tokens))
        .route_both("/api/v1/auth/token/{token_id}", delete(revoke_admin_token))
        .route_both("/api/v1/auth/whoami", get(whoami))
}

/// Which token is calling: what the dashboard checks at sign-in and how the app portal learns its application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WhoAmIOut {
    /// `admin` or `app`.
    scope: &'static str,
    /// The application an `app` token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    /// Whether the token may only read.
    read_only: bool,
}

/// GET `/api/v1/auth/whoami`: the calling token's scope (any token).
#[utoipa::path(
    get,
    path = "/api/v1/auth/whoami/",
    operation_id = "v1.authentication.whoami",
    tag = "Authentication",
    responses((status = 200, description = "The calling token's scope.", body = WhoAmIOut), AdminErrors),
)]
async fn whoami(Extension(caller): Extension<Caller>) -> Json<WhoAmIOut> {
    Json(match caller {
        Caller::Admin => WhoAmIOut { scope: "admin", app_id: None, read_only: false },
        Caller::App { app_id, read_only } => WhoAmIOut { scope: "app", app_id: Some(app_id.into_string()), read_only },
    })
}

/// Svix's `AppPortalAccessIn`. `featureFlags` is accepted for compatibility and has no effect (hookrelay has no
/// feature-flagged event types), nor has `sessionId` (there is no logout route); `capabilities` maps to a full or
/// a read-only token, and a set that maps to neither is refused rather than over-granted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AppPortalAccessIn {
    /// Creates the application when the path names none (its uid then defaults to the path's reference).
    #[serde(default)]
    application: Option<AppIn>,
    /// Seconds the token stays valid, 1 to 604800 (7 days, the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800)]
    expiry: Option<u64>,
    /// Accepted for compatibility with Svix; no effect.
    #[serde(default)]
    #[allow(dead_code)]
    feature_flags: Option<Vec<String>>,
    /// A read-only token may only read (GET).
    #[serde(default)]
    read_only: Option<bool>,
    /// Svix's capabilities: `ViewBase` + `ViewEndpointSecret` alone give a read-only token; with all of
    /// `ManageEndpointSecret`, `ManageTransformations`, `CreateAttempts` and `ManageEndpoint` too, a full one.
    #[serde(default)]
    capabilities: Option<Vec<String>>,
}

/// What Svix's portal capabilities ask for, as hookrelay's token kinds: `Some(true)` read-only, `Some(false)`
/// full, `None` when no capabilities were given.
fn read_only_from_capabilities(capabilities: Option<&[String]>) -> Result<Option<bool>, ApiError> {
    const VIEW: [&str; 2] = ["ViewBase", "ViewEndpointSecret"];
    const MANAGE: [&str; 4] = ["ManageEndpointSecret", "ManageTransformations", "CreateAttempts", "ManageEndpoint"];
    let Some(asked) = capabilities else { return Ok(None) };
    if let Some(unknown) = asked.iter().find(|c| !VIEW.contains(&c.as_str()) && !MANAGE.contains(&c.as_str())) {
        return Err(ApiError::body(
            &["capabilities"],
            format!("unknown capability {unknown:?}: use {}", [VIEW.as_slice(), &MANAGE].concat().join(", ")),
        ));
    }
    let has = |wanted: &[&str]| wanted.iter().all(|c| asked.iter().any(|a| a == c));
    let manages_any = MANAGE.iter().any(|c| asked.iter().any(|a| a == c));
    match (has(&VIEW), has(&MANAGE), manages_any) {
        (true, true, _) => Ok(Some(false)),
        (true, false, false) => Ok(Some(true)),
        _ => Err(ApiError::body(
            &["capabilities"],
            "hookrelay's application tokens are read-only (ViewBase and ViewEndpointSecret: a read-only token can \
             read the signing secret) or full (all six capabilities); ask for one of those two sets, or leave \
             capabilities out for a full token",
        )),
    }
}

/// Svix's `AppPortalAccessOut`.
#[derive(Debug, Serialize, ToSchema)]
struct AppPortalAccessOut {
    /// The app portal URL, with the token in its fragment.
    url: String,
    token: String,
}

/// POST `/api/v1/auth/app-portal-access/{app_id}`: a token for one application (id or uid).
#[utoipa::path(
    post,
    path = "/api/v1/auth/app-portal-access/{app_id}/",
    operation_id = "v1.authentication.app-portal-access",
    tag = "Authentication",
    params(AppPath),
    request_body = Option<AppPortalAccessIn>,
    responses(
        (status = 200, description = "A token for this application, shown only here.", body = AppPortalAccessOut),
        (status = 404, response = NotFound),
        (status = 409, response = NotReplayable),
        AdminBodyErrors,
    ),
)]
async fn app_portal_access(
    State(state): State<ApiState>,
    Extension(auth): Extension<Arc<Authenticator>>,
    ApiPath(app_id): ApiPath<String>,
    headers: HeaderMap,
    OptionalJson(input): OptionalJson<AppPortalAccessIn>,
) -> Result<(Extension<CarriesSecret>, Json<AppPortalAccessOut>), ApiError> {
    let input = input.unwrap_or_default();
    let lifetime = input.expiry.unwrap_or(DEFAULT_APP_TOKEN_SECS);
    if !(1..=MAX_APP_TOKEN_SECS).contains(&lifetime) {
        return Err(ApiError::body(
            &["expiry"],
            format!("must be between 1 and {MAX_APP_TOKEN_SECS} seconds (7 days); leave it out for 7 days"),
        ));
    }
    let read_only = match read_only_from_capabilities(input.capabilities.as_deref())? {
        Some(true) if input.read_only == Some(false) => {
            return Err(ApiError::body(&["readOnly"], "readOnly is false, but the capabilities only view"));
        }
        Some(from_capabilities) => from_capabilities || input.read_only.unwrap_or(false),
        None => input.read_only.unwrap_or(false),
    };
    let app = find_or_create_app(&state, &app_id, input.application).await?;
    let (secret, digest) = token::generate("hr_app_");
    let now = now_ms();
    let token = ApiToken {
        id: TokenId::at(now),
        name: app.id.as_str().to_owned(),
        scope: TokenScope::App { app_id: app.id.clone(), read_only },
        digest,
        created_at: now,
        expires_at: Some(now + (lifetime * 1000) as i64),
    };
    // The application may be deleted between the lookup and the insert: that is a 404 too.
    state.store.credentials.create_token(&token).await.or_not_found("application", &app_id)?;
    let base = match &auth.settings.portal_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let url = format!("{base}/app-portal#key={secret}");
    Ok((Extension(CarriesSecret), Json(AppPortalAccessOut { url, token: secret })))
}

#[derive(Debug, Deserialize, ToSchema)]
struct AdminTokenIn {
    /// Unique among admin tokens; letters, digits, `-`, `_` and `.`, not starting with `tok_`.
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", min_length = 1, max_length = 128)]
    name: String,
}

/// An admin token as listed: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AdminTokenOut {
    id: String,
    name: String,
    created_at: Rfc3339,
}

impl From<ApiToken> for AdminTokenOut {
    fn from(token: ApiToken) -> Self {
        Self { id: token.id.into_string(), name: token.name, created_at: Rfc3339(token.created_at) }
    }
}

/// The answer to a creation: the only time the token is shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedAdminTokenOut {
    #[serde(flatten)]
    listed: AdminTokenOut,
    token: String,
}

/// POST `/api/v1/auth/token`: a new named admin token (201).
#[utoipa::path(
    post,
    path = "/api/v1/auth/token/",
    operation_id = "v1.authentication.create-admin-token",
    tag = "Authentication",
    request_body = AdminTokenIn,
    responses(
        (status = 201, description = "Created; the token is shown only here.", body = CreatedAdminTokenOut),
        (status = 409, response = ConflictOrNotReplayable),
        AdminBodyErrors,
    ),
)]
async fn create_admin_token(
    State(state): State<ApiState>,
    ApiJson(input): ApiJson<AdminTokenIn>,
) -> Result<(StatusCode, Extension<CarriesSecret>, Json<CreatedAdminTokenOut>), ApiError> {
    check_admin_name(&input.name).map_err(|why| ApiError::body(&["name"], why))?;
    let (secret, digest) = token::generate("hr_admin_");
    let now = now_ms();
    let token = ApiToken {
        id: TokenId::at(now),
        name: input.name,
        scope: TokenScope::Admin,
        digest,
        created_at: now,
        expires_at: None,
    };
    state.store.credentials.create_token(&token).await?;
    tracing::info!(token_id = token.id.as_str(), name = token.name.as_str(), "admin token created");
    Ok((
        StatusCode::CREATED,
        Extension(CarriesSecret),
        Json(CreatedAdminTokenOut { listed: token.into(), token: secret }),
    ))
}

/// GET `/api/v1/auth/token`: every named admin token, oldest first, in one page (the bootstrap token is not
/// listed: it lives in the configuration).
#[utoipa::path(
    get,
    path = "/api/v1/auth/token/",
    operation_id = "v1.authentication.list-admin-tokens",
    tag = "Authentication",
    responses((status = 200, description = "Every named admin token, in one page.", body = ListOut<AdminTokenOut>), AdminErrors),
)]
async fn list_admin_tokens(State(state): State<ApiState>) -> Result<Json<ListOut<AdminTokenOut>>, ApiError> {
    let tokens = state.store.credentials.list_admin_tokens().await?;
    Ok(Json(ListOut {
        data: tokens.into_iter().map(AdminTokenOut::from).collect(),
        iterator: None,
        prev_iterator: None,
        done: true,
    }))
}

/// DELETE `/api/v1/auth/token/{id or name}`: revokes a named admin token (204).
#[utoipa::path(
    delete,
    path = "/api/v1/auth/token/{token_id}/",
    operation_id = "v1.authentication.revoke-admin-token",
    tag = "Authentication",
    params(("token_id" = String, Path, description = "The admin token's id (`tok_…`) or name.")),
    responses((status = 204, description = "Revoked."), (status = 404, response = NotFound), AdminErrors),
)]
async fn revoke_admin_token(
    State(state): State<ApiState>,
    Extension(auth): Extension<Arc<Authenticator>>,
    ApiPath(reference): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let revoked =
        state.store.credentials.revoke_admin_token(&reference).await.or_not_found("admin token", &reference)?;
    auth.forget(&revoked.id);
    tracing::info!(token_id = revoked.id.as_str(), name = revoked.name.as_str(), "admin token revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(capabilities: &[&str]) -> Result<Option<bool>, Vec<String>> {
        let owned: Vec<String> = capabilities.iter().map(|c| c.to_string()).collect();
        read_only_from_capabilities(Some(&owned)).map_err(|err| match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.loc.join(".")).collect(),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn capabilities_map_to_a_token_kind_or_are_refused() {
        let all = [
            "ViewBase",
            "ViewEndpointSecret",
            "ManageEndpointSecret",
            "ManageTransformations",
            "CreateAttempts",
            "ManageEndpoint",
        ];
        assert!(matches!(read_only_from_capabilities(None), Ok(None)));
        assert_eq!(kind(&all), Ok(Some(false)));
        assert_eq!(kind(&["ViewEndpointSecret", "ViewBase"]), Ok(Some(true)));
        // Never more than asked: viewing without the secret, or managing only some things, has no token kind.
        assert_eq!(kind(&["ViewBase"]), Err(vec!["body.capabilities".to_owned()]));
        assert_eq!(
            kind(&["ViewBase", "ViewEndpointSecret", "CreateAttempts"]),
            Err(vec!["body.capabilities".to_owned()])
        );
        assert_eq!(kind(&["ViewBase", "Everything"]), Err(vec!["body.capabilities".to_owned()]));
    }
}
