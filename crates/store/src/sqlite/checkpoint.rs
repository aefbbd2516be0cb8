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
//! past [`RESTART_FRAMES`], the writer copies the last few frames itself before a group; its commit then writes
//! from the start of the log again. That keeps the log file bounded under a load that never stops, at the cost of
//! one short checkpoint on the writer per restart. The copy waits for the database file's fsync (10-20 ms on a
//! cloud disk), and every API caller queued behind it waits too; so while the API writes (a group with an API
//! job in the last [`API_QUIET`]), the writer lets the log grow to [`RESTART_FRAMES_WHILE_API_WRITES`] first:
//! a burst of publishes then meets about one restart instead of one every few hundred milliseconds.
//!
//! The file is cut back only when it has grown past [`LOG_FILE_LIMIT`]: cutting it made the first commit after
//! each restart wait 10-15 ms (the file was truncated while the flush thread fsynced it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::connections::{open_connection, sql_error};
use crate::StoreError;
use crate::store::StoreResult;

/// Log frames (pages; 4 KiB each) after which the writer helps the log restart: the log file stays near 32 MiB.
/// Tests use a smaller log, to see it restart often.
const RESTART_FRAMES: i64 = if cfg!(test) { 2048 } else { 8192 };
/// The same while the API writes: the log may reach 192 MiB during a burst.
const RESTART_FRAMES_WHILE_API_WRITES: i64 = 6 * RESTART_FRAMES;
/// How long after a group with an API job the API still counts as writing.
const API_QUIET: Duration = Duration::from_millis(100);
/// What a log file that grew larger is cut back to when it restarts (`journal_size_limit`): more than a burst
/// lets it reach, so that in normal operation the file keeps its size.
const LOG_FILE_LIMIT: i64 = 8 * RESTART_FRAMES * 4096;
/// Least time between two checkpoints, so that one copies the pages many commits rewrote once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(25);

/// The writer's side of the checkpoint thread.
pub(crate) struct Checkpointer {
    committed: SyncSender<()>,
    /// The log's length in frames when the checkpoint thread last looked (0 once the writer made it restart).
    log_frames: Arc<AtomicI64>,
    /// When the writer last ran a group with an API job.
    last_api_write: Option<Instant>,
}

impl Checkpointer {
    /// Turns off the writer's own checkpoints and starts the checkpoint thread on its own connection to the
    /// database at `path`. It stops when the writer drops this handle.
    pub fn start(path: &Path, writer: &Connection) -> StoreResult<Self> {
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(sql_error)?;
        writer.pragma_update(None, "journal_size_limit", LOG_FILE_LIMIT).map_err(sql_error)?;
        let conn = open_connection(path).map_err(sql_error)?;
        let (committed, commits) = mpsc::sync_channel(1);
        let log_frames = Arc::new(AtomicI64::new(0));
        let seen = log_frames.clone();
        std::thread::Builder::new()
            .name("hookrelay-sqlite-checkpoint".into())
            .spawn(move || run_checkpoints(&conn, &commits, &seen))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        Ok(Self { committed, log_frames, last_api_write: None })
    }

    /// Tells the checkpoint thread that the log has new frames (never blocks; one pending nudge is enough).
    pub fn committed(&self) {
        let _ = self.committed.try_send(());
    }

    /// Before a group: if the log has grown long, copies what the checkpoint thread has not copied yet, so the
    /// group's commit restarts the log from its beginning. `api_writes` says the group has an API job.
    pub fn help_restart(&mut self, writer: &Connection, api_writes: bool) {
        if api_writes {
            self.last_api_write = Some(Instant::now());
        }
        let api_is_writing = self.last_api_write.is_some_and(|at| at.elapsed() < API_QUIET);
        let due = if api_is_writing { RESTART_FRAMES_WHILE_API_WRITES } else { RESTART_FRAMES };
        let log_frames = self.log_frames.load(Ordering::Acquire);
        if log_frames < due {
            return;
        }
        match passive_checkpoint(writer) {
            // The checkpoint thread is copying: nothing was done, try again before the next group.
            Ok(-1) => {}
            // Done, or stopped short by a reader's old snapshot. Either way the next try waits for the checkpoint
            // thread's next look at the log: an attempt that could not finish still fsyncs twice, and trying
            // again before every group made the writer spend its time in fsync.
            Ok(_) => self.log_frames.store(0, Ordering::Release),
            Err(err) => {
                self.log_frames.store(0, Ordering::Release);
                tracing::warn!(error = %err, "could not checkpoint the SQLite write-ahead log");
            }
        }
    }
}

fn run_checkpoints(conn: &Connection, commits: &Receiver<()>, log_frames: &AtomicI64) {
    while commits.recv().is_ok() {
        match passive_checkpoint(conn) {
            Ok(frames) if frames >= 0 => log_frames.store(frames, Ordering::Release),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not checkpoint the SQLite write-ahead log"),
        }
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
}

/// Copies committed log frames into the database file without waiting for anyone, and returns the log's length
/// in frames (-1 when another connection was checkpointing: that one does the work).
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

#[cfg(test)]
mod tests {
    use super::super::connections::{Connections, Durability};

    const BLOB: usize = 64 * 1024;

    /// A writer committing without pause would grow the log without end if nobody helped it restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_bounded_under_continuous_writes() {
        the_log_stays_bounded(Durability::ProcessCrash).await;
    }

    /// The same when an API caller waits for every group: the writer lets the log grow longer first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_bounded_under_continuous_api_writes() {
        the_log_stays_bounded(Durability::PowerLoss).await;
    }

    async fn the_log_stays_bounded(durability: Durability) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let db = Connections::open(&path, |conn| {
            conn.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
        })
        .unwrap();
        let wal = dir.path().join("db.sqlite-wal");
        let written = 4000; // 250 MiB through the log: without restarts, the log file would be as large
        let (mut largest_log, mut previous_sequence, mut restarts) = (0, None, 0);
        for id in 0..written {
            db.write(durability, move |conn| {
                conn.execute("INSERT INTO blobs (id, data) VALUES (?1, zeroblob(?2))", [id, BLOB as i64])
                    .map_err(super::sql_error)?;
                Ok(())
            })
            .await
            .unwrap();
            largest_log = largest_log.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            let sequence = restart_sequence(&wal);
            restarts += usize::from(previous_sequence.is_some() && sequence != previous_sequence);
            previous_sequence = sequence;
        }
        assert!(restarts >= 2, "the log restarted {restarts} times while 250 MiB went through it");
        // Between two restarts the log grows by what the writer commits while the checkpoint thread catches up, a
        // few times `RESTART_FRAMES` (8 MiB in tests; 48 MiB while the API writes) when the writer is as fast as
        // here.
        let limit: u64 = 120 << 20;
        assert!((super::LOG_FILE_LIMIT as u64) < limit);
        assert!(largest_log < limit, "the log grew to {largest_log} bytes (limit {limit})");
        let stored: i64 = db
            .read(|conn| conn.query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0)).map_err(super::sql_error))
            .await
            .unwrap();
        assert_eq!(stored, written);
    }

    /// The log header's checkpoint sequence number, which SQLite increments each time the log restarts.
    fn restart_sequence(wal: &std::path::Path) -> Option<u32> {
        use std::io::Read;
        let mut header = [0; 16];
        std::fs::File::open(wal).and_then(|mut file| file.read_exact(&mut header)).ok()?;
        Some(u32::from_be_bytes([header[12], header[13], header[14], header[15]]))
    }
}
