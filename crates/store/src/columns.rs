//! How the model is spelled in database columns, shared by every backend: their schemas match column for column
//! (SQLite's `INTEGER` is PostgreSQL's `BIGINT`, JSON is `TEXT` in both), so the column lists, the JSON of
//! secrets, metadata and progress, and the conversion of a row back into the model are written once here. Each
//! backend only says how to read one column of its row type ([`ColumnRead`]).
//!
//! Secrets pass through the store's [`SecretCipher`] on their way in and out: each secret is sealed on its own
//! (inside the JSON of previous secrets too), so the columns keep their shape with or without encryption.

use std::collections::BTreeMap;

use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::id::min_body_at;
use hookrelay_core::inbound::Provider;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryOrder, DeliveryStatus, Endpoint, EventType, ExpiringSecret,
    InboundEvent, InboundRejections, InboundStatus, Message, SecretSet, SignatureScheme, Source, SourceSecrets,
    TaskKind, TaskProgress, TaskStatus, TimeWindow, Transformation, TriggerType,
};
use hookrelay_core::retry::{EndpointRetry, RetrySchedule};
use hookrelay_core::signature_headers::{SignatureHeader, StandardHeaders};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, AttemptId, EndpointId, InboundEventId, MessageId, SourceId, TaskId};
use serde::{Deserialize, Serialize};

use crate::SecretTable;
use crate::StoreError;

/// A stored value that cannot be read back as the model expects: damaged data, or data written by a newer
/// version. Backends report it as an internal error.
#[derive(Debug)]
pub struct ColumnError(String);

impl ColumnError {
    pub fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

impl std::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ColumnError {}

impl From<ColumnError> for crate::StoreError {
    fn from(err: ColumnError) -> Self {
        Self::Internal(err.0)
    }
}

pub type ColumnResult<T> = Result<T, ColumnError>;

/// One row of a backend's result, read by column index. Integers (and 0/1 flags) are read as `i64`, the one
/// integer type both schemas use; the narrower model types are checked conversions from it.
pub trait ColumnRead {
    fn text(&self, index: usize) -> ColumnResult<String>;
    fn opt_text(&self, index: usize) -> ColumnResult<Option<String>>;
    fn int(&self, index: usize) -> ColumnResult<i64>;
    fn opt_int(&self, index: usize) -> ColumnResult<Option<i64>>;

    /// A 0/1 flag; anything but 0 counts as set, as SQLite reads booleans.
    fn flag(&self, index: usize) -> ColumnResult<bool> {
        Ok(self.int(index)? != 0)
    }

    /// An integer column that must fit the model's narrower type (a `u32` rate limit, a `u16` status code, …).
    fn narrow<T: TryFrom<i64>>(&self, index: usize) -> ColumnResult<T> {
        narrow(self.int(index)?, index)
    }

    fn opt_narrow<T: TryFrom<i64>>(&self, index: usize) -> ColumnResult<Option<T>> {
        self.opt_int(index)?.map(|value| narrow(value, index)).transpose()
    }
}

fn narrow<T: TryFrom<i64>>(value: i64, index: usize) -> ColumnResult<T> {
    T::try_from(value)
        .map_err(|_| ColumnError(format!("column {index}: {value} is out of range for {}", std::any::type_name::<T>())))
}

/// A count from `COUNT(*)` or a changed-rows total, which cannot be negative unless something is badly wrong.
pub fn count(value: i64) -> ColumnResult<u64> {
    u64::try_from(value).map_err(|_| ColumnError(format!("negative count {value}")))
}

pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // The model's types always serialize (string keys, no non-finite floats); "null" only guards the impossible.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub fn opt_to_json<T: Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(|v| to_json(v))
}

pub fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> ColumnResult<T> {
    serde_json::from_str(text).map_err(|e| ColumnError(format!("stored JSON: {e}")))
}

fn opt_from_json<T: for<'de> Deserialize<'de>>(text: Option<String>) -> ColumnResult<Option<T>> {
    text.map(|t| from_json(&t)).transpose()
}

/// The smallest id with `prefix` stamped at `at` or later: ids start with their creation time, so a time bound
/// is also an id bound, which the primary key can seek.
pub fn id_floor(prefix: &str, at: UnixMillis) -> String {
    format!("{prefix}{}", min_body_at(at))
}

