//! The inbound role on SQLite: sources, the log of verified requests that reached them (`inbound_events`), from
//! which `ingest` deduplicates provider event ids and publishes new events as messages, and the counts of
//! rejected requests per source, reason and minute (`inbound_rejections`).
//!
//! An inbound event's id must carry its receive time (`InboundEventId::at(received_at)`, one clock reading, as a
//! message's id and `created_at` are), so that a time bound is also an id bound: paging by id is paging by time,
//! and counting or purging by time is a range scan of an id index.

use async_trait::async_trait;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::{InboundEvent, InboundRejections, InboundStatus, Message, Source, minute_of};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{MessageId, SourceId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, ffi, params};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::messages::insert_message;
use super::rows::*;
use crate::{Inbound, InboundCounts, IngestOutcome, Page, PageRequest, PublishedMessage, StoreError, StoreResult};

/// The SQLite extended result code of a failed statement, when it broke a constraint.
fn broken_constraint(err: &rusqlite::Error) -> Option<i32> {
    match err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Some(e.extended_code)
        }
        _ => None,
    }
}

/// Maps a failed write of a source: its uid (the table's only unique column besides the id) is taken, or its
/// application does not exist.
fn source_write_error(err: rusqlite::Error, source: &Source) -> StoreError {
    match broken_constraint(&err) {
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound,
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => StoreError::Conflict(match &source.uid {
            Some(uid) => format!("a source with the uid `{uid}` already exists"),
            None => "a source with this uid already exists".to_owned(),
        }),
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => StoreError::Conflict("a source with this id already exists".into()),
        _ => StoreError::Internal(err.to_string()),
    }
}

/// Maps a failed write of an inbound event: its source was deleted meanwhile, or (never in practice) its id is
/// taken.
fn event_write_error(err: rusqlite::Error) -> StoreError {
    match broken_constraint(&err) {
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound,
        _ => conflict_or_internal(err, "an inbound event with this id already exists"),
    }
}

pub fn write_source(conn: &Connection, source: &Source, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO sources (id, uid, name, app_id, provider, options, secrets, tolerance_secs, created_at, \
         updated_at, rate_limit, forward_headers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12)"
    } else {
        "UPDATE sources SET uid = ?2, name = ?3, app_id = ?4, provider = ?5, options = ?6, secrets = ?7, \
         tolerance_secs = ?8, created_at = ?9, updated_at = ?10, rate_limit = ?11, \
         forward_headers = ?12 WHERE id = ?1"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                source.id.as_str(),
                source.uid,
                source.name,
                source.app_id.as_str(),
                source.provider.name(),
                to_json(&source.provider.options()),
                source_secrets_json(&source.secrets, cipher),
                source.tolerance_secs,
                source.created_at,
                source.updated_at,
                source.rate_limit,
                to_json(&source.forward_headers)
            ])
        })
        .map_err(|e| source_write_error(e, source))?;
    expect_changed(changed)
}

pub fn get_source(conn: &Connection, id_or_uid: &str, cipher: &SecretCipher) -> StoreResult<Source> {
    let column = if SourceId::parse(id_or_uid).is_some() { "id" } else { "uid" };
    conn.prepare_cached(&format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE {column} = ?1"))
        .and_then(|mut stmt| stmt.query_row([id_or_uid], |row| source_from_row(row, cipher)))
        .map_err(not_found_or_internal)
}

pub fn list_sources(conn: &Connection, page: &PageRequest, cipher: &SecretCipher) -> StoreResult<Page<Source>> {
    let select = format!("SELECT {SOURCE_COLUMNS} FROM sources");
    query_page(conn, &select, Filters::default(), "id", page, |row| source_from_row(row, cipher))
}

pub fn delete_source(conn: &Connection, id: &SourceId) -> StoreResult<()> {
    // Its inbound events go with it (ON DELETE CASCADE); the messages they published stay.
    let changed = conn.execute("DELETE FROM sources WHERE id = ?1", [id.as_str()]).map_err(sql_error)?;
    expect_changed(changed)
}

/// Records a verified request as new or as a duplicate, and publishes the message of a new one.
pub fn ingest(conn: &Connection, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
    // The unique index on verified (source_id, event_id) is the duplicate check: when a verified row with this
    // event id exists, the insert does nothing. Letting the constraint decide, rather than looking first, stays
    // right when several processes share a database and two of them get the same event at once.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO inbound_events (id, source_id, status, reason, event_id, event_type, msg_id, received_at) \
             VALUES (?1, ?2, 'verified', NULL, ?3, ?4, ?5, ?6) \
             ON CONFLICT (source_id, event_id) WHERE status = 'verified' AND event_id IS NOT NULL DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                event.id.as_str(),
                event.source_id.as_str(),
                event.event_id,
                event.event_type,
                message.map(|msg| msg.id.as_str()),
                event.received_at
            ])
        })
        .map_err(event_write_error)?;
    if inserted == 0 {
        let original_msg_id = original_msg_id(conn, event)?;
        insert_event(conn, event, InboundStatus::Duplicate, None, original_msg_id.as_ref())?;
        return Ok(IngestOutcome::Duplicate { original_msg_id });
    }
    let Some(message) = message else {
        return Ok(IngestOutcome::Recorded(None));
    };
    let deliveries = insert_message(conn, message, None, None)?;
    Ok(IngestOutcome::Recorded(Some(Box::new(PublishedMessage {
        message: message.clone(),
        deliveries,
        to_claim: deliveries,
    }))))
}

