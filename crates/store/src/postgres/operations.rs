//! The operations role on PostgreSQL: what operators read about the whole server — the queue (for metrics and
//! health), the write probe (for health) and the activity of a recent window (`GET /api/v1/stats/`). Windows are
//! id ranges: ids start with their creation time.

use async_trait::async_trait;
use deadpool_postgres::Client;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId};
use tokio_postgres::error::SqlState;

use super::PostgresStore;
use super::pg_error;
use super::rows::*;
use crate::{
    ActivityStats, AttemptCounts, DeliveryCounts, EndpointFailures, Operations, QueueStats, StoreError, StoreResult,
};

/// The write probe: rewrites the one row of `write_probe`. On failure, the public reason (see
/// [`crate::Unwritable`]) with the error.
pub async fn probe_write(db: &Client, now: UnixMillis) -> Result<(), (String, StoreError)> {
    db.execute("UPDATE write_probe SET probed_at = $1 WHERE id = 1", &[&now])
        .await
        .map_err(|err| (write_refusal(&err), pg_error(err)))?;
    Ok(())
}

/// Why a write failed, by its SQLSTATE: a category safe to show anyone, since the server's message may name
/// files or values.
fn write_refusal(err: &tokio_postgres::Error) -> String {
    let Some(db) = err.as_db_error() else { return "the database cannot be reached".to_owned() };
    let code = db.code().code();
    let what = match *db.code() {
        SqlState::READ_ONLY_SQL_TRANSACTION => "the database is read-only",
        SqlState::INSUFFICIENT_PRIVILEGE => "permission denied",
        SqlState::DISK_FULL => "the database server's disk is full",
        SqlState::IO_ERROR => "I/O error on the database server",
        _ if code.starts_with("53") => "the database server is out of resources",
        _ if code.starts_with("57") || code.starts_with("08") => "the database server is shutting down or unreachable",
        _ => "writes fail",
    };
    format!("{what} (SQLSTATE {code})")
}

pub async fn queue_stats(db: &mut Client) -> StoreResult<QueueStats> {
    // Both aggregates read the partial index on due deliveries, which holds exactly the open ones.
    let row = query_opt(&*db, "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)", &[])
        .await
        .map_err(pg_error)?
        .ok_or_else(|| StoreError::Internal("COUNT returned no row".into()))?;
    Ok(QueueStats { depth: count(row.int(0)?)?, oldest_due_at: row.opt_int(1)? })
}

pub async fn activity_stats(db: &mut Client, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
    let (msg_floor, attempt_floor) = (msg_id_floor(since), attempt_id_floor(since));
    let db = &*db;
    let messages = query_count(db, "SELECT COUNT(*) FROM messages WHERE id >= $1", &[&msg_floor]).await?;

    let mut deliveries = DeliveryCounts::default();
    let rows = query(db, "SELECT status, COUNT(*) FROM deliveries WHERE msg_id >= $1 GROUP BY status", &[&msg_floor])
        .await
        .map_err(pg_error)?;
    for row in &rows {
        add_delivery_count(&mut deliveries, row.int(0)?, count(row.int(1)?)?)?;
    }
    let mut attempts = AttemptCounts::default();
    let rows = query(db, "SELECT status, COUNT(*) FROM attempts WHERE id >= $1 GROUP BY status", &[&attempt_floor])
        .await
        .map_err(pg_error)?;
    for row in &rows {
        let number = count(row.int(1)?)?;
        if row.int(0)? == i64::from(DeliveryStatus::Success.code()) {
            attempts.success += number;
        } else {
            attempts.fail += number;
        }
    }

    let total = attempts.success + attempts.fail;
    let mut durations = [None, None];
    for (slot, percent) in durations.iter_mut().zip([50, 99]) {
        let Some(offset) = percentile_offset(total, percent) else { continue };
        let row = query_opt(
            db,
            "SELECT response_duration_ms FROM attempts WHERE id >= $1 ORDER BY response_duration_ms LIMIT 1 OFFSET $2",
            &[&attempt_floor, &offset],
        )
        .await
        .map_err(pg_error)?;
        *slot = row.map(|row| row.int(0)).transpose()?;
    }

    let rows = query(
        db,
        "SELECT app_id, endpoint_id, COUNT(*) AS failures FROM attempts WHERE id >= $1 AND status = 2 \
         GROUP BY app_id, endpoint_id ORDER BY failures DESC, endpoint_id LIMIT $2",
        &[&attempt_floor, &sql_limit(top)],
    )
    .await
    .map_err(pg_error)?;
    let failing_endpoints = rows
        .iter()
        .map(|row| {
            Ok(EndpointFailures {
                app_id: AppId::from_trusted(row.text(0)?),
                endpoint_id: EndpointId::from_trusted(row.text(1)?),
                failures: count(row.int(2)?)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    Ok(ActivityStats {
        messages,
        deliveries,
        attempts,
        attempt_duration_p50_ms: durations[0],
        attempt_duration_p99_ms: durations[1],
        failing_endpoints,
    })
}

#[async_trait]
impl Operations for PostgresStore {
    fn unwritable(&self) -> Option<crate::Unwritable> {
        self.write_health.current()
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let probed = match self.client().await {
            Ok(db) => probe_write(&db, now_ms()).await,
            Err(err) => Err(("the database cannot be reached".to_owned(), err)),
        };
        match probed {
            Ok(()) => {
                self.write_health.succeeded();
                Ok(())
            }
            Err((reason, err)) => {
                self.write_health.failed(reason, &err);
                Err(err)
            }
        }
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let mut db = self.client().await?;
        queue_stats(&mut db).await
    }

    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
        let mut db = self.client().await?;
        activity_stats(&mut db, since, top).await
    }
}
