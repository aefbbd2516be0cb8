//! Conversions between SQLite rows and the domain model, and the SQL fragments that several queries share.

use hookrelay_core::inbound::Provider;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryOrder, DeliveryStatus, Endpoint, EventType, ExpiringSecret,
    InboundEvent, InboundStatus, Message, SecretSet, SignatureScheme, Source, SourceSecrets, TaskKind, TaskProgress,
    TaskStatus, TimeWindow, TriggerType,
};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, AttemptId, EndpointId, InboundEventId, MessageId, SourceId, TaskId};
use rusqlite::Row;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::store::StoreResult;
use crate::{PageRequest, StoreError};

pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn opt_json<T: for<'de> Deserialize<'de>>(text: Option<String>) -> rusqlite::Result<Option<T>> {
    text.map(|t| from_json(&t)).transpose()
}

/// Maps a failed statement to `Conflict(what)` when it broke a uniqueness rule, else to `Internal`.
pub fn conflict_or_internal(err: rusqlite::Error, what: &str) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Internal(err.to_string()),
    }
}

/// Like `conflict_or_internal`, and a missing row becomes `NotFound`.
pub fn not_found_or_internal(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        other => StoreError::Internal(other.to_string()),
    }
}

/// Turns "0 rows changed" into `NotFound`.
pub fn expect_changed(changed: usize) -> StoreResult<()> {
    if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub const APP_COLUMNS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at";

pub fn app_from_row(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        rate_limit: row.get(3)?,
        metadata: from_json(&row.get::<_, String>(4)?)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

pub const EVENT_TYPE_COLUMNS: &str =
    "name, description, archived, deprecated, schemas, feature_flag, created_at, updated_at";

pub fn event_type_from_row(row: &Row<'_>) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: row.get(0)?,
        description: row.get(1)?,
        archived: row.get(2)?,
        deprecated: row.get(3)?,
        schemas: opt_json(row.get(4)?)?,
        feature_flag: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

/// A previous secret as stored in `endpoints.previous_secrets` (a JSON array).
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    key: String,
    expires_at: i64,
}

pub fn previous_secrets_json(secrets: &SecretSet) -> String {
    let stored: Vec<StoredSecret> = secrets
        .previous
        .iter()
        .map(|old| StoredSecret { key: old.secret.to_whsec(), expires_at: old.expires_at })
        .collect();
    to_json(&stored)
}

fn parse_secret(text: &str) -> rusqlite::Result<EndpointSecret> {
    EndpointSecret::parse(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// Reads a secret set from its two columns: the current `whsec_` string and the JSON of previous ones.
pub fn secrets_from_columns(current: &str, previous: &str) -> rusqlite::Result<SecretSet> {
    let previous: Vec<StoredSecret> = from_json(previous)?;
    Ok(SecretSet {
        current: parse_secret(current)?,
        previous: previous
            .into_iter()
            .map(|old| Ok(ExpiringSecret { secret: parse_secret(&old.key)?, expires_at: old.expires_at }))
            .collect::<rusqlite::Result<_>>()?,
    })
}

pub const ENDPOINT_COLUMNS: &str = "e.id, e.app_id, e.uid, e.url, e.description, e.filter_types, e.channels, \
     e.rate_limit, e.disabled, e.metadata, e.version, e.headers, e.secret, e.previous_secrets, e.created_at, \
     e.updated_at, e.signature_schemes, e.fifo";
/// How many columns `ENDPOINT_COLUMNS` selects, for queries that select more after them.
pub const ENDPOINT_COLUMN_COUNT: usize = 18;

pub fn signature_schemes_json(schemes: &[SignatureScheme]) -> String {
    to_json(&schemes.iter().map(|scheme| scheme.name()).collect::<Vec<_>>())
}

/// Reads the JSON array of scheme names; names this version does not know are skipped.
pub fn signature_schemes_from_json(text: &str) -> rusqlite::Result<Vec<SignatureScheme>> {
    let names: Vec<String> = from_json(text)?;
    Ok(names.iter().filter_map(|name| SignatureScheme::from_name(name)).collect())
}

pub fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        uid: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        filter_types: opt_json(row.get(5)?)?,
        channels: opt_json(row.get(6)?)?,
        rate_limit: row.get(7)?,
        disabled: row.get(8)?,
        metadata: from_json(&row.get::<_, String>(9)?)?,
        version: row.get(10)?,
        headers: from_json(&row.get::<_, String>(11)?)?,
        secrets: secrets_from_columns(&row.get::<_, String>(12)?, &row.get::<_, String>(13)?)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        signature_schemes: signature_schemes_from_json(&row.get::<_, String>(16)?)?,
        ordering: if row.get(17)? { DeliveryOrder::Fifo } else { DeliveryOrder::Unordered },
    })
}

/// An endpoint's event-type filter and channels, each `None` when unrestricted.
pub type Routing = (Option<Vec<String>>, Option<Vec<String>>);

/// Reads an endpoint's routing columns, `filter_types` and `channels` (JSON arrays or NULL), from `first` on.
pub fn routing_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Routing> {
    Ok((opt_json(row.get(first)?)?, opt_json(row.get(first + 1)?)?))
}

pub const MESSAGE_COLUMNS: &str = "m.id, m.app_id, m.event_id, m.event_type, m.payload, m.channels, m.created_at";

pub fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        payload: row.get(4)?,
        channels: opt_json(row.get(5)?)?,
        created_at: row.get(6)?,
    })
}

