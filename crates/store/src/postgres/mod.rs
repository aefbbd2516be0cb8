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

mod catalog;
mod credentials;
mod group_commit;
mod inbound;
mod messages;
mod operations;
mod queue;
mod recovery;
mod rows;
pub mod schema;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::time::{UnixMillis, now_ms};
use tokio_postgres::AsyncMessage;
use tokio_postgres::error::SqlState;

use crate::{Liveness, StoreError, StoreResult};

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

/// The PostgreSQL backend: plays every role of a [`Store`](crate::Store).
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// This process's id in `instances` and in the leases it holds. It changes after the database was out of
    /// reach (see [`PostgresStore::note`]).
    instance_id: Arc<std::sync::Mutex<String>>,
    /// A queue call failed for want of the database since the last heartbeat.
    lost_contact: std::sync::atomic::AtomicBool,
    /// When this process last deleted expired idempotency records.
    last_cleanup: std::sync::atomic::AtomicI64,
    /// Seals secrets on their way into the database and opens them on their way out.
    cipher: SecretCipher,
    /// Whether writes work, as the write probe last found (see `write_health`).
    write_health: crate::write_health::WriteHealth,
    /// Where publishes queue to share a transaction and its commit.
    publishes: group_commit::GroupCommit,
    /// Whose activity counter rows this process's transactions add to.
    activity: operations::ActivityWriters,
    /// How connections are encrypted (the `LISTEN` connection's too).
    tls: tls::MakeRustlsConnect,
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
        let (url, tls_options) = tls::split_url(url)?;
        let config: tokio_postgres::Config =
            url.parse().map_err(|err| StoreError::Unavailable(format!("invalid PostgreSQL URL: {err}")))?;
        let tls = tls::MakeRustlsConnect::new(&tls_options)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|err| StoreError::Internal(format!("cannot build the connection pool: {err}")))?;
        let instance_id = new_instance_id();
        let activity = operations::ActivityWriters::new(&instance_id);
        let store = Self {
            publishes: group_commit::GroupCommit::new(pool.clone(), activity.publishes().to_owned()),
            activity,
            pool,
            config,
            tls,
            instance_id: Arc::new(std::sync::Mutex::new(instance_id)),
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
        self.pool.get().await.map_err(|err| {
            let why = match &err {
                deadpool_postgres::PoolError::Backend(err) => error_text(err),
                other => other.to_string(),
            };
            StoreError::Unavailable(format!("no PostgreSQL connection: {why}"))
        })
    }
}

/// What went wrong, with the server's own message (such as "no pg_hba.conf entry for host …, no encryption")
/// or the cause of a connection failure, which the error's own text leaves out.
pub(crate) fn error_text(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.message().to_owned();
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
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

/// What [`announce_new_work`] sends.
pub(crate) const ANNOUNCE_NEW_WORK: &str = "SELECT pg_notify($1, '')";

/// Tells every process listening on [`WORK_CHANNEL`] that `tx` adds due work; PostgreSQL delivers the
/// notification when (and only if) `tx` commits.
pub(crate) async fn announce_new_work(tx: &impl deadpool_postgres::GenericClient) -> StoreResult<()> {
    rows::execute(tx, ANNOUNCE_NEW_WORK, &[&WORK_CHANNEL]).await.map_err(pg_error)?;
    Ok(())
}

/// Listens on [`WORK_CHANNEL`] on its own connection (pooled ones are shared and cannot hold a `LISTEN`), waking
/// `wake` per notification; reconnects with a growing pause after any error, and wakes once after each
/// (re)connection in case work arrived while it was away.
pub(super) async fn listen_for_work(
    config: tokio_postgres::Config,
    tls: tls::MakeRustlsConnect,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut pause = Duration::from_millis(200);
    loop {
        let (listened, err) = listen_once(&config, &tls, &wake).await;
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
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &tls::MakeRustlsConnect,
    wake: &tokio::sync::Notify,
) -> (bool, String) {
    let (client, mut connection) = match config.connect(tls.clone()).await {
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
            tracing::warn!(
                instances = dead.join(",").as_str(),
                requeued,
                "took back the deliveries of stopped instances"
            );
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
