//! Inbound sources (`/api/v1/source/…`, admin): each is a public ingest URL bound to one provider's signature
//! scheme, its secret, an optional rate limit and the application its events are published to; plus the list of
//! verified requests a source received, the counts of rejected ones by minute and reason, and their statistics;
//! and the signing of a test body with the source's secret (`hookrelay trigger --source`), which returns the
//! provider's headers but never the secret. The ingest route itself is in [`crate::ingest`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookrelay_core::inbound::{OptionError, Provider, Verifier};
use hookrelay_core::model::{InboundEvent, InboundRejections, InboundStatus, Source, SourceSecrets};
use hookrelay_core::time::now_ms;
use hookrelay_core::validate::check_uid;
use hookrelay_core::{MessageId, SourceId};
use hookrelay_store::{InboundCounts, Order, parse_rejection_cursor, rejection_cursor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::find_app;
use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::openapi::{AdminBodyErrors, AdminErrors, Conflict, NotFound, PageParams};
use crate::pagination::{ListOut, page_request};
use crate::patch::Patch;
use crate::time::Rfc3339;
use crate::validate::check_header_name;
use crate::{ApiState, Routes};

/// How far a signed timestamp may be from the clock unless the source says otherwise (what Stripe, Svix and
/// Slack recommend).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// How long a replaced secret is still accepted unless the PATCH says otherwise, so that nothing is rejected
/// while the provider's dashboard and hookrelay are switched over one after the other.
pub const DEFAULT_SECRET_GRACE_SECS: i64 = 24 * 3600;
const MAX_TOLERANCE_SECS: i64 = 7 * 24 * 3600;
const MAX_SECRET_LEN: usize = 1024;
/// Highest `rateLimit` a source may have (requests per second).
const MAX_RATE_LIMIT: i64 = 100_000;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route_both("/api/v1/source", get(list).post(create))
        .route_both("/api/v1/source/{source_id}", get(read).patch(patch).delete(delete))
        .route_both("/api/v1/source/{source_id}/event", get(list_events))
        .route_both("/api/v1/source/{source_id}/rejection", get(list_rejections))
        .route_both("/api/v1/source/{source_id}/stats", get(stats))
        .route_both("/api/v1/source/{source_id}/sign", post(sign))
}

/// `SourceIn`. Keys other than these are the provider's options (e.g. `signatureHeader` for `hmac-sha256`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SourceIn {
    #[schema(min_length = 1)]
    name: String,
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256)]
    uid: Option<String>,
    /// `stripe`, `svix`, `github`, `shopify`, `slack` or `hmac-sha256`.
    provider: String,
    /// The signing secret from the provider's dashboard; never returned.
    secret: String,
    /// The application (id or uid) the events are published to.
    app_id: String,
    /// How far a signed timestamp may be from the clock (default 300 s).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800)]
    tolerance_secs: Option<i64>,
    /// Requests per second the ingest URL accepts, checked before the signature (429 with `Retry-After` beyond
    /// it); absent or `null` is no limit. Per hookrelay process.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit: Option<i64>,
    /// hookrelay extension: up to 10 request header names (e.g. `["Stripe-Signature"]`) stored with each event and
    /// sent with every delivery of its message, so a downstream handler keeps its own provider verification.
    #[serde(default)]
    #[schema(max_items = 10)]
    forward_headers: Option<Vec<String>>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    options: Map<String, Value>,
}

/// `SourcePatch`: absent keeps; `null` clears `uid` and `rateLimit` and resets `toleranceSecs` and options to their
/// defaults.
/// A new `secret` rotates: the old one stays valid for `secretGraceSecs` (default a day; 0 revokes it at once).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SourcePatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    uid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    provider: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    secret: Patch<String>,
    /// How long the replaced secret stays valid (default a day; 0 revokes it at once).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    secret_grace_secs: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    app_id: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 604800)]
    tolerance_secs: Patch<i64>,
    /// `null` removes the limit.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    rate_limit: Patch<i64>,
    /// `null` forwards none.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    forward_headers: Patch<Vec<String>>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    options: Map<String, Value>,
}

