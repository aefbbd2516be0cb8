//! Health and metrics stay cheap whatever the backlog: many calls share one count of the queue per interval, a
//! slow count never holds a caller up, and a store that refuses writes turns health into a 503 that names the
//! reason. The router runs over real HTTP on a real SQLite store, wrapped to count the store calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookrelay_api::queue_snapshot::QueueSnapshot;
use hookrelay_api::{ApiState, TaskRunner, router};
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EventType, InboundEvent, InboundRejections,
    InboundStatus, Message, Source, TimeWindow,
};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::token::{ApiToken, TokenDigest};
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};
use hookrelay_store::sqlite::SqliteStore;
use hookrelay_store::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A real store that counts how often the queue is counted, can be made slow to count, and can be made to
/// report that it refuses writes.
struct CountingStore {
    inner: SqliteStore,
    queue_counts: AtomicUsize,
    pings: AtomicUsize,
    count_delay: Mutex<Duration>,
    refusing: Mutex<Option<Unwritable>>,
}

impl CountingStore {
    fn counts(&self) -> usize {
        self.queue_counts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        self.inner.create_app(app).await
    }
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        self.inner.get_app(id_or_uid).await
    }
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        self.inner.list_apps(page).await
    }
    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        self.inner.update_app(app).await
    }
    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        self.inner.delete_app(id).await
    }
    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        self.inner.create_event_type(event_type).await
    }
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        self.inner.get_event_type(name).await
    }
    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>> {
        self.inner.list_event_types(page, include_archived).await
    }
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        self.inner.update_event_type(event_type).await
    }
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        self.inner.expunge_event_type(name).await
    }
    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>> {
        self.inner.unknown_event_types(names).await
    }
    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        self.inner.create_endpoint(endpoint).await
    }
    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint> {
        self.inner.get_endpoint(app_id, id_or_uid).await
    }
    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        self.inner.list_endpoints(app_id, page).await
    }
    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        self.inner.update_endpoint(endpoint).await
    }
    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
        self.inner.delete_endpoint(app_id, id).await
    }
    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts> {
        self.inner.endpoint_delivery_counts(id).await
    }
    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>> {
        self.inner.oldest_open_delivery(id).await
    }
    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        self.inner.publish_message(message, idempotent).await
    }
    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
        self.inner.get_message(app_id, id_or_event_id).await
    }
    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        self.inner.list_messages(app_id, filter, page).await
    }
    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>> {
        self.inner.list_message_deliveries(msg_id, page).await
    }
    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
        self.inner.resend(msg_id, endpoint_id).await
    }
    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        self.inner.list_attempts_for_endpoint(endpoint_id, filter, page).await
    }
    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        self.inner.list_attempts_for_message(msg_id, filter, page).await
    }
    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
        self.inner.get_attempt(msg_id, attempt_id).await
    }
    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        self.inner.list_attempts_for_app(app_id, filter, page).await
    }
    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        self.inner.get_idempotent(key).await
    }
    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()> {
        self.inner.put_idempotent(response).await
    }
    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        skip_endpoints: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.inner.claim_due(now, limit, lease_until, skip_endpoints).await
    }
    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
        self.inner.record_outcomes(outcomes).await
    }
    async fn release(&self, deliveries: &[Release]) -> StoreResult<()> {
        self.inner.release(deliveries).await
    }
    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        self.inner.next_due_at().await
    }
    async fn requeue_interrupted(&self) -> StoreResult<u64> {
        self.inner.requeue_interrupted().await
    }
    async fn keep_alive(&self, now: UnixMillis) -> StoreResult<Liveness> {
        self.inner.keep_alive(now).await
    }
    async fn pause_endpoint(&self, endpoint_id: &EndpointId, until: UnixMillis) -> StoreResult<()> {
        self.inner.pause_endpoint(endpoint_id, until).await
    }
    async fn watch_new_work(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> StoreResult<()> {
        self.inner.watch_new_work(wake).await
    }
    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>> {
        self.inner.disable_failing_endpoints(failing_since_before).await
    }
    async fn purge_payloads(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.inner.purge_payloads(before, limit).await
    }
    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        self.inner.create_background_task(task).await
    }
    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        self.inner.get_background_task(id).await
    }
    async fn list_background_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackgroundTask>> {
        self.inner.list_background_tasks(filter, page).await
    }
    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        self.inner.update_background_task(task).await
    }
    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
        self.inner.count_failed_deliveries(endpoint_id, window).await
    }
    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
        self.inner.count_messages(app_id, window).await
    }
    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        self.inner.requeue_failed(endpoint_id, window, limit, after).await
    }
    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        self.inner.insert_missing_deliveries(endpoint_id, window, limit, after).await
    }
    async fn create_source(&self, source: &Source) -> StoreResult<()> {
        self.inner.create_source(source).await
    }
    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        self.inner.get_source(id_or_uid).await
    }
    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        self.inner.list_sources(page).await
    }
    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        self.inner.update_source(source).await
    }
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        self.inner.delete_source(id).await
    }
    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
        self.inner.ingest(event, message).await
    }
    async fn record_rejections(&self, counts: &[InboundRejections]) -> StoreResult<()> {
        self.inner.record_rejections(counts).await
    }
    async fn list_inbound_rejections(&self, id: &SourceId, page: &PageRequest) -> StoreResult<Page<InboundRejections>> {
        self.inner.list_inbound_rejections(id, page).await
    }
    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64> {
        self.inner.count_endpoints(app_id).await
    }
    fn seals_secrets(&self) -> bool {
        self.inner.seals_secrets()
    }
    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>> {
        self.inner.list_inbound_events(source_id, status, page).await
    }
    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
        self.inner.inbound_counts(source_id, since).await
    }
    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.inner.purge_inbound_events(before, limit).await
    }
    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch> {
        self.inner.reencrypt_secrets(table, after, limit).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.pings.fetch_add(1, Ordering::SeqCst);
        self.inner.ping().await
    }
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
    async fn create_token(&self, token: &ApiToken) -> StoreResult<()> {
        self.inner.create_token(token).await
    }
    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        self.inner.find_token(digest).await
    }
    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.inner.list_admin_tokens().await
    }
    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
        self.inner.revoke_admin_token(id_or_name).await
    }
}

