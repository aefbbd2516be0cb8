//! The dispatcher: it turns due deliveries in the store into signed HTTP requests and records what happened.
//!
//! The work is split by step, each in its own module:
//! - [`claim`]: the main loop; claims due deliveries in batches under a lease, sleeps until the next one is
//!   due or until new work is announced;
//! - [`breaker`]: per-endpoint circuit breakers that pause a failing endpoint and probe it;
//! - [`lanes`]: per-endpoint queues that bound how many requests one endpoint has in flight, so a slow
//!   endpoint only slows itself;
//! - [`attempt`]: one attempt from request to outcome (applying the retry decision of
//!   `hookrelay_core::retry`), and the operational events it causes;
//! - [`send`]: one signed POST (Standard Webhooks headers), with a timeout and a bounded response capture;
//! - [`record`]: writes attempts and next steps to the store in batches;
//! - [`egress`]: which addresses requests may reach (SSRF protection on the resolved address, https-only);
//! - [`liveness`]: with a database shared by several processes, a heartbeat that also takes back the leases of
//!   stopped processes, and the watch for work the others add.
//!
//! Beside the dispatcher, [`maintenance`] disables endpoints that keep failing and purges old payloads and
//! inbound events, and [`operational`] sends the operator events about endpoints and failing deliveries.

mod attempt;
mod breaker;
mod claim;
pub mod egress;
mod lanes;
mod liveness;
pub mod maintenance;
pub mod operational;
mod record;
mod send;

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::operational::EventSink;
use hookrelay_core::retry::RetrySchedule;
use hookrelay_metrics::Metrics;
use hookrelay_store::Queue;
use tokio::sync::Notify;

pub use claim::DispatcherHandle;

/// How the dispatcher behaves; the binary fills it from configuration.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    pub retry: RetrySchedule,
    /// Retry 4xx answers other than 408/409/425/429 (default); false stops at the first such answer.
    pub retry_client_errors: bool,
    /// Longest a single delivery request may take, connection and response body included.
    pub delivery_timeout: Duration,
    /// Allow endpoints on loopback, private and link-local addresses (local development and tests).
    pub allow_private_endpoints: bool,
    /// Private ranges deliveries may reach even when private endpoints are not allowed.
    pub whitelist_subnets: Vec<hookrelay_core::netpolicy::IpNet>,
    /// Refuse to deliver to `http://` URLs.
    pub https_only: bool,
    /// An `http://` or `https://` proxy every delivery goes through.
    pub egress_proxy: Option<String>,
    /// Most deliveries claimed and not yet recorded, across all endpoints.
    pub max_in_flight: usize,
    /// Most concurrent requests to one endpoint.
    pub endpoint_concurrency: usize,
    /// Most deliveries claimed per store round trip.
    pub claim_batch: usize,
    /// Consecutive failed attempts that pause an endpoint (circuit breaker).
    pub breaker_threshold: u32,
    /// The first pause of an endpoint whose breaker opened; it doubles after each failed probe.
    pub breaker_pause: Duration,
    /// Where attempts are counted and timed (shared with the API, which serves them on `/metrics`).
    pub metrics: Arc<Metrics>,
    /// Where endpoints' transformations run (shared with the API, which checks and simulates them).
    pub sandbox: Option<hookrelay_transform::Sandbox>,
    /// The `hookrelay listen` sessions `listen://` endpoints are delivered to, and the attempt feed `hookrelay tail`
    /// follows (shared with the API, which streams them).
    pub live: Arc<hookrelay_live::Live>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            retry: RetrySchedule::default(),
            retry_client_errors: true,
            delivery_timeout: Duration::from_secs(15),
            allow_private_endpoints: false,
            whitelist_subnets: Vec::new(),
            https_only: false,
            egress_proxy: None,
            max_in_flight: 1024,
            endpoint_concurrency: 10,
            claim_batch: 256,
            breaker_threshold: 10,
            breaker_pause: Duration::from_secs(30),
            metrics: Arc::default(),
            sandbox: None,
            live: Arc::default(),
        }
    }
}

/// Starts the dispatcher on the current tokio runtime. `new_work` is notified by the API whenever it stores
/// deliveries that are due now; operational events (failing, exhausted, recovered, endpoint disabled) go to
/// `events`.
pub fn start(
    queue: Arc<dyn Queue>,
    config: DispatcherConfig,
    new_work: Arc<Notify>,
    events: Arc<dyn EventSink>,
) -> Result<DispatcherHandle, EngineError> {
    claim::Dispatcher::start(queue, config, new_work, events)
}

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot build the HTTP client for deliveries: {0}")]
    HttpClient(String),
}
