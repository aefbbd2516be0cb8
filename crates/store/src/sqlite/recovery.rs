//! The recovery role on SQLite: background task rows, the batches of recover (re-queue failed deliveries) and
//! replay-missing (create the deliveries an endpoint never had), and retention (disabling endpoints that keep
//! failing, purging old payloads and inbound events).
//!
//! Both batches walk one endpoint's window in message-id order. Message ids carry their creation time (the
//! API stamps a message's id and `created_at` from the same clock reading), so the window is also an id
//! range, and each batch is an index range scan starting after the previous batch's last id, however large
//! the window.

use async_trait::async_trait;
use hookrelay_core::model::{BackgroundTask, TimeWindow};
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId, MessageId};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::rows::*;
use crate::{BatchDone, DisabledEndpoint, Page, PageRequest, Recovery, StoreError, StoreResult, TaskFilter};

pub fn write_task(conn: &Connection, task: &BackgroundTask, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO background_tasks (id, kind, app_id, endpoint_id, status, since, until, cursor, data, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    } else {
        "UPDATE background_tasks SET status = ?5, cursor = ?8, data = ?9, updated_at = ?11 WHERE id = ?1"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                task.id.as_str(),
                task.kind.name(),
                task.app_id.as_str(),
                task.endpoint_id.as_str(),
                task.status.name(),
                task.window.since,
                task.window.until,
                task.cursor.as_ref().map(|c| c.as_str()),
                progress_json(&task.progress),
                task.created_at,
                task.updated_at
            ])
        })
        .map_err(|e| conflict_or_internal(e, "a background task with this id already exists"))?;
    expect_changed(changed)
}

/// The failed deliveries of a recover's window, from `FROM` on; shared by the count and the batch.
const FAILED_IN_WINDOW: &str = "FROM deliveries d JOIN messages m ON m.id = d.msg_id \
     WHERE d.endpoint_id = ?1 AND d.status = 2 AND d.msg_id >= ?2 AND d.msg_id < ?3 \
     AND m.created_at >= ?4 AND m.created_at < ?5";

pub fn count_failed(conn: &Connection, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
    let count: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) {FAILED_IN_WINDOW}"))
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    endpoint_id.as_str(),
                    msg_id_floor(window.since),
                    msg_id_floor(window.until),
                    window.since,
                    window.until
                ],
                |row| row.get(0),
            )
        })
        .map_err(sql_error)?;
    Ok(count.max(0) as u64)
}

pub fn count_messages(conn: &Connection, app_id: &str, window: TimeWindow) -> StoreResult<u64> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages m WHERE m.app_id = ?1 AND m.id >= ?2 AND m.id < ?3 \
             AND m.created_at >= ?4 AND m.created_at < ?5",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![app_id, msg_id_floor(window.since), msg_id_floor(window.until), window.since, window.until],
                |row| row.get(0),
            )
        })
        .map_err(sql_error)?;
    Ok(count.max(0) as u64)
}

pub fn requeue_failed(
    conn: &Connection,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    let mut select = conn
        .prepare_cached(&format!("SELECT d.msg_id {FAILED_IN_WINDOW} AND d.msg_id > ?6 ORDER BY d.msg_id LIMIT ?7"))
        .map_err(sql_error)?;
    let ids = select
        .query_map(
            params![
                endpoint_id.as_str(),
                msg_id_floor(window.since),
                msg_id_floor(window.until),
                window.since,
                window.until,
                after.map_or("", |id| id.as_str()),
                limit as i64
            ],
            |row| row.get::<_, String>(0),
        )
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    let mut update = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 1, attempts = 0, manual = 0, next_attempt_at = ?3 \
             WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 2",
        )
        .map_err(sql_error)?;
    let now = now_ms();
    let mut queued = 0;
    for id in &ids {
        queued += update.execute(params![id, endpoint_id.as_str(), now]).map_err(sql_error)? as u64;
    }
    Ok(BatchDone {
        scanned: ids.len() as u64,
        queued,
        done: ids.len() < limit,
        last: ids.last().cloned().map(MessageId::from_trusted),
    })
}

pub fn insert_missing(
    conn: &Connection,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    let endpoint = conn
        .prepare_cached("SELECT app_id, filter_types, channels, disabled FROM endpoints WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([endpoint_id.as_str()], |row| {
                let (filter, channels) = routing_from_row(row, 1)?;
                Ok((row.get::<_, String>(0)?, filter, channels, row.get::<_, bool>(3)?))
            })
            .optional()
        })
        .map_err(sql_error)?;
    let Some((app_id, filter, endpoint_channels, disabled)) = endpoint else {
        return Err(StoreError::NotFound);
    };
    if disabled {
        return Ok(BatchDone { done: true, ..BatchDone::default() });
    }

    let mut select = conn
        .prepare_cached(
            "SELECT m.id, m.event_type, m.channels, \
             EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.endpoint_id = ?1) \
             FROM messages m WHERE m.app_id = ?2 AND m.id >= ?3 AND m.id < ?4 AND m.id > ?5 \
             AND m.created_at >= ?6 AND m.created_at < ?7 ORDER BY m.id LIMIT ?8",
        )
        .map_err(sql_error)?;
    let candidates = select
        .query_map(
            params![
                endpoint_id.as_str(),
                app_id,
                msg_id_floor(window.since),
                msg_id_floor(window.until),
                after.map_or("", |id| id.as_str()),
                window.since,
                window.until,
                limit as i64
            ],
            |row| {
                let channels: Option<String> = row.get(2)?;
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    channels.map(|c| json_column::<Vec<String>>(&c)).transpose()?,
                    row.get::<_, bool>(3)?,
                ))
            },
        )
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    let mut insert = conn
        .prepare_cached(
            // Due now, or at the message's `deliverAt` if that is still ahead.
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             SELECT id, ?2, 1, 0, 0, MAX(?3, COALESCE(deliver_at, 0)) FROM messages WHERE id = ?1 \
             ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
        )
        .map_err(sql_error)?;
    let now = now_ms();
    let mut queued = 0;
    for (msg_id, event_type, msg_channels, delivered) in &candidates {
        let accepts =
            endpoint_accepts(filter.as_deref(), endpoint_channels.as_deref(), event_type, msg_channels.as_deref());
        if accepts && !delivered {
            queued += insert.execute(params![msg_id, endpoint_id.as_str(), now]).map_err(sql_error)? as u64;
        }
    }
    Ok(BatchDone {
        scanned: candidates.len() as u64,
        queued,
        done: candidates.len() < limit,
        last: candidates.last().map(|c| MessageId::from_trusted(c.0.clone())),
    })
}

