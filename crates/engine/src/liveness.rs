//! Keeping this process's place among the processes sharing a database: a heartbeat (`Store::keep_alive`) about
//! every second, which also takes back the leased deliveries of processes that stopped beating, and the watch
//! for work other processes add (`Store::watch_new_work`). The heartbeat also says how many processes share the
//! database, so each paces endpoints to its share of their rate limit. All of it is a no-op on the
//! single-process SQLite store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookrelay_core::time::now_ms;
use hookrelay_metrics::Metrics;
use hookrelay_store::Queue;
use tokio::sync::{Notify, watch};

/// Heartbeat period; well under the store's instance time-to-live, so a busy moment never looks like death.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Starts watching for other processes' work, then beats until `stop` turns true. `wake` is the dispatcher's;
/// `live_processes` receives how many processes share the database.
pub(crate) async fn run(
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    live_processes: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(err) = queue.watch_new_work(wake.clone()).await {
        tracing::warn!(error = %err, "cannot watch for new work from other processes; polling only");
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        match queue.keep_alive(now_ms()).await {
            Ok(liveness) => {
                live_processes.store(liveness.live_processes.max(1), Ordering::Relaxed);
                if liveness.requeued > 0 {
                    metrics.leases_taken_over(usize::try_from(liveness.requeued).unwrap_or(usize::MAX));
                    tracing::info!(count = liveness.requeued, "re-queued deliveries leased by a stopped process");
                    wake.notify_one();
                }
            }
            Err(err) => tracing::warn!(error = %err, "heartbeat to the database failed; retrying"),
        }
    }
}
