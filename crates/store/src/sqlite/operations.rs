//! The operations role on SQLite: what operators read about the whole server — the queue (for metrics and
//! health), the write probe (for health), the activity of a recent window (`GET /api/v1/stats/`: summed from the
//! counters, except what needs the rows, read as id ranges since ids start with their creation time), the
//! per-minute activity and endpoint failure counters (written here for the messages and queue roles, read as a
//! chart's series and the statistics) and the endpoints paused by their circuit breaker.

use async_trait::async_trait;
use hookrelay_core::model::minute_of;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId};
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::connection::{sql_error, write_refusal};
use super::connections::Durability;
use super::rows::*;
use crate::activity::{ActivityTally, BucketPlan, duration_percentiles};
use crate::write_health::WriteHealth;
use crate::{
    ActivityBucket, ActivityStats, AttemptCounts, DURATION_SAMPLE, DeliveryCounts, EndpointFailures, Operations,
    PausedEndpoint, QueueStats, StoreResult,
};

/// The `writer` of every counter row: one writer thread writes them all, so there is nobody to keep apart.
const WRITER: &str = "";

/// Adds what a transaction stored to the activity counters, one upsert per minute, and to the endpoint failure
/// counters, one upsert per minute and failing endpoint (see [`ActivityTally`]).
pub(super) fn count_activity(conn: &Connection, tally: &ActivityTally) -> StoreResult<()> {
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO activity_minutes (minute, writer, messages, attempts_success, attempts_fail) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (minute, writer) DO UPDATE SET \
             messages = activity_minutes.messages + excluded.messages, \
             attempts_success = activity_minutes.attempts_success + excluded.attempts_success, \
             attempts_fail = activity_minutes.attempts_fail + excluded.attempts_fail",
        )
        .map_err(sql_error)?;
    for (minute, counts) in tally.minutes() {
        upsert
            .execute(params![minute, WRITER, counts.messages, counts.attempts_success, counts.attempts_fail])
            .map_err(sql_error)?;
    }
    let mut failures = tally.endpoint_failures().peekable();
    if failures.peek().is_some() {
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO endpoint_failure_minutes (minute, endpoint_id, writer, failures) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (minute, endpoint_id, writer) DO UPDATE SET \
                 failures = endpoint_failure_minutes.failures + excluded.failures",
            )
            .map_err(sql_error)?;
        for (minute, endpoint_id, number) in failures {
            upsert.execute(params![minute, endpoint_id, WRITER, number]).map_err(sql_error)?;
        }
    }
    Ok(())
}