struct Server {
    addr: std::net::SocketAddr,
    store: Arc<CountingStore>,
    _dir: tempfile::TempDir,
}

/// The router on a loopback port, over a fresh SQLite store, with queue snapshots refreshed every `interval`.
async fn start(interval: Duration) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = SqliteStore::open(&dir.path().join("hookrelay.db")).expect("open store");
    let store = Arc::new(CountingStore {
        inner,
        queue_counts: AtomicUsize::new(0),
        pings: AtomicUsize::new(0),
        count_delay: Mutex::new(Duration::ZERO),
        refusing: Mutex::new(None),
    });
    let dyn_store: Arc<dyn Store> = store.clone();
    let on_new_work: Arc<tokio::sync::Notify> = Arc::default();
    let state = ApiState {
        tasks: TaskRunner::new(dyn_store.clone(), on_new_work.clone()),
        store: dyn_store,
        admin_token: "test-admin-token".into(),
        auth: Default::default(),
        on_new_work,
        max_body_bytes: 1024,
        ingest_max_body_bytes: 1024,
        ingest: Arc::new(hookrelay_api::ingest::IngestState::new(store.clone())),
        https_only: false,
        events: Arc::new(hookrelay_core::operational::NoEvents),
        on_endpoint_changed: Arc::new(|_| {}),
        app_ids: Arc::default(),
        metrics: Arc::default(),
        metrics_token: None,
        queue: Arc::new(QueueSnapshot::new(interval)),
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
    // Nor does a call wait for a pooled connection: no ping either.
    assert_eq!(server.store.pings.load(Ordering::SeqCst), 0);
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
