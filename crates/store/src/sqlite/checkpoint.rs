//! Checkpoints of the write-ahead log, on a thread of their own instead of the writer's.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the writer copies the log's
//! pages into the database file and fsyncs it while every job of the next group waits. Under load that was a
//! sixth of the writer's time, and it came in lumps that publishers saw as latency spikes. Here the writer never
//! checkpoints on its own (`wal_autocheckpoint=0`); after each commit it nudges this thread, which copies what has
//! been committed with a PASSIVE checkpoint on its own connection, concurrently with the writer's next groups.
//!
//! The log restarts from its beginning only when a write transaction starts with every frame copied, which a
//! writer committing without pause never sees while another thread copies behind it. So when the log has grown
//! past [`RESTART_FRAMES`], this thread asks the writer to copy the last few frames itself before its next group;
//! its next commit then writes from the start of the log again. That keeps the log file bounded under a load that
//! never stops, at the cost of one short checkpoint on the writer per `RESTART_FRAMES` frames.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

use super::connections::{open_connection, sql_error};
use crate::StoreError;
use crate::store::StoreResult;

/// Log frames (pages; 4 KiB each) after which the writer helps the log restart: the log file stays near 16 MiB.
const RESTART_FRAMES: i64 = 4096;
/// What the log file is cut back to when it restarts (`journal_size_limit`).
const RESTART_LOG_BYTES: i64 = RESTART_FRAMES * 4096;
/// Least time between two checkpoints, so that one copies the pages many commits rewrote once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(25);

/// The writer's side of the checkpoint thread.
pub(crate) struct Checkpointer {
    committed: SyncSender<()>,
    restart_wanted: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Turns off the writer's own checkpoints and starts the checkpoint thread on its own connection to the
    /// database at `path`. It stops when the writer drops this handle.
    pub fn start(path: &Path, writer: &Connection) -> StoreResult<Self> {
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(sql_error)?;
        writer.pragma_update(None, "journal_size_limit", RESTART_LOG_BYTES).map_err(sql_error)?;
        let conn = open_connection(path).map_err(sql_error)?;
        let (committed, commits) = mpsc::sync_channel(1);
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let wanted = restart_wanted.clone();
        std::thread::Builder::new()
            .name("hookrelay-sqlite-checkpoint".into())
            .spawn(move || run_checkpoints(&conn, &commits, &wanted))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        Ok(Self { committed, restart_wanted })
    }

    /// Tells the checkpoint thread that the log has new frames (never blocks; one pending nudge is enough).
    pub fn committed(&self) {
        let _ = self.committed.try_send(());
    }

    /// Before a group: if the log has grown long, copies what the checkpoint thread has not copied yet, so the
    /// group's commit restarts the log from its beginning.
    pub fn help_restart(&self, writer: &Connection) {
        if !self.restart_wanted.load(Ordering::Acquire) {
            return;
        }
        match passive_checkpoint(writer) {
            // Copied to the end: the next commit restarts the log.
            Ok(Copied { complete: true, .. }) => self.restart_wanted.store(false, Ordering::Release),
            // The checkpoint thread is copying, or a reader holds an old snapshot: try again before the next group.
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not checkpoint the SQLite write-ahead log"),
        }
    }
}

fn run_checkpoints(conn: &Connection, commits: &Receiver<()>, restart_wanted: &AtomicBool) {
    while commits.recv().is_ok() {
        match passive_checkpoint(conn) {
            Ok(Copied { log_frames, .. }) if log_frames >= RESTART_FRAMES => {
                restart_wanted.store(true, Ordering::Release);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not checkpoint the SQLite write-ahead log"),
        }
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
}

/// What a checkpoint did.
struct Copied {
    /// The log's length in frames (-1 when another connection was checkpointing).
    log_frames: i64,
    /// Every frame of the log is in the database file.
    complete: bool,
}

/// Copies committed log frames into the database file without waiting for anyone. Another connection's
/// checkpoint in progress is not an error: that one does the work.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<Copied> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        let (busy, log_frames, copied): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok(Copied { log_frames, complete: busy == 0 && copied == log_frames })
    })
}

#[cfg(test)]
mod tests {
    use super::super::connections::{Connections, Durability};

    const BLOB: usize = 64 * 1024;

    /// A writer committing without pause would grow the log without end if nobody helped it restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_bounded_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let db = Connections::open(&path, |conn| {
            conn.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
        })
        .unwrap();
        let wal = dir.path().join("db.sqlite-wal");
        let written = 2000; // 125 MiB through the log: without restarts, the log file would be as large
        let (mut largest_log, mut previous_log, mut restarts) = (0, 0, 0);
        for id in 0..written {
            db.write(Durability::ProcessCrash, move |conn| {
                conn.execute("INSERT INTO blobs (id, data) VALUES (?1, zeroblob(?2))", [id, BLOB as i64])
                    .map_err(super::sql_error)?;
                Ok(())
            })
            .await
            .unwrap();
            let log = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            // A restart cuts the file back to `journal_size_limit`.
            restarts += usize::from(log < previous_log);
            (largest_log, previous_log) = (largest_log.max(log), log);
        }
        assert!(restarts >= 2, "the log restarted {restarts} times while 125 MiB went through it");
        // Between two restarts the log grows by what the writer commits while the checkpoint thread catches up.
        let limit = 6 * super::RESTART_LOG_BYTES as u64;
        assert!(largest_log < limit, "the log grew to {largest_log} bytes (limit {limit})");
        let stored: i64 = db
            .read(|conn| conn.query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0)).map_err(super::sql_error))
            .await
            .unwrap();
        assert_eq!(stored, written);
    }
}