/// `SourceOut`. The secret is never sent back.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SourceOut {
    id: String,
    uid: Option<String>,
    name: String,
    provider: &'static str,
    app_id: String,
    /// Where the provider must send its webhooks, relative to this server's public address.
    ingest_url: String,
    tolerance_secs: i64,
    /// Requests per second the ingest URL accepts; `null` is no limit.
    rate_limit: Option<u32>,
    /// The request headers forwarded with every delivery of the source's events.
    forward_headers: Vec<String>,
    /// The provider's options, e.g. `signatureHeader` for `hmac-sha256`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    options: Map<String, Value>,
    created_at: Rfc3339,
    updated_at: Rfc3339,
}

impl From<Source> for SourceOut {
    fn from(source: Source) -> Self {
        Self {
            ingest_url: format!("/ingest/{}", source.id),
            id: source.id.into_string(),
            uid: source.uid,
            name: source.name,
            provider: source.provider.name(),
            app_id: source.app_id.into_string(),
            tolerance_secs: source.tolerance_secs,
            rate_limit: source.rate_limit,
            forward_headers: source.forward_headers,
            options: source.provider.options(),
            created_at: Rfc3339(source.created_at),
            updated_at: Rfc3339(source.updated_at),
        }
    }
}

/// `InboundEventOut`: one request a source received.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InboundEventOut {
    id: String,
    /// `verified`, `duplicate` or `rejected`.
    status: &'static str,
    /// Why a request was rejected, e.g. `signature_mismatch`.
    reason: Option<String>,
    event_id: Option<String>,
    event_type: Option<String>,
    message_id: Option<String>,
    received_at: Rfc3339,
}

impl From<InboundEvent> for InboundEventOut {
    fn from(event: InboundEvent) -> Self {
        Self {
            id: event.id.into_string(),
            status: event.status.name(),
            reason: event.reason,
            event_id: event.event_id,
            event_type: event.event_type,
            message_id: event.msg_id.map(|id| id.into_string()),
            received_at: Rfc3339(event.received_at),
        }
    }
}

/// `InboundRejectionsOut`: the requests a source rejected for one reason within one minute.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InboundRejectionsOut {
    /// Why they were rejected, e.g. `signature_mismatch` (the `code` they were answered with).
    reason: String,
    /// The start of their minute.
    minute: Rfc3339,
    count: u64,
    first_seen: Rfc3339,
    last_seen: Rfc3339,
    /// One of them, without its body: `{"detail": why, "headers": {name: value}, "headersOmitted": n,
    /// "bodyBytes": n}`. Signature and credential header values are replaced by their length, other values cut
    /// to 128 characters, and at most 1 KiB of headers kept.
    #[schema(value_type = Option<Object>)]
    sample: Option<Value>,
}

impl From<InboundRejections> for InboundRejectionsOut {
    fn from(rejections: InboundRejections) -> Self {
        Self {
            reason: rejections.reason,
            minute: Rfc3339(rejections.minute),
            count: rejections.count,
            first_seen: Rfc3339(rejections.first_seen),
            last_seen: Rfc3339(rejections.last_seen),
            // Written by this server as JSON; anything else (damaged) is shown as nothing rather than failing.
            sample: rejections.sample.and_then(|text| serde_json::from_str(&text).ok()),
        }
    }
}

/// Counts of one period in `SourceStatsOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CountsOut {
    received: u64,
    verified: u64,
    rejected: u64,
    duplicates: u64,
    rejected_by_reason: BTreeMap<String, u64>,
}

impl From<InboundCounts> for CountsOut {
    fn from(counts: InboundCounts) -> Self {
        Self {
            received: counts.received(),
            verified: counts.verified,
            rejected: counts.rejected(),
            duplicates: counts.duplicates,
            rejected_by_reason: counts.rejected_by_reason,
        }
    }
}

/// `SourceStatsOut`: every request since the source was created (within the retention), and the last 24 hours.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SourceStatsOut {
    #[serde(flatten)]
    total: CountsOut,
    last24h: CountsOut,
}

fn option_error(err: OptionError) -> ApiError {
    ApiError::body(&[err.field.as_str()], err.message)
}

fn check_name_field(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::body(&["name"], "the source name must not be empty"));
    }
    Ok(())
}

fn check_uid_field(uid: &str) -> Result<(), ApiError> {
    check_uid(uid).map_err(|err| ApiError::body(&["uid"], format!("uid {err}")))
}

