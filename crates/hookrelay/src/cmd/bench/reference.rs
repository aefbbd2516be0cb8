//! `hookrelay bench-reference` (hidden): the benchmark's no-storage ceiling. It serves the few routes the
//! benchmark calls, shaped like hookrelay's (create app, create endpoint, publish answering 202 with an id),
//! keeps apps and endpoints in memory only, stores no message, and forwards each published payload at once
//! to every endpoint of its app with one reqwest POST — no retries, no signatures, no durability. Whatever
//! hookrelay does beyond that costs the difference between its figures and these.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

#[derive(clap::Args, Debug)]
pub struct ReferenceArgs {
    /// Loopback address to listen on (port 0 for any free port)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

struct Shared {
    next_id: AtomicU64,
    /// Endpoint URLs per app; read on every publish, written only while a scenario sets up.
    apps: RwLock<HashMap<String, Arc<[String]>>>,
    client: reqwest::Client,
}

impl Shared {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

pub async fn run(args: ReferenceArgs) -> anyhow::Result<()> {
    // It accepts anyone's requests without a token and forwards wherever it is told: loopback only.
    if !args.listen.ip().is_loopback() {
        bail!("bench-reference listens on loopback only, not {}", args.listen);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The same client settings the benchmark's load generator uses, so neither side is handicapped by its pool.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let shared = Arc::new(Shared { next_id: AtomicU64::new(0), apps: RwLock::default(), client });
    let app = axum::Router::new()
        .route("/api/v1/app/", post(create_app))
        .route("/api/v1/app/{app}/endpoint/", post(create_endpoint))
        .route("/api/v1/app/{app}/msg/", post(publish))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // The line `Server::spawn` waits for, as `serve` prints it.
    println!("hookrelay listening on http://{} (bench reference: no storage)", listener.local_addr()?);
    axum::serve(listener, app).await.context("the reference server stopped")
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "code": "invalid", "detail": message }))).into_response()
}

async fn create_app(State(shared): State<Arc<Shared>>) -> Response {
    let id = shared.id("app");
    shared.apps.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id.clone(), Arc::from(Vec::new()));
    (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
}

#[derive(Deserialize)]
struct NewEndpoint {
    url: String,
}

async fn create_endpoint(State(shared): State<Arc<Shared>>, Path(app): Path<String>, body: Bytes) -> Response {
    let Ok(endpoint) = serde_json::from_slice::<NewEndpoint>(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"url\": …}");
    };
    if !is_loopback_url(&endpoint.url) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "the reference server delivers to loopback URLs only");
    }
    let mut apps = shared.apps.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(urls) = apps.get_mut(&app) else {
        return error(StatusCode::NOT_FOUND, "no such app");
    };
    // Copy-on-write: publishers hold the old list only for the message they are forwarding.
    let mut list = urls.to_vec();
    list.push(endpoint.url);
    *urls = Arc::from(list);
    drop(apps);
    (StatusCode::CREATED, axum::Json(json!({ "id": shared.id("ep") }))).into_response()
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    match url.host_str().map(|host| host.trim_start_matches('[').trim_end_matches(']')) {
        Some("localhost") => true,
        Some(host) => host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    /// Forwarded byte for byte, as hookrelay delivers the payload it was given.
    #[serde(borrow)]
    payload: &'a RawValue,
}

async fn publish(State(shared): State<Arc<Shared>>, Path(app): Path<String>, body: Bytes) -> Response {
    let Some(urls) = shared.apps.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&app).cloned() else {
        return error(StatusCode::NOT_FOUND, "no such app");
    };
    let payload = match serde_json::from_slice::<Message>(&body) {
        Ok(message) => Bytes::copy_from_slice(message.payload.get().as_bytes()),
        Err(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"payload\": …}"),
    };
    let id = shared.id("msg");
    // Forwarding runs beside the 202, like hookrelay's dispatcher; a failed POST is dropped (no retries).
    for url in urls.iter() {
        let request = shared
            .client
            .post(url)
            .header("webhook-id", &id)
            .header("content-type", "application/json")
            .body(payload.clone());
        tokio::spawn(async move {
            if let Ok(response) = request.send().await {
                // Reading the answer returns the connection to the pool.
                let _ = response.bytes().await;
            }
        });
    }
    (StatusCode::ACCEPTED, axum::Json(json!({ "id": id, "eventType": "bench.event" }))).into_response()
}
