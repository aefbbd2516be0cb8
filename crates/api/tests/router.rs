//! The router over real HTTP, with a real store whose database is down (PostgreSQL behind a proxy the test cuts): everything the API must get right without
//! reaching the database (routing of both path spellings, auth, error shapes, body limits, validation before
//! any store call, health) and the mapping of an outage to 503. Behaviour with a working store is covered by
//! the end-to-end tests of the binary.

use std::collections::BTreeSet;
use std::sync::Arc;

use hookrelay_api::{ApiState, TaskRunner, router};
use hookrelay_store::Store;
use hookrelay_store::postgres::PostgresStore;
use hookrelay_testkit::postgres::ScratchSchema;
use hookrelay_testkit::proxy::CuttableProxy;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "test-admin-token";

/// The API on a loopback port, over a real store whose database has gone away: a PostgreSQL store opened on a
/// scratch schema through a proxy, which is then cut.
struct DownApi {
    addr: std::net::SocketAddr,
    state: ApiState,
    _proxy: CuttableProxy,
    _schema: ScratchSchema,
}

async fn start() -> DownApi {
    let schema = ScratchSchema::for_test().await;
    let proxy = CuttableProxy::start(schema.server_addr().await).await;
    let store = PostgresStore::connect(&schema.url_through(proxy.addr()), 2).await.expect("open the store");
    proxy.cut();
    let state = state(Store::new(store));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    DownApi { addr, state, _proxy: proxy, _schema: schema }
}

/// The API's state around `store`.
fn state(store: Store) -> ApiState {
    let on_new_work: Arc<tokio::sync::Notify> = Arc::default();
    ApiState {
        tasks: TaskRunner::new(store.recovery.clone(), on_new_work.clone()),
        ingest: Arc::new(hookrelay_api::ingest::IngestState::new(store.inbound.clone())),
        store,
        admin_token: TOKEN.into(),
        auth: Default::default(),
        on_new_work,
        max_body_bytes: 1024,
        ingest_max_body_bytes: 1024,
        https_only: false,
        max_endpoints_per_app: 200,
        address_policy: Arc::default(),
        events: Arc::new(hookrelay_core::operational::NoEvents),
        on_endpoint_changed: Arc::new(|_| {}),
        app_ids: Arc::default(),
        metrics: Arc::default(),
        metrics_token: None,
        queue: Arc::default(),
        sandbox: hookrelay_transform::Sandbox::start(1).expect("the transformation sandbox"),
        ui: Default::default(),
        live: Default::default(),
    }
}

/// One HTTP/1.1 request; returns the status and the body parsed as JSON (`Null` when empty, a string when the
/// answer is `text/plain`).
async fn call(addr: std::net::SocketAddr, method: &str, path: &str, auth: bool, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = if auth { format!("authorization: Bearer {TOKEN}\r\n") } else { String::new() };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head first: an event stream (`hookrelay listen`, `tail`) answers for minutes, so its body is not read.
    while !raw.windows(4).any(|window| window == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "{method} {path}: the connection closed before the response's head ended");
        raw.extend_from_slice(&chunk[..n]);
    }
    let event_stream = String::from_utf8_lossy(&raw).to_ascii_lowercase().contains("content-type: text/event-stream");
    if !event_stream {
        stream.read_to_end(&mut raw).await.expect("read");
    }
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let json = if event_stream {
        Value::String("an event stream".into())
    } else if body.is_empty() {
        Value::Null
    } else if head.to_ascii_lowercase().contains("content-type: text/plain") {
        // `/metrics` answers Prometheus text.
        Value::String(body.to_owned())
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{method} {path}: body is not JSON: {body}"))
    };
    (status, json)
}

async fn check(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: bool,
    body: &str,
    status: u16,
    expected: Value,
) {
    let (got_status, got_body) = call(addr, method, path, auth, body).await;
    assert_eq!((got_status, &got_body), (status, &expected), "{method} {path} {body}");
}

fn code(code: &str) -> impl Fn(&Value) -> bool + '_ {
    move |body| body["code"] == code
}

