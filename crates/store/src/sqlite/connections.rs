//! How the SQLite backend talks to its database file: one writer thread that commits jobs in groups, and a
//! small pool of read connections used from blocking tasks.
//!
//! Group commit: every write is a job sent to the writer thread. The thread takes whatever jobs are waiting
//! (up to `MAX_GROUP`), runs them in one transaction, commits once, and only then answers each caller. Nobody
//! is told "done" before the data is as safe as the job asked (below); a failed commit fails every job of the
//! group.
//!
//! A job that fails must undo only its own changes. Giving each job a savepoint would do that, but SQLite then
//! copies every page a job touches into its sub-journal before changing it, which was a fifth of the writer's
//! time under fan-out. So the first run of a group is optimistic: jobs run bare, and as soon as one fails (or
//! panics) the whole transaction is rolled back and the group runs again, this time with a savepoint per job.
//! Jobs are therefore `Fn`: running one twice on the same database state must be harmless. Failures are rare
//! (a conflict, a row deleted meanwhile), so the second run is the exception.
//!
//! Two levels of durability: [`Durability::PowerLoss`] for anything the API acknowledges, answered only once the
//! log is fsynced (by the flush thread, see `flush`, while the writer goes on); [`Durability::ProcessCrash`] for
//! the dispatcher's bookkeeping (claims, attempt records), answered as soon as the commit reached the OS, where
//! losing the last moments to a power cut only means a delivery is sent again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use super::connection::{open_connection, sql_error, write_refusal};
use super::flush::Flusher;
use crate::StoreError;
use crate::StoreResult;
use crate::write_health::WriteHealth;

/// Most jobs committed together.
const MAX_GROUP: usize = 512;
/// Jobs waiting for the writer before senders wait too (backpressure instead of unbounded memory).
const QUEUE_CAPACITY: usize = 4096;
/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;
/// The writer's page cache, in KiB (SQLite's default is 2 MiB): the queue's indexes stay in memory instead of
/// being read back from the OS for every statement.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// How often the writer drops expired idempotency records.
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

/// What a write must survive once it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process being killed; may be lost if the machine loses power.
    ProcessCrash,
    /// Survives power loss: fsynced before the caller hears back.
    PowerLoss,
}

/// A write waiting for the writer thread: run it in the open transaction (bare, or in its own savepoint), then
/// answer once the transaction is committed, or abort it unrun when no transaction could be opened.
trait Job: Send {
    fn durability(&self) -> Durability;
    /// Runs the work and keeps its result; false when it failed, so its changes must be undone.
    fn run(&mut self, conn: &Connection, isolation: Isolation) -> bool;
    /// Answers the caller with the kept result, or with the commit's failure.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
    fn abort(self: Box<Self>, err: StoreError);
}

/// How a job runs inside the group's transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// With no savepoint: cheap, but a failure means rolling back the whole group.
    Bare,
    /// In its own savepoint, which a failure rolls back alone.
    Savepoint,
}

struct TypedJob<F, R> {
    durability: Durability,
    work: F,
    result: Option<StoreResult<R>>,
    reply_to: oneshot::Sender<StoreResult<R>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    R: Send + 'static,
    F: Fn(&Connection) -> StoreResult<R> + Send + 'static,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(&mut self, conn: &Connection, isolation: Isolation) -> bool {
        let result = match isolation {
            Isolation::Bare => run_catching_panics(|| (self.work)(conn)),
            Isolation::Savepoint => run_in_savepoint(conn, &self.work),
        };
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::Internal("a store operation did not run".into())));
        let _ = self.reply_to.send(committed.and(result));
    }

    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.reply_to.send(Err(err));
    }
}

/// The writer thread's handle plus the read pool.
pub(crate) struct Connections {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Set by the writer and flush threads when a transaction or an fsync fails (see `write_health`).
    health: Arc<WriteHealth>,
}