pub fn activity_series(conn: &Connection, plan: BucketPlan) -> StoreResult<Vec<ActivityBucket>> {
    // A range of the primary key; `minute - first` is never negative there, so the division rounds down.
    let mut stmt = conn
        .prepare_cached(
            "SELECT ?1 + (minute - ?1) / ?3 * ?3 AS bucket, SUM(messages), SUM(attempts_success), SUM(attempts_fail) \
             FROM activity_minutes WHERE minute >= ?1 AND minute < ?2 GROUP BY bucket ORDER BY bucket",
        )
        .map_err(sql_error)?;
    let sums = stmt
        .query_map(params![plan.first, plan.end(), plan.bucket_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    plan.fill(sums)
}

/// See `Recovery::purge_activity`.
pub fn purge_activity(conn: &Connection, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    let purged = conn
        .prepare_cached(
            "DELETE FROM activity_minutes WHERE (minute, writer) IN (SELECT minute, writer FROM activity_minutes \
             WHERE minute <= ?1 ORDER BY minute LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![before - 60_000, i64::try_from(limit).unwrap_or(i64::MAX)]))
        .map_err(sql_error)?;
    Ok(purged as u64)
}

/// See `Recovery::purge_endpoint_failures`.
pub fn purge_endpoint_failures(conn: &Connection, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    let purged = conn
        .prepare_cached(
            "DELETE FROM endpoint_failure_minutes WHERE (minute, endpoint_id, writer) IN \
             (SELECT minute, endpoint_id, writer FROM endpoint_failure_minutes WHERE minute <= ?1 \
             ORDER BY minute LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![before - 60_000, i64::try_from(limit).unwrap_or(i64::MAX)]))
        .map_err(sql_error)?;
    Ok(purged as u64)
}

pub fn paused_endpoints(conn: &Connection, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT app_id, id, paused_until FROM endpoints WHERE paused_until > ?1 \
             ORDER BY paused_until, id LIMIT ?2",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(PausedEndpoint {
                app_id: AppId::from_trusted(row.get::<_, String>(0)?),
                endpoint_id: EndpointId::from_trusted(row.get::<_, String>(1)?),
                paused_until: row.get(2)?,
            })
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// The write probe: rewrites the one row of `write_probe`. A failure is recorded in `health` here, where the
/// SQLite error (and so its category) is still at hand.
pub fn probe_write(conn: &Connection, now: UnixMillis, health: &WriteHealth) -> StoreResult<()> {
    conn.prepare_cached("UPDATE write_probe SET probed_at = ?1 WHERE id = 1")
        .and_then(|mut stmt| stmt.execute([now]))
        .map_err(|err| {
            health.failed(write_refusal(&err), &err);
            sql_error(err)
        })?;
    Ok(())
}

pub fn queue_stats(conn: &Connection) -> StoreResult<QueueStats> {
    // Both aggregates read the partial index `deliveries_due`, which holds exactly the open deliveries.
    let (depth, oldest): (i64, Option<i64>) = conn
        .prepare_cached("SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)")
        .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(sql_error)?;
    Ok(QueueStats { depth: count(depth)?, oldest_due_at: oldest })
}

pub fn activity_stats(conn: &Connection, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
    // The counters' window: whole minutes, from the one that holds `since`.
    let first_minute = minute_of(since);
    let (messages, success, fail): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(attempts_success), 0), COALESCE(SUM(attempts_fail), 0) \
             FROM activity_minutes WHERE minute >= ?1",
        )
        .and_then(|mut stmt| stmt.query_row([first_minute], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))))
        .map_err(sql_error)?;

    // The rows themselves: no counter says where each delivery stands now.
    let mut deliveries = DeliveryCounts::default();
    let sql = "SELECT status, COUNT(*) FROM deliveries WHERE msg_id >= ?1 GROUP BY status";
    for (status, number) in grouped(conn, sql, &msg_id_floor(since))? {
        add_delivery_count(&mut deliveries, status, number)?;
    }

    let durations = conn
        .prepare_cached("SELECT response_duration_ms FROM attempts WHERE id >= ?1 ORDER BY id DESC LIMIT ?2")
        .and_then(|mut stmt| {
            stmt.query_map(params![attempt_id_floor(since), DURATION_SAMPLE as i64], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()
        })
        .map_err(sql_error)?;
    let (p50, p99) = duration_percentiles(durations);

    // Summed before the join, so each failing endpoint is looked up once; the join leaves out deleted endpoints.
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.app_id, f.endpoint_id, f.failures FROM \
             (SELECT endpoint_id, SUM(failures) AS failures FROM endpoint_failure_minutes WHERE minute >= ?1 \
              GROUP BY endpoint_id) f \
             JOIN endpoints e ON e.id = f.endpoint_id ORDER BY f.failures DESC, f.endpoint_id LIMIT ?2",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![first_minute, i64::try_from(top).unwrap_or(i64::MAX)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })
        .map_err(sql_error)?;
    let mut failing_endpoints = Vec::new();
    for row in rows {
        let (app_id, endpoint_id, failures) = row.map_err(sql_error)?;
        failing_endpoints.push(EndpointFailures {
            app_id: AppId::from_trusted(app_id),
            endpoint_id: EndpointId::from_trusted(endpoint_id),
            failures: count(failures)?,
        });
    }

    Ok(ActivityStats {
        messages: count(messages)?,
        deliveries,
        attempts: AttemptCounts { success: count(success)?, fail: count(fail)? },
        attempt_duration_p50_ms: p50,
        attempt_duration_p99_ms: p99,
        failing_endpoints,
    })
}

/// `(status, count)` rows of a `GROUP BY status` query with one parameter.
fn grouped(conn: &Connection, sql: &str, floor: &str) -> StoreResult<Vec<(i64, u64)>> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt.query_map([floor], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))).map_err(sql_error)?;
    let mut grouped = Vec::new();
    for row in rows {
        let (status, number) = row.map_err(sql_error)?;
        grouped.push((status, count(number)?));
    }
    Ok(grouped)
}

#[async_trait]
impl Operations for SqliteStore {
    fn unwritable(&self) -> Option<crate::Unwritable> {
        self.db.write_health().current()
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let (now, health) = (now_ms(), self.db.write_health().clone());
        let job_health = health.clone();
        let probed = self.db.write(Durability::PowerLoss, move |conn| probe_write(conn, now, &job_health)).await;
        match &probed {
            Ok(()) => health.succeeded(),
            // The writer, the flush thread or the job itself recorded why; this covers a writer that stopped.
            Err(err) if health.current().is_none() => health.failed("writes fail".to_owned(), err),
            Err(_) => {}
        }
        probed
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.db.read(queue_stats).await
    }

    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
        self.db.read(move |conn| activity_stats(conn, since, top)).await
    }

    async fn activity_series(
        &self,
        since: UnixMillis,
        until: UnixMillis,
        bucket_ms: i64,
    ) -> StoreResult<Vec<ActivityBucket>> {
        let plan = BucketPlan::new(since, until, bucket_ms)?;
        self.db.read(move |conn| activity_series(conn, plan)).await
    }

    async fn paused_endpoints(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>> {
        self.db.read(move |conn| paused_endpoints(conn, now, limit)).await
    }
}
