//! SQL of recover and replay-missing: counting and batch-walking a window in message-id order.
//!
//! As in SQLite, message ids carry their creation time, so the window is also an id range and each batch is an
//! index range scan after the previous batch's last id. A batch that queued deliveries announces them, so every
//! process's dispatcher starts at once.

use deadpool_postgres::Client;
use hookrelay_core::model::TimeWindow;
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AppId, EndpointId, MessageId};

use super::rows::*;
use super::{announce_new_work, pg_error};
use crate::StoreError;
use crate::store::{BatchDone, StoreResult};

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
            channels_from(row, 2)?.as_deref(),
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
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             SELECT msg_id, $2, 1, 0, 0, $3 FROM unnest($1::text[]) AS msg_id \
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
