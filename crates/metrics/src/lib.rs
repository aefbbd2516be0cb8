//! hookrelay's Prometheus metrics: one [`Metrics`] per server, shared (as an `Arc`) by the dispatcher, the
//! housekeeping task and the API, and rendered in the Prometheus text format by `GET /metrics`.
//!
//! It is its own crate so that the engine and the API can both record into it without depending on each
//! other (`core ← store ← engine`, `core ← store ← api`, and both `← metrics`). Recording is cheap enough for
//! the hot paths: a counter is an atomic add; a labelled one first finds its series under a read lock
//! (`prometheus-client`'s `Family`). Every label's cardinality is bounded: label values come from fixed sets
//! (statuses, reasons, HTTP methods, route templates), and the two that users name (event types, inbound
//! sources) are capped, further values being counted under `other`. No id of a message, endpoint or
//! attempt and no URL is ever a label value.
//!
//! Beside hookrelay's own metrics (all named `hookrelay_…`), a scrape carries the standard `process_…` metrics
//! of the process (Linux: read from `/proc` at each scrape, see `process.rs`).

#[cfg(target_os = "linux")]
mod process;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The label value that stands for every value past a label's cap.
pub const OTHER: &str = "other";

/// Distinct event types counted by name; later ones count as `other`.
pub const MAX_EVENT_TYPES: usize = 300;

/// Distinct inbound sources counted by name; later ones count as `other`.
pub const MAX_SOURCES: usize = 200;

/// Attempt durations, in seconds: from a fast local receiver to the longest timeouts.
const ATTEMPT_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0];

/// API request durations, in seconds.
const HTTP_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered 2xx.
    Success,
    /// The receiver answered, with anything but 2xx.
    Fail,
    /// No answer: connection refused or reset, timeout, TLS failure, a refused address.
    Unreachable,
}

impl AttemptResult {
    /// Every result, in declaration order (`result as usize` indexes it).
    const ALL: [Self; 3] = [Self::Success, Self::Fail, Self::Unreachable];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Why hookrelay disabled an endpoint by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableReason {
    /// The receiver answered 410 Gone.
    Gone,
    /// Every attempt failed for longer than the configured period.
    Failing,
}

impl DisableReason {
    fn label(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }
}

/// What became of a request to an inbound source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundResult {
    Verified,
    Rejected,
    Duplicate,
}