#[tokio::test]
async fn routing_auth_and_error_shapes() {
    let api = start().await;
    let addr = api.addr;
    let unavailable = |status: u16, body: &Value| status == 503 && code("service_unavailable")(body);

    // Health needs no token; a down database makes it 503 with the SDK-parseable body. Ping only checks the process.
    for path in ["/api/v1/health", "/api/v1/health/"] {
        let (status, body) = call(addr, "GET", path, false, "").await;
        assert!(unavailable(status, &body), "{path}: {status} {body}");
    }
    check(addr, "GET", "/api/v1/health/ping", false, "", 204, Value::Null).await;

    // Every route, with and without the trailing slash, is behind the token.
    for path in [
        "/api/v1/app",
        "/api/v1/app/",
        "/api/v1/app/x/msg",
        "/api/v1/event-type/",
        "/api/v1/app/a/msg/m/endpoint/e/resend",
        "/api/v1/background-task/",
        "/api/v1/stats",
        "/api/v1/app/a/attempt/",
    ] {
        let (status, body) = call(addr, "GET", path, false, "").await;
        assert_eq!(status, 401, "{path}");
        assert!(code("authentication_failed")(&body), "{path}: {body}");
    }

    // With the token, known routes reach the (down) store under both spellings.
    for path in [
        "/api/v1/app",
        "/api/v1/app/",
        "/api/v1/app/app_x",
        "/api/v1/app/my-uid/",
        "/api/v1/event-type",
        "/api/v1/event-type/user.created/",
        "/api/v1/app/a/endpoint",
        "/api/v1/app/a/endpoint/e/secret",
        "/api/v1/app/a/endpoint/e/headers/",
        "/api/v1/app/a/endpoint/e/stats",
        "/api/v1/app/a/msg/",
        "/api/v1/app/a/msg/m",
        "/api/v1/app/a/msg/m/endpoint",
        "/api/v1/app/a/msg/m/attempt/atmpt_1/",
        "/api/v1/app/a/attempt/endpoint/e",
        "/api/v1/app/a/attempt/msg/m/",
        "/api/v1/background-task",
        "/api/v1/background-task/?status=running&task=endpoint.recover",
        "/api/v1/background-task/qtask_x",
        "/api/v1/stats/",
        "/api/v1/app/a/attempt?status=fail",
        "/api/v1/auth/token",
        "/api/v1/auth/token/",
    ] {
        let (status, body) = call(addr, "GET", path, true, "").await;
        assert!(unavailable(status, &body), "GET {path}: {status} {body}");
    }

    // A token other than the bootstrap one must be looked up: with the database down that is a 503, not a 401
    // (nobody can tell whether it is valid) and never a 200.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"GET /api/v1/app HTTP/1.1\r\nhost: test\r\nconnection: close\r\nauthorization: Bearer other\r\n\r\n",
        )
        .await
        .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
    // App portal tokens and admin tokens are made in the (down) store.
    let (status, body) = call(addr, "POST", "/api/v1/auth/app-portal-access/app_x", true, "{}").await;
    assert!(unavailable(status, &body), "{status} {body}");
    let (status, body) = call(addr, "POST", "/api/v1/auth/token", true, r#"{"name": "ci"}"#).await;
    assert!(unavailable(status, &body), "{status} {body}");
    let (status, body) = call(addr, "DELETE", "/api/v1/auth/token/ci", true, "").await;
    assert!(unavailable(status, &body), "{status} {body}");

    check(
        addr,
        "GET",
        "/api/v1/nothing-here",
        true,
        "",
        404,
        json!({"code": "not_found", "detail": "no route for `/api/v1/nothing-here`"}),
    )
    .await;
    check(addr, "GET", "/nope", false, "", 404, json!({"code": "not_found", "detail": "no route for `/nope`"})).await;
    let (status, body) = call(addr, "DELETE", "/api/v1/app/", true, "").await;
    assert_eq!(status, 405);
    assert!(code("method_not_allowed")(&body), "{body}");
    let (status, body) = call(addr, "POST", "/api/v1/health/ping", false, "").await;
    assert_eq!(status, 405);
    assert!(code("method_not_allowed")(&body), "{body}");
}

