//! The inbound role on PostgreSQL: sources, the log of verified requests that reached them (deduplication by a
//! unique index), and the counts of rejected requests per source, reason and minute.
//!
//! As in SQLite, an inbound event's id carries its receive time, so a time bound is also an id bound: paging by
//! id is paging by time, and counting or purging by time is a range scan of an id index.

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{MessageId, SourceId};
use tokio_postgres::error::SqlState;

use super::PostgresStore;
use super::messages::insert_message;
use super::rows::*;
use super::{announce_new_work, pg_error};
use crate::{Inbound, InboundCounts, IngestOutcome, Page, PageRequest, PublishedMessage, StoreError, StoreResult};

/// Maps a failed write of a source: its uid (the table's only unique column besides the id) is taken, or its
/// application does not exist. Worded as the SQLite backend words it.
fn source_write_error(err: tokio_postgres::Error, source: &Source) -> StoreError {
    let Some(db) = err.as_db_error() else { return pg_error(err) };
    match (db.code(), db.constraint()) {
        (&SqlState::UNIQUE_VIOLATION, Some("sources_pkey")) => {
            StoreError::Conflict("a source with this id already exists".into())
        }
        (&SqlState::UNIQUE_VIOLATION, _) => StoreError::Conflict(match &source.uid {
            Some(uid) => format!("a source with the uid `{uid}` already exists"),
            None => "a source with this uid already exists".to_owned(),
        }),
        _ => pg_error(err),
    }
}

/// Maps a failed write of an inbound event: its source was deleted meanwhile (a foreign key, `NotFound`), or
/// (never in practice) its id is taken.
fn event_write_error(err: tokio_postgres::Error) -> StoreError {
    conflict_as(err, "an inbound event with this id already exists")
}

async fn write_source(db: &Client, source: &Source, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO sources (id, uid, name, app_id, provider, options, secrets, tolerance_secs, created_at, \
         updated_at, rate_limit, forward_headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12)"
    } else {
        "UPDATE sources SET uid = $2, name = $3, app_id = $4, provider = $5, options = $6, secrets = $7, \
         tolerance_secs = $8, created_at = $9, updated_at = $10, rate_limit = $11, \
         forward_headers = $12 WHERE id = $1"
    };
    let changed = execute(
        db,
        sql,
        &[
            &source.id.as_str(),
            &source.uid,
            &source.name,
            &source.app_id.as_str(),
            &source.provider.name(),
            &to_json(&source.provider.options()),
            &source_secrets_json(&source.secrets, cipher),
            &source.tolerance_secs,
            &source.created_at,
            &source.updated_at,
            &source.rate_limit.map(i64::from),
            &to_json(&source.forward_headers),
        ],
    )
    .await
    .map_err(|err| source_write_error(err, source))?;
    expect_changed(changed)
}

pub async fn create_source(db: &mut Client, source: &Source, cipher: &SecretCipher) -> StoreResult<()> {
    write_source(db, source, true, cipher).await
}

pub async fn get_source(db: &mut Client, id_or_uid: &str, cipher: &SecretCipher) -> StoreResult<Source> {
    let column = if SourceId::parse(id_or_uid).is_some() { "id" } else { "uid" };
    let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE {column} = $1");
    query_found(&*db, &sql, &[&id_or_uid], |row| source_from(row, cipher)).await
}

pub async fn list_sources(db: &mut Client, page: &PageRequest, cipher: &SecretCipher) -> StoreResult<Page<Source>> {
    let select = format!("SELECT {SOURCE_COLUMNS} FROM sources");
    query_page(&*db, &select, Filters::default(), "id", page, |row| source_from(row, cipher)).await
}

pub async fn update_source(db: &mut Client, source: &Source, cipher: &SecretCipher) -> StoreResult<()> {
    write_source(db, source, false, cipher).await
}

pub async fn delete_source(db: &mut Client, id: &SourceId) -> StoreResult<()> {
    // Its inbound events go with it (ON DELETE CASCADE); the messages they published stay.
    let changed = execute(&*db, "DELETE FROM sources WHERE id = $1", &[&id.as_str()]).await.map_err(pg_error)?;
    expect_changed(changed)
}