/// The smallest message id stamped at `at` or later.
pub fn msg_id_floor(at: UnixMillis) -> String {
    id_floor(MessageId::PREFIX, at)
}

/// The smallest attempt id stamped at `at` or later.
pub fn attempt_id_floor(at: UnixMillis) -> String {
    id_floor(AttemptId::PREFIX, at)
}

/// Adds `number` deliveries with the stored status code `status` to `counts`.
pub fn add_delivery_count(counts: &mut crate::DeliveryCounts, status: i64, number: u64) -> ColumnResult<()> {
    match DeliveryStatus::from_code(status) {
        Some(DeliveryStatus::Success) => counts.success += number,
        Some(DeliveryStatus::Pending) => counts.pending += number,
        Some(DeliveryStatus::Fail) => counts.fail += number,
        Some(DeliveryStatus::Sending) => counts.sending += number,
        None => return Err(ColumnError(format!("unknown delivery status {status}"))),
    }
    Ok(())
}

/// The offset (0-based, in ascending order) of the `percent`th percentile among `total` values by the nearest
/// rank method; `None` when there are no values.
pub fn percentile_offset(total: u64, percent: u64) -> Option<i64> {
    let rank = (total.checked_mul(percent)?).div_ceil(100).max(1);
    (total > 0).then(|| i64::try_from(rank - 1).unwrap_or(i64::MAX))
}

/// The smallest inbound event id stamped at `at` or later.
pub fn event_id_floor(at: UnixMillis) -> String {
    id_floor(InboundEventId::PREFIX, at)
}

pub const APP_COLUMNS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at";

pub fn app_from(row: &impl ColumnRead) -> ColumnResult<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.text(0)?),
        uid: row.opt_text(1)?,
        name: row.text(2)?,
        rate_limit: row.opt_narrow(3)?,
        metadata: from_json(&row.text(4)?)?,
        created_at: row.int(5)?,
        updated_at: row.int(6)?,
    })
}

pub const EVENT_TYPE_COLUMNS: &str =
    "name, description, archived, deprecated, schemas, feature_flag, created_at, updated_at, group_name";

pub fn event_type_from(row: &impl ColumnRead) -> ColumnResult<EventType> {
    Ok(EventType {
        name: row.text(0)?,
        description: row.text(1)?,
        archived: row.flag(2)?,
        deprecated: row.flag(3)?,
        schemas: opt_from_json(row.opt_text(4)?)?,
        feature_flag: row.opt_text(5)?,
        group_name: row.opt_text(8)?,
        created_at: row.int(6)?,
        updated_at: row.int(7)?,
    })
}

/// A previous secret as stored in `endpoints.previous_secrets` (a JSON array); `key` is sealed.
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    key: String,
    expires_at: i64,
}

impl From<hookrelay_core::cipher::CipherError> for ColumnError {
    fn from(err: hookrelay_core::cipher::CipherError) -> Self {
        Self(err.to_string())
    }
}

/// The values of an endpoint's two secret columns: the current secret and the JSON of previous ones, each
/// secret sealed by `cipher`.
pub fn endpoint_secret_columns(secrets: &SecretSet, cipher: &SecretCipher) -> (String, String) {
    let stored: Vec<StoredSecret> = secrets
        .previous
        .iter()
        .map(|old| StoredSecret { key: cipher.seal(&old.secret.to_text()), expires_at: old.expires_at })
        .collect();
    (cipher.seal(&secrets.current.to_text()), to_json(&stored))
}

fn open_secret(text: &str, cipher: &SecretCipher) -> ColumnResult<EndpointSecret> {
    let text = cipher.open(text)?;
    EndpointSecret::from_text(&text).map_err(|e| ColumnError(format!("stored endpoint secret: {e}")))
}

/// Reads a secret set from its two columns: the current `whsec_` string and the JSON of previous ones.
pub fn secrets_from_columns(current: &str, previous: &str, cipher: &SecretCipher) -> ColumnResult<SecretSet> {
    let previous: Vec<StoredSecret> = from_json(previous)?;
    Ok(SecretSet {
        current: open_secret(current, cipher)?,
        previous: previous
            .into_iter()
            .map(|old| Ok(ExpiringSecret { secret: open_secret(&old.key, cipher)?, expires_at: old.expires_at }))
            .collect::<ColumnResult<_>>()?,
    })
}

