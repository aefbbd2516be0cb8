//! The recovery role: background tasks that recover or replay a window of deliveries, and the retention
//! work the maintenance loop runs (disabling endpoints that keep failing, purging old payloads, events and
//! activity counters).

use async_trait::async_trait;
use hookrelay_core::model::{BackgroundTask, TaskKind, TaskStatus, TimeWindow};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, EndpointId, MessageId};

use crate::{Page, PageRequest, StoreResult};

/// An endpoint the store disabled because it kept failing.
#[derive(Clone, Debug, PartialEq)]
pub struct DisabledEndpoint {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    /// When its run of failed attempts began.
    pub failing_since: UnixMillis,
}

/// Filters of the background task list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub kind: Option<TaskKind>,
}

/// What one batch of a recover or replay did. Batches walk the window in message-id order; the next batch
/// starts after `last`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchDone {
    /// Candidate rows looked at: failed deliveries (recover) or messages of the window (replay).
    pub scanned: u64,
    /// Deliveries queued: re-queued (recover) or created (replay).
    pub queued: u64,
    /// The last message id looked at; `None` when the batch found nothing.
    pub last: Option<MessageId>,
    /// No candidates are left after this batch.
    pub done: bool,
}

/// Recover and replay tasks, and retention.
#[async_trait]
pub trait Recovery: Send + Sync + 'static {
    /// Disables every enabled endpoint whose attempts have all failed since before `failing_since_before`,
    /// returning them. (An endpoint is failing from its first failed attempt after a success.)
    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>>;
    /// Empties the payload of up to `limit` messages, keeping everything else: those created before
    /// `server_cutoff` (the server's retention) that have no retention of their own, and those whose own
    /// retention ended by `now`. Skips messages that still have a delivery pending or in flight. Returns how many
    /// were purged.
    async fn purge_payloads(
        &self,
        server_cutoff: Option<UnixMillis>,
        now: UnixMillis,
        limit: usize,
    ) -> StoreResult<u64>;
    /// Records a new background task.
    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()>;
    /// Finds a background task by id.
    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask>;
    /// Background tasks, paged by id.
    async fn list_background_tasks(&self, filter: &TaskFilter, page: &PageRequest)
    -> StoreResult<Page<BackgroundTask>>;
    /// Saves a task's status, cursor, progress and `updated_at`.
    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()>;
    /// How many of the endpoint's deliveries are failed for messages created in the window (a recover's total).
    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64>;
    /// How many of the application's messages were created in the window (a replay's total).
    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64>;
    /// One recover batch, in one transaction: up to `limit` failed deliveries of the endpoint whose message was
    /// created in the window and whose message id sorts after `after`, in message-id order, become pending
    /// and due now with their attempt count reset, so the whole retry schedule applies again.
    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone>;
    /// One replay batch, in one transaction: of up to `limit` messages of the endpoint's application created in
    /// the window with ids after `after`, each one the endpoint accepts (its event-type filter and channels)
    /// and has no delivery for gets a pending delivery, due now. A disabled endpoint gets nothing (and the
    /// batch reports `done`). Fails with `NotFound` when the endpoint is gone.
    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone>;
    /// Deletes up to `limit` rows of inbound events received before `before` (their messages stay), then, within
    /// the same `limit`, rejection counts whose minute ended by `before`. Returns how many rows.
    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64>;
    /// Deletes up to `limit` rows of the per-minute activity counters (every writer's) whose minute ended by
    /// `before`, oldest first. Returns how many rows.
    async fn purge_activity(&self, before: UnixMillis, limit: usize) -> StoreResult<u64>;
    /// Deletes up to `limit` rows of the per-endpoint failure counters (every writer's) whose minute ended by
    /// `before`, oldest first. Returns how many rows. They are kept
    /// [`ENDPOINT_FAILURES_KEPT_MS`](crate::ENDPOINT_FAILURES_KEPT_MS), less than the other counters.
    async fn purge_endpoint_failures(&self, before: UnixMillis, limit: usize) -> StoreResult<u64>;
    /// Reclaims the row versions the queue's updates left behind, where the database keeps them until vacuumed
    /// (PostgreSQL: `VACUUM deliveries` once dead rows pile up, whatever autovacuum does); returns whether it
    /// did. Without it a drained backlog leaves the claim reading dead index entries, and it slows down.
    async fn tidy_queue(&self) -> StoreResult<bool>;
}