/// Records a verified request as new or as a duplicate, and publishes the message of a new one (counted into
/// `counted_as`'s activity counters).
pub async fn ingest(
    db: &mut Client,
    event: &InboundEvent,
    message: Option<&Message>,
    counted_as: &str,
) -> StoreResult<IngestOutcome> {
    let tx = db.transaction().await.map_err(pg_error)?;
    // The unique index on verified (source_id, event_id) is the duplicate check: when a verified row with this
    // event id exists, the insert does nothing. When another process is inserting the same event at the same
    // moment, this insert waits for its commit and then does nothing; letting the constraint decide, rather than
    // looking first, is what keeps one verified copy however many processes share the database.
    let inserted = execute(
        &tx,
        "INSERT INTO inbound_events (id, source_id, status, reason, event_id, event_type, msg_id, received_at) \
         VALUES ($1, $2, 'verified', NULL, $3, $4, $5, $6) \
         ON CONFLICT (source_id, event_id) WHERE status = 'verified' AND event_id IS NOT NULL DO NOTHING",
        &[
            &event.id.as_str(),
            &event.source_id.as_str(),
            &event.event_id,
            &event.event_type,
            &message.map(|msg| msg.id.as_str()),
            &event.received_at,
        ],
    )
    .await
    .map_err(event_write_error)?;
    let outcome = if inserted == 0 {
        let original_msg_id = original_msg_id(&tx, event).await?;
        insert_event(&tx, event, InboundStatus::Duplicate, None, original_msg_id.as_ref()).await?;
        IngestOutcome::Duplicate { original_msg_id }
    } else if let Some(message) = message {
        let deliveries = insert_message(&tx, message, None, None, counted_as).await?;
        if deliveries > 0 {
            announce_new_work(&tx).await?;
        }
        IngestOutcome::Recorded(Some(Box::new(PublishedMessage {
            message: message.clone(),
            deliveries,
            to_claim: deliveries,
        })))
    } else {
        IngestOutcome::Recorded(None)
    };
    tx.commit().await.map_err(pg_error)?;
    Ok(outcome)
}

/// The message of the verified event that `event` repeats (`None` if that event published none).
async fn original_msg_id(tx: &impl GenericClient, event: &InboundEvent) -> StoreResult<Option<MessageId>> {
    // A new statement sees the original even when it was committed by another process after this transaction
    // began (READ COMMITTED).
    let original = query_opt(
        tx,
        "SELECT msg_id FROM inbound_events WHERE source_id = $1 AND event_id = $2 AND status = 'verified'",
        &[&event.source_id.as_str(), &event.event_id],
    )
    .await
    .map_err(pg_error)?;
    // No row at all would mean the original was purged in between: still a duplicate, of nothing we can name.
    Ok(match original {
        Some(row) => row.opt_text(0)?.map(MessageId::from_trusted),
        None => None,
    })
}