/// An endpoint's secret columns sealed again under the cipher's current key, or `None` when every secret in them
/// already is (so a re-encryption pass writes only what it changes).
pub fn reseal_endpoint_secrets(
    current: &str,
    previous: &str,
    cipher: &SecretCipher,
) -> ColumnResult<Option<(String, String)>> {
    let stored: Vec<StoredSecret> = from_json(previous)?;
    if cipher.is_current(current) && stored.iter().all(|old| cipher.is_current(&old.key)) {
        return Ok(None);
    }
    let resealed: Vec<StoredSecret> = stored
        .into_iter()
        .map(|old| Ok(StoredSecret { key: cipher.seal(&cipher.open(&old.key)?), expires_at: old.expires_at }))
        .collect::<ColumnResult<_>>()?;
    Ok(Some((cipher.seal(&cipher.open(current)?), to_json(&resealed))))
}

/// The body of a remembered response read back. Responses stored through `put_idempotent` are sealed (one may
/// carry a secret: a rotated key); those stored with a message are its echo and stay plaintext. A body sealed with
/// a key no longer configured is forgotten, with a warning: the request then runs again, which is safer than
/// failing it, and it only happens within the 12 hours a response is remembered.
pub fn idempotent_body_from(stored: Vec<u8>, cipher: &SecretCipher) -> Option<Vec<u8>> {
    match cipher.open_bytes(stored) {
        Ok(body) => Some(body),
        Err(err) => {
            tracing::warn!(error = %err, "forgetting a remembered idempotent response that cannot be decrypted");
            None
        }
    }
}

