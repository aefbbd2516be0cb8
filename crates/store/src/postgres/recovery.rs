//! The recovery role on PostgreSQL: background task rows, counting and batch-walking a window in message-id
//! order for recover and replay-missing, and retention (disabling endpoints that keep failing, purging old
//! payloads and inbound events).
//!
//! As in SQLite, message ids carry their creation time, so the window is also an id range and each batch is an
//! index range scan after the previous batch's last id. A batch that queued deliveries announces them, so every
//! process's dispatcher starts at once.

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::model::{TimeWindow, *};
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId, MessageId};

use super::PostgresStore;
use super::rows::*;
use super::{announce_new_work, pg_error};
use crate::{BatchDone, DisabledEndpoint, Page, PageRequest, Recovery, StoreError, StoreResult, TaskFilter};

/// The failed deliveries of a recover's window, from `FROM` on; shared by the count and the batch.
const FAILED_IN_WINDOW: &str = "FROM deliveries d JOIN messages m ON m.id = d.msg_id \
     WHERE d.endpoint_id = $1 AND d.status = 2 AND d.msg_id >= $2 AND d.msg_id < $3 \
     AND m.created_at >= $4 AND m.created_at < $5";

pub async fn count_failed_deliveries(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
) -> StoreResult<u64> {
    query_count(
        &*db,
        &format!("SELECT COUNT(*) {FAILED_IN_WINDOW}"),
        &[
            &endpoint_id.as_str(),
            &msg_id_floor(window.since),
            &msg_id_floor(window.until),
            &window.since,
            &window.until,
        ],
    )
    .await
}

pub async fn count_messages(db: &mut Client, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
    query_count(
        &*db,
        "SELECT COUNT(*) FROM messages m WHERE m.app_id = $1 AND m.id >= $2 AND m.id < $3 \
         AND m.created_at >= $4 AND m.created_at < $5",
        &[&app_id.as_str(), &msg_id_floor(window.since), &msg_id_floor(window.until), &window.since, &window.until],
    )
    .await
}

