//! The PostgreSQL backend, for several hookrelay processes sharing one database. Same contract as SQLite
//! (the contract suite runs unchanged on both); what differs is how processes share the queue:
//!
//! - a claim takes due rows with `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers never take the same
//!   delivery, and stamps each with this process's instance id and a lease;
//! - every process renews its row in `instances` about every second (`keep_alive`); one that stops renewing for
//!   `INSTANCE_TTL_MS` is presumed dead, and the next `keep_alive` of any other process makes its leased
//!   deliveries due again — after a SIGKILL, work resumes within seconds, not after the lease;
//! - a transaction that adds due work also sends `NOTIFY hookrelay_work`; every process `LISTEN`s on a
//!   dedicated connection and wakes its dispatcher (`watch_new_work`);
//! - uniqueness (uids, event ids, idempotency keys, inbound event ids) is enforced by constraints, never by
//!   in-process maps.
//!
//! Connections come from a `deadpool` pool of configurable size. When the server is unreachable, calls fail
//! with `StoreError::Unavailable` (the API answers 503, the dispatcher backs off) and the pool reconnects once
//! it is back.

mod queue;
mod recovery;
mod resources;
mod rows;
pub mod schema;
mod secrets;
mod sources;
mod stats;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::token::{ApiToken, TokenDigest};
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::*;
use crate::{Page, PageRequest, StoreError};

/// The channel on which transactions that add due work notify.
pub(crate) const WORK_CHANNEL: &str = "hookrelay_work";
/// How long an instance counts as alive after its last `keep_alive` (which runs about every second), or after
/// its first claim.
pub const INSTANCE_TTL_MS: i64 = 10_000;
/// How long a call waits for a pooled connection before failing as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// How often a process deletes expired idempotency records (from its heartbeat), and at most how many at once.
const IDEMPOTENCY_CLEANUP_EVERY_MS: i64 = 60_000;
const IDEMPOTENCY_CLEANUP_BATCH: i64 = 10_000;

/// The PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// This process's id in `instances` and in the leases it holds. It changes after the database was out of
    /// reach (see [`PostgresStore::note`]).
    instance_id: std::sync::Mutex<String>,
    /// A queue call failed for want of the database since the last heartbeat.
    lost_contact: std::sync::atomic::AtomicBool,
    /// When this process last deleted expired idempotency records.
    last_cleanup: std::sync::atomic::AtomicI64,
    /// Seals secrets on their way into the database and opens them on their way out.
    cipher: SecretCipher,
    /// Whether writes work, as the write probe last found (see `write_health`).
    write_health: crate::write_health::WriteHealth,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, libpq's URL format; `?options=-csearch_path%3D…` selects
    /// a schema) with a pool of at most `pool_size` connections, and brings the schema up to date.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        Self::connect_with_cipher(url, pool_size, SecretCipher::plaintext()).await
    }

    /// Like [`connect`](Self::connect), with secrets sealed by `cipher`. Fails if the database holds secrets
    /// sealed with a key the cipher does not have.
    pub async fn connect_with_cipher(url: &str, pool_size: usize, cipher: SecretCipher) -> StoreResult<Self> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|err| StoreError::Unavailable(format!("invalid PostgreSQL URL: {err}")))?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|err| StoreError::Internal(format!("cannot build the connection pool: {err}")))?;
        let store = Self {
            pool,
            config,
            instance_id: std::sync::Mutex::new(new_instance_id()),
            lost_contact: std::sync::atomic::AtomicBool::new(false),
            last_cleanup: std::sync::atomic::AtomicI64::new(0),
            cipher,
            write_health: Default::default(),
        };
        let mut db = store.client().await?;
        schema::migrate(&mut db).await?;
        let prefixes = rows::query(&db, crate::columns::SEALED_KEY_IDS_SQL, &[])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|row| crate::columns::ColumnRead::text(row, 0))
            .collect::<crate::columns::ColumnResult<Vec<_>>>()?;
        crate::columns::check_sealed_key_ids(&prefixes, &store.cipher)?;
        Ok(store)
    }

    /// This process's current instance id (as stamped on the leases it holds).
    pub fn instance_id(&self) -> String {
        self.instance_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Passes `result` on, remembering a failure to reach the database. Such a failure can hide a commit (a claim
    /// that committed but whose answer was lost) or leave a lease behind (a release that never arrived): leased
    /// to this live process, those deliveries would wait for their lease to expire, minutes away. So after
    /// losing contact the next heartbeat gives this process a new identity, and the leases of the old one are
    /// taken back like a dead process's once it stops renewing. Deliveries in flight meanwhile may be sent twice,
    /// which at-least-once allows.
    fn note<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if let Err(StoreError::Unavailable(_)) = &result {
            self.lost_contact.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|err| StoreError::Unavailable(format!("no PostgreSQL connection: {err}")))
    }
}

