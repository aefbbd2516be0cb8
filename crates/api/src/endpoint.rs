//! Endpoints (`/api/v1/app/{app_id}/endpoint/…`): the URLs an application's messages are delivered to, with
//! their signing secret, custom headers and delivery counts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use hookrelay_core::AppId;
use hookrelay_core::EndpointId;
use hookrelay_core::model::{Application, DeliveryOrder, Endpoint, Metadata, SecretSet, SignatureScheme};
use hookrelay_core::operational::{DisableTrigger, EndpointRef, OperationalEvent};
use hookrelay_core::retry::{EndpointRetry, RetrySchedule, check_endpoint_schedule};
use hookrelay_core::signature_headers::{
    HmacAlgorithm, MAX_SIGNATURE_HEADERS, SignatureEncoding, SignatureHeader, StandardHeaders, check_prefix,
};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use hookrelay_core::validate::{check_name, check_uid};
use hookrelay_store::{Order, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::{find_app, uid_for_upsert};
use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, OptionalJson, QueryParams};
use crate::idempotency::CarriesSecret;
use crate::openapi::{
    AdminBodyErrors, AdminErrors, AppPath, Conflict, EndpointPath, NotFound, NotReplayable, PageParams,
};
use crate::pagination::{ListOut, page_request};
use crate::patch::Patch;
use crate::time::Rfc3339;
use crate::validate::{
    check_channels, check_description, check_endpoint_count, check_filter_type_count, check_header_count,
    check_header_name, check_header_set, check_header_value, check_https, check_metadata, check_rate, check_url,
    check_url_length,
};
use crate::{ApiState, Routes};

/// How long a rotated-out secret keeps signing deliveries unless the request says otherwise (Svix: 24 h).
const DEFAULT_GRACE_SECS: u64 = 24 * 60 * 60;
/// Longest grace period a rotation may ask for (Svix: 7 days).
const MAX_GRACE_SECS: u64 = 7 * 24 * 60 * 60;

pub fn routes() -> axum::Router<ApiState> {
    const ONE: &str = "/api/v1/app/{app_id}/endpoint/{endpoint_id}";
    axum::Router::new()
        .route_both("/api/v1/app/{app_id}/endpoint", get(list).post(create))
        .route_both(ONE, get(read).put(upsert).patch(patch).delete(delete))
        .route_both(&format!("{ONE}/secret"), get(read_secret))
        .route_both(&format!("{ONE}/secret/rotate"), post(rotate_secret))
        .route_both(&format!("{ONE}/headers"), get(read_headers).put(replace_headers).patch(patch_headers))
        .route_both(&format!("{ONE}/stats"), get(stats))
}

/// `EndpointIn` (POST) and `EndpointUpsertIn` (PUT). Older clients send `filterTypes` and `rateLimit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EndpointIn {
    /// Where deliveries go: an `http` or `https` URL, at most 8,192 bytes; or `listen://<name>`, delivered
    /// through the connection a `hookrelay listen` holds open.
    #[schema(example = "https://example.com/webhook")]
    url: String,
    /// At most 8,192 bytes.
    #[serde(default)]
    description: Option<String>,
    /// Only these event types are delivered (`filterTypes` is accepted too); absent means all. 1 to 500.
    #[serde(default, alias = "filterTypes")]
    #[schema(min_items = 1, max_items = 500)]
    event_types: Option<Vec<String>>,
    /// Only messages on one of these channels (1–10) are delivered; absent means all.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10)]
    channels: Option<Vec<String>>,
    /// Deliveries per second (`rateLimit` is accepted too).
    #[serde(default, alias = "rateLimit")]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    throttle_rate: Option<u32>,
    #[serde(default)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]+$", max_length = 256)]
    uid: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    /// The signing secret: `whsec_` + base64 of 24–64 bytes (the bare base64 is read the same way, as Svix
    /// does), or a plain secret of 16–256 printable ASCII characters without spaces, whose UTF-8 bytes are the
    /// HMAC key of every scheme (a hookrelay extension). Generated when absent. Or an ed25519 key, `whsk_` +
    /// base64 of the 64-byte seed and public key (Svix's form) or of the 32-byte seed: deliveries then carry
    /// `v1a,` signatures that receivers verify with the public key; it signs no `hmac-hex` scheme and no
    /// `signatureHeaders`.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Metadata>,
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<i32>,
    /// Sent with every delivery: at most 50, names up to 256 bytes, values up to 4,096 bytes, 16 KiB together.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// hookrelay extension: extra signature schemes (`["standard", "hmac-hex"]`).
    #[serde(default)]
    signature_schemes: Option<Vec<String>>,
    /// hookrelay extension: `"fifo"` delivers one at a time in publish order; `"unordered"` (default) does not.
    #[serde(default)]
    ordering: Option<String>,
    /// hookrelay extension: up to 4 headers of the endpoint's own, each `prefix` + the hex or base64 HMAC of the
    /// exact bytes delivered, keyed with the plain secret (or the whole `whsec_…` string).
    #[serde(default)]
    #[schema(max_items = 4)]
    signature_headers: Option<Vec<SignatureHeaderWire>>,
    /// hookrelay extension: which Standard Webhooks header families are sent: `both` (default), `webhook`
    /// (`webhook-*`), `svix` (`svix-*`) or `none`.
    #[serde(default)]
    standard_headers: Option<String>,
    /// hookrelay extension: this endpoint's retry schedule, the seconds to wait before each retry (`[0, 300, 1800]`:
    /// at once, then after 5 min, then after 30 min; `[]`: never retry), as `HOOKRELAY_RETRY_SCHEDULE` for the
    /// server. At most 50 waits of at most 604,800 s (7 days). Absent or `null`: the server's schedule.
    #[serde(default)]
    #[schema(max_items = 50)]
    retry_schedule: Option<Vec<u64>>,
    /// hookrelay extension: whether a 4xx other than 408, 409, 425 and 429 is retried (`false`: it ends the
    /// delivery). Absent or `null`: the server's rule (`HOOKRELAY_RETRY_CLIENT_ERRORS`).
    #[serde(default)]
    retry_client_errors: Option<bool>,
}

