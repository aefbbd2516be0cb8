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
//!
//! All of that relies on the checkpoint thread getting its share of the machine. When it does not (a machine
//! short of CPU or disk), the writer only learns of a long log late, and a writer committing without pause
//! could grow the file without end. So past [`LOG_FILE_CEILING`] the writer stops and copies the log itself,
//! waiting for the checkpoint thread if it is busy (at most [`CEILING_WAIT`]): its next commit then restarts
//! the log, which cuts the file back to [`LOG_FILE_LIMIT`]. Writes wait instead of filling the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::connection::{open_connection, sql_error};
use crate::StoreError;
use crate::StoreResult;

/// Log frames (pages; 4 KiB each) after which the writer helps the log restart: the log file stays near 32 MiB.
/// Tests use a smaller log, to see it restart often.
const RESTART_FRAMES: i64 = if cfg!(test) { 2048 } else { 8192 };
/// The same while the API writes: the log may reach 192 MiB during a burst.
const RESTART_FRAMES_WHILE_API_WRITES: i64 = 6 * RESTART_FRAMES;
/// How long after a group with an API job the API still counts as writing.
const API_QUIET: Duration = Duration::from_millis(100);
/// What a log file that grew larger is cut back to when it restarts (`journal_size_limit`): more than a burst
/// lets it reach, so that in normal operation the file keeps its size.
pub(super) const LOG_FILE_LIMIT: i64 = 8 * RESTART_FRAMES * 4096;
/// The log file size at which the writer stops to copy the log itself before its next group: above what a burst
/// of API writes lets it reach, so that it engages only when the checkpoint thread falls behind.
pub(super) const LOG_FILE_CEILING: u64 = 12 * RESTART_FRAMES as u64 * 4096;
/// The longest the writer waits at the ceiling for the log to be copied (readers holding old snapshots, or a busy
/// checkpoint thread); then it goes on and tries again before its next group.
const CEILING_WAIT: Duration = Duration::from_secs(2);
/// Least time between two checkpoints, so that one copies the pages many commits rewrote once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(25);

/// The writer's side of the checkpoint thread.
pub(crate) struct Checkpointer {
    committed: SyncSender<()>,
    /// The log's length in frames when the checkpoint thread last looked (0 once the writer made it restart).
    log_frames: Arc<AtomicI64>,
    /// When the writer last ran a group with an API job.
    last_api_write: Option<Instant>,
    /// The `-wal` file, whose size the writer checks against [`LOG_FILE_CEILING`].
    log_file: PathBuf,
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
        let mut log_file = path.as_os_str().to_owned();
        log_file.push("-wal");
        Ok(Self { committed, log_frames, last_api_write: None, log_file: PathBuf::from(log_file) })
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
        if std::fs::metadata(&self.log_file).is_ok_and(|file| file.len() > LOG_FILE_CEILING) {
            self.copy_whole_log(writer);
            return;
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

impl Checkpointer {
    /// Copies every committed frame, waiting for a busy checkpoint thread or a reader's old snapshot (at most
    /// [`CEILING_WAIT`]), so the next commit restarts the log.
    fn copy_whole_log(&self, writer: &Connection) {
        let deadline = Instant::now() + CEILING_WAIT;
        loop {
            match writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            }) {
                Ok((log, copied)) if log >= 0 && copied == log => break,
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Ok(_) => {
                    tracing::warn!(
                        ceiling_bytes = LOG_FILE_CEILING,
                        "the SQLite write-ahead log is past its ceiling and \
                        could not be copied within the wait; writes go on and the copy is tried again"
                    );
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not checkpoint the SQLite write-ahead log");
                    break;
                }
            }
        }
        self.log_frames.store(0, Ordering::Release);
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
    use super::*;

    /// The checkpoint thread never gets to run (it is never nudged): only the ceiling keeps the log bounded.
    #[test]
    fn past_the_ceiling_the_writer_copies_the_log_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = open_connection(&path).unwrap();
        writer.pragma_update(None, "synchronous", "OFF").unwrap();
        writer.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)").unwrap();
        let mut checkpointer = Checkpointer::start(&path, &writer).unwrap();
        let blob = 256 * 1024;
        let written = 3 * LOG_FILE_CEILING / blob as u64;
        let mut largest_log = 0;
        for id in 0..written {
            checkpointer.help_restart(&writer, false);
            let tx = writer.transaction().unwrap();
            tx.execute("INSERT INTO blobs (id, data) VALUES (?1, zeroblob(?2))", [id as i64, blob]).unwrap();
            tx.commit().unwrap();
            largest_log = largest_log.max(std::fs::metadata(&checkpointer.log_file).unwrap().len());
        }
        let one_commit = 2 * blob as u64;
        assert!(largest_log <= LOG_FILE_CEILING + one_commit, "the log grew to {largest_log} bytes");
        let stored: i64 = writer.query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0)).unwrap();
        assert_eq!(stored as u64, written);
    }
}
