//! The load generator: `workers` concurrent publishers over one keep-alive HTTP client, either closed-loop
//! (each sends its next message as soon as the last is accepted) or paced at a fixed rate, stopping after a
//! duration or a message count. Each worker keeps its own histogram so they never contend on a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::hist::Histogram;
use super::now_us;

/// When publishing stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    After(Duration),
    Count(u64),
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub workers: usize,
    pub stop: Stop,
    /// Messages per second overall; `None` for as fast as the server accepts.
    pub rate: Option<f64>,
    /// Bytes of padding in each payload.
    pub pad: usize,
    /// `deliverAt` of every message (RFC 3339); `None` delivers at once.
    pub deliver_at: Option<String>,
}

pub struct LoadResult {
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Publish request latency in microseconds, accepted requests only.
    pub latency: Histogram,
}

/// Publishes to `{base}/api/v1/app/{app}/msg/` as `spec` says; with several `bases` (instances of one server on
/// one database), worker `i` publishes to `bases[i % len]`.
pub async fn publish(client: &reqwest::Client, bases: &[&str], token: &str, app: &str, spec: &LoadSpec) -> LoadResult {
    let urls: Vec<Arc<str>> = bases.iter().map(|base| format!("{base}/api/v1/app/{app}/msg/").into()).collect();
    let auth: Arc<str> = format!("Bearer {token}").into();
    let pad: Arc<str> = "x".repeat(spec.pad).into();
    let deliver_at: Arc<str> =
        spec.deliver_at.as_ref().map_or(String::new(), |at| format!(r#","deliverAt":"{at}""#)).into();
    let next = Arc::new(AtomicU64::new(0));
    // Set when errors dominate, so a broken server does not keep every worker spinning.
    let abort = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(spec.workers);
    for worker in 0..spec.workers.max(1) {
        let url = urls[worker % urls.len()].clone();
        let (client, auth, pad, deliver_at) = (client.clone(), auth.clone(), pad.clone(), deliver_at.clone());
        let (next, abort, errors, spec) = (next.clone(), abort.clone(), errors.clone(), spec.clone());
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::default();
            let mut accepted = 0u64;
            let mut first_error = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if abort.load(Ordering::Relaxed) {
                    break;
                }
                match spec.stop {
                    Stop::Count(count) if n >= count => break,
                    Stop::After(duration) if start.elapsed() >= duration => break,
                    _ => {}
                }
                if let Some(rate) = spec.rate {
                    let due = start + Duration::from_secs_f64(n as f64 / rate);
                    if let Stop::After(duration) = spec.stop
                        && due >= start + duration
                    {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = format!(
                    r#"{{"eventType":"bench.event","payload":{{"sent_at_us":{},"pad":"{pad}"}}{deliver_at}}}"#,
                    now_us()
                );
                let began = Instant::now();
                let sent = client
                    .post(&*url)
                    .header("authorization", &*auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let outcome = match sent {
                    // Reading the body lets the connection go back to the pool for the next request.
                    Ok(response) if response.status().as_u16() == 202 => {
                        response.bytes().await.map(|_| ()).map_err(|err| format!("reading the answer: {err}"))
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()))
                    }
                    Err(err) => Err(format!("request failed: {err}")),
                };
                match outcome {
                    Ok(()) => {
                        latency.record(began.elapsed().as_micros() as u64);
                        accepted += 1;
                    }
                    Err(err) => {
                        let failed = errors.fetch_add(1, Ordering::Relaxed) + 1;
                        first_error.get_or_insert(err);
                        if failed >= 1_000 && failed > n / 2 {
                            abort.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            (latency, accepted, first_error)
        }));
    }
    let mut result = LoadResult {
        accepted: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latency: Histogram::default(),
    };
    for worker in workers {
        match worker.await {
            Ok((latency, accepted, first_error)) => {
                result.latency.merge(&latency);
                result.accepted += accepted;
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
            }
            Err(err) => {
                result.first_error.get_or_insert_with(|| format!("publisher task failed: {err}"));
            }
        }
    }
    result.elapsed = start.elapsed();
    result.errors = errors.load(Ordering::Relaxed);
    result
}
