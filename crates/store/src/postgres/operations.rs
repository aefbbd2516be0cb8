//! The operations role on PostgreSQL: what operators read about the whole server — the queue (for metrics and
//! health), the write probe (for health), the activity of a recent window (`GET /api/v1/stats/`: summed from the
//! counters, except what needs the rows, read as id ranges since ids start with their creation time), the
//! per-minute activity and endpoint failure counters (written here for the messages, inbound and queue roles,
//! read as a chart's series and the statistics) and the endpoints paused by their circuit breaker.
//!
//! Counter rows belong to a writer ([`ActivityWriters`]). A transaction holds the row it upserted until it commits,
//! so one row shared by transactions that run at once would line their commits up one behind the other; each
//! process has rows of its own, and within a process each kind of writing transaction too. Every transaction
//! upserts its counters last, minutes in ascending order, so one waiting for a counter row holds nothing the
//! row's holder could be waiting for.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::model::minute_of;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId};
use tokio_postgres::error::SqlState;

use super::PostgresStore;
use super::pg_error;
use super::rows::*;
use crate::activity::{ActivityTally, BucketPlan, duration_percentiles};
use crate::{
    ActivityBucket, ActivityStats, AttemptCounts, DURATION_SAMPLE, DeliveryCounts, EndpointFailures, Operations,
    PausedEndpoint, QueueStats, StoreError, StoreResult,
};

/// How many rows per minute a process spreads its single-message transactions (ingests) over: they run
/// concurrently, one per request, and would otherwise commit one after the other.
const SINGLE_WRITERS: usize = 4;

/// The `writer` values of one process's counter rows: `<process id>:<kind>`.
pub(super) struct ActivityWriters {
    /// The publish groups, written by one drain task at a time (and its per-message fallback).
    publishes: String,
    /// The attempt records, written by the dispatcher's one recorder.
    attempts: String,
    /// Transactions of one message each, taken in turn.
    singles: Vec<String>,
    next_single: AtomicUsize,
}

impl ActivityWriters {
    /// The writers of a process known as `process` (its first instance id: the rows stay its own even when its
    /// instance id changes after an outage).
    pub(super) fn new(process: &str) -> Self {
        Self {
            publishes: format!("{process}:publish"),
            attempts: format!("{process}:attempts"),
            singles: (0..SINGLE_WRITERS).map(|n| format!("{process}:single{n}")).collect(),
            next_single: AtomicUsize::new(0),
        }
    }

    pub(super) fn publishes(&self) -> &str {
        &self.publishes
    }

    pub(super) fn attempts(&self) -> &str {
        &self.attempts
    }

    pub(super) fn single(&self) -> &str {
        &self.singles[self.next_single.fetch_add(1, Ordering::Relaxed) % self.singles.len()]
    }
}

/// Adds a transaction's messages and attempts to its writer's per-minute counters (see [`count_activity`]).
pub(super) const COUNT_ACTIVITY: &str = "INSERT INTO activity_minutes (minute, writer, messages, attempts_success, \
     attempts_fail) SELECT c.minute, $2::TEXT, c.messages, c.attempts_success, c.attempts_fail \
     FROM unnest($1::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         AS c(minute, messages, attempts_success, attempts_fail) \
     ON CONFLICT (minute, writer) DO UPDATE SET \
     messages = activity_minutes.messages + excluded.messages, \
     attempts_success = activity_minutes.attempts_success + excluded.attempts_success, \
     attempts_fail = activity_minutes.attempts_fail + excluded.attempts_fail";

/// Adds a transaction's failed attempts to the per-minute, per-endpoint failure counters.
pub(super) const COUNT_ENDPOINT_FAILURES: &str = "INSERT INTO endpoint_failure_minutes (minute, endpoint_id, \
     writer, failures) SELECT c.minute, c.endpoint_id, $2::TEXT, c.failures \
     FROM unnest($1::bigint[], $3::text[], $4::bigint[]) AS c(minute, endpoint_id, failures) \
     ON CONFLICT (minute, endpoint_id, writer) DO UPDATE SET \
     failures = endpoint_failure_minutes.failures + excluded.failures";