fn new_instance_id() -> String {
    format!("inst_{}", hookrelay_core::id::new_body(now_ms()))
}

/// Maps a PostgreSQL error to what the API and engine can act on: constraint violations become `Conflict` (with
/// the constraint's name) or `NotFound` (a missing parent row); a lost or refused connection, or a server that
/// refuses writes (read-only, out of disk or resources), is `Unavailable`.
pub(crate) fn pg_error(err: tokio_postgres::Error) -> StoreError {
    let Some(db) = err.as_db_error() else {
        // No server answer: the connection is closed, refused or broken.
        return StoreError::Unavailable(err.to_string());
    };
    match *db.code() {
        SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(format!("already exists ({})", db.constraint().unwrap_or("unique constraint")))
        }
        SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound,
        SqlState::CHARACTER_NOT_IN_REPERTOIRE | SqlState::UNTRANSLATABLE_CHARACTER => StoreError::Invalid(
            "a text field contains a character the database cannot store (NUL, \\u0000); remove it".to_owned(),
        ),
        SqlState::ADMIN_SHUTDOWN
        | SqlState::CRASH_SHUTDOWN
        | SqlState::CANNOT_CONNECT_NOW
        | SqlState::CONNECTION_FAILURE
        | SqlState::CONNECTION_EXCEPTION
        | SqlState::TOO_MANY_CONNECTIONS => StoreError::Unavailable(db.to_string()),
        // The server refuses to write (a read-only standby or setting, a full disk): it passes once fixed.
        SqlState::READ_ONLY_SQL_TRANSACTION | SqlState::DISK_FULL | SqlState::IO_ERROR => {
            StoreError::Unavailable(db.to_string())
        }
        _ if db.code().code().starts_with("53") => StoreError::Unavailable(db.to_string()),
        _ => StoreError::Internal(db.to_string()),
    }
}

/// Tells every process listening on [`WORK_CHANNEL`] that `tx` adds due work; PostgreSQL delivers the
/// notification when (and only if) `tx` commits.
pub(crate) async fn announce_new_work(tx: &impl deadpool_postgres::GenericClient) -> StoreResult<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]).await.map_err(pg_error)?;
    Ok(())
}

/// Listens on [`WORK_CHANNEL`] on its own connection (pooled ones are shared and cannot hold a `LISTEN`), waking
/// `wake` per notification; reconnects with a growing pause after any error, and wakes once after each
/// (re)connection in case work arrived while it was away.
async fn listen_for_work(config: tokio_postgres::Config, wake: Arc<tokio::sync::Notify>) {
    let mut pause = Duration::from_millis(200);
    loop {
        let (listened, err) = listen_once(&config, &wake).await;
        if listened {
            // It worked for a while: reconnect quickly.
            pause = Duration::from_millis(200);
        }
        tracing::warn!(%err, "the connection that listens for new work ended; reconnecting");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// One connection's worth of listening; returns when the connection ends: whether `LISTEN` had succeeded, and why
/// it ended.
async fn listen_once(config: &tokio_postgres::Config, wake: &tokio::sync::Notify) -> (bool, String) {
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(connected) => connected,
        Err(err) => return (false, err.to_string()),
    };
    // The connection object must be polled for anything to happen; it forwards notifications here. A full
    // channel drops them: one pending wake-up covers any number of notifications.
    let (notified, mut notifications) = tokio::sync::mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = notified.try_send(());
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return err.to_string(),
                None => return "connection closed".to_owned(),
            }
        }
    });
    if let Err(err) = client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).await {
        driver.abort();
        return (false, err.to_string());
    }
    wake.notify_one();
    while notifications.recv().await.is_some() {
        wake.notify_one();
    }
    (true, driver.await.unwrap_or_else(|err| err.to_string()))
}

