//! The queue role: what the dispatcher drives — claiming due deliveries under a lease, recording attempts and
//! their next step, handing back unsent work, and how processes sharing one database keep track of each other.

use async_trait::async_trait;
use hookrelay_core::model::{Attempt, SecretSet, SignatureScheme};
use hookrelay_core::retry::{EndpointRetry, NextStep};
use hookrelay_core::signature_headers::{SignatureHeader, StandardHeaders};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, EndpointId, MessageId};

use crate::StoreResult;

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
    /// The message's payload; empty once its content was expunged (nothing is sent then).
    pub payload: std::sync::Arc<str>,
    /// A raw payload's content type; `None` for JSON.
    pub content_type: Option<String>,
    pub url: String,
    /// The endpoint's custom headers, parsed once per endpoint per claim and shared by all its deliveries in
    /// the claim (as the payload is per message), so memory does not grow with headers × claimed deliveries.
    pub headers: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    /// The inbound request headers the message's source forwards (empty for published messages).
    pub forwarded_headers: std::collections::BTreeMap<String, String>,
    pub secrets: SecretSet,
    /// The endpoint's `throttleRate`: most deliveries per second.
    pub rate_limit: Option<u32>,
    pub signature_schemes: Vec<SignatureScheme>,
    /// The endpoint's own signature headers.
    pub signature_headers: Vec<SignatureHeader>,
    /// Which Standard Webhooks header families the delivery carries.
    pub standard_headers: StandardHeaders,
    /// The endpoint's transformation, when it has one that runs.
    pub transformation: Option<std::sync::Arc<str>>,
    /// When the message was published (the transformation's `webhook.timestamp`).
    pub msg_created_at: UnixMillis,
    /// The endpoint's own retry rules, where they replace the server's.
    pub retry: EndpointRetry,
    /// Attempts made before this one.
    pub attempts: u32,
    /// A user's resend: tried once, never retried.
    pub manual: bool,
    /// When it was due, so a delivery put back unsent keeps its place in line.
    pub due_at: UnixMillis,
    /// It was leased before and that lease ran out unrecorded (its holder stopped, or took longer than the lease):
    /// this claim takes it over.
    pub taken_over: bool,
}

impl ClaimedDelivery {
    /// How to hand this delivery back to the queue unattempted, keeping its place in line.
    pub fn into_release(self) -> Release {
        Release { msg_id: self.msg_id, endpoint_id: self.endpoint_id, due_at: self.due_at }
    }
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

/// What a heartbeat ([`Store::keep_alive`]) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Deliveries leased by stopped processes, now due again.
    pub requeued: u64,
    /// Processes serving the database, this one included (at least 1): per-endpoint rate limits are split
    /// among them.
    pub live_processes: usize,
}

/// The delivery queue, as the dispatcher drives it.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
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
    /// Called once when a dispatcher starts, with the dispatcher itself. A backend whose claims cost a
    /// transaction of their own (PostgreSQL) may then store the deliveries of new messages already leased to this
    /// process, as far as `intake` has room, and hand them over once they are durable, so that fresh work needs no
    /// claim. The others ignore it and leave everything to `claim_due`.
    fn hand_new_work_to(&self, intake: std::sync::Arc<dyn Intake>) {
        let _ = intake;
    }
}

/// The dispatcher of this process, as a store that leases new deliveries while it stores them sees it (see
/// [`Queue::hand_new_work_to`]).
pub trait Intake: Send + Sync {
    /// Takes room for up to `wanted` deliveries out of the dispatcher's capacity until [`Intake::hand_over`].
    fn reserve(&self, wanted: usize) -> Reservation;
    /// The deliveries leased with a reservation of `reserved` places, once their transaction committed (none
    /// when it failed): the dispatcher sends them, and the places they did not use are free again.
    fn hand_over(&self, reserved: usize, deliveries: Vec<ClaimedDelivery>);
}

/// Room the dispatcher made for new deliveries.
#[derive(Clone, Debug, Default)]
pub struct Reservation {
    /// How many deliveries it takes.
    pub granted: usize,
    /// Endpoints whose deliveries it does not take now (a full lane, an open circuit breaker).
    pub skip: Vec<EndpointId>,
    /// Until when the deliveries it takes are leased.
    pub lease_until: UnixMillis,
}
