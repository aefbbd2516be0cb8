//! The operations role: what operators and health checks read about the store itself — whether it can
//! write, the queue's depth, activity over a window (mostly summed from the per-minute counters), and the
//! endpoints whose circuit breaker is open.

use async_trait::async_trait;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, EndpointId};

use crate::{DeliveryCounts, StoreResult};

/// The dispatcher's queue as operators see it (metrics, health); one cheap query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries pending (due now or scheduled later) or being sent.
    pub depth: u64,
    /// The earliest time an open delivery is due (for one being sent: when its lease ends); `None` when the
    /// queue is empty. When it is in the past, the dispatcher is that far behind.
    pub oldest_due_at: Option<UnixMillis>,
}

/// Attempts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttemptCounts {
    pub success: u64,
    pub fail: u64,
}

/// An endpoint and how many of its attempts failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointFailures {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    pub failures: u64,
}

/// What happened since a point in time, for operators (`GET /api/v1/stats/`).
///
/// The window of the counts (`messages`, `attempts`, `failing_endpoints`) is made of whole minutes: it starts at
/// the beginning of the minute that holds `since`, so it may take in up to a minute before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityStats {
    /// Messages created in the window (from the per-minute counters).
    pub messages: u64,
    /// The deliveries of the messages created since `since` (by message id), by where they stand now.
    pub deliveries: DeliveryCounts,
    /// Attempts made in the window, by outcome (from the per-minute counters).
    pub attempts: AttemptCounts,
    /// Median duration of the window's latest [`DURATION_SAMPLE`] attempts (nearest rank); `None` without
    /// attempts.
    pub attempt_duration_p50_ms: Option<i64>,
    /// 99th percentile duration of the window's latest [`DURATION_SAMPLE`] attempts (nearest rank); `None`
    /// without attempts.
    pub attempt_duration_p99_ms: Option<i64>,
    /// The endpoints with the most failed attempts in the window, most first (ties in endpoint id order), from
    /// the per-endpoint failure counters; endpoints deleted since are left out.
    pub failing_endpoints: Vec<EndpointFailures>,
}

/// How many of a window's attempts the duration percentiles of [`ActivityStats`] are taken from: the latest
/// ones, read newest first through the attempts' primary key, so their cost does not grow with the window's
/// traffic.
pub const DURATION_SAMPLE: usize = 10_000;

/// How long the per-minute activity counters are kept: the longest range a chart may ask for. A fixed time
/// rather than the server's payload retention, since counts hold no payload and a chart of the last 30 days
/// must work whatever the retention.
pub const ACTIVITY_KEPT_MS: i64 = 90 * 24 * 3600 * 1000;

/// How long the per-endpoint failure counters (`endpoint_failure_minutes`) are kept: the statistics' window of
/// 24 hours, with a day to spare. Shorter than [`ACTIVITY_KEPT_MS`]: they hold a row per minute for each endpoint
/// that failed in it, and nothing reads further back than the statistics' window.
pub const ENDPOINT_FAILURES_KEPT_MS: i64 = 2 * 24 * 3600 * 1000;

/// Messages and attempts of one time bucket of an activity series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivityBucket {
    /// The bucket's first millisecond, a multiple of its length.
    pub start: UnixMillis,
    /// Messages stored in the bucket (a duplicate that stored nothing is not one).
    pub messages: u64,
    /// Attempts recorded in the bucket, by outcome.
    pub attempts: AttemptCounts,
}

/// An endpoint whose circuit breaker holds its deliveries back (see `Queue::pause_endpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PausedEndpoint {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    /// When the pause ends and its deliveries are claimed again.
    pub paused_until: UnixMillis,
}

/// The store's own state, for health checks, metrics and operators.
#[async_trait]
pub trait Operations: Send + Sync + 'static {
    /// Why the database refuses writes (disk full, read-only, refused), if the store's latest writes or write
    /// probe found that it does; `None` once a [`probe_write`](Self::probe_write) succeeds again. Memory only, no
    /// I/O: health checks call it on every request.
    fn unwritable(&self) -> Option<crate::Unwritable>;
    /// Writes one tiny row, durably, and records in [`unwritable`](Self::unwritable) whether that worked. Called
    /// every few seconds by the engine's maintenance, so that a store that cannot write is noticed without traffic,
    /// and one that can again recovers by itself.
    async fn probe_write(&self) -> StoreResult<()>;
    /// How many deliveries are open and when the earliest of them is due: one query on the queue's index (it
    /// counts the open deliveries, so its cost follows the backlog). Health checks and metrics scrapes read it
    /// through the API's shared snapshot, never per request.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
    /// Messages, deliveries and attempts since `since`, with the `top` endpoints that failed most (see
    /// [`ActivityStats`] for what each field is computed from). The counts sum the per-minute counters the writes
    /// keep (one row per minute and writer, and per minute, writer and failing endpoint), the percentiles read
    /// the window's latest [`DURATION_SAMPLE`] attempts by primary key; only the deliveries by status read every
    /// delivery of the window's messages (a range of the deliveries' primary key, about a quarter of a second
    /// per million on SQLite): for operators, not for hot paths.
    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats>;
    /// Messages and attempts per bucket of `bucket_ms` (a positive multiple of a minute), buckets aligned to
    /// multiples of `bucket_ms` since the epoch: every bucket that overlaps `[since, until)`, in order, empty ones
    /// included (zeros), so a chart needs no gap logic. Sums the per-minute counters the writes keep (every
    /// process's), reading one row per minute and process of the range through their primary key: never the
    /// messages or attempts themselves. Counters older than [`ACTIVITY_KEPT_MS`] are purged, so their buckets are
    /// zeros. `Invalid` for a bucket that is not a whole number of minutes, `since` after `until`, or more than
    /// [`MAX_ACTIVITY_BUCKETS`](crate::MAX_ACTIVITY_BUCKETS) buckets.
    async fn activity_series(
        &self,
        since: UnixMillis,
        until: UnixMillis,
        bucket_ms: i64,
    ) -> StoreResult<Vec<ActivityBucket>>;
    /// Up to `limit` endpoints whose circuit breaker pause ends after `now`, the soonest to end first (ties in
    /// endpoint id order): one range of an index on the pause times.
    async fn paused_endpoints(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>>;
}