/// A table a re-encryption pass walks and its secret columns, in the order [`reseal_row`] takes them.
pub fn secret_table(table: SecretTable) -> (&'static str, &'static [&'static str]) {
    match table {
        SecretTable::Endpoints => ("endpoints", &["secret", "previous_secrets"]),
        SecretTable::Sources => ("sources", &["secrets"]),
    }
}

/// The secret columns of one row of `table` sealed again under the cipher's current key, or `None` when they
/// already are.
pub fn reseal_row(table: SecretTable, values: &[String], cipher: &SecretCipher) -> ColumnResult<Option<Vec<String>>> {
    match (table, values) {
        (SecretTable::Endpoints, [current, previous]) => {
            Ok(reseal_endpoint_secrets(current, previous, cipher)?.map(|(current, previous)| vec![current, previous]))
        }
        (SecretTable::Sources, [secrets]) => Ok(reseal_source_secrets(secrets, cipher)?.map(|secrets| vec![secrets])),
        _ => Err(ColumnError::new(format!("{} secret columns read for {table:?}", values.len()))),
    }
}

/// The key ids of sealed secrets, one per row of its result (`enc:v1:<8 hex digits>:`, 16 characters): current
/// endpoint secrets and current source secrets. Previous secrets were sealed with the same key as the current one
/// beside them, so checking the current ones at start finds every key the database needs.
pub const SEALED_KEY_IDS_SQL: &str = "SELECT DISTINCT substr(secret, 1, 16) FROM endpoints WHERE secret LIKE 'enc:%' \
     UNION SELECT DISTINCT substr(secrets, 13, 16) FROM sources WHERE secrets LIKE '{\"current\":\"enc:%'";

/// Checks the key-id prefixes that [`SEALED_KEY_IDS_SQL`] found against the cipher's keys, so a missing or wrong
/// key stops the server at start with an error naming the setting instead of failing deliveries later.
pub fn check_sealed_key_ids(prefixes: &[String], cipher: &SecretCipher) -> Result<(), crate::StoreError> {
    for prefix in prefixes {
        match SecretCipher::key_id_of(prefix) {
            Some(key_id) => cipher.check_key_id(key_id),
            None => cipher.open(prefix).map(|_| ()),
        }
        .map_err(|err| crate::StoreError::Unavailable(err.to_string()))?;
    }
    Ok(())
}

pub const ENDPOINT_COLUMNS: &str = "e.id, e.app_id, e.uid, e.url, e.description, e.filter_types, e.channels, \
     e.rate_limit, e.disabled, e.metadata, e.version, e.headers, e.secret, e.previous_secrets, e.created_at, \
     e.updated_at, e.signature_schemes, e.fifo, e.retry_schedule, e.retry_client_errors, e.signature_headers, \
     e.standard_headers, e.transformation_code, e.transformation_enabled";
/// How many columns `ENDPOINT_COLUMNS` selects, for queries that select more after them.
pub const ENDPOINT_COLUMN_COUNT: usize = 24;

/// A value the deliveries of one endpoint (or one message) in a claim batch share: made from the first of their
/// rows and cloned for the others, so secrets are opened, and headers, options and code read, once per batch.
pub fn shared<T: Clone, E>(
    cache: &mut std::collections::HashMap<String, T>,
    key: &str,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    if let Some(value) = cache.get(key) {
        return Ok(value.clone());
    }
    let value = make()?;
    cache.insert(key.to_owned(), value.clone());
    Ok(value)
}

/// What an endpoint asks of its deliveries beyond URL, headers and secrets, as a claim hands it to the engine.
#[derive(Clone)]
pub struct DeliveryOptions {
    pub retry: EndpointRetry,
    pub signature_headers: Vec<SignatureHeader>,
    pub standard_headers: StandardHeaders,
    /// The code of its transformation, when enabled (the claim selects NULL otherwise).
    pub transformation: Option<std::sync::Arc<str>>,
}

/// Reads [`DeliveryOptions`] from a claim's row: the retry columns from `retry`, the signing columns from
/// `signing`, the enabled transformation's code at `transformation`.
pub fn delivery_options_from(
    row: &impl ColumnRead,
    retry: usize,
    signing: usize,
    transformation: usize,
) -> ColumnResult<DeliveryOptions> {
    let (signature_headers, standard_headers) = endpoint_signing_from(row, signing)?;
    Ok(DeliveryOptions {
        retry: endpoint_retry_from(row, retry)?,
        signature_headers,
        standard_headers,
        transformation: row.opt_text(transformation)?.map(std::sync::Arc::from),
    })
}

/// An endpoint's transformation columns: the code (NULL for none) and whether it runs (0/1).
pub fn transformation_columns(transformation: Option<&Transformation>) -> (Option<&str>, i64) {
    transformation.map_or((None, 0), |t| (Some(t.code.as_str()), i64::from(t.enabled)))
}

/// An endpoint's signature headers as stored: a JSON array.
pub fn signature_headers_json(headers: &[SignatureHeader]) -> String {
    to_json(headers)
}

/// Reads an endpoint's header columns, `signature_headers` and `standard_headers`, from `first` on.
pub fn endpoint_signing_from(
    row: &impl ColumnRead,
    first: usize,
) -> ColumnResult<(Vec<SignatureHeader>, StandardHeaders)> {
    let families = row.text(first + 1)?;
    let standard = StandardHeaders::from_name(&families)
        .ok_or_else(|| ColumnError(format!("column {}: unknown standard headers `{families}`", first + 1)))?;
    Ok((from_json(&row.text(first)?)?, standard))
}

/// An endpoint's retry columns: the schedule in the `HOOKRELAY_RETRY_SCHEDULE` form and the 4xx rule as 0/1,
/// each NULL for the server's.
pub fn endpoint_retry_columns(retry: &EndpointRetry) -> (Option<String>, Option<i64>) {
    (retry.schedule.as_ref().map(RetrySchedule::to_text), retry.client_errors.map(i64::from))
}

/// Reads the retry columns [`endpoint_retry_columns`] wrote, from `first` on.
pub fn endpoint_retry_from(row: &impl ColumnRead, first: usize) -> ColumnResult<EndpointRetry> {
    let schedule = row
        .opt_text(first)?
        .map(|text| RetrySchedule::parse(&text).map_err(|err| ColumnError(format!("column {first}: {err}"))))
        .transpose()?;
    Ok(EndpointRetry { schedule, client_errors: row.opt_int(first + 1)?.map(|flag| flag != 0) })
}

pub fn signature_schemes_json(schemes: &[SignatureScheme]) -> String {
    to_json(&schemes.iter().map(|scheme| scheme.name()).collect::<Vec<_>>())
}

/// Reads the JSON array of scheme names; names this version does not know are skipped.
pub fn signature_schemes_from_json(text: &str) -> ColumnResult<Vec<SignatureScheme>> {
    let names: Vec<String> = from_json(text)?;
    Ok(names.iter().filter_map(|name| SignatureScheme::from_name(name)).collect())
}

pub fn endpoint_from(row: &impl ColumnRead, cipher: &SecretCipher) -> ColumnResult<Endpoint> {
    let (signature_headers, standard_headers) = endpoint_signing_from(row, 20)?;
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.text(0)?),
        app_id: AppId::from_trusted(row.text(1)?),
        uid: row.opt_text(2)?,
        url: row.text(3)?,
        description: row.text(4)?,
        filter_types: opt_from_json(row.opt_text(5)?)?,
        channels: opt_from_json(row.opt_text(6)?)?,
        rate_limit: row.opt_narrow(7)?,
        disabled: row.flag(8)?,
        metadata: from_json(&row.text(9)?)?,
        version: row.narrow(10)?,
        headers: from_json(&row.text(11)?)?,
        secrets: secrets_from_columns(&row.text(12)?, &row.text(13)?, cipher)?,
        created_at: row.int(14)?,
        updated_at: row.int(15)?,
        signature_schemes: signature_schemes_from_json(&row.text(16)?)?,
        ordering: if row.flag(17)? { DeliveryOrder::Fifo } else { DeliveryOrder::Unordered },
        retry: endpoint_retry_from(row, 18)?,
        signature_headers,
        standard_headers,
        transformation: transformation_from(row, 22)?,
    })
}