fn check_secret(provider: &Provider, secret: &str) -> Result<(), ApiError> {
    if secret.trim().is_empty() {
        return Err(ApiError::body(&["secret"], "the secret must not be empty: copy it from the provider's dashboard"));
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(ApiError::body(&["secret"], format!("the secret must be at most {MAX_SECRET_LEN} bytes")));
    }
    provider.check_secret(secret).map_err(|err| ApiError::body(&["secret"], err.0))
}

/// The most request headers a source forwards.
const MAX_FORWARD_HEADERS: usize = 10;

/// Checks `forwardHeaders`: at most 10 distinct header names, none of which hookrelay sets on a delivery.
fn check_forward_headers(names: Vec<String>) -> Result<Vec<String>, ApiError> {
    if names.len() > MAX_FORWARD_HEADERS {
        return Err(ApiError::body(
            &["forwardHeaders"],
            format!("{} headers; at most {MAX_FORWARD_HEADERS} can be forwarded", names.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (index, name) in names.iter().enumerate() {
        let field = |msg: String| ApiError::body(&["forwardHeaders", &index.to_string()], msg);
        check_header_name(name).map_err(field)?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(field(format!("header `{name}` is listed twice")));
        }
    }
    Ok(names)
}

fn check_rate_limit(rate_limit: Option<i64>) -> Result<Option<u32>, ApiError> {
    match rate_limit {
        None => Ok(None),
        Some(per_sec @ 1..=MAX_RATE_LIMIT) => Ok(u32::try_from(per_sec).ok()),
        Some(_) => Err(ApiError::body(
            &["rateLimit"],
            format!("must be between 1 and {MAX_RATE_LIMIT} requests per second, or null for no limit"),
        )),
    }
}

fn check_tolerance(tolerance_secs: i64) -> Result<i64, ApiError> {
    if (1..=MAX_TOLERANCE_SECS).contains(&tolerance_secs) {
        Ok(tolerance_secs)
    } else {
        Err(ApiError::body(&["toleranceSecs"], format!("must be between 1 and {MAX_TOLERANCE_SECS} seconds")))
    }
}

/// Finds a source by id or uid, or answers 404.
pub async fn find_source(state: &ApiState, id_or_uid: &str) -> Result<Source, ApiError> {
    state.store.inbound.get_source(id_or_uid).await.or_not_found("source", id_or_uid)
}

#[utoipa::path(
    get,
    path = "/api/v1/source/",
    operation_id = "v1.source.list",
    tag = "Source",
    params(PageParams),
    responses((status = 200, description = "A page of sources.", body = ListOut<SourceOut>), AdminErrors),
)]
async fn list(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ListOut<SourceOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    let page = state.store.inbound.list_sources(&request).await?;
    Ok(Json(ListOut::from_page(page, &request, |source| source.id.to_string(), |source| Ok(source.into()))?))
}

#[utoipa::path(
    post,
    path = "/api/v1/source/",
    operation_id = "v1.source.create",
    tag = "Source",
    request_body = SourceIn,
    responses((status = 201, description = "Created.", body = SourceOut), (status = 409, response = Conflict), AdminBodyErrors),
)]
async fn create(
    State(state): State<ApiState>,
    ApiJson(input): ApiJson<SourceIn>,
) -> Result<(StatusCode, Json<SourceOut>), ApiError> {
    check_name_field(&input.name)?;
    if let Some(uid) = &input.uid {
        check_uid_field(uid)?;
    }
    let provider = Provider::from_options(&input.provider, &input.options).map_err(option_error)?;
    check_secret(&provider, &input.secret)?;
    let tolerance_secs = check_tolerance(input.tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS))?;
    let rate_limit = check_rate_limit(input.rate_limit)?;
    let forward_headers = check_forward_headers(input.forward_headers.unwrap_or_default())?;
    let app = find_app(&state, &input.app_id).await.map_err(|_| {
        ApiError::body(&["appId"], format!("application `{}` not found; create it first", input.app_id))
    })?;
    let now = now_ms();
    let source = Source {
        id: SourceId::at(now),
        uid: input.uid,
        name: input.name,
        app_id: app.id,
        provider,
        secrets: SourceSecrets::new(input.secret),
        tolerance_secs,
        rate_limit,
        forward_headers,
        created_at: now,
        updated_at: now,
    };
    state.store.inbound.create_source(&source).await?;
    Ok((StatusCode::CREATED, Json(source.into())))
}