pub async fn requeue_failed(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    let tx = db.transaction().await.map_err(pg_error)?;
    let rows = query(
        &tx,
        &format!("SELECT d.msg_id {FAILED_IN_WINDOW} AND d.msg_id > $6 ORDER BY d.msg_id LIMIT $7"),
        &[
            &endpoint_id.as_str(),
            &msg_id_floor(window.since),
            &msg_id_floor(window.until),
            &window.since,
            &window.until,
            &after.map_or("", MessageId::as_str),
            &sql_limit(limit),
        ],
    )
    .await
    .map_err(pg_error)?;
    let ids = rows.iter().map(|row| row.text(0)).collect::<ColumnResult<Vec<_>>>()?;
    // Only rows still failed: one that a resend made pending meanwhile is left alone.
    let queued = execute(
        &tx,
        "UPDATE deliveries SET status = 1, attempts = 0, manual = 0, next_attempt_at = $3 \
         WHERE endpoint_id = $1 AND msg_id = ANY($2) AND status = 2",
        &[&endpoint_id.as_str(), &ids, &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    if queued > 0 {
        announce_new_work(&tx).await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(BatchDone {
        scanned: ids.len() as u64,
        queued,
        done: ids.len() < limit,
        last: ids.last().cloned().map(MessageId::from_trusted),
    })
}

pub async fn insert_missing_deliveries(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    let endpoint = query_opt(
        &*db,
        "SELECT app_id, filter_types, channels, disabled FROM endpoints WHERE id = $1",
        &[&endpoint_id.as_str()],
    )
    .await
    .map_err(pg_error)?
    .ok_or(StoreError::NotFound)?;
    let (app_id, (filter, endpoint_channels)) = (endpoint.text(0)?, routing_from(&endpoint, 1)?);
    if endpoint.flag(3)? {
        return Ok(BatchDone { done: true, ..BatchDone::default() });
    }

    // Under READ COMMITTED each statement sees the latest commits anyway, so reading the endpoint before the
    // transaction loses nothing; the insert below is what must be atomic with its announcement.
    let tx = db.transaction().await.map_err(pg_error)?;
    let candidates = query(
        &tx,
        "SELECT m.id, m.event_type, m.channels, \
         EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.endpoint_id = $1) \
         FROM messages m WHERE m.app_id = $2 AND m.id >= $3 AND m.id < $4 AND m.id > $5 \
         AND m.created_at >= $6 AND m.created_at < $7 ORDER BY m.id LIMIT $8",
        &[
            &endpoint_id.as_str(),
            &app_id,
            &msg_id_floor(window.since),
            &msg_id_floor(window.until),
            &after.map_or("", MessageId::as_str),
            &window.since,
            &window.until,
            &sql_limit(limit),
        ],
    )
    .await
    .map_err(pg_error)?;
    let mut missing = Vec::new();
    for row in &candidates {
        let delivered: bool = row.try_get(3).map_err(|err| StoreError::Internal(format!("delivery exists: {err}")))?;
        let accepts = endpoint_accepts(
            filter.as_deref(),
            endpoint_channels.as_deref(),
            &row.text(1)?,
            string_list_from(row, 2)?.as_deref(),
        );
        if accepts && !delivered {
            missing.push(row.text(0)?);
        }
    }
    // The conflict clause keeps the batch idempotent when another process created one of them meanwhile.
    let queued = if missing.is_empty() {
        0
    } else {
        execute(
            &tx,
            // Due now, or at the message's `deliverAt` if that is still ahead.
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             SELECT m.id, $2, 1, 0, 0, GREATEST($3, COALESCE(m.deliver_at, 0)) \
             FROM unnest($1::text[]) AS missing(msg_id) JOIN messages m ON m.id = missing.msg_id \
             ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
            &[&missing, &endpoint_id.as_str(), &now_ms()],
        )
        .await
        .map_err(pg_error)?
    };
    if queued > 0 {
        announce_new_work(&tx).await?;
    }
    tx.commit().await.map_err(pg_error)?;
    let last = match candidates.last() {
        Some(row) => Some(MessageId::from_trusted(row.text(0)?)),
        None => None,
    };
    Ok(BatchDone { scanned: candidates.len() as u64, queued, done: candidates.len() < limit, last })
}

pub(super) const TASK_ID_TAKEN: &str = "a background task with this id already exists";

pub async fn create_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    let changed = execute(
        &*db,
        "INSERT INTO background_tasks (id, kind, app_id, endpoint_id, status, since, until, cursor, data, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &task.id.as_str(),
            &task.kind.name(),
            &task.app_id.as_str(),
            &task.endpoint_id.as_str(),
            &task.status.name(),
            &task.window.since,
            &task.window.until,
            &task.cursor.as_ref().map(MessageId::as_str),
            &progress_json(&task.progress),
            &task.created_at,
            &task.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, TASK_ID_TAKEN))?;
    expect_changed(changed)
}

pub async fn get_background_task(db: &mut Client, id: &str) -> StoreResult<BackgroundTask> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = $1");
    query_found(&*db, &sql, &[&id], task_from).await
}

pub async fn list_background_tasks(
    db: &mut Client,
    filter: &TaskFilter,
    page: &PageRequest,
) -> StoreResult<Page<BackgroundTask>> {
    let mut filters = Filters::default();
    if let Some(status) = filter.status {
        filters.add_equal("status", status.name().to_owned());
    }
    if let Some(kind) = filter.kind {
        filters.add_equal("kind", kind.name().to_owned());
    }
    let select = format!("SELECT {TASK_COLUMNS} FROM background_tasks");
    query_page(&*db, &select, filters, "id", page, task_from).await
}

/// Saves what changes while a task runs; the kind, window and owners are fixed when it is created.
pub async fn update_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    let changed = execute(
        &*db,
        "UPDATE background_tasks SET status = $2, cursor = $3, data = $4, updated_at = $5 WHERE id = $1",
        &[
            &task.id.as_str(),
            &task.status.name(),
            &task.cursor.as_ref().map(MessageId::as_str),
            &progress_json(&task.progress),
            &task.updated_at,
        ],
    )
    .await
    .map_err(pg_error)?;
    expect_changed(changed)
}