/// The message of the verified event that `event` repeats (`None` if that event published none).
fn original_msg_id(conn: &Connection, event: &InboundEvent) -> StoreResult<Option<MessageId>> {
    let original: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT msg_id FROM inbound_events WHERE source_id = ?1 AND event_id = ?2 AND status = 'verified'",
        )
        .and_then(|mut stmt| stmt.query_row(params![event.source_id.as_str(), event.event_id], |row| row.get(0)))
        .optional()
        .map_err(sql_error)?;
    // No row at all would mean the original was purged in between: still a duplicate, of nothing we can name.
    Ok(original.flatten().map(MessageId::from_trusted))
}

pub fn record_rejections(conn: &Connection, rejections: &[InboundRejections]) -> StoreResult<()> {
    // The EXISTS drops counts of a source deleted since: there is no row left to count them in.
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO inbound_rejections (source_id, reason, minute, count, first_seen, last_seen, sample) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM sources WHERE id = ?1) \
             ON CONFLICT (source_id, minute, reason) DO UPDATE SET \
             count = inbound_rejections.count + excluded.count, \
             first_seen = MIN(inbound_rejections.first_seen, excluded.first_seen), \
             last_seen = MAX(inbound_rejections.last_seen, excluded.last_seen), \
             sample = CASE WHEN excluded.sample IS NOT NULL AND excluded.last_seen >= inbound_rejections.last_seen \
             THEN excluded.sample ELSE COALESCE(inbound_rejections.sample, excluded.sample) END",
        )
        .map_err(sql_error)?;
    for row in rejections {
        stmt.execute(params![
            row.source_id.as_str(),
            row.reason,
            row.minute,
            i64::try_from(row.count).unwrap_or(i64::MAX),
            row.first_seen,
            row.last_seen,
            row.sample
        ])
        .map_err(sql_error)?;
    }
    Ok(())
}

pub fn list_inbound_rejections(
    conn: &Connection,
    source_id: &SourceId,
    page: &PageRequest,
) -> StoreResult<Page<InboundRejections>> {
    // Sorted by (minute, reason), the table's key after the source: the cursor is both.
    let descending = page.scan_descending();
    let mut filters = Filters::default();
    filters.add("source_id = ?", [text(source_id.as_str())]);
    if let Some(cursor) = &page.cursor {
        let (minute, reason) = parse_rejection_cursor(cursor)?;
        let op = if descending { "<" } else { ">" };
        filters.add(format!("(minute, reason) {op} (?, ?)"), [Value::Integer(minute), Value::Text(reason)]);
    }
    let direction = if descending { "DESC" } else { "ASC" };
    let mut params = filters.params.clone();
    params.push(Value::Integer(page.limit as i64 + 1));
    let sql = format!(
        "SELECT {INBOUND_REJECTION_COLUMNS} FROM inbound_rejections{} ORDER BY minute {direction}, reason {direction} \
         LIMIT ?",
        filters.where_clause()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), inbound_rejections_from_row)
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    Ok(Page::from_scan(rows, page))
}

/// Inserts `event` with the status, reason and message this store decided, whatever the caller had set.
fn insert_event(
    conn: &Connection,
    event: &InboundEvent,
    status: InboundStatus,
    reason: Option<&str>,
    msg_id: Option<&MessageId>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO inbound_events (id, source_id, status, reason, event_id, event_type, msg_id, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            event.id.as_str(),
            event.source_id.as_str(),
            status.name(),
            reason,
            event.event_id,
            event.event_type,
            msg_id.map(MessageId::as_str),
            event.received_at
        ])
    })
    .map_err(event_write_error)?;
    Ok(())
}

pub fn list_inbound_events(
    conn: &Connection,
    source_id: &SourceId,
    status: Option<InboundStatus>,
    page: &PageRequest,
) -> StoreResult<Page<InboundEvent>> {
    let mut filters = Filters::default();
    filters.add("source_id = ?", [text(source_id.as_str())]);
    if let Some(status) = status {
        filters.add("status = ?", [text(status.name())]);
    }
    let select = format!("SELECT {INBOUND_EVENT_COLUMNS} FROM inbound_events");
    query_page(conn, &select, filters, "id", page, inbound_event_from_row)
}