#[utoipa::path(
    get,
    path = "/api/v1/source/{source_id}/",
    operation_id = "v1.source.get",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid.")),
    responses((status = 200, description = "The source.", body = SourceOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(State(state): State<ApiState>, ApiPath(source_id): ApiPath<String>) -> Result<Json<SourceOut>, ApiError> {
    Ok(Json(find_source(&state, &source_id).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/source/{source_id}/",
    operation_id = "v1.source.patch",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid.")),
    request_body = SourcePatch,
    responses(
        (status = 200, description = "Updated.", body = SourceOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn patch(
    State(state): State<ApiState>,
    ApiPath(source_id): ApiPath<String>,
    ApiJson(input): ApiJson<SourcePatch>,
) -> Result<Json<SourceOut>, ApiError> {
    let mut source = find_source(&state, &source_id).await?;
    if let Some(name) = input.name.as_set() {
        check_name_field(name)?;
    }
    if let Some(uid) = input.uid.as_set() {
        check_uid_field(uid)?;
    }
    input.name.apply_required(&mut source.name, "name")?;
    input.uid.apply_to_option(&mut source.uid);

    // A new provider starts from its defaults; the same provider keeps its options unless the patch sets them.
    let mut provider_name = source.provider.name().to_owned();
    input.provider.apply_required(&mut provider_name, "provider")?;
    let mut options = if provider_name == source.provider.name() { source.provider.options() } else { Map::new() };
    for (key, value) in input.options {
        match value {
            Value::Null => options.remove(&key),
            value => options.insert(key, value),
        };
    }
    options.retain(|_, value| !value.is_null());
    source.provider = Provider::from_options(&provider_name, &options).map_err(option_error)?;

    let now = now_ms();
    match input.secret {
        Patch::Absent if input.secret_grace_secs.is_some() => {
            return Err(ApiError::body(&["secretGraceSecs"], "only applies together with a new `secret`"));
        }
        // A changed provider must still be able to use the secret it keeps.
        Patch::Absent => check_secret(&source.provider, &source.secrets.current)?,
        Patch::Null => return Err(ApiError::body(&["secret"], "a source always has a secret; send a new one")),
        Patch::Set(secret) => {
            check_secret(&source.provider, &secret)?;
            let grace_secs = input.secret_grace_secs.unwrap_or(DEFAULT_SECRET_GRACE_SECS);
            if !(0..=MAX_TOLERANCE_SECS).contains(&grace_secs) {
                let msg = format!("must be between 0 and {MAX_TOLERANCE_SECS} seconds");
                return Err(ApiError::body(&["secretGraceSecs"], msg));
            }
            source.secrets.rotate(secret, now, grace_secs * 1000);
        }
    }
    if let Some(app_ref) = input.app_id.as_set() {
        let app = find_app(&state, app_ref)
            .await
            .map_err(|_| ApiError::body(&["appId"], format!("application `{app_ref}` not found")))?;
        source.app_id = app.id;
    } else if matches!(input.app_id, Patch::Null) {
        return Err(ApiError::body(&["appId"], "a source always publishes to an application"));
    }
    let mut tolerance = Some(source.tolerance_secs);
    input.tolerance_secs.apply_to_option(&mut tolerance);
    source.tolerance_secs = check_tolerance(tolerance.unwrap_or(DEFAULT_TOLERANCE_SECS))?;
    let mut rate_limit = source.rate_limit.map(i64::from);
    input.rate_limit.apply_to_option(&mut rate_limit);
    source.rate_limit = check_rate_limit(rate_limit)?;
    match input.forward_headers {
        Patch::Absent => {}
        Patch::Null => source.forward_headers = Vec::new(),
        Patch::Set(names) => source.forward_headers = check_forward_headers(names)?,
    }
    source.updated_at = now;
    state.store.inbound.update_source(&source).await.or_not_found("source", &source_id)?;
    Ok(Json(source.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/source/{source_id}/",
    operation_id = "v1.source.delete",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid.")),
    responses((status = 204, description = "Deleted, with its event list."), (status = 404, response = NotFound), AdminErrors),
)]
async fn delete(State(state): State<ApiState>, ApiPath(source_id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let source = find_source(&state, &source_id).await?;
    state.store.inbound.delete_source(&source.id).await.or_not_found("source", &source_id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/source/{source_id}/event/",
    operation_id = "v1.source.list-events",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid."), PageParams, ("status" = Option<String>, Query, description = "`verified` or `duplicate`. Rejected requests are not listed one by one: see `GET /api/v1/source/{source_id}/rejection/`.")),
    responses(
        (status = 200, description = "A page of the verified requests the source received (new and duplicates), newest first.", body = ListOut<InboundEventOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_events(
    State(state): State<ApiState>,
    ApiPath(source_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<ListOut<InboundEventOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let status = match query.get("status").map(|name| (name, InboundStatus::from_name(name))) {
        None => None,
        Some((_, Some(InboundStatus::Rejected))) => {
            return Err(ApiError::query(
                "status",
                format!(
                    "rejected requests are counted per minute and reason, not listed one by one: see \
                     GET /api/v1/source/{source_id}/rejection/"
                ),
            ));
        }
        Some((_, Some(status))) => Some(status),
        Some((name, None)) => {
            return Err(ApiError::query("status", format!("must be `verified` or `duplicate`, not `{name}`")));
        }
    };
    let source = find_source(&state, &source_id).await?;
    let page = state.store.inbound.list_inbound_events(&source.id, status, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |event| event.id.to_string(), |event| Ok(event.into()))?))
}

#[utoipa::path(
    get,
    path = "/api/v1/source/{source_id}/rejection/",
    operation_id = "v1.source.list-rejections",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid."), PageParams),
    responses(
        (status = 200, description = "A page of the source's rejected requests, counted per minute and reason, newest minute first. \
            Iterators are `<minute>.<reason>`.", body = ListOut<InboundRejectionsOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list_rejections(
    State(state): State<ApiState>,
    ApiPath(source_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<ListOut<InboundRejectionsOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    if let Some(cursor) = &request.cursor {
        parse_rejection_cursor(cursor).map_err(|err| ApiError::query("iterator", err.to_string()))?;
    }
    let source = find_source(&state, &source_id).await?;
    // This process's latest counts are written first, so the list is up to date here (other processes write
    // theirs within seconds).
    state.ingest.rejections.flush().await;
    let page = state.store.inbound.list_inbound_rejections(&source.id, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, rejection_cursor, |rejections| Ok(rejections.into()))?))
}

#[utoipa::path(
    get,
    path = "/api/v1/source/{source_id}/stats/",
    operation_id = "v1.source.get-stats",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid.")),
    responses((status = 200, description = "Counts of received requests.", body = SourceStatsOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn stats(
    State(state): State<ApiState>,
    ApiPath(source_id): ApiPath<String>,
) -> Result<Json<SourceStatsOut>, ApiError> {
    let source = find_source(&state, &source_id).await?;
    // As for the rejection list: this process's counts of rejected requests are written first.
    state.ingest.rejections.flush().await;
    let total = state.store.inbound.inbound_counts(&source.id, None).await?;
    let day_ago = now_ms() - 24 * 3600 * 1000;
    let last24h = state.store.inbound.inbound_counts(&source.id, Some(day_ago)).await?;
    Ok(Json(SourceStatsOut { total: total.into(), last24h: last24h.into() }))
}

/// `SourceSignIn`: a body to sign the way the source's provider would.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignIn {
    /// The raw request body, exactly as it will be sent: the signature covers these bytes.
    #[schema(example = r#"{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}"#)]
    body: String,
    /// For providers that name the event type in a header (GitHub's `X-GitHub-Event`, e.g. `issues`; Shopify's
    /// `X-Shopify-Topic`, e.g. `orders/create`): its value. The other providers read the type from the body.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]([ -~]*[!-~])?$", example = "issues")]
    event_type: Option<String>,
    /// The delivery id put in the provider's id header (`svix-id`, `X-GitHub-Delivery`, `X-Shopify-Webhook-Id`,
    /// the `eventIdHeader` option) [default: a fresh one]. Stripe and Slack carry the id in the body.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]([ -~]*[!-~])?$")]
    event_id: Option<String>,
}

/// `SourceSignOut`: the headers the provider would send with the body, signed now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignOut {
    /// Header name to value, e.g. `{"Stripe-Signature": "t=…,v1=…"}`.
    headers: BTreeMap<String, String>,
}

/// Longest `eventType` or `eventId` accepted, as for event type names.
const MAX_SIGNED_HEADER_LEN: usize = 256;

/// A header value the caller gives: visible ASCII with inner spaces, at most 256 characters. Spaces around it
/// would be dropped on the way (HTTP trims header values), and `svix-id` is part of what is signed.
fn check_header_value(field: &str, value: &str) -> Result<(), ApiError> {
    let visible = value.bytes().all(|byte| byte == b' ' || byte.is_ascii_graphic());
    if value.is_empty() || value.trim() != value || !visible || value.len() > MAX_SIGNED_HEADER_LEN {
        return Err(ApiError::body(
            &[field],
            format!(
                "must be 1 to {MAX_SIGNED_HEADER_LEN} visible ASCII characters, spaces only inside: it is sent as a \
                 header"
            ),
        ));
    }
    Ok(())
}

/// POST: the headers the source's provider would send with `body`, signed with the source's current secret at
/// this server's clock, so that a test request to `/ingest/{source}` goes through the real verification. Admin
/// only (an application token gets 403): whoever may call it can make requests the source accepts.
#[utoipa::path(
    post,
    path = "/api/v1/source/{source_id}/sign/",
    operation_id = "v1.source.sign",
    tag = "Source",
    params(("source_id" = String, Path, description = "The source's id (`src_…`) or uid.")),
    request_body = SignIn,
    responses(
        (status = 200, description = "The signed headers (never the secret).", body = SignOut),
        (status = 404, response = NotFound),
        AdminBodyErrors,
    ),
)]
async fn sign(
    State(state): State<ApiState>,
    ApiPath(source_id): ApiPath<String>,
    ApiJson(input): ApiJson<SignIn>,
) -> Result<Json<SignOut>, ApiError> {
    let source = find_source(&state, &source_id).await?;
    if input.body.len() > state.ingest_max_body_bytes {
        return Err(ApiError::body(
            &["body"],
            format!(
                "{} bytes is over this server's ingest limit of {} bytes (HOOKRELAY_INGEST_MAX_BODY_BYTES), so \
                 /ingest would refuse it",
                input.body.len(),
                state.ingest_max_body_bytes
            ),
        ));
    }
    let event_type_header = match (&input.event_type, source.provider.event_type_header()) {
        (None, _) => None,
        (Some(event_type), Some(header)) => {
            check_header_value("eventType", event_type)?;
            Some((header.to_owned(), event_type.clone()))
        }
        (Some(_), None) => {
            return Err(ApiError::body(
                &["eventType"],
                format!(
                    "provider `{}` reads the event type from the body, not from a header: put it in the body",
                    source.provider.name()
                ),
            ));
        }
    };
    let now = now_ms();
    let event_id = match input.event_id {
        Some(event_id) => {
            check_header_value("eventId", &event_id)?;
            event_id
        }
        None => MessageId::at(now).into_string(),
    };
    let mut headers: BTreeMap<String, String> = source
        .provider
        .sign(input.body.as_bytes(), &source.secrets.current, now.div_euclid(1000), &event_id)
        .into_iter()
        .collect();
    headers.extend(event_type_header);
    Ok(Json(SignOut { headers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_header_values_are_visible_ascii_without_outer_spaces() {
        let longest = "x".repeat(MAX_SIGNED_HEADER_LEN);
        for good in ["push", "orders/create", "a b", "msg_2mBwDgnWeUw6HbqoOsJ8lxOMBvx", &longest] {
            assert!(check_header_value("eventType", good).is_ok(), "{good}");
        }
        let too_long = "x".repeat(MAX_SIGNED_HEADER_LEN + 1);
        for bad in ["", " ", " push", "push ", "pu\nsh", "pu\tsh", "é", &too_long] {
            assert!(check_header_value("eventType", bad).is_err(), "{bad:?}");
        }
    }
}