pub async fn record_rejections(db: &mut Client, rejections: &[InboundRejections]) -> StoreResult<()> {
    let tx = db.transaction().await.map_err(pg_error)?;
    // The EXISTS drops counts of a source deleted since: there is no row left to count them in. Rows of one
    // batch have distinct keys (the caller's aggregate), so no row is updated twice by one statement.
    let sql = "INSERT INTO inbound_rejections (source_id, reason, minute, count, first_seen, last_seen, sample) \
               SELECT $1::TEXT, $2::TEXT, $3::BIGINT, $4::BIGINT, $5::BIGINT, $6::BIGINT, $7::TEXT \
               WHERE EXISTS (SELECT 1 FROM sources WHERE id = $1) \
               ON CONFLICT (source_id, minute, reason) DO UPDATE SET \
               count = inbound_rejections.count + excluded.count, \
               first_seen = LEAST(inbound_rejections.first_seen, excluded.first_seen), \
               last_seen = GREATEST(inbound_rejections.last_seen, excluded.last_seen), \
               sample = CASE WHEN excluded.sample IS NOT NULL AND excluded.last_seen >= inbound_rejections.last_seen \
               THEN excluded.sample ELSE COALESCE(inbound_rejections.sample, excluded.sample) END";
    // Rows are locked in key order, so that two processes writing overlapping counts at once cannot deadlock.
    let mut sorted: Vec<&InboundRejections> = rejections.iter().collect();
    sorted.sort_by(|a, b| (&a.source_id, a.minute, &a.reason).cmp(&(&b.source_id, b.minute, &b.reason)));
    for row in sorted {
        execute(
            &tx,
            sql,
            &[
                &row.source_id.as_str(),
                &row.reason,
                &row.minute,
                &i64::try_from(row.count).unwrap_or(i64::MAX),
                &row.first_seen,
                &row.last_seen,
                &row.sample,
            ],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

pub async fn list_inbound_rejections(
    db: &mut Client,
    source_id: &SourceId,
    page: &PageRequest,
) -> StoreResult<Page<InboundRejections>> {
    // Sorted by (minute, reason), the table's key after the source: the cursor is both.
    let descending = page.scan_descending();
    let mut filters = Filters::default();
    filters.add_equal("source_id", source_id.to_string());
    if let Some(cursor) = &page.cursor {
        let (minute, reason) = parse_rejection_cursor(cursor)?;
        let (minute, reason) = (filters.bind(minute), filters.bind(reason));
        let op = if descending { "<" } else { ">" };
        filters.add(format!("(minute, reason) {op} ({minute}, {reason})"));
    }
    let direction = if descending { "DESC" } else { "ASC" };
    let limit = filters.bind(sql_limit(page.limit).saturating_add(1));
    let sql = format!(
        "SELECT {INBOUND_REJECTION_COLUMNS} FROM inbound_rejections{} ORDER BY minute {direction}, reason {direction} \
         LIMIT {limit}",
        filters.where_clause()
    );
    let rows = query(&*db, &sql, &filters.params()).await.map_err(pg_error)?;
    let items = rows.iter().map(inbound_rejections_from).collect::<ColumnResult<Vec<_>>>()?;
    Ok(Page::from_scan(items, page))
}

/// Inserts `event` with the status, reason and message this store decided, whatever the caller had set.
async fn insert_event(
    db: &impl GenericClient,
    event: &InboundEvent,
    status: InboundStatus,
    reason: Option<&str>,
    msg_id: Option<&MessageId>,
) -> StoreResult<()> {
    execute(
        db,
        "INSERT INTO inbound_events (id, source_id, status, reason, event_id, event_type, msg_id, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &event.id.as_str(),
            &event.source_id.as_str(),
            &status.name(),
            &reason,
            &event.event_id,
            &event.event_type,
            &msg_id.map(MessageId::as_str),
            &event.received_at,
        ],
    )
    .await
    .map_err(event_write_error)?;
    Ok(())
}

pub async fn list_inbound_events(
    db: &mut Client,
    source_id: &SourceId,
    status: Option<InboundStatus>,
    page: &PageRequest,
) -> StoreResult<Page<InboundEvent>> {
    let mut filters = Filters::default();
    filters.add_equal("source_id", source_id.to_string());
    if let Some(status) = status {
        filters.add_equal("status", status.name().to_owned());
    }
    let select = format!("SELECT {INBOUND_EVENT_COLUMNS} FROM inbound_events");
    query_page(&*db, &select, filters, "id", page, inbound_event_from).await
}

pub async fn inbound_counts(
    db: &mut Client,
    source_id: &SourceId,
    since: Option<UnixMillis>,
) -> StoreResult<InboundCounts> {
    let mut filters = Filters::default();
    filters.add_equal("source_id", source_id.to_string());
    if let Some(since) = since {
        // The id bound lets the (source_id, id) index skip older events; the time bound is the exact rule.
        let (floor, at) = (filters.bind(event_id_floor(since)), filters.bind(since));
        filters.add(format!("id >= {floor}"));
        filters.add(format!("received_at >= {at}"));
    }
    let sql = format!("SELECT status, COUNT(*) FROM inbound_events{} GROUP BY status", filters.where_clause());
    let rows = query(&*db, &sql, &filters.params()).await.map_err(pg_error)?;
    let mut counts = rejection_counts(db, source_id, since).await?;
    for row in &rows {
        let number = count(row.int(1)?)?;
        // Rejected requests are counted in `inbound_rejections` (read above), never stored as events.
        match inbound_status_from_name(&row.text(0)?)? {
            InboundStatus::Verified => counts.verified += number,
            InboundStatus::Duplicate => counts.duplicates += number,
            InboundStatus::Rejected => {
                return Err(StoreError::Internal("a rejected request stored as an inbound event".to_owned()));
            }
        }
    }
    Ok(counts)
}

/// Rejected requests by reason, in rows whose last request is at or after `since`.
async fn rejection_counts(
    db: &mut Client,
    source_id: &SourceId,
    since: Option<UnixMillis>,
) -> StoreResult<InboundCounts> {
    let mut filters = Filters::default();
    filters.add_equal("source_id", source_id.to_string());
    if let Some(since) = since {
        // A row whose last request is at or after `since` has a minute at or after since's minute: the minute
        // bound lets the primary key skip older rows, the last-seen bound is the rule.
        let (minute, at) = (filters.bind(minute_of(since)), filters.bind(since));
        filters.add(format!("minute >= {minute}"));
        filters.add(format!("last_seen >= {at}"));
    }
    let sql =
        format!("SELECT reason, SUM(count)::BIGINT FROM inbound_rejections{} GROUP BY reason", filters.where_clause());
    let rows = query(&*db, &sql, &filters.params()).await.map_err(pg_error)?;
    let mut counts = InboundCounts::default();
    for row in &rows {
        counts.rejected_by_reason.insert(row.text(0)?, count(row.int(1)?)?);
    }
    Ok(counts)
}

pub async fn purge_inbound_events(db: &mut Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    let events = purge_events(db, before, limit).await?;
    let left = limit.saturating_sub(events as usize);
    if left == 0 {
        return Ok(events);
    }
    // Rows whose whole minute is before `before`, oldest first through the minute index.
    let rejections = execute(
        &*db,
        "DELETE FROM inbound_rejections WHERE (source_id, minute, reason) IN (SELECT source_id, minute, reason \
         FROM inbound_rejections WHERE minute <= $1 ORDER BY minute LIMIT $2)",
        &[&(before - 60_000), &sql_limit(left)],
    )
    .await
    .map_err(pg_error)?;
    Ok(events + rejections)
}

async fn purge_events(db: &mut Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    // Oldest first, through the primary key: ids start with the receive time.
    execute(
        &*db,
        "DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events \
         WHERE id < $1 AND received_at < $2 ORDER BY id LIMIT $3)",
        &[&event_id_floor(before), &before, &sql_limit(limit)],
    )
    .await
    .map_err(pg_error)
}

#[async_trait]
impl Inbound for PostgresStore {
    async fn create_source(&self, source: &Source) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_source(&mut db, source, &self.cipher).await
    }

    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        let mut db = self.client().await?;
        get_source(&mut db, id_or_uid, &self.cipher).await
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        let mut db = self.client().await?;
        list_sources(&mut db, page, &self.cipher).await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_source(&mut db, source, &self.cipher).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let mut db = self.client().await?;
        delete_source(&mut db, id).await
    }

    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
        let mut db = self.client().await?;
        ingest(&mut db, event, message, self.activity.single()).await
    }

    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()> {
        let mut db = self.client().await?;
        record_rejections(&mut db, rejections).await
    }

    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>> {
        let mut db = self.client().await?;
        list_inbound_rejections(&mut db, source_id, page).await
    }

    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>> {
        let mut db = self.client().await?;
        list_inbound_events(&mut db, source_id, status, page).await
    }

    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
        let mut db = self.client().await?;
        inbound_counts(&mut db, source_id, since).await
    }
}