impl Connections {
    /// Opens the database (running `prepare` on the writer connection first, e.g. migrations) and starts
    /// the writer thread.
    pub fn open(path: &Path, prepare: impl FnOnce(&mut Connection) -> rusqlite::Result<()>) -> StoreResult<Self> {
        let mut writer = open_connection(path).map_err(sql_error)?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(sql_error)?;
        prepare(&mut writer).map_err(sql_error)?;
        // Commits skip the fsync; the flush thread makes them durable before power-loss answers go out.
        writer.pragma_update(None, "synchronous", "NORMAL").map_err(sql_error)?;
        let checkpointer = Checkpointer::start(path, &writer)?;
        let health = Arc::new(WriteHealth::default());
        let flusher = Flusher::start(path, health.clone())?;
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let writer_health = health.clone();
        std::thread::Builder::new()
            .name("hookrelay-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue, checkpointer, flusher, &writer_health))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs, path: path.to_owned(), readers: Arc::new(Mutex::new(Vec::new())), health })
    }

    /// Whether writes work, as the writer, the flush thread and the write probe last found.
    pub fn write_health(&self) -> &Arc<WriteHealth> {
        &self.health
    }

    /// Runs `work` in the next group transaction and returns its result once that transaction is committed
    /// with at least the given durability. `work` may run twice (see the module notes), each time on the same
    /// database state.
    pub async fn write<R, F>(&self, durability: Durability, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { durability, work, result: None, reply_to });
        self.jobs.send(job).await.map_err(|_| StoreError::Unavailable("the store is shut down".into()))?;
        reply.await.map_err(|_| StoreError::Unavailable("the SQLite writer stopped".into()))?
    }

    /// Runs `work` on a read connection in a blocking task.
    pub async fn read<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut idle| idle.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path).map_err(sql_error)?,
            };
            let result = work(&conn);
            if let Ok(mut idle) = readers.lock()
                && idle.len() < MAX_IDLE_READERS
            {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

/// Runs one job, turning a panic into an error.
fn run_catching_panics<R>(work: impl FnOnce() -> StoreResult<R>) -> StoreResult<R> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(StoreError::Internal("a store operation panicked".into())))
}

/// Runs one job inside a savepoint so its failure (or panic) undoes only its own changes.
fn run_in_savepoint<R>(conn: &Connection, work: impl Fn(&Connection) -> StoreResult<R>) -> StoreResult<R> {
    conn.execute_batch("SAVEPOINT job").map_err(sql_error)?;
    let result = run_catching_panics(|| work(conn));
    let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    conn.execute_batch(end).map_err(sql_error)?;
    result
}

/// Runs the group in the open transaction: bare first; if a job fails, rolls everything back and runs the group
/// again with a savepoint per job. Err when the transaction could not be reopened for that second run.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), rusqlite::Error> {
    if group.iter_mut().all(|job| job.run(conn, Isolation::Bare)) {
        return Ok(());
    }
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in group.iter_mut() {
        // Some errors (a full disk, an I/O error) make SQLite roll back the whole transaction by itself; the jobs
        // after it would then each commit on their own, out of the group.
        if conn.is_autocommit() {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back by a failed job".into()),
            ));
        }
        job.run(conn, Isolation::Savepoint);
    }
    Ok(())
}

