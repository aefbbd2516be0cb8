//! Payload retention: a background task that empties the payloads of messages older than the retention
//! period (the message, its attempts and its metadata stay), so the database does not grow without bound.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::time::now_ms;
use hookrelay_store::Store;
use tokio::task::JoinHandle;

/// How often the task looks for payloads to purge.
const EVERY: Duration = Duration::from_secs(3600);
/// Messages purged per transaction, so a large backlog never holds the writer for long.
const BATCH: usize = 1000;

/// Starts the task: at once, then hourly, it purges payloads older than `retention`.
pub fn start(store: Arc<dyn Store>, retention: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
            let mut total = 0;
            loop {
                match store.purge_payloads(cutoff, BATCH).await {
                    Ok(purged) => {
                        total += purged;
                        if purged < BATCH as u64 {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "purging old payloads failed; trying again in an hour");
                        break;
                    }
                }
            }
            if total > 0 {
                tracing::info!(purged = total, "purged payloads past the retention period");
            }
        }
    })
}
