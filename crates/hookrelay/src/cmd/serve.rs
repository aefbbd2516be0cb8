//! `hookrelay serve`: open the store, start the dispatcher and the API, and run until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hookrelay_api::{ApiState, TaskRunner, router};
use hookrelay_core::operational::{EventSink, NoEvents};
use hookrelay_engine::DispatcherConfig;
use hookrelay_engine::maintenance::MaintenanceConfig;
use hookrelay_metrics::Metrics;
use hookrelay_store::postgres::PostgresStore;
use hookrelay_store::sqlite::SqliteStore;
use hookrelay_store::{Store, private_files};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::admin_token::{self, TokenSource};
use crate::config::{Database, ServeArgs, ServeConfig};
use crate::encryption_key::{self, KeySource};
use crate::listener::{self, ListenerLimits};
use crate::logging;

/// Threads that run transformations; a runaway handler holds one for at most 100 ms.
const TRANSFORM_WORKERS: usize = 2;

/// How long a stopping server waits for deliveries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server started by [`start`].
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    pub admin_token: String,
    pub token_source: TokenSource,
    /// Where the data is: the SQLite file, or the PostgreSQL URL without its password.
    pub database: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting requests, lets deliveries in flight finish (up to a grace period), and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task failed")?
    }
}

/// Opens the configured database (creating the SQLite file and its directory if needed) and brings its schema
/// up to date.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<Store> {
    let described = config.database.describe();
    match &config.database {
        Database::Sqlite(path) => {
            let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
            private_files::create_dir(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
            if path.starts_with(&config.data_dir) {
                // The data directory is hookrelay's own (a database given by path elsewhere may sit in a shared
                // directory, which is left as it is): one an older version made 0755 is narrowed.
                private_files::restrict(&config.data_dir)
                    .with_context(|| format!("cannot make {} private", config.data_dir.display()))?;
            }
            let store = SqliteStore::open_with_cipher(path, config.cipher.clone())
                .with_context(|| format!("cannot open database {described}"))?;
            Ok(Store::new(store))
        }
        Database::Postgres { url, pool_size } => {
            let store = PostgresStore::connect_with_cipher(url, *pool_size, config.cipher.clone())
                .await
                .with_context(|| format!("cannot open database {described}"))?;
            Ok(Store::new(store))
        }
    }
}

