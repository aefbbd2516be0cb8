//! hookrelay's HTTP API: the Svix-compatible v1 routes (applications, event types, endpoints, messages,
//! attempts, recover/replay background tasks), inbound sources with their public `/ingest/…` route, health
//! checks, operators' statistics and Prometheus metrics, as one axum [`Router`] built by [`router`].
//!
//! Requests flow through: the [`access_log`] (request id, `request` span, one access line), the request
//! [`metrics`], the body-size limit, then (except health, metrics and ingest) [`auth`] (which token, which
//! routes it may call, its rate limit), then
//! [`idempotency`] for POSTs carrying an `idempotency-key`, then one handler module per resource. Handlers
//! parse input with the extractors in [`extract`] (every bad input is a Svix-shaped 422), convert wire types
//! (camelCase, defined only in this crate) to the `hookrelay_core` model, and call the [`Store`]. Every
//! failure is an [`error::ApiError`], which decides the status and body. Recover and replay-missing run after
//! the response, as background tasks of the [`task_runner`]. [`openapi`] describes every route (served at
//! `/api/v1/openapi.json`).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::MethodRouter;
use hookrelay_store::Store;

pub mod access_log;
pub mod app;
pub mod app_cache;
pub mod attempt;
pub mod attempt_stream;
pub mod auth;
pub mod background_task;
pub mod endpoint;
pub mod error;
pub mod event_stream;
pub mod event_type;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod listen;
pub mod message;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod patch;
pub mod queue_snapshot;
pub mod rate_limit;
pub mod rejections;
pub mod send_example;
pub mod source;
pub mod stats;
pub mod task_runner;
pub mod time;
pub mod token;
pub mod transformation;
pub mod ttl_cache;
pub mod ui;
pub mod validate;

pub use error::ApiError;
pub use task_runner::TaskRunner;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    /// The bootstrap admin token clients present as `Authorization: Bearer <token>` (named admin tokens and
    /// application tokens are in the database).
    pub admin_token: String,
    /// Per-token rate limit and the app portal URL.
    pub auth: auth::AuthSettings,
    /// Woken after a publish that created deliveries and after a resend, so the dispatcher starts at once.
    pub on_new_work: Arc<tokio::sync::Notify>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest body accepted on `/ingest/…`; larger ones get 413 and are counted as rejected.
    pub ingest_max_body_bytes: usize,
    /// Rejected ingest requests counted but not yet written, and sources' rate-limit buckets. Whoever builds the
    /// state runs `ingest.rejections.spawn_flusher()` and stops it after the last request.
    pub ingest: Arc<ingest::IngestState>,
    /// Refuse endpoint URLs that are not `https://` (422).
    pub https_only: bool,
    /// Most endpoints one application may have; creating one more is a 422.
    pub max_endpoints_per_app: usize,
    /// Which addresses deliveries may reach: endpoint URLs whose host is an IP address it refuses get a 422
    /// (names are judged by the dispatcher, on the addresses they resolve to).
    pub address_policy: Arc<hookrelay_core::netpolicy::AddressPolicy>,
    /// Runs recover and replay-missing tasks after their 202.
    pub tasks: TaskRunner,
    /// Where endpoint events (created, updated, disabled, deleted) go: the operational webhook, if configured.
    pub events: Arc<dyn hookrelay_core::operational::EventSink>,
    /// Called when a user changed an endpoint or started recovering it, so the dispatcher gives it a fresh
    /// chance (its circuit breaker closes) instead of waiting for the next probe.
    pub on_endpoint_changed: Arc<dyn Fn(&hookrelay_core::EndpointId) + Send + Sync>,
    /// Application ids by the reference publishers use, for a second (see [`app_cache`]).
    pub app_ids: Arc<app_cache::AppIds>,
    /// Counters and histograms, shared with the dispatcher; served on `/metrics`.
    pub metrics: Arc<hookrelay_metrics::Metrics>,
    /// The bearer token `/metrics` requires, if any (`HOOKRELAY_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// The delivery queue's figures for health and metrics, counted at most every few seconds for all callers.
    pub queue: Arc<queue_snapshot::QueueSnapshot>,
    /// Where transformations are checked and simulated (the dispatcher runs them in the same one).
    pub sandbox: hookrelay_transform::Sandbox,
    /// The browser UI's title, colour, logo and who may frame the portal.
    pub ui: Arc<ui::UiSettings>,
    /// `hookrelay listen` sessions and the attempt feed (shared with the dispatcher), streamed by [`listen`] and
    /// [`attempt_stream`].
    pub live: Arc<hookrelay_live::Live>,
}

/// The whole API with its state applied, ready for `axum::serve`.
pub fn router(state: ApiState) -> Router {
    let authenticator = Arc::new(auth::Authenticator::new(
        &state.admin_token,
        state.store.clone(),
        state.app_ids.clone(),
        state.auth.clone(),
    ));
    let idempotency = idempotency::Idempotency::new(state.store.clone());

    // `route_layer` so that unknown paths fall through to the JSON 404 rather than answering 401. Layers run
    // outermost-last-added: auth, then idempotency (which needs the authenticated token for its scope).
    let v1 = Router::new()
        .merge(app::routes())
        .merge(event_type::routes())
        .merge(endpoint::routes())
        .merge(message::routes())
        .merge(send_example::routes())
        .merge(transformation::routes())
        .merge(attempt::routes())
        .merge(attempt_stream::routes())
        .merge(listen::routes())
        .merge(background_task::routes())
        .merge(source::routes())
        .merge(stats::routes())
        .merge(token::routes())
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(from_fn_with_state(idempotency, idempotency::remember_responses))
        .route_layer(from_fn_with_state(authenticator, auth::require_token));
    let health = health::routes().merge(openapi::routes()).method_not_allowed_fallback(error::method_not_allowed);
    // Providers authenticate with their signature, not our token; the route reads its body under its own limit.
    let ingest = ingest::routes().method_not_allowed_fallback(error::method_not_allowed);

    let scrape = metrics::routes().method_not_allowed_fallback(error::method_not_allowed);

    // The pages are public; everything they show comes from the API, with the token the user gives them.
    let pages = ui::routes().method_not_allowed_fallback(error::method_not_allowed);

    v1.merge(health)
        .merge(ingest)
        .merge(scrape)
        .merge(pages)
        .fallback(error::route_not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(from_fn_with_state(state.metrics.clone(), metrics::track_requests))
        .layer(axum::middleware::from_fn(access_log::log_requests))
        .with_state(state)
}

/// Registers routes under both spellings of a path: Svix accepts `/api/v1/app` and `/api/v1/app/` alike, and
/// the SDKs use the first while older clients and docs use the second.
trait Routes {
    fn route_both(self, path: &str, handlers: MethodRouter<ApiState>) -> Self;
}

impl Routes for Router<ApiState> {
    fn route_both(self, path: &str, handlers: MethodRouter<ApiState>) -> Self {
        let trimmed = path.trim_end_matches('/');
        self.route(trimmed, handlers.clone()).route(&format!("{trimmed}/"), handlers)
    }
}