/// Reads the transformation columns [`transformation_columns`] wrote, from `first` on.
pub fn transformation_from(row: &impl ColumnRead, first: usize) -> ColumnResult<Option<Transformation>> {
    let Some(code) = row.opt_text(first)? else { return Ok(None) };
    Ok(Some(Transformation { code, enabled: row.flag(first + 1)? }))
}

/// An endpoint's event-type filter and channels, each `None` when unrestricted.
pub type Routing = (Option<Vec<String>>, Option<Vec<String>>);

/// Reads an endpoint's routing columns, `filter_types` and `channels` (JSON arrays or NULL), from `first` on.
pub fn routing_from(row: &impl ColumnRead, first: usize) -> ColumnResult<Routing> {
    Ok((opt_from_json(row.opt_text(first)?)?, opt_from_json(row.opt_text(first + 1)?)?))
}

/// Reads a message's channels or tags column (a JSON array or NULL).
pub fn string_list_from(row: &impl ColumnRead, index: usize) -> ColumnResult<Option<Vec<String>>> {
    opt_from_json(row.opt_text(index)?)
}

pub const MESSAGE_COLUMNS: &str = "m.id, m.app_id, m.event_id, m.event_type, m.payload, m.channels, m.created_at, m.forwarded_headers, m.tags, \
     m.content_type, m.deliver_at, m.payload_expires_at";
/// How many columns `MESSAGE_COLUMNS` selects, for queries that select more after them.
pub const MESSAGE_COLUMN_COUNT: usize = 12;

/// A message's forwarded headers as stored: NULL when there are none (every published message), else JSON.
pub fn forwarded_headers_json(headers: &BTreeMap<String, String>) -> Option<String> {
    (!headers.is_empty()).then(|| to_json(headers))
}

/// Reads a message's forwarded headers column.
pub fn forwarded_headers_from(row: &impl ColumnRead, index: usize) -> ColumnResult<BTreeMap<String, String>> {
    Ok(opt_from_json(row.opt_text(index)?)?.unwrap_or_default())
}

pub fn message_from(row: &impl ColumnRead) -> ColumnResult<Message> {
    Ok(Message {
        id: MessageId::from_trusted(row.text(0)?),
        app_id: AppId::from_trusted(row.text(1)?),
        event_id: row.opt_text(2)?,
        event_type: row.text(3)?,
        payload: row.text(4)?,
        channels: string_list_from(row, 5)?,
        forwarded_headers: forwarded_headers_from(row, 7)?,
        created_at: row.int(6)?,
        tags: string_list_from(row, 8)?,
        content_type: row.opt_text(9)?,
        deliver_at: row.opt_int(10)?,
        payload_expires_at: row.opt_int(11)?,
    })
}

fn status_from_code(code: i64) -> ColumnResult<DeliveryStatus> {
    DeliveryStatus::from_code(code).ok_or_else(|| ColumnError(format!("unknown delivery status {code}")))
}