#[async_trait]
impl Recovery for SqliteStore {
    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>> {
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE endpoints SET disabled = 1, updated_at = ?2 \
                         WHERE disabled = 0 AND failing_since < ?1 RETURNING app_id, id, failing_since",
                    )
                    .map_err(sql_error)?;
                let disabled = stmt
                    .query_map(params![failing_since_before, now_ms()], |row| {
                        Ok(DisabledEndpoint {
                            app_id: AppId::from_trusted(row.get(0)?),
                            endpoint_id: EndpointId::from_trusted(row.get(1)?),
                            failing_since: row.get(2)?,
                        })
                    })
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql_error)?;
                Ok(disabled)
            })
            .await
    }

    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let task = task.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_task(conn, &task, true)).await
    }

    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = ?1"))
                    .and_then(|mut stmt| stmt.query_row([id], task_from_row))
                    .map_err(not_found_or_internal)
            })
            .await
    }

    async fn purge_payloads(
        &self,
        server_cutoff: Option<UnixMillis>,
        now: UnixMillis,
        limit: usize,
    ) -> StoreResult<u64> {
        // Ids start with their creation time, so the primary key finds old messages without another index;
        // messages with their own retention are found by `messages_payload_expiry`.
        let below =
            server_cutoff.map(|cutoff| format!("{}{}", MessageId::PREFIX, hookrelay_core::id::min_body_at(cutoff)));
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let mut purged = 0;
                if let Some(below) = &below {
                    purged += conn
                        .prepare_cached(
                            "UPDATE messages SET payload = '' WHERE id IN (SELECT m.id FROM messages m \
                             WHERE m.id < ?1 AND m.payload_expires_at IS NULL AND m.payload != '' AND NOT EXISTS \
                             (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) LIMIT ?2)",
                        )
                        .and_then(|mut stmt| stmt.execute(params![below, limit as i64]))
                        .map_err(sql_error)?;
                }
                if purged < limit {
                    purged += conn
                        .prepare_cached(
                            "UPDATE messages SET payload = '' WHERE id IN (SELECT m.id FROM messages m \
                             WHERE m.payload_expires_at <= ?1 AND m.payload != '' AND NOT EXISTS \
                             (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) LIMIT ?2)",
                        )
                        .and_then(|mut stmt| stmt.execute(params![now, (limit - purged) as i64]))
                        .map_err(sql_error)?;
                }
                Ok(purged as u64)
            })
            .await
    }

    async fn list_background_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackgroundTask>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                if let Some(status) = filter.status {
                    filters.add("status = ?", [text(status.name())]);
                }
                if let Some(kind) = filter.kind {
                    filters.add("kind = ?", [text(kind.name())]);
                }
                let select = format!("SELECT {TASK_COLUMNS} FROM background_tasks");
                query_page(conn, &select, filters, "id", &page, task_from_row)
            })
            .await
    }

    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let task = task.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_task(conn, &task, false)).await
    }

    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
        let endpoint_id = endpoint_id.clone();
        self.db.read(move |conn| count_failed(conn, &endpoint_id, window)).await
    }

    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
        let app_id = app_id.clone();
        self.db.read(move |conn| count_messages(conn, app_id.as_str(), window)).await
    }

    // Both batches are fsynced: they run after the API answered 202, and each one's effect must not be
    // undone by a power cut once the task's saved cursor has moved past it.
    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let (endpoint_id, after) = (endpoint_id.clone(), after.cloned());
        self.db
            .write(Durability::PowerLoss, move |conn| requeue_failed(conn, &endpoint_id, window, limit, after.as_ref()))
            .await
    }

    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let (endpoint_id, after) = (endpoint_id.clone(), after.cloned());
        self.db
            .write(Durability::PowerLoss, move |conn| insert_missing(conn, &endpoint_id, window, limit, after.as_ref()))
            .await
    }

    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.db
            .write(Durability::PowerLoss, move |conn| super::inbound::purge_inbound_events(conn, before, limit))
            .await
    }

    async fn purge_activity(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.db.write(Durability::PowerLoss, move |conn| super::operations::purge_activity(conn, before, limit)).await
    }

    async fn purge_endpoint_failures(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.db
            .write(Durability::PowerLoss, move |conn| super::operations::purge_endpoint_failures(conn, before, limit))
            .await
    }

    /// SQLite updates rows in place and reuses freed pages: nothing piles up.
    async fn tidy_queue(&self) -> StoreResult<bool> {
        Ok(false)
    }
}