pub fn inbound_counts(
    conn: &Connection,
    source_id: &SourceId,
    since: Option<UnixMillis>,
) -> StoreResult<InboundCounts> {
    let mut filters = Filters::default();
    filters.add("source_id = ?", [text(source_id.as_str())]);
    if let Some(since) = since {
        // The id bound lets the (source_id, id) index skip older events; the time bound is the exact rule.
        filters.add("id >= ?", [Value::Text(event_id_floor(since))]);
        filters.add("received_at >= ?", [Value::Integer(since)]);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT status, COUNT(*) FROM inbound_events{} GROUP BY status",
            filters.where_clause()
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(filters.params), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(sql_error)?;
    let mut counts = rejection_counts(conn, source_id, since)?;
    for row in rows {
        let (status, count) = row.map_err(sql_error)?;
        let count = count.max(0) as u64;
        // Rejected requests are counted in `inbound_rejections` (read above), never stored as events.
        match InboundStatus::from_name(&status) {
            Some(InboundStatus::Verified) => counts.verified += count,
            Some(InboundStatus::Duplicate) => counts.duplicates += count,
            _ => return Err(StoreError::Internal(format!("unexpected inbound event status {status}"))),
        }
    }
    Ok(counts)
}

/// Rejected requests by reason, in rows whose last request is at or after `since`.
fn rejection_counts(conn: &Connection, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
    let mut filters = Filters::default();
    filters.add("source_id = ?", [text(source_id.as_str())]);
    if let Some(since) = since {
        // A row whose last request is at or after `since` has a minute at or after since's minute: the minute
        // bound lets the primary key skip older rows, the last-seen bound is the rule.
        filters.add("minute >= ?", [Value::Integer(minute_of(since))]);
        filters.add("last_seen >= ?", [Value::Integer(since)]);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT reason, SUM(count) FROM inbound_rejections{} GROUP BY reason",
            filters.where_clause()
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(filters.params), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(sql_error)?;
    let mut counts = InboundCounts::default();
    for row in rows {
        let (reason, count) = row.map_err(sql_error)?;
        counts.rejected_by_reason.insert(reason, count.max(0) as u64);
    }
    Ok(counts)
}

pub fn purge_inbound_events(conn: &Connection, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    let events = purge_events(conn, before, limit)?;
    let left = limit.saturating_sub(events as usize);
    if left == 0 {
        return Ok(events);
    }
    // Rows whose whole minute is before `before`, oldest first through the minute index.
    let rejections = conn
        .prepare_cached(
            "DELETE FROM inbound_rejections WHERE (source_id, minute, reason) IN (SELECT source_id, minute, reason \
             FROM inbound_rejections WHERE minute <= ?1 ORDER BY minute LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![before - 60_000, left as i64]))
        .map_err(sql_error)?;
    Ok(events + rejections as u64)
}

fn purge_events(conn: &Connection, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    // Oldest first, through the primary key: ids start with the receive time.
    let purged = conn
        .prepare_cached(
            "DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events \
             WHERE id < ?1 AND received_at < ?2 ORDER BY id LIMIT ?3)",
        )
        .and_then(|mut stmt| stmt.execute(params![event_id_floor(before), before, limit as i64]))
        .map_err(sql_error)?;
    Ok(purged as u64)
}

#[async_trait]
impl Inbound for SqliteStore {
    async fn create_source(&self, source: &Source) -> StoreResult<()> {
        let (source, cipher) = (source.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| write_source(conn, &source, true, &cipher)).await
    }

    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        let (key, cipher) = (id_or_uid.to_owned(), self.cipher.clone());
        self.db.read(move |conn| get_source(conn, &key, &cipher)).await
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        let (page, cipher) = (page.clone(), self.cipher.clone());
        self.db.read(move |conn| list_sources(conn, &page, &cipher)).await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        let (source, cipher) = (source.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| write_source(conn, &source, false, &cipher)).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let id = id.clone();
        self.db.write(Durability::PowerLoss, move |conn| delete_source(conn, &id)).await
    }

    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
        let (event, message) = (event.clone(), message.cloned());
        self.db.write(Durability::PowerLoss, move |conn| ingest(conn, &event, message.as_ref())).await
    }

    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()> {
        let rejections = rejections.to_vec();
        // Nothing is acknowledged on a rejection, and losing the last few to a power cut only loses statistics:
        // no fsync of its own.
        self.db.write(Durability::ProcessCrash, move |conn| record_rejections(conn, &rejections)).await
    }

    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>> {
        let (source_id, page) = (source_id.clone(), page.clone());
        self.db.read(move |conn| list_inbound_rejections(conn, &source_id, &page)).await
    }

    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>> {
        let (source_id, page) = (source_id.clone(), page.clone());
        self.db.read(move |conn| list_inbound_events(conn, &source_id, status, &page)).await
    }

    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
        let source_id = source_id.clone();
        self.db.read(move |conn| inbound_counts(conn, &source_id, since)).await
    }
}