pub async fn disable_failing_endpoints(
    db: &mut Client,
    failing_since_before: UnixMillis,
) -> StoreResult<Vec<DisabledEndpoint>> {
    let rows = query(
        &*db,
        "UPDATE endpoints SET disabled = 1, updated_at = $2 \
         WHERE disabled = 0 AND failing_since < $1 RETURNING app_id, id, failing_since",
        &[&failing_since_before, &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    rows.iter()
        .map(|row| {
            Ok(DisabledEndpoint {
                app_id: AppId::from_trusted(row.text(0)?),
                endpoint_id: EndpointId::from_trusted(row.text(1)?),
                failing_since: row.int(2)?,
            })
        })
        .collect()
}

pub async fn purge_payloads(
    db: &mut Client,
    server_cutoff: Option<UnixMillis>,
    now: UnixMillis,
    limit: usize,
) -> StoreResult<u64> {
    // Ids start with their creation time, so the primary key finds old messages without another index; messages
    // with their own retention are found by `messages_payload_expiry`.
    let mut purged = 0;
    if let Some(cutoff) = server_cutoff {
        purged += execute(
            &*db,
            "UPDATE messages SET payload = '' WHERE id IN (SELECT m.id FROM messages m \
             WHERE m.id < $1 AND m.payload_expires_at IS NULL AND m.payload <> '' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) LIMIT $2)",
            &[&msg_id_floor(cutoff), &sql_limit(limit)],
        )
        .await
        .map_err(pg_error)?;
    }
    if (purged as usize) < limit {
        purged += execute(
            &*db,
            "UPDATE messages SET payload = '' WHERE id IN (SELECT m.id FROM messages m \
             WHERE m.payload_expires_at <= $1 AND m.payload <> '' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) LIMIT $2)",
            &[&now, &sql_limit(limit - purged as usize)],
        )
        .await
        .map_err(pg_error)?;
    }
    Ok(purged)
}

#[async_trait]
impl Recovery for PostgresStore {
    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>> {
        let mut db = self.client().await?;
        disable_failing_endpoints(&mut db, failing_since_before).await
    }

    async fn purge_payloads(
        &self,
        server_cutoff: Option<UnixMillis>,
        now: UnixMillis,
        limit: usize,
    ) -> StoreResult<u64> {
        let mut db = self.client().await?;
        purge_payloads(&mut db, server_cutoff, now, limit).await
    }

    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_background_task(&mut db, task).await
    }

    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        let mut db = self.client().await?;
        get_background_task(&mut db, id).await
    }

    async fn list_background_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackgroundTask>> {
        let mut db = self.client().await?;
        list_background_tasks(&mut db, filter, page).await
    }

    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_background_task(&mut db, task).await
    }

    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
        let mut db = self.client().await?;
        count_failed_deliveries(&mut db, endpoint_id, window).await
    }

    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
        let mut db = self.client().await?;
        count_messages(&mut db, app_id, window).await
    }

    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let mut db = self.client().await?;
        requeue_failed(&mut db, endpoint_id, window, limit, after).await
    }

    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let mut db = self.client().await?;
        insert_missing_deliveries(&mut db, endpoint_id, window, limit, after).await
    }

    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        let mut db = self.client().await?;
        super::inbound::purge_inbound_events(&mut db, before, limit).await
    }

    async fn purge_activity(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        let db = self.client().await?;
        super::operations::purge_activity(&db, before, limit).await
    }

    async fn purge_endpoint_failures(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        let db = self.client().await?;
        super::operations::purge_endpoint_failures(&db, before, limit).await
    }

    async fn tidy_queue(&self) -> StoreResult<bool> {
        let db = self.client().await?;
        tidy_queue(&db).await
    }
}

/// Dead row versions in `deliveries` that make it worth a vacuum: a few thousand (a claim and a record leave
/// two per delivery), and a tenth of the live rows, so a large queue is not vacuumed for a handful.
const TIDY_MIN_DEAD: i64 = 10_000;

/// `VACUUM deliveries` when its dead rows passed [`TIDY_MIN_DEAD`] and a tenth of its live ones, per the
/// statistics PostgreSQL keeps; `SKIP_LOCKED`, so processes sharing the database do not queue behind each other's.
async fn tidy_queue(db: &impl GenericClient) -> StoreResult<bool> {
    let stats = query_opt(
        db,
        "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = 'deliveries'::regclass",
        &[],
    )
    .await
    .map_err(pg_error)?;
    let Some(row) = stats else { return Ok(false) };
    let (dead, live) = (row.int(0)?, row.int(1)?);
    if dead < TIDY_MIN_DEAD || dead * 10 < live {
        return Ok(false);
    }
    db.batch_execute("VACUUM (SKIP_LOCKED) deliveries").await.map_err(pg_error)?;
    Ok(true)
}