impl PostgresStore {
    /// One heartbeat (see [`Store::keep_alive`]); after lost contact, first a new identity (see [`Self::note`]).
    async fn beat(&self, now: UnixMillis) -> StoreResult<Liveness> {
        if self.lost_contact.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let old = std::mem::replace(
                &mut *self.instance_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
                new_instance_id(),
            );
            tracing::warn!(%old, new = %self.instance_id(), "the database was out of reach; continuing under a new \
                instance id so that leases taken or left during the outage are taken back");
        }
        self.delete_expired_idempotency(now).await?;
        let mut db = self.client().await?;
        let tx = db.transaction().await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO instances (id, started_at, alive_until) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until",
            &[&self.instance_id(), &now, &(now + INSTANCE_TTL_MS)],
        )
        .await
        .map_err(pg_error)?;
        // Lock the dead instances' rows so two survivors do not both take back the same leases.
        let dead: Vec<String> = tx
            .query("SELECT id FROM instances WHERE alive_until < $1 FOR UPDATE SKIP LOCKED", &[&now])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let live: i64 = tx
            .query_one("SELECT count(*) FROM instances WHERE alive_until >= $1", &[&now])
            .await
            .map_err(pg_error)?
            .get(0);
        let live_processes = usize::try_from(live).unwrap_or(1).max(1);
        if dead.is_empty() {
            tx.commit().await.map_err(pg_error)?;
            return Ok(Liveness { requeued: 0, live_processes });
        }
        let requeued = tx
            .execute(
                "UPDATE deliveries SET status = 1, next_attempt_at = $1, claimed_by = NULL \
                 WHERE status = 3 AND claimed_by = ANY($2)",
                &[&now, &dead],
            )
            .await
            .map_err(pg_error)?;
        tx.execute("DELETE FROM instances WHERE id = ANY($1)", &[&dead]).await.map_err(pg_error)?;
        if requeued > 0 {
            announce_new_work(&tx).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        if requeued > 0 {
            tracing::warn!(instances = ?dead, requeued, "took back the deliveries of stopped instances");
        }
        Ok(Liveness { requeued, live_processes })
    }

    /// Deletes expired idempotency records about once a minute (SQLite's writer does the same), in bounded batches
    /// so no heartbeat waits on a long delete.
    async fn delete_expired_idempotency(&self, now: UnixMillis) -> StoreResult<()> {
        use std::sync::atomic::Ordering;
        let last = self.last_cleanup.load(Ordering::Relaxed);
        if now - last < IDEMPOTENCY_CLEANUP_EVERY_MS
            || self.last_cleanup.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return Ok(());
        }
        let db = self.client().await?;
        db.execute(
            "DELETE FROM idempotency WHERE key IN \
             (SELECT key FROM idempotency WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&now, &IDEMPOTENCY_CLEANUP_BATCH],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn requeue_interrupted(&self) -> StoreResult<u64> {
        // Other processes may be running and holding leases; `keep_alive` takes back those of dead ones.
        Ok(0)
    }

    async fn keep_alive(&self, now: UnixMillis) -> StoreResult<Liveness> {
        let beat = self.beat(now).await;
        self.note(beat)
    }

    async fn pause_endpoint(&self, endpoint_id: &EndpointId, until: UnixMillis) -> StoreResult<()> {
        let db = self.client().await?;
        db.execute("UPDATE endpoints SET paused_until = $2 WHERE id = $1", &[&endpoint_id.as_str(), &until])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn watch_new_work(&self, wake: Arc<tokio::sync::Notify>) -> StoreResult<()> {
        tokio::spawn(listen_for_work(self.config.clone(), wake));
        Ok(())
    }

    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch> {
        let mut db = self.client().await?;
        secrets::reencrypt(&mut db, table, after, limit, &self.cipher).await
    }

    fn seals_secrets(&self) -> bool {
        self.cipher.encrypts()
    }

    async fn ping(&self) -> StoreResult<()> {
        let db = self.client().await?;
        db.execute("SELECT 1", &[]).await.map_err(pg_error)?;
        Ok(())
    }

    fn unwritable(&self) -> Option<crate::Unwritable> {
        self.write_health.current()
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let probed = match self.client().await {
            Ok(db) => stats::probe_write(&db, now_ms()).await,
            Err(err) => Err(("the database cannot be reached".to_owned(), err)),
        };
        match probed {
            Ok(()) => {
                self.write_health.succeeded();
                Ok(())
            }
            Err((reason, err)) => {
                self.write_health.failed(reason, &err);
                Err(err)
            }
        }
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let mut db = self.client().await?;
        stats::queue_stats(&mut db).await
    }

    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
        let mut db = self.client().await?;
        stats::activity_stats(&mut db, since, top).await
    }

    async fn create_token(&self, token: &ApiToken) -> StoreResult<()> {
        let mut db = self.client().await?;
        tokens::create_token(&mut db, token).await
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        let db = self.client().await?;
        tokens::find_token(&db, digest).await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let db = self.client().await?;
        tokens::list_admin_tokens(&db).await
    }

    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
        let db = self.client().await?;
        tokens::revoke_admin_token(&db, id_or_name).await
    }

    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::create_app(&mut db, app).await
    }

    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        let mut db = self.client().await?;
        resources::get_app(&mut db, id_or_uid).await
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        let mut db = self.client().await?;
        resources::list_apps(&mut db, page).await
    }

    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::update_app(&mut db, app).await
    }

    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::delete_app(&mut db, id).await
    }

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::create_event_type(&mut db, event_type).await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let mut db = self.client().await?;
        resources::get_event_type(&mut db, name).await
    }

    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>> {
        let mut db = self.client().await?;
        resources::list_event_types(&mut db, page, include_archived).await
    }

    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::update_event_type(&mut db, event_type).await
    }

    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::expunge_event_type(&mut db, name).await
    }

    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>> {
        let mut db = self.client().await?;
        resources::unknown_event_types(&mut db, names).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::create_endpoint(&mut db, endpoint, &self.cipher).await
    }

    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint> {
        let mut db = self.client().await?;
        resources::get_endpoint(&mut db, app_id, id_or_uid, &self.cipher).await
    }

    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let mut db = self.client().await?;
        resources::list_endpoints(&mut db, app_id, page, &self.cipher).await
    }

    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64> {
        let mut db = self.client().await?;
        resources::count_endpoints(&mut db, app_id).await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::update_endpoint(&mut db, endpoint, &self.cipher).await
    }

    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::delete_endpoint(&mut db, app_id, id).await
    }

    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts> {
        let mut db = self.client().await?;
        resources::endpoint_delivery_counts(&mut db, id).await
    }

    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>> {
        let mut db = self.client().await?;
        resources::oldest_open_delivery(&mut db, id).await
    }

    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        let mut db = self.client().await?;
        resources::publish_message(&mut db, message, idempotent).await
    }

    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
        let mut db = self.client().await?;
        resources::get_message(&mut db, app_id, id_or_event_id).await
    }

    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let mut db = self.client().await?;
        resources::list_messages(&mut db, app_id, filter, page).await
    }

    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>> {
        let mut db = self.client().await?;
        resources::list_message_deliveries(&mut db, msg_id, page, &self.cipher).await
    }

    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::resend(&mut db, msg_id, endpoint_id).await
    }

    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        resources::list_attempts_for_endpoint(&mut db, endpoint_id, filter, page).await
    }

    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        resources::list_attempts_for_message(&mut db, msg_id, filter, page).await
    }

    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        resources::list_attempts_for_app(&mut db, app_id, filter, page).await
    }

    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
        let mut db = self.client().await?;
        resources::get_attempt(&mut db, msg_id, attempt_id).await
    }

    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        let mut db = self.client().await?;
        resources::get_idempotent(&mut db, key, &self.cipher).await
    }

    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::put_idempotent(&mut db, response, &self.cipher).await
    }

    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        skip_endpoints: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let claimed = async {
            let mut db = self.client().await?;
            queue::claim_due(&mut db, now, limit, lease_until, skip_endpoints, &self.instance_id(), &self.cipher).await
        };
        self.note(claimed.await)
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
        let recorded = async {
            let mut db = self.client().await?;
            queue::record_outcomes(&mut db, outcomes).await
        };
        self.note(recorded.await)
    }

    async fn release(&self, deliveries: &[Release]) -> StoreResult<()> {
        let released = async {
            let mut db = self.client().await?;
            queue::release(&mut db, deliveries, &self.instance_id()).await
        };
        self.note(released.await)
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        let mut db = self.client().await?;
        queue::next_due_at(&mut db).await
    }

    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>> {
        let mut db = self.client().await?;
        queue::disable_failing_endpoints(&mut db, failing_since_before).await
    }

    async fn purge_payloads(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        let mut db = self.client().await?;
        queue::purge_payloads(&mut db, before, limit).await
    }

    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::create_background_task(&mut db, task).await
    }

    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        let mut db = self.client().await?;
        resources::get_background_task(&mut db, id).await
    }

    async fn list_background_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackgroundTask>> {
        let mut db = self.client().await?;
        resources::list_background_tasks(&mut db, filter, page).await
    }

    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let mut db = self.client().await?;
        resources::update_background_task(&mut db, task).await
    }

    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
        let mut db = self.client().await?;
        recovery::count_failed_deliveries(&mut db, endpoint_id, window).await
    }

    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
        let mut db = self.client().await?;
        recovery::count_messages(&mut db, app_id, window).await
    }

    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let mut db = self.client().await?;
        recovery::requeue_failed(&mut db, endpoint_id, window, limit, after).await
    }

    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let mut db = self.client().await?;
        recovery::insert_missing_deliveries(&mut db, endpoint_id, window, limit, after).await
    }

    async fn create_source(&self, source: &Source) -> StoreResult<()> {
        let mut db = self.client().await?;
        sources::create_source(&mut db, source, &self.cipher).await
    }

    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        let mut db = self.client().await?;
        sources::get_source(&mut db, id_or_uid, &self.cipher).await
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        let mut db = self.client().await?;
        sources::list_sources(&mut db, page, &self.cipher).await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        let mut db = self.client().await?;
        sources::update_source(&mut db, source, &self.cipher).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let mut db = self.client().await?;
        sources::delete_source(&mut db, id).await
    }

    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
        let mut db = self.client().await?;
        sources::ingest(&mut db, event, message).await
    }

    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()> {
        let mut db = self.client().await?;
        sources::record_rejections(&mut db, rejections).await
    }

    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>> {
        let mut db = self.client().await?;
        sources::list_inbound_rejections(&mut db, source_id, page).await
    }

    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>> {
        let mut db = self.client().await?;
        sources::list_inbound_events(&mut db, source_id, status, page).await
    }

    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
        let mut db = self.client().await?;
        sources::inbound_counts(&mut db, source_id, since).await
    }

    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        let mut db = self.client().await?;
        sources::purge_inbound_events(&mut db, before, limit).await
    }
}
