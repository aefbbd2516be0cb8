//! `GET /api/v1/stats/` (admin): what the server did in the last 24 hours, for operators: messages, deliveries
//! by status, attempts with their failure rate and duration percentiles, and the endpoints failing most.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use hookrelay_core::time::now_ms;
use hookrelay_store::{ActivityStats, DeliveryCounts, EndpointFailures};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::openapi::AdminErrors;
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

/// The window the statistics cover.
const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// How many of the most failing endpoints are listed.
const TOP_FAILING: usize = 10;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route_both("/api/v1/stats", get(stats))
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

fn stats_out(stats: ActivityStats, since: i64, until: i64) -> StatsOut {
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
    }
}

/// The last 24 hours: messages, deliveries by status, attempts and their durations, the most failing endpoints.
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
    Ok(Json(stats_out(stats, since, until)))
}

#[cfg(test)]
mod tests {
    use hookrelay_store::AttemptCounts;

    use super::*;

    #[test]
    fn the_failure_rate_is_failed_attempts_over_all_attempts() {
        let stats = |success, fail| ActivityStats { attempts: AttemptCounts { success, fail }, ..Default::default() };
        assert_eq!(stats_out(stats(3, 1), 0, 1).failure_rate, 0.25);
        assert_eq!(stats_out(stats(0, 0), 0, 1).failure_rate, 0.0);
        assert_eq!(stats_out(stats(0, 2), 0, 1).attempts.total, 2);
    }
}
