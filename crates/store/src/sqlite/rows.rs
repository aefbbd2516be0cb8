//! Conversions between SQLite rows and the domain model, and the SQL fragments that several queries share. The
//! model itself is read and written by the backend-neutral `crate::columns`; this module only adapts rusqlite's
//! rows and errors to it.

use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EventType, InboundEvent, InboundRejections, Message,
    Source,
};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::connection::sql_error;
pub use crate::columns::*;
use crate::{Page, PageRequest, StoreError, StoreResult};

/// rusqlite's errors for a value it read but the model cannot take.
fn column_error(err: ColumnError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(err))
}

impl ColumnRead for Row<'_> {
    fn text(&self, index: usize) -> ColumnResult<String> {
        self.get(index).map_err(|e| ColumnError::new(format!("column {index}: {e}")))
    }
    fn opt_text(&self, index: usize) -> ColumnResult<Option<String>> {
        self.get(index).map_err(|e| ColumnError::new(format!("column {index}: {e}")))
    }
    fn int(&self, index: usize) -> ColumnResult<i64> {
        self.get(index).map_err(|e| ColumnError::new(format!("column {index}: {e}")))
    }
    fn opt_int(&self, index: usize) -> ColumnResult<Option<i64>> {
        self.get(index).map_err(|e| ColumnError::new(format!("column {index}: {e}")))
    }
}

/// JSON read from a column, with rusqlite's error type (for closures of `query_map`).
pub fn json_column<T: for<'de> serde::Deserialize<'de>>(text: &str) -> rusqlite::Result<T> {
    from_json(text).map_err(column_error)
}

/// Maps a failed statement to `Conflict(what)` when it broke a uniqueness rule, to `NotFound` when the row it
/// refers to is gone, else to `Internal`.
pub fn conflict_or_internal(err: rusqlite::Error, what: &str) -> StoreError {
    match &err {
        // The row it belongs to (e.g. a message's application) was deleted meanwhile.
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound
        }
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

pub fn app_from_row(row: &Row<'_>) -> rusqlite::Result<Application> {
    app_from(row).map_err(column_error)
}

pub fn event_type_from_row(row: &Row<'_>) -> rusqlite::Result<EventType> {
    event_type_from(row).map_err(column_error)
}

pub fn endpoint_from_row(row: &Row<'_>, cipher: &SecretCipher) -> rusqlite::Result<Endpoint> {
    endpoint_from(row, cipher).map_err(column_error)
}

/// Reads an endpoint's routing columns, `filter_types` and `channels` (JSON arrays or NULL), from `first` on.
pub fn routing_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Routing> {
    routing_from(row, first).map_err(column_error)
}

pub fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    message_from(row).map_err(column_error)
}

/// Reads a delivery from `DELIVERY_COLUMNS` starting at `first`.
pub fn delivery_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Delivery> {
    delivery_from(row, first).map_err(column_error)
}

pub fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    attempt_from(row).map_err(column_error)
}

pub fn task_from_row(row: &Row<'_>) -> rusqlite::Result<BackgroundTask> {
    task_from(row).map_err(column_error)
}

pub fn source_from_row(row: &Row<'_>, cipher: &SecretCipher) -> rusqlite::Result<Source> {
    source_from(row, cipher).map_err(column_error)
}

pub fn inbound_event_from_row(row: &Row<'_>) -> rusqlite::Result<InboundEvent> {
    inbound_event_from(row).map_err(column_error)
}

pub fn inbound_rejections_from_row(row: &Row<'_>) -> rusqlite::Result<InboundRejections> {
    inbound_rejections_from(row).map_err(column_error)
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
    /// event types, a channel and a tag.
    pub fn add_message_filters(&mut self, event_types: Option<&[String]>, channel: Option<&str>, tag: Option<&str>) {
        if let Some(types) = event_types.filter(|t| !t.is_empty()) {
            self.add_in("m.event_type", types);
        }
        if let Some(channel) = channel {
            self.add("EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)", [Value::Text(channel.to_owned())]);
        }
        if let Some(tag) = tag {
            self.add("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)", [Value::Text(tag.to_owned())]);
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

pub(super) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub(super) fn query_page<T>(
    conn: &Connection,
    select: &str,
    filters: Filters,
    cursor_column: &str,
    page: &PageRequest,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Page<T>> {
    let (tail, params) = filters.finish_page(cursor_column, page);
    let mut stmt = conn.prepare_cached(&format!("{select}{tail}")).map_err(sql_error)?;
    let rows = stmt
        .query_map(params_from_iter(params), map)
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    Ok(Page::from_scan(rows, page))
}