/// `EndpointPatch`: absent keeps, `null` clears (`eventTypes: null` means all event types again).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EndpointPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    url: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Patch<String>,
    #[serde(default, alias = "filterTypes")]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    channels: Patch<Vec<String>>,
    #[serde(default, alias = "rateLimit")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 4294967295_u64, format = Int64)]
    throttle_rate: Patch<u32>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    uid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    disabled: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Patch<Metadata>,
    #[serde(default)]
    #[schema(value_type = Option<i32>)]
    version: Patch<i32>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    signature_schemes: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    ordering: Patch<String>,
    /// `null`: no signature headers of its own.
    #[serde(default)]
    #[schema(value_type = Option<Vec<SignatureHeaderWire>>, max_items = 4)]
    signature_headers: Patch<Vec<SignatureHeaderWire>>,
    /// `null`: `both` again.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    standard_headers: Patch<String>,
    /// `null`: the server's schedule again.
    #[serde(default)]
    #[schema(value_type = Option<Vec<u64>>, max_items = 50)]
    retry_schedule: Patch<Vec<u64>>,
    /// `null`: the server's rule again.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    retry_client_errors: Patch<bool>,
    /// Sent by the JavaScript SDK 1.x: accepted when it is the current secret; another one is a 422 (rotate it
    /// with `secret/rotate`, so the old one keeps signing for a while).
    #[serde(default)]
    secret: Option<String>,
}

/// `EndpointOut`, with both field names of the event filter and of the rate. The secret is never included.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    id: String,
    uid: Option<String>,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    filter_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    throttle_rate: Option<u32>,
    rate_limit: Option<u32>,
    disabled: bool,
    #[schema(value_type = BTreeMap<String, String>)]
    metadata: Metadata,
    version: i32,
    /// hookrelay extension; the Svix SDKs ignore it.
    signature_schemes: Vec<&'static str>,
    /// hookrelay extension: `fifo` or `unordered`.
    ordering: &'static str,
    /// hookrelay extension: the endpoint's own signature headers.
    signature_headers: Vec<SignatureHeaderWire>,
    /// hookrelay extension: `both`, `webhook`, `svix` or `none`.
    standard_headers: &'static str,
    /// hookrelay extension: the endpoint's own retry schedule in seconds, `null` when it uses the server's.
    retry_schedule: Option<Vec<u64>>,
    /// hookrelay extension: the endpoint's own rule for retrying 4xx answers, `null` when it uses the server's.
    retry_client_errors: Option<bool>,
    /// hookrelay extension, on a single FIFO endpoint: the delivery that holds back the others after failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<BlockedBy>,
    created_at: Rfc3339,
    updated_at: Rfc3339,
}

impl From<Endpoint> for EndpointOut {
    fn from(ep: Endpoint) -> Self {
        Self {
            id: ep.id.into_string(),
            uid: ep.uid,
            url: ep.url,
            description: ep.description,
            event_types: ep.filter_types.clone(),
            filter_types: ep.filter_types,
            channels: ep.channels,
            throttle_rate: ep.rate_limit,
            rate_limit: ep.rate_limit,
            disabled: ep.disabled,
            metadata: ep.metadata,
            version: ep.version,
            signature_schemes: ep.signature_schemes.iter().map(|scheme| scheme.name()).collect(),
            ordering: ep.ordering.name(),
            signature_headers: ep.signature_headers.iter().map(SignatureHeaderWire::from).collect(),
            standard_headers: ep.standard_headers.name(),
            retry_schedule: ep.retry.schedule.as_ref().map(RetrySchedule::secs),
            retry_client_errors: ep.retry.client_errors,
            blocked_by: None,
            created_at: Rfc3339(ep.created_at),
            updated_at: Rfc3339(ep.updated_at),
        }
    }
}

/// `EndpointSecretRotateIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EndpointSecretRotateIn)]
struct RotateIn {
    /// The new secret, in any form `secret` takes on create (`whsec_…`, a plain secret, or a `whsk_…` ed25519
    /// key); generated when absent.
    #[serde(default)]
    key: Option<String>,
    /// How long the old secret keeps signing too (default a day, at most 7 days).
    #[serde(default)]
    #[schema(maximum = 604800)]
    grace_period_seconds: Option<u64>,
}

/// `EndpointSecretOut`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EndpointSecretOut)]
struct SecretOut {
    /// `whsec_` and the base64 key, or the plain secret; for an ed25519 key, its public key (`whpk_` and the
    /// base64 of its 32 bytes), which receivers verify `v1a` signatures with.
    key: String,
}

/// `EndpointHeadersIn`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EndpointHeadersIn)]
struct HeadersIn {
    /// At most 50, names up to 256 bytes, values up to 4,096 bytes, 16 KiB together.
    headers: BTreeMap<String, String>,
}

/// `EndpointHeadersPatchIn`: a `null` value, or a name in `deleteHeaders`, removes that header.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EndpointHeadersPatchIn)]
struct HeadersPatchIn {
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    delete_headers: Vec<String>,
}

/// `EndpointHeadersOut`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EndpointHeadersOut)]
struct HeadersOut {
    headers: BTreeMap<String, String>,
    /// Names whose values are redacted; hookrelay shows every value to the admin token, so none.
    sensitive: Vec<String>,
}

/// `EndpointStats`. `canceled` is required by the current SDKs; hookrelay never cancels deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EndpointStats)]
struct StatsOut {
    success: u64,
    pending: u64,
    sending: u64,
    fail: u64,
    canceled: u64,
}

