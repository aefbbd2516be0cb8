//! The `Store` trait: every operation the API and the dispatcher need, backend-neutral.

use async_trait::async_trait;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryStatus, Endpoint, EventType, InboundEvent,
    InboundRejections, InboundStatus, Message, SecretSet, SignatureScheme, Source, TaskKind, TaskStatus, TimeWindow,
};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::token::{ApiToken, TokenDigest};
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};

use crate::{Page, PageRequest, StoreError};

pub type StoreResult<T> = Result<T, StoreError>;

/// The `Conflict` text of `publish_message` (and `ingest`) when the message's eventId was used before in its
/// application; the API recognises it to name the eventId in its answer. Other publish conflicts (another
/// process answering the same idempotency key) carry their own text.
pub const EVENT_ID_TAKEN: &str = "a message with this eventId already exists in this application";

/// A response remembered for an `idempotency-key`, replayed byte for byte when the key comes again.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotentResponse {
    /// Scope + key, already combined by the API (token, path and the client's key).
    pub key: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub expires_at: UnixMillis,
}

/// Filters of the message list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageFilter {
    /// Only these event types (any of them).
    pub event_types: Option<Vec<String>>,
    /// Only messages published on this channel.
    pub channel: Option<String>,
    /// Only messages created strictly before this time.
    pub before: Option<UnixMillis>,
    /// Only messages created strictly after this time.
    pub after: Option<UnixMillis>,
}

/// Filters of the attempt lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptFilter {
    pub status: Option<DeliveryStatus>,
    /// Only attempts whose status code is in this class (e.g. 200 for 2xx; 0 for no response).
    pub status_code_class: Option<u16>,
    pub endpoint_id: Option<EndpointId>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub before: Option<UnixMillis>,
    pub after: Option<UnixMillis>,
}

/// Counts of an endpoint's deliveries by status (`GET .../endpoint/{id}/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
}

/// A published message and how many endpoints it was routed to.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedMessage {
    pub message: Message,
    pub deliveries: usize,
}

/// A due delivery claimed by a dispatcher, with everything needed to send it. The claim holds a lease: until
/// `lease_until`, no other dispatcher takes the same delivery.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub app_id: AppId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub event_type: String,
    /// The publisher's id for the message, if it gave one.
    pub event_id: Option<String>,
    pub payload: std::sync::Arc<str>,
    pub url: String,
    /// The endpoint's custom headers, parsed once per endpoint per claim and shared by all its deliveries in
    /// the claim (as the payload is per message), so memory does not grow with headers × claimed deliveries.
    pub headers: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    pub secrets: SecretSet,
    /// The endpoint's `throttleRate`: most deliveries per second.
    pub rate_limit: Option<u32>,
    pub signature_schemes: Vec<SignatureScheme>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// A user's resend: tried once, never retried.
    pub manual: bool,
    /// When it was due, so a delivery put back unsent keeps its place in line.
    pub due_at: UnixMillis,
}

impl ClaimedDelivery {
    /// How to hand this delivery back to the queue unattempted, keeping its place in line.
    pub fn into_release(self) -> Release {
        Release { msg_id: self.msg_id, endpoint_id: self.endpoint_id, due_at: self.due_at }
    }
}

/// An endpoint the store disabled because it kept failing.
#[derive(Clone, Debug, PartialEq)]
pub struct DisabledEndpoint {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    /// When its run of failed attempts began.
    pub failing_since: UnixMillis,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered.
    Succeeded,
    /// Try again at this time.
    RetryAt(UnixMillis),
    /// No more tries: the schedule is exhausted, or it was a one-off manual resend.
    GiveUp,
}

/// The result of one attempt, as the dispatcher records it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptOutcome {
    pub attempt: Attempt,
    pub next: NextStep,
    /// The receiver said the endpoint is gone (410): disable it in the same transaction.
    pub disable_endpoint: bool,
}

/// A delivery returned to the queue without being attempted (its endpoint was busy, or the process stops).
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub due_at: UnixMillis,
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

/// What [`Store::ingest`] did with a verified event.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestOutcome {
    /// The event was new: recorded as verified, and its message (if one was given) published.
    Recorded(Option<PublishedMessage>),
    /// A verified event of the source already had this provider event id: recorded as a duplicate pointing at
    /// the original's message, nothing published.
    Duplicate { original_msg_id: Option<MessageId> },
}

