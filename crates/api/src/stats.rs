//! The operators' statistics (admin only): `GET /api/v1/stats/`, what the server did in the last 24 hours —
//! messages, deliveries by status, attempts with their failure rate and duration percentiles, the endpoints
//! failing most and those whose circuit breaker is open — and `GET /api/v1/stats/activity`, messages and attempts
//! per minute, hour or day over a range, for the dashboard's charts.
//!
//! The summary scans the window's attempts; the series never does: it sums the store's per-minute counters, so a
//! 30-day chart costs the same whatever the traffic was.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_store::{ActivityBucket, ActivityStats, DeliveryCounts, EndpointFailures, PausedEndpoint};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::openapi::AdminErrors;
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

/// The window the statistics cover.
const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// How many of the most failing endpoints are listed.
const TOP_FAILING: usize = 10;

/// How many endpoints with an open circuit breaker are listed (the soonest to close first).
const PAUSED_SHOWN: usize = 50;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The longest range a series may cover: as long as the store keeps its counters.
const MAX_RANGE_MS: i64 = hookrelay_store::ACTIVITY_KEPT_MS;

/// The most buckets a series may have (what a chart can draw; far below what the store would allow).
const MAX_BUCKETS: i64 = 2_000;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/stats", get(stats)).route_both("/api/v1/stats/activity", get(activity))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StatsOut)]
struct StatsOut {
    since: Rfc3339,
    until: Rfc3339,
    /// Messages created in the window.
    messages: u64,
    /// The deliveries of those messages, by where they stand now.
    deliveries: DeliveriesOut,
    /// Attempts made in the window.
    attempts: AttemptsOut,
    /// Failed attempts ÷ attempts in the window (0 without attempts).
    failure_rate: f64,
    attempt_duration_ms: PercentilesOut,
    failing_endpoints: Vec<FailingEndpointOut>,
    /// Endpoints whose circuit breaker is open now (their deliveries wait until `pausedUntil`), the soonest to
    /// close first; at most 50.
    paused_endpoints: Vec<PausedEndpointOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StatsDeliveriesOut)]
struct DeliveriesOut {
    success: u64,
    pending: u64,
    sending: u64,
    fail: u64,
}

impl From<DeliveryCounts> for DeliveriesOut {
    fn from(counts: DeliveryCounts) -> Self {
        Self { success: counts.success, pending: counts.pending, sending: counts.sending, fail: counts.fail }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StatsAttemptsOut)]
struct AttemptsOut {
    total: u64,
    success: u64,
    fail: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StatsPercentilesOut)]
struct PercentilesOut {
    p50: Option<i64>,
    p99: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FailingEndpointOut)]
struct FailingEndpointOut {
    app_id: String,
    endpoint_id: String,
    /// Failed attempts in the window.
    failures: u64,
}

impl From<EndpointFailures> for FailingEndpointOut {
    fn from(endpoint: EndpointFailures) -> Self {
        Self {
            app_id: endpoint.app_id.into_string(),
            endpoint_id: endpoint.endpoint_id.into_string(),
            failures: endpoint.failures,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PausedEndpointOut)]
struct PausedEndpointOut {
    app_id: String,
    endpoint_id: String,
    /// When the pause ends and the endpoint's deliveries are sent again.
    paused_until: Rfc3339,
}

impl From<PausedEndpoint> for PausedEndpointOut {
    fn from(endpoint: PausedEndpoint) -> Self {
        Self {
            app_id: endpoint.app_id.into_string(),
            endpoint_id: endpoint.endpoint_id.into_string(),
            paused_until: Rfc3339(endpoint.paused_until),
        }
    }
}

fn stats_out(stats: ActivityStats, paused: Vec<PausedEndpoint>, since: i64, until: i64) -> StatsOut {
    let total = stats.attempts.success + stats.attempts.fail;
    StatsOut {
        since: Rfc3339(since),
        until: Rfc3339(until),
        messages: stats.messages,
        deliveries: stats.deliveries.into(),
        attempts: AttemptsOut { total, success: stats.attempts.success, fail: stats.attempts.fail },
        failure_rate: if total == 0 { 0.0 } else { stats.attempts.fail as f64 / total as f64 },
        attempt_duration_ms: PercentilesOut { p50: stats.attempt_duration_p50_ms, p99: stats.attempt_duration_p99_ms },
        failing_endpoints: stats.failing_endpoints.into_iter().map(Into::into).collect(),
        paused_endpoints: paused.into_iter().map(Into::into).collect(),
    }
}

/// The last 24 hours: messages, deliveries by status, attempts and their durations, the most failing endpoints;
/// and the endpoints whose circuit breaker is open now.
#[utoipa::path(
    get,
    path = "/api/v1/stats/",
    operation_id = "v1.stats.get",
    tag = "Statistics",
    responses((status = 200, description = "What the server did in the last 24 hours.", body = StatsOut), AdminErrors),
)]
async fn stats(State(state): State<ApiState>) -> Result<Json<StatsOut>, ApiError> {
    let until = now_ms();
    let since = until - WINDOW_MS;
    let stats = state.store.operations.activity_stats(since, TOP_FAILING).await?;
    let paused = state.store.operations.paused_endpoints(until, PAUSED_SHOWN).await?;
    Ok(Json(stats_out(stats, paused, since, until)))
}