/// The delivery columns `delivery_from` reads, in its order.
pub const DELIVERY_COLUMNS: &str = "d.status, d.attempts, d.next_attempt_at, d.msg_id, d.endpoint_id";

/// Reads a delivery from `DELIVERY_COLUMNS` starting at `first`.
pub fn delivery_from(row: &impl ColumnRead, first: usize) -> ColumnResult<Delivery> {
    Ok(Delivery {
        status: status_from_code(row.int(first)?)?,
        attempts: row.narrow(first + 1)?,
        next_attempt_at: row.opt_int(first + 2)?,
        msg_id: MessageId::from_trusted(row.text(first + 3)?),
        endpoint_id: EndpointId::from_trusted(row.text(first + 4)?),
    })
}

pub const ATTEMPT_COLUMNS: &str = "a.id, a.app_id, a.msg_id, a.endpoint_id, a.url, a.response, \
     a.response_status_code, a.response_duration_ms, a.status, a.trigger_type, a.created_at";

pub fn attempt_from(row: &impl ColumnRead) -> ColumnResult<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(row.text(0)?),
        app_id: AppId::from_trusted(row.text(1)?),
        msg_id: MessageId::from_trusted(row.text(2)?),
        endpoint_id: EndpointId::from_trusted(row.text(3)?),
        url: row.text(4)?,
        response: row.text(5)?,
        response_status_code: row.narrow(6)?,
        response_duration_ms: row.int(7)?,
        status: status_from_code(row.int(8)?)?,
        trigger_type: TriggerType::from_code(row.int(9)?),
        created_at: row.int(10)?,
    })
}

pub const TASK_COLUMNS: &str =
    "id, kind, app_id, endpoint_id, status, since, until, cursor, data, created_at, updated_at";