fn run_writer(
    conn: Connection,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    mut checkpointer: Checkpointer,
    flusher: Flusher,
    health: &WriteHealth,
) {
    let mut last_cleanup = Instant::now();
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let api_writes = group.iter().any(|job| job.durability() == Durability::PowerLoss);
        checkpointer.help_restart(&conn, api_writes);
        if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| run_group(&conn, &mut group)) {
            tracing::error!(error = %err, "a SQLite write transaction failed");
            health.failed(write_refusal(&err), &err);
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for job in group.drain(..) {
                job.abort(StoreError::Unavailable(format!("cannot write to the database: {err}")));
            }
            continue;
        }
        if last_cleanup.elapsed() >= CLEANUP_EVERY {
            last_cleanup = Instant::now();
            if let Err(err) =
                conn.execute("DELETE FROM idempotency WHERE expires_at < ?1", [hookrelay_core::time::now_ms()])
            {
                tracing::warn!(error = %err, "could not drop expired idempotency records");
            }
        }
        let committed = conn.execute_batch("COMMIT").map_err(|err| {
            tracing::error!(error = %err, "SQLite commit failed");
            health.failed(write_refusal(&err), &err);
            let _ = conn.execute_batch("ROLLBACK");
            StoreError::Unavailable(format!("commit failed: {err}"))
        });
        if committed.is_err() {
            for job in group.drain(..) {
                job.answer(committed.clone());
            }
            continue;
        }
        checkpointer.committed();
        let (durable, answerable): (Vec<_>, Vec<_>) =
            group.drain(..).partition(|job| job.durability() == Durability::PowerLoss);
        for job in answerable {
            job.answer(Ok(()));
        }
        if !durable.is_empty() {
            flusher.answer_when_durable(Box::new(move |synced| {
                for job in durable {
                    job.answer(synced.clone());
                }
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn insert(conn: &Connection, id: i64) -> StoreResult<()> {
        conn.execute("INSERT INTO rows (id) VALUES (?1)", [id]).map_err(sql_error)?;
        Ok(())
    }

    /// Jobs queued behind a slow one form one group; the failing and the panicking job in it undo their own
    /// insert, and only theirs, although the group first ran without savepoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_undoes_only_its_own_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(
            Connections::open(&dir.path().join("db.sqlite"), |conn| {
                conn.execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
            })
            .unwrap(),
        );
        let (started, started_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let slow = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(Durability::PowerLoss, move |conn| {
                    let _ = started.send(());
                    let _ = release_rx.recv_timeout(Duration::from_secs(10));
                    insert(conn, 0)
                })
                .await
            }
        });
        // The writer is busy with the slow job until released: everything sent now waits for the next group.
        started_rx.recv().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        // One task queues all five, in order, before the writer can take any of them.
        let jobs = tokio::spawn({
            let (db, runs) = (db.clone(), runs.clone());
            async move {
                let job = |id: i64, outcome: &'static str| {
                    let runs = runs.clone();
                    db.write(Durability::PowerLoss, move |conn| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        insert(conn, id)?;
                        match outcome {
                            "fail" => Err(StoreError::Conflict("no".into())),
                            "panic" => panic!("job {id} panics"),
                            _ => Ok(()),
                        }
                    })
                };
                let outcomes = tokio::join!(job(1, "ok"), job(2, "fail"), job(3, "ok"), job(4, "panic"), job(5, "ok"));
                [outcomes.0, outcomes.1, outcomes.2, outcomes.3, outcomes.4]
            }
        });
        while db.jobs.capacity() > QUEUE_CAPACITY - 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        slow.await.unwrap().unwrap();
        let outcomes = jobs.await.unwrap();
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok() && outcomes[4].is_ok(), "{outcomes:?}");
        assert!(matches!(outcomes[1], Err(StoreError::Conflict(_))), "{:?}", outcomes[1]);
        assert!(matches!(&outcomes[3], Err(StoreError::Internal(m)) if m.contains("panicked")), "{:?}", outcomes[3]);
        // The bare run stopped at the failing job (2 runs), then all five ran again in savepoints.
        assert_eq!(runs.load(Ordering::Relaxed), 2 + 5);
        let ids = db
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT id FROM rows ORDER BY id").map_err(sql_error)?;
                let ids = stmt.query_map([], |row| row.get::<_, i64>(0)).map_err(sql_error)?;
                ids.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_error)
            })
            .await
            .unwrap();
        assert_eq!(ids, [0, 1, 3, 5]);
    }
}

/// With the checkpointer beside it, the writer keeps the log bounded (see `checkpoint`).
#[cfg(test)]
mod log_stays_bounded {
    use super::super::checkpoint::{LOG_FILE_CEILING, LOG_FILE_LIMIT};
    use super::super::connection::sql_error;
    use super::{Connections, Durability};

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
                    .map_err(sql_error)?;
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
        // here; past `LOG_FILE_CEILING` (96 MiB in tests) the writer waits for the copy, whatever the checkpoint
        // thread's share of the machine (a loaded CI machine once let it reach 180 MiB before the ceiling).
        let limit: u64 = 120 << 20;
        assert!((LOG_FILE_LIMIT as u64) < LOG_FILE_CEILING && LOG_FILE_CEILING < limit);
        assert!(largest_log < limit, "the log grew to {largest_log} bytes (limit {limit})");
        let stored: i64 = db
            .read(|conn| conn.query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0)).map_err(sql_error))
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