/// How long each bucket of a series is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn millis(self) -> i64 {
        match self {
            Self::Minute => MINUTE_MS,
            Self::Hour => HOUR_MS,
            Self::Day => DAY_MS,
        }
    }

    /// The default for a range: the finest whose buckets stay at most about 200, enough points for a chart
    /// without drawing thousands (up to 3 hours by the minute, 8 days by the hour, then by the day).
    fn for_range(range_ms: i64) -> Self {
        if range_ms <= 3 * HOUR_MS {
            Self::Minute
        } else if range_ms <= 8 * DAY_MS {
            Self::Hour
        } else {
            Self::Day
        }
    }
}

/// The query of `GET /api/v1/stats/activity`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// The start of the range (RFC 3339; default: 24 hours before `until`). The range may be at most 90 days.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// The end of the range, exclusive (RFC 3339; default: now).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The length of each bucket (default: `minute` up to 3 hours, `hour` up to 8 days, else `day`). At most 2,000
    /// buckets.
    #[param(inline)]
    pub bucket: Option<Bucket>,
}

/// A checked series request: the range as asked, and the bucket length.
#[derive(Debug, PartialEq, Eq)]
struct SeriesRequest {
    since: UnixMillis,
    until: UnixMillis,
    bucket: Bucket,
}

impl SeriesRequest {
    /// Reads and checks the query, each refusal a 422 naming its parameter.
    fn from_query(query: &QueryParams, now: UnixMillis) -> Result<Self, ApiError> {
        let until = query.time("until")?.unwrap_or(now);
        let since = query.time("since")?.unwrap_or(until - WINDOW_MS);
        if since > until {
            return Err(ApiError::query("since", "must not be after `until`"));
        }
        if until - since > MAX_RANGE_MS {
            return Err(ApiError::query(
                "since",
                format!("the range may be at most {} days (counts are kept that long)", MAX_RANGE_MS / DAY_MS),
            ));
        }
        let bucket = match query.get("bucket") {
            None => Bucket::for_range(until - since),
            Some(text) => Bucket::parse(text)
                .ok_or_else(|| ApiError::query("bucket", format!("must be `minute`, `hour` or `day`, not `{text}`")))?,
        };
        let request = Self { since, until, bucket };
        let buckets = request.aligned_range().len();
        if buckets > MAX_BUCKETS {
            return Err(ApiError::query(
                "bucket",
                format!(
                    "`{}` buckets over this range would be {buckets}, more than {MAX_BUCKETS}: choose longer buckets \
                     or a shorter range",
                    bucket.name()
                ),
            ));
        }
        Ok(request)
    }

    /// The whole buckets that cover `[since, until)`, as the store aligns them (to multiples of the bucket
    /// length since the epoch): the range the answer reports.
    fn aligned_range(&self) -> AlignedRange {
        let length = self.bucket.millis();
        let start = self.since.div_euclid(length) * length;
        let end = if self.since == self.until { start } else { (self.until - 1).div_euclid(length) * length + length };
        AlignedRange { start, end, length }
    }
}

struct AlignedRange {
    start: UnixMillis,
    end: UnixMillis,
    length: i64,
}

impl AlignedRange {
    fn len(&self) -> i64 {
        (self.end - self.start) / self.length
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ActivityOut)]
struct ActivityOut {
    /// The start of the first bucket: `since` rounded down to a whole bucket.
    since: Rfc3339,
    /// The end of the last bucket: `until` rounded up to a whole bucket.
    until: Rfc3339,
    /// The length of each bucket: 60, 3600 or 86400.
    bucket_seconds: i64,
    /// Every bucket of the range in order, empty ones included.
    data: Vec<ActivityBucketOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ActivityBucketOut)]
struct ActivityBucketOut {
    start: Rfc3339,
    /// Messages stored in the bucket (a duplicate publish is not counted).
    messages: u64,
    /// Delivery attempts made in the bucket.
    attempts: AttemptsOut,
}

impl From<ActivityBucket> for ActivityBucketOut {
    fn from(bucket: ActivityBucket) -> Self {
        let (success, fail) = (bucket.attempts.success, bucket.attempts.fail);
        Self {
            start: Rfc3339(bucket.start),
            messages: bucket.messages,
            attempts: AttemptsOut { total: success + fail, success, fail },
        }
    }
}