/// Starts the API and the dispatcher on the current runtime; the same function serves `hookrelay serve`
/// and the black-box tests.
pub async fn start(mut config: ServeConfig) -> anyhow::Result<RunningServer> {
    if matches!(config.database, Database::Postgres { .. }) && config.admin_token.is_none() {
        // A token generated into one process's data directory would differ from the next process's.
        anyhow::bail!(
            "with PostgreSQL, set HOOKRELAY_ADMIN_TOKEN (the same value on every hookrelay process sharing the \
             database); e.g. `openssl rand -hex 32`"
        );
    }
    let key_source = encryption_key::resolve(&mut config)?;
    let limits = listener_limits(&config);
    let store = open_store(&config).await?;
    match &key_source {
        KeySource::None => tracing::warn!(
            "HOOKRELAY_ENCRYPTION_KEY is not set: endpoint and source secrets are stored in plaintext in the \
             database, and responses that carry an API token are not remembered for idempotency keys; set it to \
             32 random bytes in base64 (`openssl rand -base64 32`), the same on every process, to encrypt them"
        ),
        KeySource::Generated(path) => {
            // A database from before sealing was the default may hold plaintext secrets: seal them now.
            let counts = encryption_key::rewrite_secrets(store.credentials.as_ref()).await?;
            let sealed: u64 = counts.iter().map(|(_, n)| n).sum();
            tracing::info!(path = %path.display(), sealed,
                "generated the key that seals secrets in the database; back it up with the database: a backup \
                 without it cannot be read");
        }
        KeySource::Configured | KeySource::Stored(_) => {}
    }
    let database = config.database.describe();
    let (admin_token, token_source) = admin_token::resolve(config.admin_token.clone(), &config.data_dir)?;
    let new_work = Arc::new(Notify::new());
    // Outbound work (deliveries, operational events, maintenance) gets a runtime of its own, so a burst of
    // deliveries queues behind itself rather than in front of the API's requests: fan-out cannot starve
    // publishers. Everything the engine spawns stays on this runtime.
    let delivery_runtime = DeliveryRuntime::new()?;
    let outbound = delivery_runtime.enter();
    // One set of metrics per server (tests run several in one process), shared by the dispatcher and the API.
    let metrics = Arc::new(Metrics::new());
    metrics.set_build_info(env!("CARGO_PKG_VERSION"), env!("HOOKRELAY_COMMIT"));
    let events: Arc<dyn EventSink> = match config.operational_webhook.clone() {
        Some(operational) => hookrelay_engine::operational::start(operational)?,
        None => Arc::new(NoEvents),
    };
    // Transformations run on threads of their own, shared by the dispatcher (which runs them) and the API (which
    // checks and simulates them).
    // `hookrelay listen` sessions and the attempt feed of `hookrelay tail`: the dispatcher feeds them, the API
    // streams them.
    let live = Arc::new(hookrelay_live::Live::default());
    let sandbox =
        hookrelay_transform::Sandbox::start(TRANSFORM_WORKERS).context("cannot start the transformation sandbox")?;
    let dispatcher = hookrelay_engine::start(
        store.queue.clone(),
        DispatcherConfig {
            retry: config.retry_schedule.clone(),
            retry_client_errors: config.retry_client_errors,
            delivery_timeout: config.delivery_timeout,
            allow_private_endpoints: config.allow_private_endpoints,
            whitelist_subnets: config.whitelist_subnets.clone(),
            https_only: config.https_only,
            egress_proxy: config.egress_proxy.clone(),
            max_in_flight: config.max_in_flight,
            endpoint_concurrency: config.endpoint_concurrency,
            breaker_threshold: config.breaker_threshold,
            breaker_pause: config.breaker_pause,
            metrics: metrics.clone(),
            sandbox: Some(sandbox.clone()),
            live: live.clone(),
            ..DispatcherConfig::default()
        },
        new_work.clone(),
        events.clone(),
    )?;
    let maintenance = hookrelay_engine::maintenance::start(
        store.recovery.clone(),
        store.operations.clone(),
        MaintenanceConfig {
            disable_failing_after: config.disable_failing_after,
            payload_retention: config.payload_retention,
            metrics: metrics.clone(),
        },
        events.clone(),
    );
    drop(outbound);
    let tasks = TaskRunner::new(store.recovery.clone(), new_work.clone());
    // Recover/replay tasks a previous run left unfinished continue from their saved cursor.
    tasks.resume_interrupted().await.context("cannot resume interrupted background tasks")?;
    // Rejected ingest requests are counted in memory and written every few seconds, on the API's runtime.
    let ingest = Arc::new(hookrelay_api::ingest::IngestState::new(store.inbound.clone()));
    let rejection_log = ingest.rejections.clone();
    let app = router(ApiState {
        store,
        admin_token: admin_token.clone(),
        auth: config.auth.clone(),
        on_new_work: new_work,
        max_body_bytes: config.max_body_bytes,
        ingest_max_body_bytes: config.ingest_max_body_bytes,
        ingest,
        https_only: config.https_only,
        max_endpoints_per_app: config.max_endpoints_per_app,
        address_policy: hookrelay_engine::egress::address_policy(
            config.allow_private_endpoints,
            &config.whitelist_subnets,
        ),
        tasks: tasks.clone(),
        events,
        on_endpoint_changed: dispatcher.endpoint_reset_hook(),
        app_ids: Arc::default(),
        metrics,
        metrics_token: config.metrics_token.clone(),
        queue: Arc::default(),
        sandbox,
        ui: Arc::new(config.ui.clone()),
        live: live.clone(),
    });
    let listener = listener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Started once nothing can fail any more, so a failed start leaves no flusher behind.
    let rejections = rejection_log.spawn_flusher();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        crate::listener::serve(listener, app, limits, async move {
            let _ = stopped.await;
            // Event streams (listen, tail) would otherwise hold the shutdown for its whole grace period.
            live.close();
        })
        .await;
        rejections.stop().await;
        tasks.shutdown(SHUTDOWN_GRACE).await;
        dispatcher.shutdown(SHUTDOWN_GRACE).await;
        maintenance.abort();
        delivery_runtime.stop().await;
        Ok(())
    });
    tracing::info!(%addr, %database, "hookrelay is serving");
    Ok(RunningServer { addr, admin_token, token_source, database, stop, task })
}

