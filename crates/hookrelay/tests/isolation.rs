//! Isolation between endpoints: 1,000 messages to an endpoint that hangs until the delivery timeout must not
//! add more than 100 ms to the p99 publish→receipt latency of a healthy endpoint in another app.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Receiver, TestServer, wait_for};
use serde_json::json;

/// Messages per measurement of the healthy endpoint, published one every `PUBLISH_EVERY`.
const SAMPLES: usize = 200;
const PUBLISH_EVERY: Duration = Duration::from_millis(25);
/// Backlog of the hanging endpoint.
const HANGING_MESSAGES: usize = 1_000;
/// The server gives up on a request after this long; the hanging receiver answers only after `HANG`.
const DELIVERY_TIMEOUT_SECS: u64 = 2;
const HANG: Duration = Duration::from_secs(5);
/// How much the hanging endpoint may add to the healthy endpoint's p99 (from the issue).
const BUDGET: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_adds_at_most_100ms_to_a_healthy_endpoints_p99() {
    let server = TestServer::start_with(|args| {
        args.delivery_timeout_secs = Some(DELIVERY_TIMEOUT_SECS);
        args.retry_schedule = Some("1,1,1,1,1".into());
        // With the default threshold the breaker would pause the hanging endpoint after 10 timeouts and its
        // backlog would sit quietly in the store: the lanes, not the breaker, must provide the isolation.
        args.breaker_threshold = Some(100_000);
    })
    .await;
    let hanging = Receiver::start(Arc::new(|_| (StatusCode::OK, HANG))).await;
    let healthy = Receiver::ok().await;
    let slow_app = server.create_app("Hanging").await;
    let fast_app = server.create_app("Healthy").await;
    server.create_endpoint(&slow_app, &hanging.url(), json!({})).await;
    server.create_endpoint(&fast_app, &healthy.url(), json!({})).await;

    // Warm up connections and caches so the baseline is not charged with first-request costs.
    for n in 0..10 {
        server.publish(&fast_app, "warmup", json!({ "n": n })).await;
    }
    healthy.wait_for(10, Duration::from_secs(10)).await;

    let baseline = measure(&server, &fast_app, &healthy).await;

    let mut publishers = Vec::new();
    let server = Arc::new(server);
    for worker in 0..4 {
        let (server, app) = (server.clone(), slow_app.clone());
        publishers.push(tokio::spawn(async move {
            for n in 0..HANGING_MESSAGES / 4 {
                server.publish(&app, "slow", json!({ "worker": worker, "n": n })).await;
            }
        }));
    }
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    // The hanging endpoint has its concurrency limit of requests in flight before the measurement starts.
    wait_for("requests hanging at the slow endpoint", Duration::from_secs(10), async || {
        (hanging.count() >= 10).then_some(())
    })
    .await;
    let hanging_before = hanging.count();
    let loaded = measure(&server, &fast_app, &healthy).await;
    let hanging_during = hanging.count() - hanging_before;

    println!("healthy endpoint alone:                      {baseline}");
    println!("healthy endpoint, {HANGING_MESSAGES} messages hanging elsewhere: {loaded}");
    println!("requests that reached the hanging endpoint during the measurement: {hanging_during}");
    let (baseline, loaded) = (baseline.p99, loaded.p99);
    // The load was real: the hanging endpoint was being tried, timing out, all through the measurement
    // (at most 10 in flight, each taking the 2 s timeout, so about 5 per second).
    assert!(hanging_during >= 10, "only {hanging_during} requests reached the hanging endpoint while measuring");
    assert!(
        loaded <= baseline + BUDGET,
        "a hanging endpoint added {} ms to the healthy endpoint's p99 (baseline {} ms, loaded {} ms)",
        loaded.saturating_sub(baseline).as_millis(),
        baseline.as_millis(),
        loaded.as_millis()
    );
}

/// Publishes `SAMPLES` messages to `app` at a steady rate and returns their publish→receipt latencies at
/// `receiver` (from just before the publish request to the first arrival).
async fn measure(server: &TestServer, app: &str, receiver: &Receiver) -> Latency {
    let mut published: HashMap<String, Instant> = HashMap::new();
    let mut ticks = tokio::time::interval(PUBLISH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..SAMPLES {
        ticks.tick().await;
        let at = Instant::now();
        let id = server.publish(app, "measured", json!({ "n": n })).await;
        published.insert(id, at);
    }
    let latencies = wait_for("every measured message at the healthy endpoint", Duration::from_secs(20), async || {
        let mut arrivals: HashMap<String, Instant> = HashMap::new();
        for request in receiver.all().into_iter().filter(|r| published.contains_key(r.header("webhook-id"))) {
            let first = arrivals.entry(request.header("webhook-id").to_owned()).or_insert(request.at);
            *first = (*first).min(request.at);
        }
        (arrivals.len() == published.len())
            .then(|| arrivals.iter().map(|(id, at)| at.duration_since(published[id])).collect::<Vec<_>>())
    })
    .await;
    Latency::of(latencies)
}

/// Latency percentiles of one measurement.
#[derive(Clone, Copy, Debug)]
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        let at = |percent: usize| latencies[(latencies.len() * percent).div_ceil(100).saturating_sub(1)];
        Self { p50: at(50), p99: at(99), max: at(100) }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {} ms, p99 {} ms, max {} ms", self.p50.as_millis(), self.p99.as_millis(), self.max.as_millis())
    }
}