/// Messages and delivery attempts per minute, hour or day over a range of up to 90 days, every bucket included
/// (zeros where nothing happened). Read from per-minute counters, not from the messages and attempts: its cost
/// follows the range, not the traffic.
#[utoipa::path(
    get,
    path = "/api/v1/stats/activity/",
    operation_id = "v1.stats.get-activity",
    tag = "Statistics",
    params(ActivityParams),
    responses(
        (status = 200, description = "Messages and attempts per bucket of the range.", body = ActivityOut),
        AdminErrors,
    ),
)]
async fn activity(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ActivityOut>, ApiError> {
    let request = SeriesRequest::from_query(&query, now_ms())?;
    let range = request.aligned_range();
    let buckets = state.store.operations.activity_series(request.since, request.until, range.length).await?;
    Ok(Json(ActivityOut {
        since: Rfc3339(range.start),
        until: Rfc3339(range.end),
        bucket_seconds: range.length / 1000,
        data: buckets.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use hookrelay_store::AttemptCounts;

    use super::*;

    #[test]
    fn the_failure_rate_is_failed_attempts_over_all_attempts() {
        let stats = |success, fail| ActivityStats { attempts: AttemptCounts { success, fail }, ..Default::default() };
        assert_eq!(stats_out(stats(3, 1), Vec::new(), 0, 1).failure_rate, 0.25);
        assert_eq!(stats_out(stats(0, 0), Vec::new(), 0, 1).failure_rate, 0.0);
        assert_eq!(stats_out(stats(0, 2), Vec::new(), 0, 1).attempts.total, 2);
    }

    fn at(text: &str) -> UnixMillis {
        crate::time::parse(text).expect("an RFC 3339 time")
    }

    /// "Now" for the series tests.
    const NOW: &str = "2026-05-10T12:34:56Z";

    fn series(query: &str) -> Result<SeriesRequest, ApiError> {
        let uri: axum::http::Uri = format!("/api/v1/stats/activity?{query}").parse().expect("a URI");
        SeriesRequest::from_query(&QueryParams::from_uri(&uri)?, at(NOW))
    }

    /// The query is read as `(since, until, bucket)`.
    fn check(query: &str, since: &str, until: &str, bucket: Bucket) {
        let expected = SeriesRequest { since: at(since), until: at(until), bucket };
        assert_eq!(series(query).expect(query), expected, "{query}");
    }

    /// The query is refused with a 422 naming `parameter`.
    fn refused(query: &str, parameter: &str) {
        match series(query) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].loc, ["query", parameter], "{query}: {errors:?}"),
            other => panic!("{query}: expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_series_defaults_to_the_last_day_and_a_bucket_giving_at_most_200() {
        check("", "2026-05-09T12:34:56Z", NOW, Bucket::Hour);
        check("since=2026-05-10T10:00:00Z", "2026-05-10T10:00:00Z", NOW, Bucket::Minute);
        check("since=2026-05-10T09:34:56Z", "2026-05-10T09:34:56Z", NOW, Bucket::Minute);
        check("since=2026-05-02T12:34:56Z", "2026-05-02T12:34:56Z", NOW, Bucket::Hour);
        check("since=2026-04-10T12:00:00Z", "2026-04-10T12:00:00Z", NOW, Bucket::Day);
        check("until=2026-05-01T00:00:00Z", "2026-04-30T00:00:00Z", "2026-05-01T00:00:00Z", Bucket::Hour);
        check("bucket=minute", "2026-05-09T12:34:56Z", NOW, Bucket::Minute);
        check("since=2026-02-09T12:34:56Z&bucket=day", "2026-02-09T12:34:56Z", NOW, Bucket::Day);
        for range in [3 * HOUR_MS, 8 * DAY_MS, MAX_RANGE_MS] {
            let buckets = SeriesRequest { since: at(NOW) - range, until: at(NOW), bucket: Bucket::for_range(range) };
            assert!(buckets.aligned_range().len() <= 200, "{range} ms: {}", buckets.aligned_range().len());
        }
    }

    #[test]
    fn a_bad_series_request_is_a_422_naming_the_parameter() {
        refused("bucket=week", "bucket");
        refused("bucket=Minute", "bucket");
        refused("since=yesterday", "since");
        refused("until=2026-05-10", "until");
        refused("since=2026-05-10T12:00:00Z&until=2026-05-10T11:00:00Z", "since");
        refused("since=2026-02-09T12:34:55Z", "since");
        // A day by the minute is 1,440 buckets; two days are too many.
        assert!(series("since=2026-05-09T12:34:56Z&bucket=minute").is_ok());
        refused("since=2026-05-08T12:34:56Z&bucket=minute", "bucket");
        refused("since=2026-02-09T12:34:56Z&bucket=hour", "bucket");
    }

    #[test]
    fn the_range_is_reported_as_whole_buckets() {
        let request = series("since=2026-05-10T09:30:00Z&until=2026-05-10T12:10:00Z&bucket=hour").expect("a request");
        let range = request.aligned_range();
        assert_eq!((range.start, range.end, range.len()), (at("2026-05-10T09:00:00Z"), at("2026-05-10T13:00:00Z"), 4));
        let exact = series("since=2026-05-09T00:00:00Z&until=2026-05-10T00:00:00Z&bucket=day").expect("a request");
        assert_eq!(exact.aligned_range().len(), 1);
        let empty = series("since=2026-05-10T09:30:00Z&until=2026-05-10T09:30:00Z&bucket=hour").expect("a request");
        assert_eq!(empty.aligned_range().len(), 0);
    }
}