/// Finds an endpoint of the application by id or uid, or answers 404.
pub async fn find_endpoint(state: &ApiState, app_id: &AppId, id_or_uid: &str) -> Result<Endpoint, ApiError> {
    state.store.catalog.get_endpoint(app_id, id_or_uid).await.or_not_found("endpoint", id_or_uid)
}

/// Checks the event-type filter: at least one name when given, each well-formed and known to the store.
/// Returns the names without duplicates, in the order given.
async fn check_event_types(state: &ApiState, names: Vec<String>) -> Result<Vec<String>, ApiError> {
    let field = |msg: String| ApiError::body(&["eventTypes"], msg);
    if names.is_empty() {
        return Err(field("give at least one event type, or leave the field out to receive every event type".into()));
    }
    // Before the de-duplication below, whose cost grows with the square of the count.
    check_filter_type_count(names.len()).map_err(field)?;
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        check_name(&name).map_err(|err| field(format!("event type `{name}` {err}")))?;
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    let unknown = state.store.catalog.unknown_event_types(&unique).await?;
    if !unknown.is_empty() {
        return Err(field(format!(
            "unknown event type(s): {}; create them first with POST /api/v1/event-type",
            unknown.join(", ")
        )));
    }
    Ok(unique)
}

fn check_fields(
    state: &ApiState,
    url: Option<&String>,
    channels: Option<&Vec<String>>,
    rate: Option<&u32>,
    uid: Option<&String>,
    metadata: Option<&Metadata>,
    version: Option<&i32>,
) -> Result<(), ApiError> {
    if let Some(url) = url {
        check_url_length(url).map_err(|msg| ApiError::body(&["url"], msg))?;
        check_url(url, &state.address_policy).map_err(|msg| ApiError::body(&["url"], msg))?;
        if state.https_only {
            check_https(url).map_err(|msg| ApiError::body(&["url"], msg))?;
        }
    }
    if let Some(channels) = channels {
        check_channels(channels).map_err(|msg| ApiError::body(&["channels"], msg))?;
    }
    if let Some(rate) = rate {
        check_rate(*rate).map_err(|msg| ApiError::body(&["throttleRate"], msg))?;
    }
    if let Some(uid) = uid {
        check_uid(uid).map_err(|err| ApiError::body(&["uid"], format!("uid {err}")))?;
    }
    if let Some(metadata) = metadata {
        check_metadata(metadata).map_err(|msg| ApiError::body(&["metadata"], msg))?;
    }
    if let Some(version) = version
        && *version < 1
    {
        return Err(ApiError::body(&["version"], "version must be at least 1"));
    }
    Ok(())
}

/// The failing head of a FIFO endpoint's queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BlockedBy {
    msg_id: String,
    attempts: u32,
    next_attempt: Option<Rfc3339>,
}

fn parse_ordering(name: Option<&str>) -> Result<DeliveryOrder, ApiError> {
    match name {
        None => Ok(DeliveryOrder::Unordered),
        Some(name) => DeliveryOrder::from_name(name).ok_or_else(|| {
            ApiError::body(&["ordering"], format!("unknown ordering `{name}`; use `fifo` or `unordered`"))
        }),
    }
}

/// `SignatureHeader`: one header of an endpoint's own signature scheme.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SignatureHeader)]
struct SignatureHeaderWire {
    /// The header's name, e.g. `X-Corp-Astro-Signature`; not one hookrelay sets.
    header: String,
    /// `sha1`, `sha256` or `sha512`.
    algorithm: String,
    /// `hex` or `base64`.
    encoding: String,
    /// Written before the encoded HMAC, e.g. `sha256=`; at most 64 printable ASCII characters.
    #[serde(default)]
    prefix: String,
}

impl From<&SignatureHeader> for SignatureHeaderWire {
    fn from(header: &SignatureHeader) -> Self {
        Self {
            header: header.header.clone(),
            algorithm: header.algorithm.name().to_owned(),
            encoding: header.encoding.name().to_owned(),
            prefix: header.prefix.clone(),
        }
    }
}

