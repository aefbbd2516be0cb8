//! Writes attempt outcomes to the store in batches: one transaction for everything that finished since the
//! last write. A write that keeps failing is retried with backoff; if it is finally dropped, the deliveries
//! stay leased in the store and are sent again when the lease ends (at-least-once, never lost).

use std::sync::Arc;
use std::time::Duration;

use hookrelay_store::{AttemptOutcome, Queue};
use tokio::sync::mpsc;

const MAX_BATCH: usize = 512;
const MAX_TRIES: u32 = 8;

/// Records outcomes until every sender is gone; calls `recorded(batch)` after each batch (stored or dropped).
pub async fn run_recorder(
    queue: Arc<dyn Queue>,
    mut outcomes: mpsc::Receiver<AttemptOutcome>,
    recorded: impl Fn(&[AttemptOutcome]),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while outcomes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=MAX_TRIES {
            match queue.record_outcomes(&batch).await {
                Ok(()) => break,
                Err(err) if attempt == MAX_TRIES => {
                    tracing::error!(error = %err, count = batch.len(),
                        "giving up recording attempts; those deliveries will be retried when their lease ends");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "recording attempts failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        recorded(&batch);
        batch.clear();
    }
}