/// What a heartbeat ([`Store::keep_alive`]) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Deliveries leased by stopped processes, now due again.
    pub requeued: u64,
    /// Processes serving the database, this one included (at least 1): per-endpoint rate limits are split
    /// among them.
    pub live_processes: usize,
}

/// How many requests reached a source, split by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundCounts {
    pub verified: u64,
    pub duplicates: u64,
    /// Rejected requests by reason (`signature_mismatch`, …).
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

impl InboundCounts {
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }

    /// Every request that reached the source.
    pub fn received(&self) -> u64 {
        self.verified + self.duplicates + self.rejected()
    }
}

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

/// The tables whose secrets a re-encryption pass walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretTable {
    /// `endpoints.secret` and `endpoints.previous_secrets`.
    Endpoints,
    /// `sources.secrets`.
    Sources,
}

/// What one batch of a re-encryption pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReencryptBatch {
    /// The id of the last row looked at, where the next batch starts; `None` once the table is done.
    pub last: Option<String>,
    /// Rows whose secrets were sealed again (rows already under the current key are left alone).
    pub rewritten: u64,
}

/// Storage for everything hookrelay keeps. Implementations must make each method atomic, and
/// `publish_message` durable before it returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- applications ---
    /// Fails with `Conflict` when the uid is taken.
    async fn create_app(&self, app: &Application) -> StoreResult<()>;
    /// Finds an application by id or uid.
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application>;
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>>;
    /// Replaces the stored application with the same id. Fails with `Conflict` when the uid is taken.
    async fn update_app(&self, app: &Application) -> StoreResult<()>;
    /// Deletes the application with everything it owns.
    async fn delete_app(&self, id: &AppId) -> StoreResult<()>;

    // --- event types ---
    /// Fails with `Conflict` when the name is taken.
    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType>;
    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>>;
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    /// Removes the event type for good (`?expunge=true`); a plain delete is an update that archives.
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()>;
    /// Which of `names` are not known event types (archived ones count as known).
    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>>;

    // --- endpoints ---
    /// Fails with `Conflict` when the uid is taken within the application.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// Finds an endpoint of the application by id or uid.
    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint>;
    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>>;
    /// How many endpoints the application has (for the per-application limit).
    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64>;
    /// Replaces the stored endpoint with the same id (secrets and headers included).
    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// Deletes the endpoint, its deliveries and its attempts.
    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()>;
    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts>;
    /// The oldest open (pending or sending) delivery of the endpoint, by message id: on a FIFO endpoint, the
    /// one every later delivery waits for.
    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>>;

    // --- messages ---
    /// Stores the message and one pending delivery, due now, for each enabled endpoint of its application
    /// that accepts it, and the idempotent response if given: all in one durable transaction.
    /// Fails with `Conflict` when the event id was used before in this application, and with `NotFound` when
    /// the application no longer exists.
    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage>;
    /// Finds a message of the application by id or event id.
    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message>;
    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>>;

    // --- deliveries and attempts ---
    /// The message's deliveries with their endpoints, paged by endpoint id.
    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>>;
    /// Schedules one manual attempt of the message to the endpoint, due now.
    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()>;
    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt>;
    /// Every attempt of the application's endpoints (`filter.endpoint_id` narrows it to one), paged by id.
    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;

    // --- idempotency ---
    /// The remembered response for this key, if one exists and has not expired.
    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>>;
    /// Remembers a response; an existing unexpired one for the same key is kept.
    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()>;

    // --- the dispatcher's queue ---
    /// Claims up to `limit` deliveries due at `now`, oldest first, skipping endpoints in `skip_endpoints`,
    /// and leases them until `lease_until`. Deliveries whose lease expired are due again.
    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        skip_endpoints: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records attempts and applies each delivery's next step, all in one transaction.
    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> StoreResult<()>;
    /// Puts claimed deliveries back in the queue unattempted, at their original due time.
    async fn release(&self, deliveries: &[Release]) -> StoreResult<()>;
    /// The earliest time any pending delivery is due (lease expiries included), if any.
    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>>;
    /// Called once when a dispatcher starts. A backend that only one process can open (SQLite) makes
    /// deliveries leased by a previous, crashed run due at once; a shared backend leaves them to `keep_alive`
    /// (their holder may still be running).
    async fn requeue_interrupted(&self) -> StoreResult<u64>;
    /// Called about every second while a dispatcher runs. A backend shared by several processes records that
    /// this one is alive and makes due again, at once, the deliveries leased by processes that stopped doing so
    /// (killed or cut off). A single-process backend has nothing to do but say it is alone.
    async fn keep_alive(&self, now: UnixMillis) -> StoreResult<Liveness>;
    /// Makes every process skip the endpoint's deliveries in `claim_due` until `until` (its circuit breaker
    /// opened in one of them). A later call replaces the time; a time in the past lifts the pause.
    async fn pause_endpoint(&self, endpoint_id: &EndpointId, until: UnixMillis) -> StoreResult<()>;
    /// Wakes `wake` whenever another process sharing the database commits new due work (a publish, an ingest, a
    /// resend, a recover batch), so its dispatcher starts at once instead of at its next poll. Returns at once;
    /// the watch runs in the background, reconnecting after errors, for the life of the process. A
    /// single-process backend has nothing to watch.
    async fn watch_new_work(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> StoreResult<()>;

    // --- maintenance ---
    /// Disables every enabled endpoint whose attempts have all failed since before `failing_since_before`,
    /// returning them. (An endpoint is failing from its first failed attempt after a success.)
    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>>;
    /// Replaces the payload of up to `limit` messages created before `before` with `{}`, keeping everything
    /// else; skips messages that still have a delivery pending or in flight. Returns how many were purged.
    async fn purge_payloads(&self, before: UnixMillis, limit: usize) -> StoreResult<u64>;

    // --- recovery (background tasks) ---
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

    // --- inbound sources ---
    /// Fails with `Conflict` when the uid is taken, and `NotFound` when the application does not exist.
    async fn create_source(&self, source: &Source) -> StoreResult<()>;
    /// Finds a source by id or uid.
    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source>;
    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>>;
    /// Replaces the stored source with the same id. Fails with `Conflict` when the uid is taken.
    async fn update_source(&self, source: &Source) -> StoreResult<()>;
    /// Deletes the source and its inbound events (the messages they published stay with their application).
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()>;
    /// Records a verified request, in one durable transaction. When the event has a provider `event_id` that a
    /// verified event of the same source already has, it is recorded as a duplicate (with the original's message
    /// id) and nothing is published; otherwise it is recorded as verified and `message` (if any) is published as
    /// by `publish_message`. The event's `status` and `msg_id` are set by this method.
    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome>;
    /// Adds counts of rejected requests to the stored ones, one row per source, reason and minute: counts are
    /// summed, the first and last seen times widened, and the sample replaced by the newest one given. Counts
    /// for a source that no longer exists are dropped. Written without waiting for a flush to disk where the
    /// backend allows it: nothing was acknowledged for a rejected request, so losing the last few only loses
    /// statistics.
    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()>;
    /// The source's rejection counts by minute and reason, newest minute first by default. Cursors are the
    /// rows' `<minute>.<reason>`; another cursor fails with `Invalid`.
    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>>;
    /// The source's inbound events, newest first by default, optionally only those with `status`.
    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>>;
    /// Counts of the source's inbound events received at or after `since` (all of them when `None`). Rejections
    /// are counted by minute, so with a `since` a rejection row counts whole when its last request is at or after
    /// `since`.
    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts>;
    /// Deletes up to `limit` rows of inbound events received before `before` (their messages stay), then, within
    /// the same `limit`, rejection counts whose minute ended by `before`. Returns how many rows.
    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64>;

    // --- operations ---
    // --- secrets at rest ---
    /// Seals the secrets of up to `limit` rows of `table` with ids after `after` (from the start when `None`)
    /// under the store's current key (or writes them in plaintext when it has none), in one transaction that
    /// locks those rows. Rows already in that form are not written. Fails, naming the setting, on a secret
    /// sealed with a key the store does not have.
    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch>;
    /// Whether the store seals what it is given to keep secret (it has a current key): secrets, and remembered
    /// responses that carry a secret or token.
    fn seals_secrets(&self) -> bool;

    /// Checks the database answers, with one trivial query.
    async fn ping(&self) -> StoreResult<()>;
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

    // API tokens (admin and app-scoped), stored by digest.
    /// Stores a new token, deleting expired ones in the same transaction; an admin token whose name is taken is
    /// a `Conflict`, an app token of a missing application is `NotFound`.
    async fn create_token(&self, token: &ApiToken) -> StoreResult<()>;
    /// The token with this digest, expired or not (the caller decides).
    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>>;
    /// Every admin token, oldest first (app tokens are short-lived and not listed).
    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// Deletes the admin token with this id or name and returns it; `NotFound` if there is none.
    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken>;
}