/// Checks `signatureHeaders`: at most 4, distinct names hookrelay does not set, known algorithms and encodings.
fn signature_headers(entries: Vec<SignatureHeaderWire>) -> Result<Vec<SignatureHeader>, ApiError> {
    if entries.len() > MAX_SIGNATURE_HEADERS {
        return Err(ApiError::body(
            &["signatureHeaders"],
            format!("{} signature headers; at most {MAX_SIGNATURE_HEADERS} are allowed", entries.len()),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut headers = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let index = index.to_string();
        let field = |name: &str, msg: String| ApiError::body(&["signatureHeaders", &index, name], msg);
        check_header_name(&entry.header).map_err(|msg| field("header", msg))?;
        if !names.insert(entry.header.to_ascii_lowercase()) {
            return Err(field("header", format!("header `{}` is listed twice", entry.header)));
        }
        let algorithm = HmacAlgorithm::from_name(&entry.algorithm).ok_or_else(|| {
            field("algorithm", format!("algorithm must be sha1, sha256 or sha512, not `{}`", entry.algorithm))
        })?;
        let encoding = SignatureEncoding::from_name(&entry.encoding)
            .ok_or_else(|| field("encoding", format!("encoding must be hex or base64, not `{}`", entry.encoding)))?;
        check_prefix(&entry.prefix).map_err(|msg| field("prefix", msg))?;
        headers.push(SignatureHeader { header: entry.header, algorithm, encoding, prefix: entry.prefix });
    }
    Ok(headers)
}

/// Reads `standardHeaders`; absent means `both`.
fn standard_headers(name: Option<&str>) -> Result<StandardHeaders, ApiError> {
    let Some(name) = name else { return Ok(StandardHeaders::Both) };
    StandardHeaders::from_name(name).ok_or_else(|| {
        ApiError::body(
            &["standardHeaders"],
            format!("standardHeaders must be both, webhook, svix or none, not `{name}`"),
        )
    })
}

/// Checks `retrySchedule` (at most 50 waits of at most 7 days).
fn retry_schedule(secs: &[u64]) -> Result<RetrySchedule, ApiError> {
    check_endpoint_schedule(secs).map_err(|msg| ApiError::body(&["retrySchedule"], msg))
}

/// An endpoint's retry rules from `retrySchedule` and `retryClientErrors`; `None` keeps the server's.
fn endpoint_retry(schedule: Option<&[u64]>, client_errors: Option<bool>) -> Result<EndpointRetry, ApiError> {
    Ok(EndpointRetry { schedule: schedule.map(retry_schedule).transpose()?, client_errors })
}

/// Parses `signatureSchemes`: known names only, and always `standard` (the Standard Webhooks headers are
/// part of every delivery; other schemes are added to them). Absent means `["standard"]`.
fn parse_signature_schemes(names: Option<&[String]>) -> Result<Vec<SignatureScheme>, ApiError> {
    let Some(names) = names else {
        return Ok(vec![SignatureScheme::Standard]);
    };
    let field = |msg: String| ApiError::body(&["signatureSchemes"], msg);
    let mut schemes = names
        .iter()
        .map(|name| {
            SignatureScheme::from_name(name)
                .ok_or_else(|| field(format!("unknown signature scheme `{name}`; use `standard` and `hmac-hex`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !schemes.contains(&SignatureScheme::Standard) {
        return Err(field(
            "signatureSchemes must include `standard`: every delivery carries the Standard \
             Webhooks headers, other schemes are added to them"
                .into(),
        ));
    }
    schemes.sort();
    schemes.dedup();
    Ok(schemes)
}

/// Parses a user-supplied secret: `whsec_<base64>`; a `whsk_<base64>` ed25519 key; the bare base64 key, which
/// Svix reads as `whsec_`; or else a plain secret (a hookrelay extension).
fn parse_secret(text: &str, field: &str) -> Result<EndpointSecret, ApiError> {
    let parsed = if text.starts_with("whsec_") || text.starts_with("whsk_") {
        EndpointSecret::parse(text)
    } else {
        EndpointSecret::parse(&format!("whsec_{text}")).or_else(|_| EndpointSecret::plain(text))
    };
    parsed.map_err(|err| ApiError::body(&[field], err))
}

/// An ed25519 key signs the Standard Webhooks headers only: the `hmac-hex` scheme (`X-Webhook-Signature`) and
/// the endpoint's own `signatureHeaders` are HMACs keyed with the secret, which its receivers, holding only the
/// public key, could not check. 422 when `secret` is an ed25519 key and either is set, naming that setting, or
/// `key_field` when the request is what brings the key in (a rotation).
fn check_hmac_settings(
    secret: &EndpointSecret,
    schemes: &[SignatureScheme],
    headers: &[SignatureHeader],
    key_field: Option<&str>,
) -> Result<(), ApiError> {
    if !secret.is_ed25519() {
        return Ok(());
    }
    let (setting, what) = if schemes.contains(&SignatureScheme::HmacHex) {
        ("signatureSchemes", "the `hmac-hex` scheme (X-Webhook-Signature)")
    } else if !headers.is_empty() {
        ("signatureHeaders", "signature headers of its own")
    } else {
        return Ok(());
    };
    let why = "an HMAC keyed with the secret, which receivers of an ed25519 (`whsk_`) key cannot check: they hold \
               only its public key";
    Err(match key_field {
        Some(field) => ApiError::body(
            &[field],
            format!(
                "this endpoint has {what} ({setting}), {why}; remove {setting} first, or rotate to a `whsec_` secret"
            ),
        ),
        None => {
            ApiError::body(&[setting], format!("{what} is {why}; leave {setting} out, or sign with a `whsec_` secret"))
        }
    })
}

/// Checks the custom headers a request sets: not too many, allowed names (not ones hookrelay sets) and
/// header-safe values of bounded length. The set they make is checked by [`header_set`] or [`merge_headers`].
fn check_headers<'a>(headers: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<(), ApiError> {
    let headers: Vec<_> = headers.into_iter().collect();
    // First, so an oversized request costs no per-header work (merging is quadratic in the count).
    check_header_count(headers.len()).map_err(|msg| ApiError::body(&["headers"], msg))?;
    for (name, value) in headers {
        check_header_name(name).map_err(|msg| ApiError::body(&["headers", name], msg))?;
        check_header_value(name, value).map_err(|msg| ApiError::body(&["headers", name], msg))?;
    }
    Ok(())
}

/// The headers an endpoint keeps when a request replaces them all: checked one by one, merged by
/// case-insensitive name, and the resulting set checked against the count and size limits.
fn header_set(input: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    check_headers(&input)?;
    let mut headers = BTreeMap::new();
    for (name, value) in input {
        set_header(&mut headers, name, value);
    }
    check_header_set(&headers).map_err(|msg| ApiError::body(&["headers"], msg))?;
    Ok(headers)
}

/// Sets a header, replacing any existing one whose name differs only in case (HTTP names are case-insensitive).
fn set_header(headers: &mut BTreeMap<String, String>, name: String, value: String) {
    remove_header(headers, &name);
    headers.insert(name, value);
}

fn remove_header(headers: &mut BTreeMap<String, String>, name: &str) {
    headers.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
}

/// Applies a headers PATCH: `null` values and `deleteHeaders` remove, other values set.
fn merge_headers(
    mut headers: BTreeMap<String, String>,
    patch: HeadersPatchIn,
) -> Result<BTreeMap<String, String>, ApiError> {
    check_headers(patch.headers.iter().filter_map(|(name, value)| value.as_ref().map(|v| (name, v))))?;
    for name in &patch.delete_headers {
        remove_header(&mut headers, name);
    }
    for (name, value) in patch.headers {
        match value {
            Some(value) => set_header(&mut headers, name, value),
            None => remove_header(&mut headers, &name),
        }
    }
    check_header_set(&headers).map_err(|msg| ApiError::body(&["headers"], msg))?;
    Ok(headers)
}

impl EndpointIn {
    async fn validate(&mut self, state: &ApiState) -> Result<(), ApiError> {
        check_fields(
            state,
            Some(&self.url),
            self.channels.as_ref(),
            self.throttle_rate.as_ref(),
            self.uid.as_ref(),
            self.metadata.as_ref(),
            self.version.as_ref(),
        )?;
        if let Some(description) = &self.description {
            check_description(description).map_err(|msg| ApiError::body(&["description"], msg))?;
        }
        if let Some(headers) = &self.headers {
            check_headers(headers)?;
        }
        if let Some(names) = self.event_types.take() {
            self.event_types = Some(check_event_types(state, names).await?);
        }
        Ok(())
    }

    /// A new endpoint of `app_id` from validated input; generates a secret when none was given.
    fn into_endpoint(self, app_id: AppId) -> Result<Endpoint, ApiError> {
        let secret = match &self.secret {
            Some(text) => parse_secret(text, "secret")?,
            None => EndpointSecret::generate(),
        };
        let now = now_ms();
        let headers = header_set(self.headers.unwrap_or_default())?;
        let signature_schemes = parse_signature_schemes(self.signature_schemes.as_deref())?;
        let ordering = parse_ordering(self.ordering.as_deref())?;
        let retry = endpoint_retry(self.retry_schedule.as_deref(), self.retry_client_errors)?;
        let signature_headers = signature_headers(self.signature_headers.unwrap_or_default())?;
        let standard_headers = standard_headers(self.standard_headers.as_deref())?;
        check_hmac_settings(&secret, &signature_schemes, &signature_headers, None)?;
        Ok(Endpoint {
            id: EndpointId::at(now),
            app_id,
            uid: self.uid,
            url: self.url,
            description: self.description.unwrap_or_default(),
            filter_types: self.event_types,
            channels: self.channels,
            rate_limit: self.throttle_rate,
            disabled: self.disabled.unwrap_or(false),
            metadata: self.metadata.unwrap_or_default(),
            version: self.version.unwrap_or(1),
            headers,
            secrets: SecretSet::new(secret),
            signature_schemes,
            ordering,
            signature_headers,
            standard_headers,
            retry,
            transformation: None,
            created_at: now,
            updated_at: now,
        })
    }
}

/// 422 when the application already has as many endpoints as the server allows. Counted before the insert,
/// not in the same transaction: a few creates racing each other may pass the limit by as many as race, which
/// still bounds what one application holds (and needs no lock on the application).
async fn check_room_for_endpoint(state: &ApiState, app_id: &AppId) -> Result<(), ApiError> {
    let existing = state.store.catalog.count_endpoints(app_id).await?;
    check_endpoint_count(existing, state.max_endpoints_per_app).map_err(|msg| ApiError::body(&[], msg))
}

fn uid_conflict(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict(_) => {
            ApiError::Conflict("another endpoint of this application already has this uid".to_owned())
        }
        other => other.into(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/",
    operation_id = "v1.endpoint.list",
    tag = "Endpoint",
    params(AppPath, PageParams),
    responses(
        (status = 200, description = "A page of the application's endpoints.", body = ListOut<EndpointOut>),
        (status = 404, response = NotFound),
        AdminErrors,
    ),
)]
async fn list(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<ListOut<EndpointOut>>, ApiError> {
    let request = page_request(&query, Order::Ascending)?;
    let app = find_app(&state, &app_id).await?;
    let page = state.store.catalog.list_endpoints(&app.id, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |ep| ep.id.to_string(), |ep| Ok(ep.into()))?))
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/",
    operation_id = "v1.endpoint.create",
    tag = "Endpoint",
    params(AppPath),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created.", body = EndpointOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn create(
    State(state): State<ApiState>,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(mut input): ApiJson<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = find_app(&state, &app_id).await?;
    input.validate(&state).await?;
    check_room_for_endpoint(&state, &app.id).await?;
    let endpoint = input.into_endpoint(app.id.clone())?;
    state.store.catalog.create_endpoint(&endpoint).await.map_err(uid_conflict)?;
    state.events.emit(OperationalEvent::EndpointCreated(endpoint_ref(&app, &endpoint)));
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

/// Who an operational event about `endpoint` is about.
fn endpoint_ref(app: &Application, endpoint: &Endpoint) -> EndpointRef {
    EndpointRef {
        app_id: app.id.to_string(),
        app_uid: app.uid.clone(),
        endpoint_id: endpoint.id.to_string(),
        endpoint_uid: endpoint.uid.clone(),
    }
}

/// After a user changed an endpoint: the dispatcher gives it a fresh chance, and the operator hears of it
/// (`endpoint.updated`, and `endpoint.disabled` when this update is what disabled it).
fn emit_updated(state: &ApiState, app: &Application, was_disabled: bool, endpoint: &Endpoint) {
    (state.on_endpoint_changed)(&endpoint.id);
    let who = endpoint_ref(app, endpoint);
    if endpoint.disabled && !was_disabled {
        state.events.emit(OperationalEvent::EndpointDisabled {
            endpoint: who.clone(),
            trigger: DisableTrigger::Manual,
            fail_since: None,
        });
    }
    state.events.emit(OperationalEvent::EndpointUpdated(who));
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/",
    operation_id = "v1.endpoint.get",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint.", body = EndpointOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<Json<EndpointOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let endpoint = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let blocked_by = match endpoint.ordering {
        DeliveryOrder::Fifo => {
            state.store.messages.oldest_open_delivery(&endpoint.id).await?.filter(|head| head.attempts > 0)
        }
        DeliveryOrder::Unordered => None,
    };
    let mut out = EndpointOut::from(endpoint);
    out.blocked_by = blocked_by.map(|head| BlockedBy {
        msg_id: head.msg_id.into_string(),
        attempts: head.attempts,
        next_attempt: head.next_attempt_at.map(Rfc3339),
    });
    Ok(Json(out))
}

/// PUT: replaces the endpoint's settings (its secret stays; rotate it with `secret/rotate`), or creates the
/// endpoint (201) when the path names an unknown uid.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/",
    operation_id = "v1.endpoint.update",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = EndpointIn,
    responses(
        (status = 200, description = "Replaced.", body = EndpointOut),
        (status = 201, description = "Created with the path's uid.", body = EndpointOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn upsert(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(mut input): ApiJson<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let app = find_app(&state, &app_id).await?;
    input.validate(&state).await?;
    match state.store.catalog.get_endpoint(&app.id, &endpoint_id).await {
        Ok(mut ep) => {
            let was_disabled = ep.disabled;
            if let Some(text) = &input.secret
                && parse_secret(text, "secret")? != ep.secrets.current
            {
                return Err(ApiError::body(
                    &["secret"],
                    "PUT does not change the secret; use POST .../secret/rotate (the old one then stays valid for 24 h)",
                ));
            }
            let addressed_by_uid = ep.uid.as_deref() == Some(endpoint_id.as_str());
            ep.uid = input.uid.or(if addressed_by_uid { ep.uid } else { None });
            ep.url = input.url;
            ep.description = input.description.unwrap_or_default();
            ep.filter_types = input.event_types;
            ep.channels = input.channels;
            ep.rate_limit = input.throttle_rate;
            ep.disabled = input.disabled.unwrap_or(false);
            ep.metadata = input.metadata.unwrap_or_default();
            ep.version = input.version.unwrap_or(1);
            ep.signature_schemes = parse_signature_schemes(input.signature_schemes.as_deref())?;
            ep.ordering = parse_ordering(input.ordering.as_deref())?;
            ep.retry = endpoint_retry(input.retry_schedule.as_deref(), input.retry_client_errors)?;
            ep.signature_headers = signature_headers(input.signature_headers.unwrap_or_default())?;
            ep.standard_headers = standard_headers(input.standard_headers.as_deref())?;
            check_hmac_settings(&ep.secrets.current, &ep.signature_schemes, &ep.signature_headers, None)?;
            if let Some(headers) = input.headers {
                ep.headers = header_set(headers)?;
            }
            ep.updated_at = now_ms();
            state.store.catalog.update_endpoint(&ep).await.map_err(uid_conflict)?;
            emit_updated(&state, &app, was_disabled, &ep);
            Ok((StatusCode::OK, Json(ep.into())))
        }
        Err(StoreError::NotFound) => {
            let path_uid = uid_for_upsert("endpoint", &endpoint_id, "endpoint_id")?;
            check_room_for_endpoint(&state, &app.id).await?;
            let mut endpoint = input.into_endpoint(app.id.clone())?;
            endpoint.uid = endpoint.uid.or(Some(path_uid));
            state.store.catalog.create_endpoint(&endpoint).await.map_err(uid_conflict)?;
            state.events.emit(OperationalEvent::EndpointCreated(endpoint_ref(&app, &endpoint)));
            Ok((StatusCode::CREATED, Json(endpoint.into())))
        }
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/",
    operation_id = "v1.endpoint.patch",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "Updated.", body = EndpointOut),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        AdminBodyErrors,
    ),
)]
async fn patch(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let mut ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let was_disabled = ep.disabled;
    if let Some(text) = &input.secret
        && parse_secret(text, "secret")? != ep.secrets.current
    {
        return Err(ApiError::body(
            &["secret"],
            "PATCH does not change the secret; use POST .../secret/rotate (the old one then stays valid for 24 h)",
        ));
    }
    if let Some(description) = input.description.as_set() {
        check_description(description).map_err(|msg| ApiError::body(&["description"], msg))?;
    }
    check_fields(
        &state,
        input.url.as_set(),
        input.channels.as_set(),
        input.throttle_rate.as_set(),
        input.uid.as_set(),
        input.metadata.as_set(),
        input.version.as_set(),
    )?;
    let event_types = match input.event_types {
        Patch::Set(names) => Patch::Set(check_event_types(&state, names).await?),
        other => other,
    };
    input.url.apply_required(&mut ep.url, "url")?;
    input.description.apply_or(&mut ep.description, String::new());
    event_types.apply_to_option(&mut ep.filter_types);
    input.channels.apply_to_option(&mut ep.channels);
    input.throttle_rate.apply_to_option(&mut ep.rate_limit);
    input.uid.apply_to_option(&mut ep.uid);
    input.disabled.apply_or(&mut ep.disabled, false);
    input.metadata.apply_or(&mut ep.metadata, Metadata::new());
    input.version.apply_or(&mut ep.version, 1);
    match input.signature_schemes {
        Patch::Absent => {}
        Patch::Null => ep.signature_schemes = parse_signature_schemes(None)?,
        Patch::Set(names) => ep.signature_schemes = parse_signature_schemes(Some(&names))?,
    }
    match input.ordering {
        Patch::Absent => {}
        Patch::Null => ep.ordering = DeliveryOrder::Unordered,
        Patch::Set(name) => ep.ordering = parse_ordering(Some(&name))?,
    }
    match input.retry_schedule {
        Patch::Absent => {}
        Patch::Null => ep.retry.schedule = None,
        Patch::Set(secs) => ep.retry.schedule = Some(retry_schedule(&secs)?),
    }
    input.retry_client_errors.apply_to_option(&mut ep.retry.client_errors);
    match input.signature_headers {
        Patch::Absent => {}
        Patch::Null => ep.signature_headers = Vec::new(),
        Patch::Set(entries) => ep.signature_headers = signature_headers(entries)?,
    }
    match input.standard_headers {
        Patch::Absent => {}
        Patch::Null => ep.standard_headers = StandardHeaders::Both,
        Patch::Set(name) => ep.standard_headers = standard_headers(Some(&name))?,
    }
    check_hmac_settings(&ep.secrets.current, &ep.signature_schemes, &ep.signature_headers, None)?;
    ep.updated_at = now_ms();
    state.store.catalog.update_endpoint(&ep).await.map_err(uid_conflict)?;
    emit_updated(&state, &app, was_disabled, &ep);
    Ok(Json(ep.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/",
    operation_id = "v1.endpoint.delete",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 204, description = "Deleted."), (status = 404, response = NotFound), AdminErrors),
)]
async fn delete(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    state.store.catalog.delete_endpoint(&app.id, &ep.id).await.or_not_found("endpoint", &endpoint_id)?;
    state.events.emit(OperationalEvent::EndpointDeleted(endpoint_ref(&app, &ep)));
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/",
    operation_id = "v1.endpoint.get-secret",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "The current signing secret.", body = SecretOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read_secret(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<Json<SecretOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    Ok(Json(SecretOut { key: ep.secrets.current.shown_text() }))
}

/// Rotates the signing secret. Svix answers 204, which the Python SDK's `rotate_secret` cannot parse; the new
/// key is returned instead (for an ed25519 key, its public key, `whpk_…`). Deliveries are signed with the old
/// secret too until the grace period ends.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate/",
    operation_id = "v1.endpoint.rotate-secret",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = Option<RotateIn>,
    responses(
        (status = 200, description = "The new signing secret.", body = SecretOut),
        (status = 404, response = NotFound),
        (status = 409, response = NotReplayable),
        AdminBodyErrors,
    ),
)]
async fn rotate_secret(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    OptionalJson(input): OptionalJson<RotateIn>,
) -> Result<(Extension<CarriesSecret>, Json<SecretOut>), ApiError> {
    let input = input.unwrap_or_default();
    let grace_secs = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if grace_secs > MAX_GRACE_SECS {
        return Err(ApiError::body(
            &["gracePeriodSeconds"],
            format!("the grace period must be at most {MAX_GRACE_SECS} seconds (7 days)"),
        ));
    }
    let new_secret = match &input.key {
        Some(text) => parse_secret(text, "key")?,
        None => EndpointSecret::generate(),
    };
    let app = find_app(&state, &app_id).await?;
    let mut ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    check_hmac_settings(&new_secret, &ep.signature_schemes, &ep.signature_headers, Some("key"))?;
    let now = now_ms();
    ep.secrets.rotate(new_secret, now, grace_secs as i64 * 1000);
    ep.updated_at = now;
    state.store.catalog.update_endpoint(&ep).await.or_not_found("endpoint", &endpoint_id)?;
    Ok((Extension(CarriesSecret), Json(SecretOut { key: ep.secrets.current.shown_text() })))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers/",
    operation_id = "v1.endpoint.get-headers",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "The custom headers sent with every delivery.", body = HeadersOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read_headers(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
) -> Result<Json<HeadersOut>, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    Ok(Json(HeadersOut { headers: ep.headers, sensitive: Vec::new() }))
}

#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers/",
    operation_id = "v1.endpoint.update-headers",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = HeadersIn,
    responses((status = 204, description = "Replaced."), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn replace_headers(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<HeadersIn>,
) -> Result<StatusCode, ApiError> {
    let headers = header_set(input.headers)?;
    let app = find_app(&state, &app_id).await?;
    let mut ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    ep.headers = headers;
    ep.updated_at = now_ms();
    state.store.catalog.update_endpoint(&ep).await.or_not_found("endpoint", &endpoint_id)?;
    emit_updated(&state, &app, ep.disabled, &ep);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers/",
    operation_id = "v1.endpoint.patch-headers",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = HeadersPatchIn,
    responses((status = 204, description = "Merged."), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn patch_headers(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<HeadersPatchIn>,
) -> Result<StatusCode, ApiError> {
    let app = find_app(&state, &app_id).await?;
    let mut ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    ep.headers = merge_headers(std::mem::take(&mut ep.headers), input)?;
    ep.updated_at = now_ms();
    state.store.catalog.update_endpoint(&ep).await.or_not_found("endpoint", &endpoint_id)?;
    emit_updated(&state, &app, ep.disabled, &ep);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats/",
    operation_id = "v1.endpoint.get-stats",
    tag = "Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint's deliveries by status.", body = StatsOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn stats(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    query: QueryParams,
) -> Result<Json<StatsOut>, ApiError> {
    query.refuse_unsupported(&["since", "until"], "the counts cover all of the endpoint's deliveries")?;
    let app = find_app(&state, &app_id).await?;
    let ep = find_endpoint(&state, &app.id, &endpoint_id).await?;
    let counts = state.store.messages.endpoint_delivery_counts(&ep.id).await.or_not_found("endpoint", &endpoint_id)?;
    Ok(Json(StatsOut {
        success: counts.success,
        pending: counts.pending,
        sending: counts.sending,
        fail: counts.fail,
        canceled: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn check(existing: &[(&str, &str)], patch: &str, expected: Result<&[(&str, &str)], ()>) {
        let patch: HeadersPatchIn = crate::extract::parse_json(patch.as_bytes()).unwrap_or_else(|_| panic!("{patch}"));
        let got = merge_headers(map(existing), patch).map_err(|_| ());
        assert_eq!(got, expected.map(map), "{existing:?}");
    }

    #[test]
    fn header_patches_merge_and_null_deletes() {
        check(&[("X-A", "1")], r#"{"headers": {"X-B": "2"}}"#, Ok(&[("X-A", "1"), ("X-B", "2")]));
        check(&[("X-A", "1")], r#"{"headers": {"x-a": "2"}}"#, Ok(&[("x-a", "2")]));
        check(&[("X-A", "1"), ("X-B", "2")], r#"{"headers": {"x-b": null}}"#, Ok(&[("X-A", "1")]));
        check(&[("X-A", "1"), ("X-B", "2")], r#"{"headers": {}, "deleteHeaders": ["X-A"]}"#, Ok(&[("X-B", "2")]));
        check(&[("X-A", "1")], r#"{"headers": {"X-Gone": null}}"#, Ok(&[("X-A", "1")]));
        check(&[("X-A", "1")], r#"{"headers": {"svix-id": "x"}}"#, Err(()));
        check(&[("X-A", "1")], r#"{"headers": {"X-Bad": "a\nb"}}"#, Err(()));
        check(&[], "{}", Ok(&[]));
    }

    /// The limits hold for the set a request leaves behind: a merge may fill an endpoint up to them, not past.
    #[test]
    fn header_limits_apply_to_the_merged_set() {
        use crate::validate::{MAX_HEADERS, MAX_HEADERS_BYTES};
        let full: BTreeMap<String, String> = (0..MAX_HEADERS).map(|i| (format!("x-h{i}"), "v".into())).collect();
        let patch = |json: &str| -> HeadersPatchIn { crate::extract::parse_json(json.as_bytes()).expect(json) };
        let merged = |existing: &BTreeMap<String, String>, json: &str| merge_headers(existing.clone(), patch(json));
        assert!(merged(&full, r#"{"headers": {"x-h0": "replaced"}}"#).is_ok());
        assert!(merged(&full, r#"{"headers": {"x-new": "1", "x-h0": null}}"#).is_ok());
        assert!(merged(&full, r#"{"headers": {"x-new": "1"}, "deleteHeaders": ["X-H1"]}"#).is_ok());
        let Err(ApiError::Validation(errors)) = merged(&full, r#"{"headers": {"x-new": "1"}}"#) else {
            panic!("the 51st header was accepted");
        };
        assert_eq!(errors[0].loc, ["body", "headers"]);
        assert!(errors[0].msg.contains(&MAX_HEADERS.to_string()), "{}", errors[0].msg);
        // Each value within its own limit, the set past the total.
        let big = "v".repeat(4000);
        let four = format!(r#"{{"headers": {{"a": "{big}", "b": "{big}", "c": "{big}", "d": "{big}"}}}}"#);
        assert!(merged(&BTreeMap::new(), &four).is_ok());
        let Err(ApiError::Validation(errors)) =
            merged(&merged(&BTreeMap::new(), &four).expect("fits"), &four.replace("\"a\"", "\"e\""))
        else {
            panic!("headers past {MAX_HEADERS_BYTES} bytes were accepted");
        };
        assert!(errors[0].msg.contains(&MAX_HEADERS_BYTES.to_string()), "{}", errors[0].msg);
    }

    #[test]
    fn secrets_accept_whsec_bare_base64_or_plain() {
        let whsec = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret").unwrap();
        assert_eq!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret").unwrap(), whsec);
        assert!(!whsec.is_plain());
        let plain = parse_secret("your_webhook_secret", "secret").unwrap();
        assert!(plain.is_plain());
        assert_eq!(plain.to_text(), "your_webhook_secret");
        assert!(parse_secret("whsec_short", "secret").is_err());
        assert!(parse_secret("not base64!", "key").is_err());
        assert!(parse_secret("too-short", "key").is_err());
    }

    #[test]
    fn ed25519_keys_refuse_hmac_settings() {
        // The seed 0x00..0x1f; its public key computed with Python's `cryptography`.
        let key = parse_secret("whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "secret").unwrap();
        assert!(key.is_ed25519());
        assert_eq!(key.shown_text(), "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
        let Err(ApiError::Validation(errors)) = parse_secret("whsk_AAEC", "key") else { panic!("bad key accepted") };
        assert_eq!(errors[0].loc, ["body", "key"]);
        let header = SignatureHeader {
            header: "X-Corp-Signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: String::new(),
        };
        let standard = [SignatureScheme::Standard];
        let legacy = [SignatureScheme::Standard, SignatureScheme::HmacHex];
        let refused = |result: Result<(), ApiError>| match result {
            Err(ApiError::Validation(errors)) => (errors[0].loc.clone(), errors[0].msg.clone()),
            other => panic!("not refused: {other:?}"),
        };
        assert!(check_hmac_settings(&key, &standard, &[], None).is_ok());
        let (loc, msg) = refused(check_hmac_settings(&key, &legacy, &[], None));
        assert_eq!(loc, ["body", "signatureSchemes"]);
        assert!(msg.contains("public key"), "{msg}");
        let (loc, _) = refused(check_hmac_settings(&key, &standard, std::slice::from_ref(&header), None));
        assert_eq!(loc, ["body", "signatureHeaders"]);
        let (loc, msg) = refused(check_hmac_settings(&key, &standard, std::slice::from_ref(&header), Some("key")));
        assert_eq!(loc, ["body", "key"]);
        assert!(msg.contains("signatureHeaders"), "{msg}");
        let whsec = EndpointSecret::generate();
        assert!(check_hmac_settings(&whsec, &legacy, &[header], Some("key")).is_ok());
    }
}