#[tokio::test]
async fn bad_input_is_a_422_before_any_store_call() {
    let api = start().await;
    let addr = api.addr;
    for (method, path, body, loc) in [
        ("POST", "/api/v1/app", r#"{"name": "x", "uid": "app_reserved"}"#, vec!["body", "uid"]),
        ("POST", "/api/v1/app", r#"{"name": 5}"#, vec!["body", "name"]),
        ("POST", "/api/v1/app", r#"{"uid": "a"}"#, vec!["body", "name"]),
        ("POST", "/api/v1/app", "", vec!["body"]),
        ("POST", "/api/v1/app", "{not json", vec!["body"]),
        ("GET", "/api/v1/app?limit=251", "", vec!["query", "limit"]),
        ("GET", "/api/v1/app/?limit=0", "", vec!["query", "limit"]),
        ("GET", "/api/v1/app?order=up", "", vec!["query", "order"]),
        ("GET", "/api/v1/app/a/msg?after=yesterday", "", vec!["query", "after"]),
        ("GET", "/api/v1/app/a/attempt/endpoint/e?status=9", "", vec!["query", "status"]),
        ("GET", "/api/v1/app/a/attempt/?status=failed", "", vec!["query", "status"]),
        ("POST", "/api/v1/event-type", r#"{"name": "bad name", "description": ""}"#, vec!["body", "name"]),
        ("POST", "/api/v1/app/a/endpoint/e/recover", r#"{"since": "yesterday"}"#, vec!["body", "since"]),
        ("POST", "/api/v1/app/a/endpoint/e/recover/", r#"{"until": "2026-01-01T00:00:00Z"}"#, vec!["body", "since"]),
        ("POST", "/api/v1/app/a/endpoint/e/recover", r#"{"since": "2000-01-01T00:00:00Z"}"#, vec!["body", "since"]),
        ("POST", "/api/v1/app/a/endpoint/e/recover", r#"{"since": "9999-01-01T00:00:00Z"}"#, vec!["body", "since"]),
        (
            "POST",
            "/api/v1/app/a/endpoint/e/replay-missing/",
            r#"{"since": "2000-01-02T00:00:00Z", "until": "2000-01-01T00:00:00Z"}"#,
            vec!["body", "until"],
        ),
        ("GET", "/api/v1/background-task?status=done", "", vec!["query", "status"]),
        ("GET", "/api/v1/background-task/?task=unknown", "", vec!["query", "task"]),
        ("POST", "/api/v1/auth/token", r#"{"name": "has space"}"#, vec!["body", "name"]),
        ("POST", "/api/v1/auth/token/", r#"{"name": "tok_x"}"#, vec!["body", "name"]),
        ("POST", "/api/v1/auth/app-portal-access/app_x", r#"{"expiry": 0}"#, vec!["body", "expiry"]),
        ("POST", "/api/v1/auth/app-portal-access/app_x/", r#"{"expiry": 604801}"#, vec!["body", "expiry"]),
    ] {
        let (status, got) = call(addr, method, path, true, body).await;
        assert_eq!(status, 422, "{method} {path} {body}: {got}");
        assert_eq!(got["detail"][0]["loc"], json!(loc), "{method} {path} {body}: {got}");
        assert_eq!(got["detail"][0]["type"].as_str().map(|t| t.ends_with("_error")), Some(true), "{got}");
    }
}

/// A plain GET; returns the raw response (head and body).
async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    raw
}

#[tokio::test]
async fn metrics_are_served_while_the_database_is_down_and_count_requests_by_route_template() {
    let api = start().await;
    let addr = api.addr;
    let (status, _) = call(addr, "GET", "/api/v1/app/app_x/msg/", true, "").await;
    assert_eq!(status, 503);
    let (status, _) = call(addr, "GET", "/api/v1/app/other/msg", false, "").await;
    assert_eq!(status, 401);
    let (status, _) = call(addr, "GET", "/no/such/path/msg_123", false, "").await;
    assert_eq!(status, 404);

    let raw = get_raw(addr, "/metrics").await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{raw}");
    let (_, body) = raw.split_once("\r\n\r\n").expect("head and body");
    // The queue could not be read; the rest is served.
    assert!(body.lines().any(|line| line == "hookrelay_database_up 0"), "{body}");
    // Requests count under their route template: both spellings as one, no raw path or id in any label.
    for series in [
        r#"hookrelay_http_requests_total{method="GET",route="/api/v1/app/{app_id}/msg",status="503"} 1"#,
        r#"hookrelay_http_requests_total{method="GET",route="/api/v1/app/{app_id}/msg",status="401"} 1"#,
        r#"hookrelay_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
    ] {
        assert!(body.lines().any(|line| line == series), "{series} missing in:\n{body}");
    }
    assert!(!body.contains("app_x") && !body.contains("msg_123"), "{body}");
    assert!(
        body.contains(
            r#"hookrelay_http_request_duration_seconds_count{method="GET",route="/api/v1/app/{app_id}/msg"} 2"#
        ),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let api = start().await;
    let addr = api.addr;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2048));
    let (status, body) = call(addr, "POST", "/api/v1/app/", true, &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(code("payload_too_large")(&body), "{body}");
}

#[tokio::test]
async fn idempotent_posts_fail_cleanly_when_the_store_is_down() {
    let api = start().await;
    let addr = api.addr;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"name": "x"}"#;
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {TOKEN}\r\nidempotency-key: auto_1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
}

/// Every path the router registered, read from its `Debug` output: axum has no API that lists routes, and
/// this way the list comes from the router itself rather than from a copy that could drift. If axum changes
/// that output, the test below fails loudly (it finds no routes, or not the known ones), never silently.
fn registered_paths(state: &ApiState) -> BTreeSet<String> {
    let text = format!("{:?}", router(state.clone()));
    // The browser pages (`/ui/…`, `/app-portal`) are HTML, not API operations: tests/ui.rs covers them.
    let page = |path: &str| path == "/" || path == "/ui" || path.starts_with("/ui/") || path.starts_with("/app-portal");
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|quoted| quoted.starts_with('/') && !quoted.contains("__private__axum") && !page(quoted))
        .map(str::to_owned)
        .collect()
}

/// The path as the document spells it: the trailing-slash form when the router also has that one.
fn documented_spelling(path: &str, registered: &BTreeSet<String>) -> String {
    let slashed = format!("{}/", path.trim_end_matches('/'));
    if registered.contains(&slashed) { slashed } else { path.to_owned() }
}

/// Which methods a path answers: anything but the 405 of a known path with another method, or the 404 of a Svix
/// operation hookrelay says it does not support (and never the 404 of an unknown path).
async fn routed_methods(addr: std::net::SocketAddr, path: &str) -> Vec<&'static str> {
    let concrete: String =
        path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
    let mut methods = Vec::new();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let (status, body) = call(addr, method, &concrete, true, "").await;
        assert!(
            !(status == 404 && body["detail"].as_str().is_some_and(|d| d.starts_with("no route"))),
            "{method} {concrete}: {body}"
        );
        let unsupported =
            status == 404 && body["detail"].as_str().is_some_and(|d| d.contains("not supported by hookrelay"));
        if status != 405 && !unsupported {
            methods.push(method);
        }
    }
    methods
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_the_router_serves() {
    let api = start().await;
    let addr = api.addr;
    let (status, doc) = call(addr, "GET", "/api/v1/openapi.json", false, "").await;
    assert_eq!(status, 200, "the document is public");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths object")
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item").keys();
            methods.map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();

    let registered = registered_paths(&api.state);
    for known in ["/api/v1/app", "/api/v1/app/", "/api/v1/health/ping", "/ingest/{source}/", "/api/v1/openapi.json"] {
        assert!(registered.contains(known), "reading the router's routes failed: {known} missing from {registered:?}");
    }
    let mut served = BTreeSet::new();
    for path in &registered {
        let spelling = documented_spelling(path, &registered);
        for method in routed_methods(addr, path).await {
            served.insert((method.to_owned(), spelling.clone()));
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document (annotate the handler with #[utoipa::path] and list it in openapi::ApiDoc): {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&served).collect();
    assert!(unrouted.is_empty(), "documented but not served: {unrouted:?}");
}