impl InboundResult {
    fn label(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventTypeLabels {
    event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InboundLabels {
    source: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// Builds the histograms of a family with the HTTP buckets.
#[derive(Clone)]
struct HttpHistogram;

impl MetricConstructor<Histogram> for HttpHistogram {
    fn new_metric(&self) -> Histogram {
        Histogram::new(HTTP_BUCKETS)
    }
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    /// The `process_…` metrics, which take no `hookrelay_` prefix.
    process: Registry,
    build_info: Family<BuildLabels, Gauge>,
    messages: CappedCounters<EventTypeLabels>,
    /// Per result (in `AttemptResult::ALL` order): the series of `hookrelay_delivery_attempts_total` and of
    /// `hookrelay_deliveries_total`, its old name kept for one release. Taken from their families once, so that
    /// counting an attempt is two atomic adds, not two label lookups.
    attempts: [(Counter, Counter); 3],
    attempts_in_flight: Gauge,
    open_breakers: Gauge,
    attempt_duration: Histogram,
    endpoints_disabled: Family<ReasonLabels, Counter>,
    leases_taken_over: Counter,
    inbound: CappedCounters<InboundLabels>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, HttpHistogram>,
    queue_depth: Gauge,
    queue_oldest_age: Gauge<f64, AtomicU64>,
    database_up: Gauge,
    store_writable: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let build_info = Family::default();
        registry.register(
            "build_info",
            "Always 1: the version and commit (`-dirty` when built with uncommitted changes) of the running binary",
            build_info.clone(),
        );
        let messages = CappedCounters::new(MAX_EVENT_TYPES);
        registry.register(
            "messages",
            format!(
                "Messages published (API and inbound), by event type (the first {MAX_EVENT_TYPES}; later ones as \
                 `other`)"
            ),
            messages.family.clone(),
        );
        let attempts: Family<ResultLabels, Counter> = Family::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by result: success (2xx), fail (any other answer), unreachable (no answer)",
            attempts.clone(),
        );
        let deprecated_attempts: Family<StatusLabels, Counter> = Family::default();
        registry.register(
            "deliveries",
            "Deprecated, to be removed in the next release: hookrelay_delivery_attempts_total{result} counts the same \
             delivery attempts",
            deprecated_attempts.clone(),
        );
        let attempts_in_flight = Gauge::default();
        registry.register(
            "delivery_attempts_in_flight",
            "Delivery attempts this process is making now (transformation and request)",
            attempts_in_flight.clone(),
        );
        let open_breakers = Gauge::default();
        registry.register(
            "circuit_breakers_open",
            "Endpoints this process's circuit breakers hold paused now (pause running, or its probe in flight)",
            open_breakers.clone(),
        );
        let attempt_duration = Histogram::new(ATTEMPT_BUCKETS);
        registry.register(
            "delivery_attempt_duration_seconds",
            "Time from sending a delivery request to its answer (or failure)",
            attempt_duration.clone(),
        );
        let endpoints_disabled = Family::default();
        registry.register(
            "endpoints_disabled",
            "Endpoints hookrelay disabled by itself: gone (the receiver answered 410) or failing (failed too long)",
            endpoints_disabled.clone(),
        );
        let leases_taken_over = Counter::default();
        registry.register(
            "leases_taken_over",
            "Deliveries this process took over from another lease holder: leased by a process that stopped \
             (taken back by the heartbeat) or whose lease ran out unrecorded (claimed again)",
            leases_taken_over.clone(),
        );
        // Three statuses per source.
        let inbound = CappedCounters::new(MAX_SOURCES * 3);
        registry.register(
            "inbound_events",
            format!(
                "Requests to inbound sources by source (uid, else id; the first {MAX_SOURCES}; later ones as `other`) \
                 and status: verified, rejected, duplicate"
            ),
            inbound.family.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "API requests by method, route template (`unmatched` for unknown paths) and status code",
            http_requests.clone(),
        );
        let http_duration = Family::new_with_constructor(HttpHistogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer API requests, by method and route template",
            http_duration.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Deliveries waiting (pending, retries scheduled later included) or being sent, read at scrape time",
            queue_depth.clone(),
        );
        let queue_oldest_age = Gauge::default();
        registry.register(
            "queue_oldest_age_seconds",
            "How long the most overdue delivery has been due and not sent (0 when the dispatcher keeps up)",
            queue_oldest_age.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the database answered the latest count of the queue, 0 when it did not (queue gauges are then \
             stale)",
            database_up.clone(),
        );
        let store_writable = Gauge::default();
        registry.register(
            "store_writable",
            "1 when the database takes writes, 0 while they fail (disk full, read-only): health answers 503 then",
            store_writable.clone(),
        );
        // Series with fixed labels start at 0, so that `rate()` and alerts see them before the first event.
        let attempts = AttemptResult::ALL.map(|result| {
            let new_name = attempts.get_or_create(&ResultLabels { result: result.label() }).clone();
            let old_name = deprecated_attempts.get_or_create(&StatusLabels { status: result.label() }).clone();
            (new_name, old_name)
        });
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut process = Registry::default();
        #[cfg(target_os = "linux")]
        process.register_collector(Box::new(process::ProcessCollector));
        for reason in [DisableReason::Gone, DisableReason::Failing] {
            drop(endpoints_disabled.get_or_create(&ReasonLabels { reason: reason.label() }));
        }
        Self {
            registry,
            process,
            build_info,
            messages,
            attempts,
            attempts_in_flight,
            open_breakers,
            attempt_duration,
            endpoints_disabled,
            leases_taken_over,
            inbound,
            http_requests,
            http_duration,
            queue_depth,
            queue_oldest_age,
            database_up,
            store_writable,
        }
    }

    /// Names the running binary in `hookrelay_build_info` (replacing what an earlier call named).
    pub fn set_build_info(&self, version: &str, commit: &str) {
        self.build_info.clear();
        self.build_info.get_or_create(&BuildLabels { version: version.to_owned(), commit: commit.to_owned() }).set(1);
    }

    /// A message was stored (published through the API or by an inbound source).
    pub fn message_published(&self, event_type: &str) {
        let labels = EventTypeLabels { event_type: event_type.to_owned() };
        self.messages.inc(labels, |_| EventTypeLabels { event_type: OTHER.to_owned() });
    }

    /// A delivery attempt ended after `duration`.
    pub fn attempt_finished(&self, result: AttemptResult, duration: Duration) {
        let (new_name, old_name) = &self.attempts[result as usize];
        new_name.inc();
        old_name.inc();
        self.attempt_duration.observe(duration.as_secs_f64());
    }

    /// A delivery attempt starts: it counts as in flight until the returned guard is dropped (when the attempt
    /// ends, or its task is cancelled).
    pub fn attempt_started(&self) -> AttemptInFlight {
        self.attempts_in_flight.inc();
        AttemptInFlight(self.attempts_in_flight.clone())
    }

    /// How many endpoints this process's circuit breakers hold paused now.
    pub fn set_open_breakers(&self, count: usize) {
        self.open_breakers.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// hookrelay disabled an endpoint.
    pub fn endpoint_disabled(&self, reason: DisableReason) {
        self.endpoints_disabled.get_or_create(&ReasonLabels { reason: reason.label() }).inc();
    }

    /// `count` deliveries whose lease another holder lost were taken over.
    pub fn leases_taken_over(&self, count: usize) {
        self.leases_taken_over.inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// A request reached the inbound source named `source` (its uid, or its id).
    pub fn inbound_request(&self, source: &str, result: InboundResult) {
        let labels = InboundLabels { source: source.to_owned(), status: result.label() };
        self.inbound.inc(labels, |labels| InboundLabels { source: OTHER.to_owned(), status: labels.status });
    }

    /// The API answered a request. `route` is the matched route template (`None` when no route matched); a
    /// trailing slash is dropped so both spellings of a path count as one route.
    pub fn http_request(&self, method: &str, route: Option<&str>, status: u16, duration: Duration) {
        let method = known_method(method);
        let route =
            route.map_or("unmatched", |route| route.strip_suffix('/').filter(|r| !r.is_empty()).unwrap_or(route));
        self.http_requests.get_or_create(&HttpLabels { method, route: route.to_owned(), status }).inc();
        self.http_duration
            .get_or_create(&RouteLabels { method, route: route.to_owned() })
            .observe(duration.as_secs_f64());
    }

    /// What the scrape read from the store: open deliveries and the age of the most overdue one.
    pub fn set_queue(&self, depth: u64, oldest_age: Duration) {
        self.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.queue_oldest_age.set(oldest_age.as_secs_f64());
        self.database_up.set(1);
    }

    /// The scrape could not read the queue: the queue gauges keep their last values.
    pub fn set_database_down(&self) {
        self.database_up.set(0);
    }

    /// Whether the database takes writes, as the store last found.
    pub fn set_store_writable(&self, writable: bool) {
        self.store_writable.set(i64::from(writable));
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &self.process);
        out
    }
}

/// One delivery attempt in flight (see [`Metrics::attempt_started`]).
#[must_use = "the attempt counts as in flight only while the guard lives"]
pub struct AttemptInFlight(Gauge);

impl Drop for AttemptInFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A counter family whose number of series is capped: once `cap` label sets have been admitted, counts for
/// a label set not seen before go to the series `overflow` names.
struct CappedCounters<S> {
    family: Family<S, Counter>,
    admitted: AtomicUsize,
    cap: usize,
}

impl<S: Clone + std::hash::Hash + Eq> CappedCounters<S> {
    fn new(cap: usize) -> Self {
        Self { family: Family::default(), admitted: AtomicUsize::new(0), cap }
    }

    fn inc(&self, labels: S, overflow: impl FnOnce(&S) -> S) {
        // The common case, a series that exists, takes the family's read lock once.
        if let Some(counter) = self.family.get(&labels) {
            counter.inc();
            return;
        }
        // Two threads racing to add the same new series both use up a slot: the cap may be reached early by
        // a few series, never passed.
        let labels = if self.admitted.fetch_add(1, Ordering::Relaxed) < self.cap { labels } else { overflow(&labels) };
        self.family.get_or_create(&labels).inc();
    }
}

/// HTTP methods as label values: the ones the API routes, everything else as `other`.
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one sample line that starts with `series` (name and labels), if any.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_histograms_and_gauges_render_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.message_published("invoice.paid");
        metrics.message_published("invoice.paid");
        metrics.attempt_finished(AttemptResult::Success, Duration::from_millis(20));
        metrics.attempt_finished(AttemptResult::Fail, Duration::from_millis(200));
        metrics.attempt_finished(AttemptResult::Unreachable, Duration::from_secs(3));
        metrics.endpoint_disabled(DisableReason::Gone);
        metrics.inbound_request("stripe-live", InboundResult::Rejected);
        metrics.http_request("GET", Some("/api/v1/app/{app_id}/msg/"), 200, Duration::from_millis(3));
        metrics.http_request("GET", Some("/api/v1/app/{app_id}/msg"), 200, Duration::from_millis(3));
        metrics.http_request("BREW", None, 404, Duration::from_millis(1));
        metrics.set_queue(7, Duration::from_millis(2500));
        let text = metrics.render();

        assert!(text.contains("# TYPE hookrelay_messages_total counter"), "{text}");
        assert_eq!(sample(&text, r#"hookrelay_messages_total{event_type="invoice.paid"}"#), Some(2.0));
        assert!(text.contains("# TYPE hookrelay_delivery_attempts_total counter"), "{text}");
        for result in ["success", "fail", "unreachable"] {
            assert_eq!(sample(&text, &format!(r#"hookrelay_delivery_attempts_total{{result="{result}"}}"#)), Some(1.0));
            // The deprecated name counts the same attempts.
            assert_eq!(sample(&text, &format!(r#"hookrelay_deliveries_total{{status="{result}"}}"#)), Some(1.0));
        }
        assert_eq!(sample(&text, "hookrelay_delivery_attempt_duration_seconds_count"), Some(3.0));
        assert_eq!(sample(&text, r#"hookrelay_delivery_attempt_duration_seconds_bucket{le="0.025"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"hookrelay_delivery_attempt_duration_seconds_bucket{le="0.25"}"#), Some(2.0));
        assert_eq!(sample(&text, r#"hookrelay_delivery_attempt_duration_seconds_bucket{le="+Inf"}"#), Some(3.0));
        assert_eq!(sample(&text, r#"hookrelay_endpoints_disabled_total{reason="gone"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"hookrelay_endpoints_disabled_total{reason="failing"}"#), Some(0.0));
        assert_eq!(
            sample(&text, r#"hookrelay_inbound_events_total{source="stripe-live",status="rejected"}"#),
            Some(1.0)
        );
        // Both spellings of a route are one series; an unknown method and path fold into fixed values.
        assert_eq!(
            sample(
                &text,
                r#"hookrelay_http_requests_total{method="GET",route="/api/v1/app/{app_id}/msg",status="200"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"hookrelay_http_requests_total{method="other",route="unmatched",status="404"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"hookrelay_http_request_duration_seconds_count{method="GET",route="/api/v1/app/{app_id}/msg"}"#
            ),
            Some(2.0)
        );
        assert_eq!(sample(&text, "hookrelay_queue_depth"), Some(7.0));
        assert_eq!(sample(&text, "hookrelay_queue_oldest_age_seconds"), Some(2.5));
        assert_eq!(sample(&text, "hookrelay_database_up"), Some(1.0));
        metrics.set_database_down();
        assert_eq!(sample(&metrics.render(), "hookrelay_database_up"), Some(0.0));
    }

    #[test]
    fn build_info_in_flight_attempts_and_open_breakers_are_gauges() {
        let metrics = Metrics::new();
        let text = metrics.render();
        assert!(!text.contains("hookrelay_build_info{"), "no build named yet: {text}");
        assert_eq!(sample(&text, "hookrelay_delivery_attempts_in_flight"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "hookrelay_circuit_breakers_open"), Some(0.0), "{text}");
        // Every result is exported before the first attempt, so `rate()` sees the series from the start.
        assert_eq!(sample(&text, r#"hookrelay_delivery_attempts_total{result="unreachable"}"#), Some(0.0), "{text}");

        metrics.set_build_info("0.0.1", "0123456789ab");
        metrics.set_build_info("1.2.3", "abcdef012345-dirty");
        let first = metrics.attempt_started();
        let second = metrics.attempt_started();
        metrics.set_open_breakers(4);
        let text = metrics.render();
        assert!(text.contains("# TYPE hookrelay_build_info gauge"), "{text}");
        assert_eq!(
            sample(&text, r#"hookrelay_build_info{version="1.2.3",commit="abcdef012345-dirty"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(text.matches("hookrelay_build_info{").count(), 1, "only the build named last: {text}");
        assert!(text.contains("# TYPE hookrelay_delivery_attempts_in_flight gauge"), "{text}");
        assert_eq!(sample(&text, "hookrelay_delivery_attempts_in_flight"), Some(2.0), "{text}");
        assert_eq!(sample(&text, "hookrelay_circuit_breakers_open"), Some(4.0), "{text}");

        drop(first);
        metrics.set_open_breakers(0);
        let text = metrics.render();
        assert_eq!(sample(&text, "hookrelay_delivery_attempts_in_flight"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "hookrelay_circuit_breakers_open"), Some(0.0), "{text}");
        drop(second);
        assert_eq!(sample(&metrics.render(), "hookrelay_delivery_attempts_in_flight"), Some(0.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_carry_the_standard_names_without_the_prefix() {
        let text = Metrics::new().render();
        for (name, kind) in [
            ("process_cpu_seconds_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_open_fds", "gauge"),
            ("process_max_fds", "gauge"),
            ("process_start_time_seconds", "gauge"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name} {kind}:\n{text}");
            assert!(sample(&text, name).is_some_and(|value| value >= 0.0), "{name}:\n{text}");
        }
        assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|rss| rss > 1e6), "{text}");
        assert!(!text.contains("hookrelay_process_"), "{text}");
    }

    #[test]
    fn user_named_labels_are_capped() {
        let metrics = Metrics::new();
        for n in 0..MAX_EVENT_TYPES + 50 {
            metrics.message_published(&format!("type.{n}"));
        }
        // A type seen before the cap keeps its own series.
        metrics.message_published("type.0");
        for n in 0..MAX_SOURCES + 10 {
            for result in [InboundResult::Verified, InboundResult::Rejected, InboundResult::Duplicate] {
                metrics.inbound_request(&format!("src-{n}"), result);
            }
        }
        let text = metrics.render();
        let series = |name: &str| text.lines().filter(|line| line.starts_with(name)).count();
        assert_eq!(series("hookrelay_messages_total{"), MAX_EVENT_TYPES + 1);
        assert_eq!(sample(&text, r#"hookrelay_messages_total{event_type="other"}"#), Some(50.0));
        assert_eq!(sample(&text, r#"hookrelay_messages_total{event_type="type.0"}"#), Some(2.0));
        assert_eq!(series("hookrelay_inbound_events_total{"), (MAX_SOURCES + 1) * 3);
        assert_eq!(sample(&text, r#"hookrelay_inbound_events_total{source="other",status="verified"}"#), Some(10.0));
    }
}
