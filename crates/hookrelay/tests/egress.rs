//! Black-box tests of SSRF protection over real HTTP: a name that resolves to loopback is refused unless its
//! range is whitelisted, endpoint URLs whose host is a refused IP address get a 422 (and are refused again at
//! delivery when stored before the policy changed), redirects are never followed, `HOOKRELAY_HTTPS_ONLY`
//! refuses http:// endpoints at the API and at delivery, and an egress proxy carries every delivery.
//!
//! Every request any of these tests sends goes to loopback: an endpoint with any other address or a name other
//! than `localhost` exists only where nothing is published to it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, TestServer, wait_for};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);

/// The first attempt recorded for an endpoint, once there is one.
async fn first_attempt(server: &TestServer, app: &str, endpoint: &str) -> Value {
    wait_for("an attempt", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/attempt/endpoint/{endpoint}/")).await;
        list["data"].as_array()?.first().cloned()
    })
    .await
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_until_its_range_is_whitelisted() {
    let receiver = Receiver::ok().await;
    // `localhost` resolves through /etc/hosts to 127.0.0.1 (and perhaps ::1): a name, so only the resolver that
    // the HTTP client connects with can catch it.
    let url = format!("http://localhost:{}/webhook", receiver.addr.port());

    let strict = TestServer::start_with(|args| args.allow_private_endpoints = Some(false)).await;
    let app = strict.create_app("Acme").await;
    let (endpoint, _) = strict.create_endpoint(&app, &url, json!({})).await;
    strict.publish(&app, "a", json!({})).await;
    let attempt = first_attempt(&strict, &app, &endpoint).await;
    assert_eq!(attempt["responseStatusCode"], json!(0), "{attempt}");
    assert_eq!(attempt["status"], json!(2), "{attempt}");
    let reason = attempt["response"].as_str().unwrap_or_default();
    assert!(reason.contains("localhost") && reason.contains("private"), "{reason}");
    assert!(reason.contains("HOOKRELAY_WHITELIST_SUBNETS") && reason.contains("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"));
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
    strict.stop().await;

    let whitelisted = TestServer::start_with(|args| {
        args.allow_private_endpoints = Some(false);
        args.whitelist_subnets = Some("127.0.0.1/32".into());
    })
    .await;
    let app = whitelisted.create_app("Acme").await;
    whitelisted.create_endpoint(&app, &url, json!({})).await;
    // Another loopback address stays refused: the whitelist allows exactly its range.
    let outside = format!("http://127.0.0.2:{}/webhook", receiver.addr.port());
    let (status, body) = whitelisted.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": outside })).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"][0]["msg"].as_str().unwrap_or_default().contains("127.0.0.2"), "{body}");
    whitelisted.publish(&app, "a", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    whitelisted.stop().await;
}

/// The URLs of issue 15's findings 6 and 12, and the cloud metadata address: refused when the endpoint is
/// created, replaced or patched, so they never reach the queue. Nothing is published: no request is sent.
#[tokio::test]
async fn endpoint_urls_with_a_refused_ip_address_get_422() {
    let strict = TestServer::start_with(|args| args.allow_private_endpoints = Some(false)).await;
    let app = strict.create_app("Acme").await;
    let base = format!("/api/v1/app/{app}/endpoint/");
    let refused = [
        "http://[::127.0.0.1]/",
        "http://[::ffff:0:127.0.0.1]/",
        "http://[::ffff:127.0.0.1]:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[fd00::1]/",
    ];
    for url in refused {
        let (status, body) = strict.post(&base, json!({ "url": url })).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]), "{url}: {body}");
        let msg = body["detail"][0]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains("HOOKRELAY_WHITELIST_SUBNETS"), "{url}: {msg}");
    }
    // Finding 12: URLs no client can send to.
    for url in ["http://ex%zzample.com/", "http://%/", "http://[1:2]/"] {
        let (status, body) = strict.post(&base, json!({ "url": url })).await;
        assert_eq!((status, &body["detail"][0]["loc"]), (422, &json!(["body", "url"])), "{url}: {body}");
    }
    // A name is judged when it is resolved, at delivery; this one is never delivered to.
    let (endpoint, _) = strict.create_endpoint(&app, "https://hooks.example/in", json!({})).await;
    let one = format!("{base}{endpoint}/");
    for url in refused {
        let (status, body) = strict.request(reqwest::Method::PATCH, &one, Some(json!({ "url": url }))).await;
        assert_eq!(status, 422, "PATCH {url}: {body}");
        let (status, body) = strict.request(reqwest::Method::PUT, &one, Some(json!({ "url": url }))).await;
        assert_eq!(status, 422, "PUT {url}: {body}");
    }
    assert_eq!(strict.get(&one).await.1["url"], json!("https://hooks.example/in"));
    strict.stop().await;

    // With private endpoints allowed (local development), a loopback address is an ordinary endpoint.
    let open = TestServer::start().await;
    let app = open.create_app("Acme").await;
    let (status, body) = open.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": "http://[::1]:9/" })).await;
    assert_eq!(status, 201, "{body}");
    // Stored and returned as sent (Svix-compatible), not in the parser's normal form.
    let (status, body) =
        open.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": "HTTP://127.0.0.1:80/Hook" })).await;
    assert_eq!((status, &body["url"]), (201, &json!("HTTP://127.0.0.1:80/Hook")), "{body}");
    open.stop().await;
}