fn status_from_code(code: i64) -> rusqlite::Result<DeliveryStatus> {
    DeliveryStatus::from_code(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            format!("unknown delivery status {code}").into(),
        )
    })
}

/// Reads a delivery from `status, attempts, next_attempt_at, msg_id, endpoint_id` starting at `first`.
pub fn delivery_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        status: status_from_code(row.get(first)?)?,
        attempts: row.get(first + 1)?,
        next_attempt_at: row.get(first + 2)?,
        msg_id: MessageId::from_trusted(row.get(first + 3)?),
        endpoint_id: EndpointId::from_trusted(row.get(first + 4)?),
    })
}

pub const ATTEMPT_COLUMNS: &str = "a.id, a.app_id, a.msg_id, a.endpoint_id, a.url, a.response, \
     a.response_status_code, a.response_duration_ms, a.status, a.trigger_type, a.created_at";

pub fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        msg_id: MessageId::from_trusted(row.get(2)?),
        endpoint_id: EndpointId::from_trusted(row.get(3)?),
        url: row.get(4)?,
        response: row.get(5)?,
        response_status_code: row.get(6)?,
        response_duration_ms: row.get(7)?,
        status: status_from_code(row.get(8)?)?,
        trigger_type: TriggerType::from_code(row.get(9)?),
        created_at: row.get(10)?,
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

fn conversion_error(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
}