/// A task's progress as stored in `background_tasks.data`.
#[derive(Serialize, Deserialize)]
struct StoredProgress {
    sent: u64,
    scanned: u64,
    total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn progress_json(progress: &TaskProgress) -> String {
    to_json(&StoredProgress {
        sent: progress.sent,
        scanned: progress.scanned,
        total: progress.total,
        error: progress.error.clone(),
    })
}

pub fn task_from(row: &impl ColumnRead) -> ColumnResult<BackgroundTask> {
    let kind = row.text(1)?;
    let status = row.text(4)?;
    let progress: StoredProgress = from_json(&row.text(8)?)?;
    Ok(BackgroundTask {
        id: TaskId::from_trusted(row.text(0)?),
        kind: TaskKind::from_name(&kind).ok_or_else(|| ColumnError(format!("unknown task kind {kind}")))?,
        app_id: AppId::from_trusted(row.text(2)?),
        endpoint_id: EndpointId::from_trusted(row.text(3)?),
        status: TaskStatus::from_name(&status).ok_or_else(|| ColumnError(format!("unknown task status {status}")))?,
        window: TimeWindow { since: row.int(5)?, until: row.int(6)? },
        cursor: row.opt_text(7)?.map(MessageId::from_trusted),
        progress: TaskProgress {
            sent: progress.sent,
            scanned: progress.scanned,
            total: progress.total,
            error: progress.error,
        },
        created_at: row.int(9)?,
        updated_at: row.int(10)?,
    })
}

pub const SOURCE_COLUMNS: &str = "id, uid, name, app_id, provider, options, secrets, tolerance_secs, created_at, \
     updated_at, rate_limit, forward_headers";

/// A source's secrets as stored in `sources.secrets`: `{"current": "…", "previous": [["…", expires_at], …]}`,
/// each secret sealed. `current` comes first, which `SEALED_KEY_IDS_SQL` relies on.
#[derive(Serialize, Deserialize)]
struct StoredSourceSecrets {
    current: String,
    previous: Vec<(String, UnixMillis)>,
}

impl StoredSourceSecrets {
    fn map(self, mut f: impl FnMut(&str) -> ColumnResult<String>) -> ColumnResult<Self> {
        Ok(Self {
            current: f(&self.current)?,
            previous: self
                .previous
                .into_iter()
                .map(|(secret, expires_at)| Ok((f(&secret)?, expires_at)))
                .collect::<ColumnResult<_>>()?,
        })
    }
}

pub fn source_secrets_json(secrets: &SourceSecrets, cipher: &SecretCipher) -> String {
    let plain = StoredSourceSecrets { current: secrets.current.clone(), previous: secrets.previous.clone() };
    // Sealing cannot fail; the closure's error type is only shared with opening.
    match plain.map(|secret| Ok(cipher.seal(secret))) {
        Ok(sealed) => to_json(&sealed),
        Err(_) => "null".into(),
    }
}

fn source_secrets_from(text: &str, cipher: &SecretCipher) -> ColumnResult<SourceSecrets> {
    let stored: StoredSourceSecrets = from_json(text)?;
    let plain = stored.map(|secret| Ok(cipher.open(secret)?))?;
    Ok(SourceSecrets { current: plain.current, previous: plain.previous })
}

/// A source's secrets column sealed again under the cipher's current key, or `None` when it already is.
pub fn reseal_source_secrets(text: &str, cipher: &SecretCipher) -> ColumnResult<Option<String>> {
    let stored: StoredSourceSecrets = from_json(text)?;
    if cipher.is_current(&stored.current) && stored.previous.iter().all(|(secret, _)| cipher.is_current(secret)) {
        return Ok(None);
    }
    Ok(Some(to_json(&stored.map(|secret| Ok(cipher.seal(&cipher.open(secret)?)))?)))
}

pub fn source_from(row: &impl ColumnRead, cipher: &SecretCipher) -> ColumnResult<Source> {
    let provider_name = row.text(4)?;
    let options: serde_json::Map<String, serde_json::Value> = from_json(&row.text(5)?)?;
    // The options were written by `Provider::options`, so a failure here means the row was damaged or written
    // by a version that knew options this one does not.
    let provider = Provider::from_options(&provider_name, &options)
        .map_err(|e| ColumnError(format!("stored options of provider `{provider_name}`: {e}")))?;
    let secrets = source_secrets_from(&row.text(6)?, cipher)?;
    Ok(Source {
        id: SourceId::from_trusted(row.text(0)?),
        uid: row.opt_text(1)?,
        name: row.text(2)?,
        app_id: AppId::from_trusted(row.text(3)?),
        provider,
        secrets,
        tolerance_secs: row.int(7)?,
        rate_limit: row.opt_narrow(10)?,
        forward_headers: from_json(&row.text(11)?)?,
        created_at: row.int(8)?,
        updated_at: row.int(9)?,
    })
}

pub const INBOUND_REJECTION_COLUMNS: &str = "source_id, reason, minute, count, first_seen, last_seen, sample";

pub fn inbound_rejections_from(row: &impl ColumnRead) -> ColumnResult<InboundRejections> {
    Ok(InboundRejections {
        source_id: SourceId::from_trusted(row.text(0)?),
        reason: row.text(1)?,
        minute: row.int(2)?,
        count: row.narrow(3)?,
        first_seen: row.int(4)?,
        last_seen: row.int(5)?,
        sample: row.opt_text(6)?,
    })
}

/// The list cursor of a rejection row: its minute and reason (`<minute>.<reason>`), the list's sort key.
pub fn rejection_cursor(rejections: &InboundRejections) -> String {
    format!("{}.{}", rejections.minute, rejections.reason)
}

/// Reads a cursor made by [`rejection_cursor`].
pub fn parse_rejection_cursor(cursor: &str) -> Result<(UnixMillis, String), StoreError> {
    cursor
        .split_once('.')
        .and_then(|(minute, reason)| Some((minute.parse().ok()?, reason.to_owned())))
        .ok_or_else(|| StoreError::Invalid(format!("`{cursor}` is not a cursor of this list (`<minute>.<reason>`)")))
}

pub const INBOUND_EVENT_COLUMNS: &str = "id, source_id, status, reason, event_id, event_type, msg_id, received_at";

pub fn inbound_status_from_name(name: &str) -> ColumnResult<InboundStatus> {
    InboundStatus::from_name(name).ok_or_else(|| ColumnError(format!("unknown inbound status {name}")))
}

pub fn inbound_event_from(row: &impl ColumnRead) -> ColumnResult<InboundEvent> {
    Ok(InboundEvent {
        id: InboundEventId::from_trusted(row.text(0)?),
        source_id: SourceId::from_trusted(row.text(1)?),
        status: inbound_status_from_name(&row.text(2)?)?,
        reason: row.opt_text(3)?,
        event_id: row.opt_text(4)?,
        event_type: row.opt_text(5)?,
        msg_id: row.opt_text(6)?.map(MessageId::from_trusted),
        received_at: row.int(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row held in memory, to test the conversions without a database.
    struct Values(Vec<Option<String>>);

    impl ColumnRead for Values {
        fn text(&self, index: usize) -> ColumnResult<String> {
            self.opt_text(index)?.ok_or_else(|| ColumnError::new("unexpected NULL"))
        }
        fn opt_text(&self, index: usize) -> ColumnResult<Option<String>> {
            Ok(self.0.get(index).cloned().flatten())
        }
        fn int(&self, index: usize) -> ColumnResult<i64> {
            self.opt_int(index)?.ok_or_else(|| ColumnError::new("unexpected NULL"))
        }
        fn opt_int(&self, index: usize) -> ColumnResult<Option<i64>> {
            self.opt_text(index)?.map(|t| t.parse().map_err(|_| ColumnError::new("not an integer"))).transpose()
        }
    }

    #[test]
    fn out_of_range_integers_are_errors_not_panics() {
        let row = Values(vec![Some("-1".into()), Some("70000".into()), Some("5".into())]);
        assert!(row.narrow::<u32>(0).is_err());
        assert!(row.narrow::<u16>(1).is_err());
        assert_eq!(row.narrow::<u16>(2).unwrap(), 5);
        assert!(count(-1).is_err());
        assert_eq!(count(3).unwrap(), 3);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        for (total, percent, offset) in [
            (0, 50, None),
            (1, 50, Some(0)),
            (1, 99, Some(0)),
            (2, 50, Some(0)),
            (3, 50, Some(1)),
            (100, 99, Some(98)),
            (101, 99, Some(99)),
            (10, 1, Some(0)),
        ] {
            assert_eq!(percentile_offset(total, percent), offset, "{percent}th of {total}");
        }
    }

    #[test]
    fn secrets_round_trip_through_their_columns() {
        let mut secrets = SecretSet::new(EndpointSecret::generate());
        secrets.rotate(EndpointSecret::generate(), 1_000, 500);
        for cipher in [SecretCipher::plaintext(), SecretCipher::with_key(&[9; 32])] {
            let (current, previous) = endpoint_secret_columns(&secrets, &cipher);
            assert_eq!(current.starts_with("whsec_"), !cipher.encrypts(), "{current}");
            assert_eq!(previous.contains("whsec_"), !cipher.encrypts(), "{previous}");
            assert_eq!(secrets_from_columns(&current, &previous, &cipher).unwrap(), secrets);
        }
        assert!(secrets_from_columns("not a secret", "[]", &SecretCipher::plaintext()).is_err());
    }

    #[test]
    fn resealing_moves_every_secret_to_the_current_key_once() {
        let mut secrets = SecretSet::new(EndpointSecret::generate());
        secrets.rotate(EndpointSecret::generate(), 1_000, 500);
        let (current, previous) = endpoint_secret_columns(&secrets, &SecretCipher::with_key(&[1; 32]));
        let rotated = SecretCipher::with_key(&[2; 32]).with_previous(&[1; 32]);
        let (current, previous) = reseal_endpoint_secrets(&current, &previous, &rotated).unwrap().unwrap();
        assert_eq!(secrets_from_columns(&current, &previous, &SecretCipher::with_key(&[2; 32])).unwrap(), secrets);
        assert!(reseal_endpoint_secrets(&current, &previous, &rotated).unwrap().is_none());

        let source = SourceSecrets { current: "shh".into(), previous: vec![("old".into(), 5)] };
        let plain = source_secrets_json(&source, &SecretCipher::plaintext());
        let sealed = reseal_source_secrets(&plain, &rotated).unwrap().unwrap();
        assert!(!sealed.contains("shh") && !sealed.contains("old"), "{sealed}");
        assert!(sealed.starts_with("{\"current\":\"enc:v1:"), "SEALED_KEY_IDS_SQL reads this prefix: {sealed}");
        assert_eq!(source_secrets_from(&sealed, &rotated).unwrap(), source);
        assert!(reseal_source_secrets(&sealed, &rotated).unwrap().is_none());
    }
}