/// An endpoint stored while private addresses were allowed is refused at delivery once they are not: the
/// dispatcher checks IP-literal hosts before every request, not only the API at create.
#[tokio::test]
async fn an_ip_literal_stored_before_the_policy_changed_is_refused_at_delivery() {
    let receiver = Receiver::ok().await;
    let mut before = TestServer::start().await;
    let app = before.create_app("Acme").await;
    let (endpoint, _) = before.create_endpoint(&app, &receiver.url(), json!({})).await;
    before.server.take().expect("running").stop().await.expect("clean stop");

    let data_dir = before.data_dir.path().to_owned();
    let strict = TestServer::start_with(|args| {
        args.data_dir = Some(data_dir);
        args.allow_private_endpoints = Some(false);
    })
    .await;
    strict.publish(&app, "a", json!({})).await;
    let attempt = first_attempt(&strict, &app, &endpoint).await;
    assert_eq!(attempt["responseStatusCode"], json!(0), "{attempt}");
    let reason = attempt["response"].as_str().unwrap_or_default();
    assert!(reason.contains("127.0.0.1") && reason.contains("HOOKRELAY_WHITELIST_SUBNETS"), "{reason}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 0);
    strict.stop().await;
}

#[tokio::test]
async fn redirects_are_recorded_as_failures_and_never_followed() {
    let target = Receiver::ok().await;
    let location: &'static str = Box::leak(target.url().into_boxed_str());
    let redirecting =
        Receiver::start_with_headers(Arc::new(move |_| (StatusCode::FOUND, vec![("location", location)]))).await;
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &redirecting.url(), json!({})).await;
    server.publish(&app, "a", json!({})).await;
    let attempt = first_attempt(&server, &app, &endpoint).await;
    assert_eq!(attempt["responseStatusCode"], json!(302), "{attempt}");
    assert_eq!(attempt["status"], json!(2), "a redirect is not a success");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.count(), 0, "the redirect was followed");
    server.stop().await;
}

#[tokio::test]
async fn https_only_refuses_http_endpoints_at_the_api_and_at_delivery() {
    let receiver = Receiver::ok().await;
    // An http:// endpoint created before the operator turned HTTPS-only on.
    let mut before = TestServer::start().await;
    let app = before.create_app("Acme").await;
    let (endpoint, _) = before.create_endpoint(&app, &receiver.url(), json!({})).await;
    before.server.take().expect("running").stop().await.expect("clean stop");

    let data_dir = before.data_dir.path().to_owned();
    let server = TestServer::start_with(|args| {
        args.data_dir = Some(data_dir);
        args.https_only = Some(true);
    })
    .await;
    let (status, body) = server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]), "{body}");
    let msg = body["detail"][0]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("https://") && msg.contains("HOOKRELAY_HTTPS_ONLY=false"), "{msg}");
    let (status, body) = server
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/app/{app}/endpoint/{endpoint}/"),
            Some(json!({ "url": receiver.url_for("/other") })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // An https:// URL is accepted. It belongs to another application, which is never published to: a name
    // would be looked up through the machine's resolver, and tests send nothing beyond loopback.
    let unused = server.create_app("Unused").await;
    let (status, body) =
        server.post(&format!("/api/v1/app/{unused}/endpoint/"), json!({ "url": "https://example.com/hook" })).await;
    assert_eq!(status, 201, "{body}");

    server.publish(&app, "a", json!({})).await;
    let attempt = first_attempt(&server, &app, &endpoint).await;
    assert_eq!(attempt["responseStatusCode"], json!(0), "{attempt}");
    assert!(attempt["response"].as_str().unwrap_or_default().contains("HOOKRELAY_HTTPS_ONLY"), "{attempt}");
    assert_eq!(receiver.count(), 0);
    server.stop().await;
}

/// A minimal forward proxy on loopback for plain-HTTP requests in absolute form (`POST http://host:port/path`):
/// it forwards each request to its target on a connection of its own and counts them.
async fn start_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let addr = listener.local_addr().expect("proxy addr");
    let forwarded = Arc::new(AtomicUsize::new(0));
    let count = forwarded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let _ = forward_one(client, &count).await;
            });
        }
    });
    (format!("http://{addr}"), forwarded)
}

async fn forward_one(mut client: TcpStream, count: &AtomicUsize) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let Ok(url) = reqwest::Url::parse(target) else {
        return client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    };
    let length: usize = lines
        .clone()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    count.fetch_add(1, Ordering::SeqCst);
    let host = url.host_str().unwrap_or_default();
    let mut upstream = TcpStream::connect((host, url.port_or_known_default().unwrap_or(80))).await?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines.filter(|line| !line.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if name != "connection" && name != "proxy-connection" {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("connection: close\r\n\r\n");
    upstream.write_all(request.as_bytes()).await?;
    upstream.write_all(&buffer[head_end..]).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    client.write_all(&response).await?;
    client.shutdown().await
}

#[tokio::test]
async fn deliveries_go_through_the_egress_proxy() {
    let receiver = Receiver::ok().await;
    let (proxy, forwarded) = start_proxy().await;
    let server = TestServer::start_with(|args| {
        args.allow_private_endpoints = Some(false);
        args.egress_proxy = Some(proxy);
    })
    .await;
    let app = server.create_app("Acme").await;
    // The proxy resolves names, so hookrelay leaves `localhost` to it (the proxy must filter); an IP literal is
    // still checked here, when the endpoint is created.
    let by_name = format!("http://localhost:{}/webhook", receiver.addr.port());
    server.create_endpoint(&app, &by_name, json!({})).await;
    let (status, body) = server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await;
    assert_eq!(status, 422, "{body}");
    server.publish(&app, "a", json!({ "via": "proxy" })).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), json!({ "via": "proxy" }));
    assert_eq!(forwarded.load(Ordering::SeqCst), 1, "the delivery did not go through the proxy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    server.stop().await;
}
