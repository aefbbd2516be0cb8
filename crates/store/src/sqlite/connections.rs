//! How the SQLite backend talks to its database file: one writer thread that commits jobs in groups, and a
//! small pool of read connections used from blocking tasks.
//!
//! Group commit: every write is a job sent to the writer thread. The thread takes whatever jobs are waiting
//! (up to `MAX_GROUP`), runs each inside its own savepoint in one transaction, commits once (one fsync), and
//! only then answers each caller. A job that fails rolls back its savepoint alone; a failed commit fails
//! every job of the group. Nobody is told "done" before the data is on disk.
//!
//! Two levels of durability: [`Durability::PowerLoss`] commits are fsynced (`synchronous=FULL`), for anything
//! the API acknowledges; [`Durability::ProcessCrash`] commits reach the OS but skip the fsync
//! (`synchronous=NORMAL` in WAL mode), for the dispatcher's bookkeeping (claims, attempt records), where
//! losing the last moments to a power cut only means a delivery is sent again. A group containing any
//! `PowerLoss` job is committed at that level.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use crate::StoreError;
use crate::store::StoreResult;

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

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a write must survive once it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// Survives the process being killed; may be lost if the machine loses power.
    ProcessCrash,
    /// Survives power loss: fsynced before the caller hears back.
    PowerLoss,
}

/// A write waiting for the writer thread: run it in the open transaction (and answer after the commit), or
/// abort it unrun when no transaction could be opened.
trait Job: Send {
    fn durability(&self) -> Durability;
    fn run(self: Box<Self>, conn: &Connection) -> Reply;
    fn abort(self: Box<Self>, err: StoreError);
}

struct TypedJob<F, R> {
    durability: Durability,
    work: F,
    reply_to: oneshot::Sender<StoreResult<R>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(self: Box<Self>, conn: &Connection) -> Reply {
        let result = run_in_savepoint(conn, self.work);
        let reply_to = self.reply_to;
        Box::new(move |committed| {
            let _ = reply_to.send(committed.and(result));
        })
    }

    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.reply_to.send(Err(err));
    }
}

/// Opens connections to one database file with hookrelay's settings.
pub(crate) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL lets readers run while the writer commits; FULL makes each commit survive power loss, which
    // group commit keeps cheap.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(crate) fn sql_error(err: rusqlite::Error) -> StoreError {
    StoreError::Internal(err.to_string())
}

/// The writer thread's handle plus the read pool.
pub(crate) struct Connections {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl Connections {
    /// Opens the database (running `prepare` on the writer connection first, e.g. migrations) and starts
    /// the writer thread.
    pub fn open(path: &Path, prepare: impl FnOnce(&mut Connection) -> rusqlite::Result<()>) -> StoreResult<Self> {
        let mut writer = open_connection(path).map_err(sql_error)?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(sql_error)?;
        prepare(&mut writer).map_err(sql_error)?;
        let checkpointer = Checkpointer::start(path, &writer)?;
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("hookrelay-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue, checkpointer))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs, path: path.to_owned(), readers: Arc::new(Mutex::new(Vec::new())) })
    }

    /// Runs `work` in the next group transaction and returns its result once that transaction is committed
    /// with at least the given durability.
    pub async fn write<R, F>(&self, durability: Durability, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { durability, work, reply_to });
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

/// Runs one job inside a savepoint so its failure (or panic) undoes only its own changes.
fn run_in_savepoint<R>(conn: &Connection, work: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
    conn.execute_batch("SAVEPOINT job").map_err(sql_error)?;
    let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(StoreError::Internal("a store operation panicked".into())));
    let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    conn.execute_batch(end).map_err(sql_error)?;
    result
}

fn run_writer(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>, checkpointer: Checkpointer) {
    let mut last_cleanup = Instant::now();
    let mut current = Durability::PowerLoss; // as `open_connection` set it
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let needed = group.iter().map(|job| job.durability()).max().unwrap_or(Durability::PowerLoss);
        if needed != current {
            let level = if needed == Durability::PowerLoss { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => current = needed,
                Err(err) => tracing::warn!(error = %err, "could not change SQLite's synchronous setting"),
            }
        }
        checkpointer.help_restart(&conn);
        if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %err, "cannot open a SQLite write transaction");
            for job in group.drain(..) {
                job.abort(StoreError::Unavailable(format!("cannot write to the database: {err}")));
            }
            continue;
        }
        let replies: Vec<Reply> = group.drain(..).map(|job| job.run(&conn)).collect();
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
            let _ = conn.execute_batch("ROLLBACK");
            StoreError::Unavailable(format!("commit failed: {err}"))
        });
        if committed.is_ok() {
            checkpointer.committed();
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}