/// Adds what a transaction stored to `writer`'s activity counters in one statement, and its failed attempts to
/// `writer`'s endpoint failure counters in another; call it last in the transaction (see the module's comment).
pub(super) async fn count_activity(tx: &impl GenericClient, writer: &str, tally: &ActivityTally) -> StoreResult<()> {
    if tally.is_empty() {
        return Ok(());
    }
    let (mut minutes, mut messages, mut success, mut fail) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (minute, counts) in tally.minutes() {
        minutes.push(minute);
        messages.push(counts.messages);
        success.push(counts.attempts_success);
        fail.push(counts.attempts_fail);
    }
    execute(tx, COUNT_ACTIVITY, &[&minutes, &writer, &messages, &success, &fail]).await.map_err(pg_error)?;

    let (mut minutes, mut endpoint_ids, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (minute, endpoint_id, number) in tally.endpoint_failures() {
        minutes.push(minute);
        endpoint_ids.push(endpoint_id);
        failures.push(number);
    }
    if !minutes.is_empty() {
        execute(tx, COUNT_ENDPOINT_FAILURES, &[&minutes, &writer, &endpoint_ids, &failures]).await.map_err(pg_error)?;
    }
    Ok(())
}

pub async fn activity_series(db: &Client, plan: BucketPlan) -> StoreResult<Vec<ActivityBucket>> {
    // A range of the primary key; `minute - first` is never negative there, so the division rounds down.
    let rows = query(
        db,
        "SELECT $1::BIGINT + (minute - $1::BIGINT) / $3::BIGINT * $3::BIGINT AS bucket, SUM(messages)::BIGINT, \
         SUM(attempts_success)::BIGINT, SUM(attempts_fail)::BIGINT \
         FROM activity_minutes WHERE minute >= $1 AND minute < $2 GROUP BY bucket ORDER BY bucket",
        &[&plan.first, &plan.end(), &plan.bucket_ms],
    )
    .await
    .map_err(pg_error)?;
    let sums = rows
        .iter()
        .map(|row| Ok((row.int(0)?, row.int(1)?, row.int(2)?, row.int(3)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    plan.fill(sums)
}

/// See `Recovery::purge_activity`.
pub async fn purge_activity(db: &Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    execute(
        db,
        "DELETE FROM activity_minutes WHERE (minute, writer) IN (SELECT minute, writer FROM activity_minutes \
         WHERE minute <= $1 ORDER BY minute LIMIT $2)",
        &[&(before - 60_000), &sql_limit(limit)],
    )
    .await
    .map_err(pg_error)
}

/// See `Recovery::purge_endpoint_failures`.
pub async fn purge_endpoint_failures(db: &Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    execute(
        db,
        "DELETE FROM endpoint_failure_minutes WHERE (minute, endpoint_id, writer) IN \
         (SELECT minute, endpoint_id, writer FROM endpoint_failure_minutes WHERE minute <= $1 ORDER BY minute LIMIT $2)",
        &[&(before - 60_000), &sql_limit(limit)],
    )
    .await
    .map_err(pg_error)
}

pub async fn paused_endpoints(db: &Client, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>> {
    let rows = query(
        db,
        "SELECT app_id, id, paused_until FROM endpoints WHERE paused_until > $1 ORDER BY paused_until, id LIMIT $2",
        &[&now, &sql_limit(limit)],
    )
    .await
    .map_err(pg_error)?;
    rows.iter()
        .map(|row| {
            Ok(PausedEndpoint {
                app_id: AppId::from_trusted(row.text(0)?),
                endpoint_id: EndpointId::from_trusted(row.text(1)?),
                paused_until: row.int(2)?,
            })
        })
        .collect()
}

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
    let db = &*db;
    // The counters' window: whole minutes, from the one that holds `since`. Every writer's rows are summed.
    let first_minute = minute_of(since);
    let row = query_opt(
        db,
        "SELECT COALESCE(SUM(messages), 0)::BIGINT, COALESCE(SUM(attempts_success), 0)::BIGINT, \
         COALESCE(SUM(attempts_fail), 0)::BIGINT FROM activity_minutes WHERE minute >= $1",
        &[&first_minute],
    )
    .await
    .map_err(pg_error)?
    .ok_or_else(|| StoreError::Internal("SUM returned no row".into()))?;
    let messages = count(row.int(0)?)?;
    let attempts = AttemptCounts { success: count(row.int(1)?)?, fail: count(row.int(2)?)? };

    // The rows themselves: no counter says where each delivery stands now.
    let mut deliveries = DeliveryCounts::default();
    let rows = query(
        db,
        "SELECT status, COUNT(*) FROM deliveries WHERE msg_id >= $1 GROUP BY status",
        &[&msg_id_floor(since)],
    )
    .await
    .map_err(pg_error)?;
    for row in &rows {
        add_delivery_count(&mut deliveries, row.int(0)?, count(row.int(1)?)?)?;
    }

    let rows = query(
        db,
        "SELECT response_duration_ms FROM attempts WHERE id >= $1 ORDER BY id DESC LIMIT $2",
        &[&attempt_id_floor(since), &sql_limit(DURATION_SAMPLE)],
    )
    .await
    .map_err(pg_error)?;
    let durations = rows.iter().map(|row| row.int(0)).collect::<ColumnResult<Vec<_>>>()?;
    let (p50, p99) = duration_percentiles(durations);

    // Summed before the join, so each failing endpoint is looked up once; the join leaves out deleted endpoints.
    let rows = query(
        db,
        "SELECT e.app_id, f.endpoint_id, f.failures FROM \
         (SELECT endpoint_id, SUM(failures)::BIGINT AS failures FROM endpoint_failure_minutes WHERE minute >= $1 \
          GROUP BY endpoint_id) f \
         JOIN endpoints e ON e.id = f.endpoint_id ORDER BY f.failures DESC, f.endpoint_id LIMIT $2",
        &[&first_minute, &sql_limit(top)],
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
        attempt_duration_p50_ms: p50,
        attempt_duration_p99_ms: p99,
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

    async fn activity_series(
        &self,
        since: UnixMillis,
        until: UnixMillis,
        bucket_ms: i64,
    ) -> StoreResult<Vec<ActivityBucket>> {
        let plan = BucketPlan::new(since, until, bucket_ms)?;
        let db = self.client().await?;
        activity_series(&db, plan).await
    }

    async fn paused_endpoints(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>> {
        let db = self.client().await?;
        paused_endpoints(&db, now, limit).await
    }
}
