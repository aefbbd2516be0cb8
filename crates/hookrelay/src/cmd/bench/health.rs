//! What health checks and metrics scrapes cost with a large backlog (S5): timed while the backlog is being
//! queued (one health check and one scrape at a time, a short pause between) and once it is queued (back to back).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use super::hist::Histogram;

/// Pause between two rounds of the poller that runs while the backlog is queued.
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// Latencies of health checks and scrapes, in microseconds.
#[derive(Default)]
pub struct Timings {
    health: Histogram,
    scrape: Histogram,
    calls: u64,
    errors: u64,
    /// The queue depth the last health check reported.
    depth: Option<u64>,
}

impl Timings {
    async fn round(&mut self, client: &reqwest::Client, base: &str) {
        let started = Instant::now();
        match client.get(format!("{base}/api/v1/health/")).send().await {
            Ok(response) if response.status().is_success() => {
                let body: Option<serde_json::Value> = response.json().await.ok();
                self.health.record(started.elapsed().as_micros() as u64);
                self.depth = body.and_then(|body| body["queue"]["depth"].as_u64()).or(self.depth);
            }
            _ => self.errors += 1,
        }
        let started = Instant::now();
        match client.get(format!("{base}/metrics")).send().await {
            Ok(response) if response.status().is_success() => match response.text().await {
                Ok(_) => self.scrape.record(started.elapsed().as_micros() as u64),
                Err(_) => self.errors += 1,
            },
            _ => self.errors += 1,
        }
        self.calls += 1;
    }

    pub fn figures(&self) -> Option<HealthFigures> {
        let ms = |histogram: &Histogram, q: f64| histogram.quantile(q).map(|us| us as f64 / 1000.0);
        (self.calls > 0).then(|| HealthFigures {
            calls: self.calls,
            errors: self.errors,
            queue_depth: self.depth,
            health_p50_ms: ms(&self.health, 0.5),
            health_p99_ms: ms(&self.health, 0.99),
            health_max_ms: ms(&self.health, 1.0),
            scrape_p50_ms: ms(&self.scrape, 0.5),
            scrape_p99_ms: ms(&self.scrape, 0.99),
            scrape_max_ms: ms(&self.scrape, 1.0),
        })
    }
}

/// Health and scrape latency over one phase of a scenario.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct HealthFigures {
    /// Health checks made, and as many scrapes.
    pub calls: u64,
    /// Calls that failed or did not answer 2xx (not in the latencies).
    pub errors: u64,
    /// The queue depth the last health check reported.
    pub queue_depth: Option<u64>,
    pub health_p50_ms: Option<f64>,
    pub health_p99_ms: Option<f64>,
    pub health_max_ms: Option<f64>,
    pub scrape_p50_ms: Option<f64>,
    pub scrape_p99_ms: Option<f64>,
    pub scrape_max_ms: Option<f64>,
}

impl HealthFigures {
    /// One line: the depth health reported, the calls, and the latencies in ms.
    pub fn summary(&self) -> String {
        let opt = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        format!(
            "queue depth {}, {} calls, {} errors; health p50 {} p99 {} max {} ms; /metrics p50 {} p99 {} max {} ms",
            self.queue_depth.map_or_else(|| "-".to_owned(), |depth| depth.to_string()),
            self.calls,
            self.errors,
            opt(self.health_p50_ms),
            opt(self.health_p99_ms),
            opt(self.health_max_ms),
            opt(self.scrape_p50_ms),
            opt(self.scrape_p99_ms),
            opt(self.scrape_max_ms),
        )
    }
}

/// A poller running until [`Poller::finish`].
pub struct Poller {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Timings>,
}

impl Poller {
    /// Starts polling `base`: a health check, a scrape, a pause, until finished.
    pub fn start(client: &reqwest::Client, base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, base, stopping) = (client.clone(), base.to_owned(), stop.clone());
        let task = tokio::spawn(async move {
            let mut timings = Timings::default();
            while !stopping.load(Ordering::Relaxed) {
                timings.round(&client, &base).await;
                tokio::time::sleep(POLL_PAUSE).await;
            }
            timings
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> Timings {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// `calls` rounds of a health check and a scrape, back to back.
pub async fn time_calls(client: &reqwest::Client, base: &str, calls: u64) -> Timings {
    let mut timings = Timings::default();
    for _ in 0..calls {
        timings.round(client, base).await;
    }
    timings
}
