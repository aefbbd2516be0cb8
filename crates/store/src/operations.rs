//! The operations role: what operators and health checks read about the store itself — whether it can
//! write, the queue's depth, and activity over a window.

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityStats {
    /// Messages created in the window.
    pub messages: u64,
    /// The deliveries of those messages, by where they stand now.
    pub deliveries: DeliveryCounts,
    /// Attempts made in the window, by outcome.
    pub attempts: AttemptCounts,
    /// Median duration of those attempts (nearest rank); `None` without attempts.
    pub attempt_duration_p50_ms: Option<i64>,
    /// 99th percentile duration of those attempts (nearest rank); `None` without attempts.
    pub attempt_duration_p99_ms: Option<i64>,
    /// The endpoints with the most failed attempts in the window, most first (ties in endpoint id order).
    pub failing_endpoints: Vec<EndpointFailures>,
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
    /// Messages, deliveries and attempts since `since` (by the time stamped in their ids), with the `top`
    /// endpoints that failed most. Reads every attempt of the window: for operators, not for hot paths.
    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats>;
}
