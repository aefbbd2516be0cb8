//! The delivery queue's figures for health checks and metrics scrapes, counted at most once per interval and
//! shared by every caller, so that unauthenticated pollers cannot make the server count its backlog on each
//! request (a count costs time in proportion to the backlog).
//!
//! The first caller counts and the others arriving meanwhile wait for that one count. After that, a caller that
//! finds the snapshot older than its interval starts one refresh in the background and is answered at once from
//! the snapshot it has: no health check ever waits for a count of a large backlog, and however many callers
//! come, one count runs at a time. The interval grows with the count's cost (ten times its duration), so counting
//! never takes more than a tenth of a core.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_store::{Operations, QueueStats, StoreError};

/// How long a snapshot serves before the next caller starts a refresh.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a failed count is answered before it is tried again.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(1);
/// A refresh waits at least this many times the last count's duration.
const COST_FACTOR: u32 = 10;

/// One count of the queue.
#[derive(Clone, Debug)]
pub struct Taken {
    pub stats: Result<QueueStats, StoreError>,
    /// When the count ran (wall clock, for the health body's `asOf`).
    pub at: UnixMillis,
    /// When the count ran (monotonic, for the interval).
    taken: Instant,
    /// How long the count took.
    cost: Duration,
}

/// The shared snapshot; one per server.
pub struct QueueSnapshot {
    interval: Duration,
    latest: Mutex<Option<Taken>>,
    /// A background refresh is running.
    refreshing: AtomicBool,
    /// Held by the caller taking the very first count, so that callers arriving meanwhile wait for it.
    first: tokio::sync::Mutex<()>,
}

impl Default for QueueSnapshot {
    fn default() -> Self {
        Self::new(DEFAULT_INTERVAL)
    }
}

impl QueueSnapshot {
    /// A snapshot refreshed at most every `interval` (or ten times the count's duration, if longer).
    pub fn new(interval: Duration) -> Self {
        Self { interval, latest: Mutex::new(None), refreshing: AtomicBool::new(false), first: Default::default() }
    }

    /// The latest count, starting a background refresh when it is due; only the first call ever waits for a count.
    pub async fn get(self: &Arc<Self>, store: &Arc<dyn Operations>) -> Taken {
        if let Some(latest) = self.latest() {
            if latest.taken.elapsed() >= self.due_after(&latest) && !self.refreshing.swap(true, Ordering::AcqRel) {
                let (snapshot, store) = (self.clone(), store.clone());
                tokio::spawn(async move {
                    let _done = ClearOnDrop(&snapshot.refreshing);
                    let taken = count(store.as_ref()).await;
                    snapshot.set(taken);
                });
            }
            return latest;
        }
        let _first = self.first.lock().await;
        if let Some(latest) = self.latest() {
            return latest;
        }
        let taken = count(store.as_ref()).await;
        self.set(taken.clone());
        taken
    }

    fn due_after(&self, taken: &Taken) -> Duration {
        match taken.stats {
            Ok(_) => self.interval.max(taken.cost * COST_FACTOR),
            Err(_) => RETRY_FAILED_AFTER.min(self.interval),
        }
    }

    fn latest(&self) -> Option<Taken> {
        self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn set(&self, taken: Taken) {
        *self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(taken);
    }
}

async fn count(store: &dyn Operations) -> Taken {
    let (at, taken) = (now_ms(), Instant::now());
    let stats = store.queue_stats().await;
    if let Err(err) = &stats {
        tracing::warn!(error = %err, "could not count the delivery queue");
    }
    Taken { stats, at, taken, cost: taken.elapsed() }
}

/// Lets the next caller start a refresh once this one ends, even if it panicked.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
