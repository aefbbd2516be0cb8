//! Housekeeping in the background: disabling endpoints that have failed without a break for too long; past the
//! retention period, emptying message payloads (the message, its attempts and metadata stay) and deleting the
//! log of requests that reached inbound sources and the counts of rejected ones; deleting the per-minute
//! activity counters after 90 days (`ACTIVITY_KEPT_MS`) and the per-endpoint failure counters after two days
//! (`ENDPOINT_FAILURES_KEPT_MS`); and probing every few seconds that the database takes writes.
//!
//! The write probe lives here rather than in the store because it is a periodic job of a running server, like
//! the others: the store records what writes and probes find (it alone can tell a full disk from a conflict),
//! while the one-shot commands that open the database (`migrate`, `backup`) start no background writes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::operational::{DisableTrigger, EndpointRef, EventSink, OperationalEvent};
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_metrics::{DisableReason, Metrics};
use hookrelay_store::{ACTIVITY_KEPT_MS, ENDPOINT_FAILURES_KEPT_MS, Operations, Recovery, StoreResult};
use tokio::task::JoinHandle;

/// How often payloads, inbound events and activity counters are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How often the queue's dead rows are looked at (and reclaimed when there are enough).
const TIDY_QUEUE_EVERY: Duration = Duration::from_secs(5);
/// Rows purged per transaction, so a large backlog never holds the writer for long.
const PURGE_BATCH: usize = 1000;
/// Longest gap between two looks for endpoints to disable.
const DISABLE_CHECK_MAX: Duration = Duration::from_secs(60);
/// How often the write probe runs while writes work: how soon a failure is noticed without traffic.
pub const PROBE_WRITES_EVERY: Duration = Duration::from_secs(5);
/// How often it runs while they fail: how soon health recovers after the cause is fixed.
pub const PROBE_UNWRITABLE_EVERY: Duration = Duration::from_secs(1);

/// What the housekeeping does; `None` turns a job off.
#[derive(Clone, Debug)]
pub struct MaintenanceConfig {
    /// Disable an endpoint whose attempts have all failed for this long.
    pub disable_failing_after: Option<Duration>,
    /// Empty payloads of messages older than this, and delete inbound events received before it.
    pub payload_retention: Option<Duration>,
    /// Where disabled endpoints are counted.
    pub metrics: Arc<Metrics>,
}

/// Starts the housekeeping task (the write probe included).
pub fn start(
    recovery: Arc<dyn Recovery>,
    operations: Arc<dyn Operations>,
    config: MaintenanceConfig,
    events: Arc<dyn EventSink>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::join!(
            tidy_queue(recovery.as_ref()),
            housekeeping(recovery.clone(), config, events),
            probe_writes(operations.as_ref())
        );
    })
}

/// Lets the store reclaim what the queue's updates leave behind, every few seconds (see
/// [`Recovery::tidy_queue`]): a drain of a large backlog otherwise slows to a fraction of its speed.
async fn tidy_queue(store: &dyn Recovery) {
    loop {
        tokio::time::sleep(TIDY_QUEUE_EVERY).await;
        match store.tidy_queue().await {
            Ok(true) => tracing::debug!("vacuumed the delivery queue"),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "could not tidy the delivery queue"),
        }
    }
}

/// Writes the store's probe row forever; the store records each outcome where health reads it.
async fn probe_writes(store: &dyn Operations) {
    loop {
        // A failure is logged by the store when writes turn unwritable, not on every probe after that.
        let _ = store.probe_write().await;
        let pause = if store.unwritable().is_some() { PROBE_UNWRITABLE_EVERY } else { PROBE_WRITES_EVERY };
        tokio::time::sleep(pause).await;
    }
}

async fn housekeeping(store: Arc<dyn Recovery>, config: MaintenanceConfig, events: Arc<dyn EventSink>) {
    let check_every = config
        .disable_failing_after
        .map_or(DISABLE_CHECK_MAX, |after| (after / 4).clamp(Duration::from_secs(1), DISABLE_CHECK_MAX));
    let mut ticks = tokio::time::interval(check_every);
    let mut next_purge = tokio::time::Instant::now();
    loop {
        ticks.tick().await;
        if let Some(after) = config.disable_failing_after {
            let cutoff = now_ms() - millis(after);
            disable_failing_endpoints(store.as_ref(), events.as_ref(), &config.metrics, cutoff).await;
        }
        if tokio::time::Instant::now() >= next_purge {
            next_purge += PURGE_EVERY;
            // Messages with a retention of their own are purged whether or not the server has one.
            let (store, now) = (store.as_ref(), now_ms());
            let cutoff = config.payload_retention.map(|retention| now - millis(retention));
            purge_in_batches("payloads", |limit| store.purge_payloads(cutoff, now, limit)).await;
            if let Some(cutoff) = cutoff {
                purge_in_batches("inbound events and rejection counts", |limit| {
                    store.purge_inbound_events(cutoff, limit)
                })
                .await;
            }
            // Counts, not payloads: kept for the charts' longest range whatever the retention, and never longer.
            let cutoff = now - ACTIVITY_KEPT_MS;
            purge_in_batches("activity counters", |limit| store.purge_activity(cutoff, limit)).await;
            // Read only by the statistics of the last 24 hours: kept a short while, since they are per endpoint.
            let cutoff = now - ENDPOINT_FAILURES_KEPT_MS;
            purge_in_batches("endpoint failure counters", |limit| store.purge_endpoint_failures(cutoff, limit)).await;
        }
    }
}

async fn disable_failing_endpoints(
    store: &dyn Recovery,
    events: &dyn EventSink,
    metrics: &Metrics,
    failing_since_before: UnixMillis,
) {
    match store.disable_failing_endpoints(failing_since_before).await {
        Ok(disabled) => {
            for endpoint in disabled {
                metrics.endpoint_disabled(DisableReason::Failing);
                tracing::warn!(endpoint_id = %endpoint.endpoint_id,
                    "disabled an endpoint that kept failing; re-enable it once it is fixed");
                events.emit(OperationalEvent::EndpointDisabled {
                    endpoint: EndpointRef {
                        app_id: endpoint.app_id.to_string(),
                        app_uid: None,
                        endpoint_id: endpoint.endpoint_id.to_string(),
                        endpoint_uid: None,
                    },
                    trigger: DisableTrigger::Automatic,
                    fail_since: Some(endpoint.failing_since),
                });
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not check for endpoints to disable"),
    }
}

/// Calls `purge` with a batch size until a batch comes back short: the whole backlog goes in one round, one
/// transaction per batch.
async fn purge_in_batches<Batch>(what: &str, purge: impl Fn(usize) -> Batch)
where
    Batch: Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        match purge(PURGE_BATCH).await {
            Ok(purged) => {
                total += purged;
                if purged < PURGE_BATCH as u64 {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "purging old {what} failed; trying again later");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(purged = total, "purged {what} past the retention period");
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}
