//! Power-loss durability without making the writer wait for the disk.
//!
//! The writer commits with `synchronous=NORMAL`: a commit writes its frames to the write-ahead log and returns
//! without an fsync. Answers that promise survival of a power cut are handed to this thread instead, which
//! fsyncs the log and then sends them. One fsync covers every commit written before it started, so while it
//! runs the writer goes on with the next groups, and the next fsync covers all of them at once. This is what
//! `synchronous=FULL` guarantees (the log is on disk before the caller hears back), minus the writer's wait.
//!
//! A commit is visible to readers (and the dispatcher) before it is on disk. A power cut in between loses it
//! although it may have been delivered already; its publisher, never answered, publishes it again. That is a
//! duplicate delivery, which at-least-once delivery allows.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use crate::StoreError;
use crate::StoreResult;
use crate::write_health::WriteHealth;

/// Answers callers with the outcome of their commit once it is on disk.
pub(crate) type Answer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// The writer's side of the flush thread.
pub(crate) struct Flusher {
    waiting: Sender<Answer>,
}

impl Flusher {
    /// Starts the thread that fsyncs the log of the database at `db_path` (already in WAL mode); a failed fsync
    /// marks the store unwritable in `health`.
    pub fn start(db_path: &Path, health: Arc<WriteHealth>) -> StoreResult<Self> {
        let mut log_path = db_path.as_os_str().to_owned();
        log_path.push("-wal");
        let log = OpenOptions::new().read(true).write(true).open(&log_path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open the write-ahead log {}: {e}", Path::new(&log_path).display()))
        })?;
        let (waiting, answers) = mpsc::channel();
        std::thread::Builder::new()
            .name("hookrelay-sqlite-flush".into())
            .spawn(move || run_flushes(&log, &answers, &health))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite flush thread: {e}")))?;
        Ok(Self { waiting })
    }

    /// Calls `answer` once everything committed so far is on disk (with the error if the fsync failed).
    pub fn answer_when_durable(&self, answer: Answer) {
        if let Err(mpsc::SendError(answer)) = self.waiting.send(answer) {
            answer(Err(StoreError::Unavailable("the SQLite flush thread stopped".into())));
        }
    }
}

fn run_flushes(log: &File, answers: &Receiver<Answer>, health: &WriteHealth) {
    while let Ok(first) = answers.recv() {
        let mut due = vec![first];
        due.extend(answers.try_iter());
        let synced = log.sync_data().map_err(|err| {
            tracing::error!(error = %err, "could not fsync the SQLite write-ahead log");
            health.failed(format!("cannot flush the write-ahead log to disk ({})", err.kind()), &err);
            StoreError::Unavailable(format!("could not write the log to disk: {err}"))
        });
        for answer in due {
            answer(synced.clone());
        }
    }
}
