//! Runs background tasks (recover, replay-missing) inside the server process: one tokio task per background
//! task, working through the window in bounded batches, saving its cursor and progress after each batch, and
//! waking the dispatcher whenever a batch queued deliveries.
//!
//! Each batch is one store call and one transaction of at most [`BATCH_SIZE`] rows, so a huge window never
//! builds one giant transaction or holds more than a batch in memory. A task stopped by a shutdown, or left
//! `running` by a crash, is resumed from its saved cursor at the next start ([`TaskRunner::resume_interrupted`]);
//! both kinds are idempotent, so redoing the batch that was in progress is harmless.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay_core::model::{BackgroundTask, TaskKind, TaskStatus};
use hookrelay_core::time::now_ms;
use hookrelay_store::{BatchDone, Order, PageRequest, Recovery, StoreError, StoreResult, TaskFilter};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Most rows one batch (one store call, one transaction) handles.
pub const BATCH_SIZE: usize = 500;

/// Starts, tracks and stops background tasks. Cheap to clone; clones share the same tasks.
#[derive(Clone)]
pub struct TaskRunner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Recovery>,
    on_new_work: Arc<Notify>,
    batch_size: usize,
    stop: watch::Sender<bool>,
    running: Mutex<JoinSet<()>>,
}

/// How a task's loop ended.
enum Ended {
    Finished,
    /// The server is stopping; the task stays `running` and is resumed at the next start.
    Stopped,
}

impl TaskRunner {
    /// A runner whose tasks use `store` and wake the dispatcher through `on_new_work`.
    pub fn new(store: Arc<dyn Recovery>, on_new_work: Arc<Notify>) -> Self {
        Self::with_batch_size(store, on_new_work, BATCH_SIZE)
    }

    /// Like [`TaskRunner::new`] with another batch size (tests use small batches to exercise the paging).
    pub fn with_batch_size(store: Arc<dyn Recovery>, on_new_work: Arc<Notify>, batch_size: usize) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                store,
                on_new_work,
                batch_size: batch_size.max(1),
                stop,
                running: Mutex::new(JoinSet::new()),
            }),
        }
    }

    /// Runs a task (already stored) in the background.
    pub fn spawn(&self, task: BackgroundTask) {
        let inner = self.inner.clone();
        let Ok(mut running) = self.inner.running.lock() else {
            tracing::error!(task = %task.id, "the task list is poisoned; the task runs at the next start");
            return;
        };
        // Reap finished tasks so the set only holds live ones.
        while running.try_join_next().is_some() {}
        running.spawn(async move { inner.run(task).await });
    }

    /// Starts again every task a previous run of the server left `running` (it crashed or was stopped).
    pub async fn resume_interrupted(&self) -> StoreResult<usize> {
        let filter = TaskFilter { status: Some(TaskStatus::Running), kind: None };
        let mut page = PageRequest::first(100, Order::Ascending);
        let mut resumed = 0;
        loop {
            let found = self.inner.store.list_background_tasks(&filter, &page).await?;
            page.cursor = found.items.last().map(|task| task.id.to_string());
            for task in found.items {
                tracing::info!(task = %task.id, kind = task.kind.name(), "resuming an interrupted background task");
                self.spawn(task);
                resumed += 1;
            }
            if found.done {
                return Ok(resumed);
            }
        }
    }

    /// Asks every task to stop after its current batch and waits for them, at most `grace`. Tasks stopped
    /// this way stay `running` in the store and are resumed at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stop.send_replace(true);
        let tasks = match self.inner.running.lock() {
            Ok(mut running) => std::mem::take(&mut *running),
            Err(_) => return,
        };
        if tokio::time::timeout(grace, tasks.join_all()).await.is_err() {
            tracing::warn!("background tasks did not stop in time; they resume at the next start");
        }
    }
}

impl Inner {
    async fn run(&self, mut task: BackgroundTask) {
        match self.drive(&mut task).await {
            Ok(Ended::Stopped) => return,
            Ok(Ended::Finished) => task.status = TaskStatus::Finished,
            Err(err) => {
                task.status = TaskStatus::Failed;
                task.progress.error = Some(match err {
                    StoreError::NotFound => "the endpoint was deleted while the task ran".to_owned(),
                    other => {
                        // The cause can name files or tables: it goes to the log, not to API clients.
                        tracing::error!(task = %task.id, error = %other, "background task failed");
                        "a database error stopped the task; see the server log, then start it again".to_owned()
                    }
                });
            }
        }
        task.updated_at = now_ms();
        if let Err(err) = self.store.update_background_task(&task).await {
            // Left `running`: the next start resumes it, and the work is idempotent.
            tracing::error!(task = %task.id, error = %err, "could not save a background task's final state");
        }
        tracing::info!(
            task = %task.id,
            kind = task.kind.name(),
            status = task.status.name(),
            sent = task.progress.sent,
            "background task ended"
        );
    }

    /// Runs batches until the window is done or the server stops, saving progress after each batch.
    async fn drive(&self, task: &mut BackgroundTask) -> StoreResult<Ended> {
        loop {
            if *self.stop.borrow() {
                return Ok(Ended::Stopped);
            }
            let batch = self.batch(task).await?;
            if batch.queued > 0 {
                self.on_new_work.notify_one();
            }
            task.progress.sent += batch.queued;
            task.progress.scanned += batch.scanned;
            if let Some(last) = batch.last {
                task.cursor = Some(last);
            }
            if batch.done {
                return Ok(Ended::Finished);
            }
            task.updated_at = now_ms();
            self.store.update_background_task(task).await?;
        }
    }

    async fn batch(&self, task: &BackgroundTask) -> StoreResult<BatchDone> {
        let (endpoint, window, after) = (&task.endpoint_id, task.window, task.cursor.as_ref());
        match task.kind {
            TaskKind::Recover => self.store.requeue_failed(endpoint, window, self.batch_size, after).await,
            TaskKind::ReplayMissing => {
                self.store.insert_missing_deliveries(endpoint, window, self.batch_size, after).await
            }
        }
    }
}
