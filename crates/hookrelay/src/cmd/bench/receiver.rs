//! The benchmark's receiver: an axum server on loopback that answers 200 at once and records, once per
//! distinct (path, webhook-id), the publish→receipt latency from the `sent_at_us` the load generator put in
//! the payload; retried duplicates are counted apart so they do not inflate the delivered figures.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::task::JoinHandle;

use super::hist::Histogram;
use super::now_us;

#[derive(Default)]
struct Shared {
    unique: AtomicU64,
    duplicates: AtomicU64,
    /// Of every 10,000 messages, how many have their first delivery answered 500.
    fail_per_10k: u64,
    failed_first: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<(String, String)>,
    /// Deliveries answered 500 once, which the next attempt gets through.
    failed: HashSet<(String, String)>,
    latency: Histogram,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// What the receiver saw so far.
pub struct Receipts {
    pub unique: u64,
    pub duplicates: u64,
    pub latency: Histogram,
    /// When the first delivery arrived.
    pub first: Option<Instant>,
    /// When the last new delivery arrived.
    pub last: Option<Instant>,
    /// First deliveries answered 500 (the fail rate).
    pub failed_first: u64,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct Stamp {
    sent_at_us: u64,
}

impl Receiver {
    /// Listens on `addr` (port 0 for any free port); answers 500 to the first delivery of `fail_rate` of the
    /// messages (chosen by their id), and 200 to everything else.
    pub async fn start(addr: SocketAddr, fail_rate: f64) -> anyhow::Result<Self> {
        let fail_per_10k = (fail_rate * 10_000.0).round() as u64;
        let shared = Arc::new(Shared { fail_per_10k, ..Shared::default() });
        let app = axum::Router::new().fallback(receive).with_state(shared.clone());
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("receiver cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("bench receiver stopped: {err}");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// Distinct deliveries so far (cheap: for polling).
    pub fn unique(&self) -> u64 {
        self.shared.unique.load(Ordering::Relaxed)
    }

    pub fn receipts(&self) -> Receipts {
        let inner = self.shared.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Receipts {
            unique: self.shared.unique.load(Ordering::Relaxed),
            duplicates: self.shared.duplicates.load(Ordering::Relaxed),
            latency: inner.latency.clone(),
            first: inner.first,
            last: inner.last,
            failed_first: self.shared.failed_first.load(Ordering::Relaxed),
        }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    // Taken first, so parsing and locking are not counted as delivery latency.
    let received_us = now_us();
    let at = Instant::now();
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let sent_us = serde_json::from_slice::<Stamp>(&body).ok().map(|stamp| stamp.sent_at_us);
    let fails = shared.fail_per_10k > 0 && fnv1a(id.as_bytes()) % 10_000 < shared.fail_per_10k;
    let key = (uri.path().to_owned(), id);
    let mut inner = shared.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if fails && !inner.seen.contains(&key) && inner.failed.insert(key.clone()) {
        shared.failed_first.fetch_add(1, Ordering::Relaxed);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if inner.seen.insert(key) {
        shared.unique.fetch_add(1, Ordering::Relaxed);
        if let Some(sent_us) = sent_us {
            inner.latency.record(received_us.saturating_sub(sent_us));
        }
        inner.first.get_or_insert(at);
        inner.last = Some(at);
    } else {
        shared.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}

/// FNV-1a: spreads message ids evenly over the fail rate's buckets.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}
