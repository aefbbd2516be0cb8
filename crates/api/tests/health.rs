//! Health and metrics stay cheap whatever the backlog: many calls share one count of the queue per interval, a
//! slow count never holds a caller up, and a store that refuses writes turns health into a 503 that names the
//! reason. The router runs over real HTTP on a real SQLite store, wrapped to count the store calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookrelay_api::queue_snapshot::QueueSnapshot;
use hookrelay_api::{ApiState, TaskRunner, router};
use hookrelay_core::time::UnixMillis;
use hookrelay_store::sqlite::SqliteStore;
use hookrelay_store::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The operations role of a real store, wrapped to count how often the queue is counted, to be made slow to
/// count, and to be made to report that the store refuses writes. Every other role is the real store's.
struct CountingOperations {
    inner: Arc<dyn Operations>,
    queue_counts: AtomicUsize,
    count_delay: Mutex<Duration>,
    refusing: Mutex<Option<Unwritable>>,
}

impl CountingOperations {
    fn counts(&self) -> usize {
        self.queue_counts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Operations for CountingOperations {
    fn unwritable(&self) -> Option<Unwritable> {
        self.refusing.lock().expect("flag").clone().or_else(|| self.inner.unwritable())
    }
    async fn probe_write(&self) -> StoreResult<()> {
        self.inner.probe_write().await
    }
    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.queue_counts.fetch_add(1, Ordering::SeqCst);
        let delay = *self.count_delay.lock().expect("delay");
        tokio::time::sleep(delay).await;
        self.inner.queue_stats().await
    }
    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
        self.inner.activity_stats(since, top).await
    }
    async fn activity_series(
        &self,
        since: UnixMillis,
        until: UnixMillis,
        bucket_ms: i64,
    ) -> StoreResult<Vec<ActivityBucket>> {
        self.inner.activity_series(since, until, bucket_ms).await
    }
    async fn paused_endpoints(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<PausedEndpoint>> {
        self.inner.paused_endpoints(now, limit).await
    }
}

struct Server {
    addr: std::net::SocketAddr,
    store: Arc<CountingOperations>,
    _dir: tempfile::TempDir,
}

/// The router on a loopback port, over a fresh SQLite store, with queue snapshots refreshed every `interval`.
async fn start(interval: Duration) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut real = Store::new(SqliteStore::open(&dir.path().join("hookrelay.db")).expect("open store"));
    let store = Arc::new(CountingOperations {
        inner: real.operations.clone(),
        queue_counts: AtomicUsize::new(0),
        count_delay: Mutex::new(Duration::ZERO),
        refusing: Mutex::new(None),
    });
    real.operations = store.clone();
    let on_new_work: Arc<tokio::sync::Notify> = Arc::default();
    let state = ApiState {
        tasks: TaskRunner::new(real.recovery.clone(), on_new_work.clone()),
        ingest: Arc::new(hookrelay_api::ingest::IngestState::new(real.inbound.clone())),
        store: real,
        admin_token: "test-admin-token".into(),
        auth: Default::default(),
        on_new_work,
        max_body_bytes: 1024,
        ingest_max_body_bytes: 1024,
        https_only: false,
        events: Arc::new(hookrelay_core::operational::NoEvents),
        on_endpoint_changed: Arc::new(|_| {}),
        app_ids: Arc::default(),
        metrics: Arc::default(),
        metrics_token: None,
        queue: Arc::new(QueueSnapshot::new(interval)),
        sandbox: hookrelay_transform::Sandbox::start(1).expect("the transformation sandbox"),
        ui: Default::default(),
        live: Default::default(),
        max_endpoints_per_app: 200,
        address_policy: Arc::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Server { addr, store, _dir: dir }
}

/// One unauthenticated GET; the status and the body (JSON when it parses, else the text).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())))
}

/// Polls until `check` holds, failing after `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_health_checks_and_scrapes_share_one_count_of_the_queue() {
    let server = start(Duration::from_secs(60)).await;
    let mut as_of = std::collections::BTreeSet::new();
    // 20 rounds of 5 health checks and 5 scrapes at once: the first round's callers all wait for one count.
    for _ in 0..20 {
        let calls = (0..10).map(|n| get(server.addr, if n % 2 == 0 { "/api/v1/health/" } else { "/metrics" }));
        for (n, (status, body)) in all_at_once(calls).await.into_iter().enumerate() {
            assert_eq!(status, 200, "{body}");
            if n % 2 == 0 {
                assert_eq!(body["queue"]["depth"], 0, "{body}");
                as_of.insert(body["queue"]["asOf"].as_str().expect("asOf").to_owned());
            } else {
                let text = body.as_str().expect("Prometheus text");
                assert!(text.lines().any(|line| line == "hookrelay_queue_depth 0"), "{text}");
                assert!(text.lines().any(|line| line == "hookrelay_store_writable 1"), "{text}");
            }
        }
    }
    assert_eq!(server.store.counts(), 1, "100 calls within the interval must count the queue once");
    assert_eq!(as_of.len(), 1, "every answer comes from the same snapshot: {as_of:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_refresh_runs_once_in_the_background_while_callers_get_the_last_snapshot() {
    let server = start(Duration::from_millis(200)).await;
    let (status, first) = get(server.addr, "/api/v1/health").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(server.store.counts(), 1);
    // The next count takes 2 s; once the snapshot is due, callers must not wait for it, and only one runs.
    *server.store.count_delay.lock().expect("delay") = Duration::from_secs(2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let started = Instant::now();
    for _ in 0..20 {
        let (status, body) = get(server.addr, "/api/v1/health").await;
        assert_eq!((status, &body["queue"]["asOf"]), (200, &first["queue"]["asOf"]), "{body}");
        let (status, _) = get(server.addr, "/metrics").await;
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(1), "callers waited for the slow count: {:?}", started.elapsed());
    assert_eq!(server.store.counts(), 2, "one refresh in flight at a time");
    // The refresh lands: a newer snapshot, and no further count for ten times the slow count's duration.
    wait_until("the refreshed snapshot", Duration::from_secs(10), async || {
        let (_, body) = get(server.addr, "/api/v1/health").await;
        body["queue"]["asOf"] != first["queue"]["asOf"]
    })
    .await;
    for _ in 0..10 {
        get(server.addr, "/api/v1/health").await;
    }
    assert_eq!(server.store.counts(), 2, "a slow count stretches the interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_a_503_naming_the_reason_while_the_store_refuses_writes() {
    let server = start(Duration::from_secs(60)).await;
    let (status, _) = get(server.addr, "/api/v1/health/").await;
    assert_eq!(status, 200);
    *server.store.refusing.lock().expect("flag") =
        Some(Unwritable { reason: "the disk is full".into(), since: 1_700_000_000_000 });
    for path in ["/api/v1/health", "/api/v1/health/"] {
        let (status, body) = get(server.addr, path).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("store_unwritable")), "{body}");
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains("the disk is full") && detail.contains("2023-11-14T22:13:20"), "{detail}");
    }
    let (status, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200, "metrics are still served");
    assert!(body.as_str().expect("text").lines().any(|line| line == "hookrelay_store_writable 0"), "{body}");
    // Ping only says the process answers.
    assert_eq!(get(server.addr, "/api/v1/health/ping").await.0, 204);
    *server.store.refusing.lock().expect("flag") = None;
    let (status, body) = get(server.addr, "/api/v1/health/").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
}

/// Runs the calls concurrently and collects their answers in order.
async fn all_at_once<F>(calls: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut answers = Vec::with_capacity(handles.len());
    for handle in handles {
        answers.push(handle.await.expect("call task"));
    }
    answers
}