pub fn task_from_row(row: &Row<'_>) -> rusqlite::Result<BackgroundTask> {
    let kind: String = row.get(1)?;
    let status: String = row.get(4)?;
    let progress: StoredProgress = from_json(&row.get::<_, String>(8)?)?;
    Ok(BackgroundTask {
        id: TaskId::from_trusted(row.get(0)?),
        kind: TaskKind::from_name(&kind).ok_or_else(|| conversion_error(format!("unknown task kind {kind}")))?,
        app_id: AppId::from_trusted(row.get(2)?),
        endpoint_id: EndpointId::from_trusted(row.get(3)?),
        status: TaskStatus::from_name(&status)
            .ok_or_else(|| conversion_error(format!("unknown task status {status}")))?,
        window: TimeWindow { since: row.get(5)?, until: row.get(6)? },
        cursor: row.get::<_, Option<String>>(7)?.map(MessageId::from_trusted),
        progress: TaskProgress {
            sent: progress.sent,
            scanned: progress.scanned,
            total: progress.total,
            error: progress.error,
        },
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

pub const SOURCE_COLUMNS: &str =
    "id, uid, name, app_id, provider, options, secrets, tolerance_secs, created_at, updated_at";

/// A source's secrets as stored in `sources.secrets`: `{"current": "…", "previous": [["…", expires_at], …]}`.
#[derive(Serialize, Deserialize)]
struct StoredSourceSecrets {
    current: String,
    previous: Vec<(String, UnixMillis)>,
}

pub fn source_secrets_json(secrets: &SourceSecrets) -> String {
    to_json(&StoredSourceSecrets { current: secrets.current.clone(), previous: secrets.previous.clone() })
}

pub fn source_from_row(row: &Row<'_>) -> rusqlite::Result<Source> {
    let provider_name: String = row.get(4)?;
    let options: serde_json::Map<String, serde_json::Value> = from_json(&row.get::<_, String>(5)?)?;
    // The options were written by `Provider::options`, so a failure here means the row was damaged or written
    // by a version that knew options this one does not.
    let provider = Provider::from_options(&provider_name, &options)
        .map_err(|e| conversion_error(format!("stored options of provider `{provider_name}`: {e}")))?;
    let secrets: StoredSourceSecrets = from_json(&row.get::<_, String>(6)?)?;
    Ok(Source {
        id: SourceId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        app_id: AppId::from_trusted(row.get(3)?),
        provider,
        secrets: SourceSecrets { current: secrets.current, previous: secrets.previous },
        tolerance_secs: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

pub const INBOUND_EVENT_COLUMNS: &str = "id, source_id, status, reason, event_id, event_type, msg_id, received_at";

pub fn inbound_event_from_row(row: &Row<'_>) -> rusqlite::Result<InboundEvent> {
    let status: String = row.get(2)?;
    Ok(InboundEvent {
        id: InboundEventId::from_trusted(row.get(0)?),
        source_id: SourceId::from_trusted(row.get(1)?),
        status: InboundStatus::from_name(&status)
            .ok_or_else(|| conversion_error(format!("unknown inbound status {status}")))?,
        reason: row.get(3)?,
        event_id: row.get(4)?,
        event_type: row.get(5)?,
        msg_id: row.get::<_, Option<String>>(6)?.map(MessageId::from_trusted),
        received_at: row.get(7)?,
    })
}

/// A WHERE clause built from optional filters, with its parameters in order.
#[derive(Default)]
pub struct Filters {
    conditions: Vec<String>,
    pub params: Vec<Value>,
}

impl Filters {
    /// Adds a condition whose `?` placeholders take `values`, in order.
    pub fn add(&mut self, condition: impl Into<String>, values: impl IntoIterator<Item = Value>) {
        self.conditions.push(condition.into());
        self.params.extend(values);
    }

    /// Adds `column IN (…)` for a non-empty list.
    pub fn add_in(&mut self, column: &str, values: &[String]) {
        let placeholders = vec!["?"; values.len()].join(", ");
        self.add(format!("{column} IN ({placeholders})"), values.iter().cloned().map(Value::Text));
    }

    /// Adds the message filters shared by message and attempt lists (`m` is the messages table): any of the
    /// event types, and a channel.
    pub fn add_message_filters(&mut self, event_types: Option<&[String]>, channel: Option<&str>) {
        if let Some(types) = event_types.filter(|t| !t.is_empty()) {
            self.add_in("m.event_type", types);
        }
        if let Some(channel) = channel {
            self.add("EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)", [Value::Text(channel.to_owned())]);
        }
    }

    /// Adds `column < before` and `column > after` when given.
    pub fn add_time_range(&mut self, column: &str, before: Option<i64>, after: Option<i64>) {
        if let Some(before) = before {
            self.add(format!("{column} < ?"), [Value::Integer(before)]);
        }
        if let Some(after) = after {
            self.add(format!("{column} > ?"), [Value::Integer(after)]);
        }
    }

    /// Adds the cursor condition, ORDER BY and LIMIT (one extra row, see `Page::from_scan`) for `column`.
    pub fn finish_page(mut self, column: &str, page: &PageRequest) -> (String, Vec<Value>) {
        let descending = page.scan_descending();
        if let Some(cursor) = &page.cursor {
            let op = if descending { "<" } else { ">" };
            self.add(format!("{column} {op} ?"), [Value::Text(cursor.clone())]);
        }
        let direction = if descending { "DESC" } else { "ASC" };
        self.params.push(Value::Integer(page.limit as i64 + 1));
        (format!("{} ORDER BY {column} {direction} LIMIT ?", self.where_clause()), self.params)
    }

    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!(" WHERE {}", self.conditions.join(" AND ")) }
    }
}