/// Raises the open-file limit and bounds the API's connections: `HOOKRELAY_MAX_CONNECTIONS`, or what the limit
/// leaves after deliveries in flight, the database and [`listener::RESERVED_FILES`].
fn listener_limits(config: &ServeConfig) -> ListenerLimits {
    let open_files = listener::raise_open_file_limit();
    let database_files = match &config.database {
        // The writer, checkpoint and reader connections, each with the database, -wal and -shm open.
        Database::Sqlite(_) => 64,
        Database::Postgres { pool_size, .. } => *pool_size as u64 + 1,
    };
    let reserved = config.max_in_flight as u64 + database_files + listener::RESERVED_FILES;
    let max_connections =
        config.max_connections.unwrap_or_else(|| listener::default_max_connections(open_files.soft, reserved));
    tracing::info!(
        open_file_limit = open_files.soft,
        raised_from = open_files.was,
        max_connections,
        "open-file limit and API connection cap"
    );
    if max_connections as u64 + reserved > open_files.soft {
        tracing::warn!(
            open_file_limit = open_files.soft,
            max_connections,
            max_in_flight = config.max_in_flight,
            "the open-file limit is lower than HOOKRELAY_MAX_CONNECTIONS plus HOOKRELAY_MAX_IN_FLIGHT need: raise it \
             (e.g. LimitNOFILE=65536 in the systemd unit) or lower them, or connections and deliveries may fail \
             with `Too many open files`"
        );
    }
    ListenerLimits {
        max_connections,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        shutdown_grace: SHUTDOWN_GRACE,
    }
}

/// The runtime of outbound work. Stopping it waits (a little) for its threads, so that everything its tasks
/// held — the store included, whose lock file a restart in the same process needs — is released when `stop`
/// returns. Dropped without `stop` (an error during start), it stops its threads without waiting, since a
/// runtime cannot be dropped the ordinary way from async code.
struct DeliveryRuntime(Option<tokio::runtime::Runtime>);

impl DeliveryRuntime {
    fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("hookrelay-delivery")
            .enable_all()
            .build()
            .context("cannot start the delivery runtime")?;
        Ok(Self(Some(runtime)))
    }

    /// Makes `tokio::spawn` (and so everything the engine starts) use this runtime until the guard drops.
    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(tokio::runtime::Runtime::enter)
    }

    /// Drops the tasks still on the runtime (requests in flight after the grace period stay leased and are
    /// sent again after a restart) and waits for its threads to end.
    async fn stop(mut self) {
        if let Some(runtime) = self.0.take() {
            // Waiting for threads blocks, which async code must not do on its own threads.
            let _ = tokio::task::spawn_blocking(move || runtime.shutdown_timeout(SHUTDOWN_GRACE)).await;
        }
    }
}

impl Drop for DeliveryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// `hookrelay serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    logging::init(&config.log, &config.log_format);
    survive_file_size_limit();
    if config.allow_private_endpoints {
        tracing::warn!("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS is on: endpoints may target private networks");
    }
    let data_dir = config.data_dir.clone();
    let server = start(config).await?;
    println!("hookrelay listening on http://{} (data in {})", server.addr, server.database);
    let token_file = data_dir.join("admin-token");
    match server.token_source {
        TokenSource::Generated => {
            println!(
                "Generated an admin token and saved it to {} (it is printed only this once):\n\n    {}\n\n\
                 Use it as a bearer token, e.g.:\n    curl -H \"Authorization: Bearer $(cat {})\" http://{}/api/v1/app/",
                token_file.display(),
                server.admin_token,
                token_file.display(),
                server.addr
            );
        }
        TokenSource::Stored => println!("Using the admin token stored in {}", token_file.display()),
        TokenSource::Configured => println!("Using the admin token from HOOKRELAY_ADMIN_TOKEN"),
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

/// Keeps the process alive when a write passes the file-size limit (`RLIMIT_FSIZE`, e.g. a quota set by the
/// operator): the default action of SIGXFSZ kills it, while with the signal caught the write fails with `EFBIG`,
/// the store reports it like a full disk (503s, health `store_unwritable`) and recovers when the limit is raised.
fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // The handler stays installed for the life of the process even though the stream is dropped.
        if let Err(err) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            tracing::warn!(error = %err, "cannot catch SIGXFSZ: passing the file-size limit will stop the process");
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
