//! The request id and the access log: middleware that gives every API request an id, runs the request inside a
//! `request` span carrying it (so every line logged while serving the request carries `request_id`), answers
//! with it in `x-request-id`, and logs one access line when the response is ready.
//!
//! The id is the caller's `x-request-id` when it is sane (1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
//! characters), so a proxy's or client's id follows the request through; otherwise a fresh `req_…` id. The
//! access line names the method, the matched route template (never the raw path, which holds ids, nor the
//! query), the status, the time to the response's head in milliseconds and the peer's address; never a header
//! value, token or body.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use hookrelay_core::time::now_ms;
use tracing::Instrument;

/// The header a request id comes in and goes back out in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-chosen request id kept; a longer one is replaced, so a caller cannot fill the log.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Middleware: the request id, the `request` span and the access line (see the module comment).
pub async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request.headers().get(&REQUEST_ID).and_then(caller_request_id).unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(remote)| *remote);
    // At ERROR so that the span is enabled whenever any line of the request is: at `info` a filter of
    // `HOOKRELAY_LOG=warn` would drop the span and the request's warnings would lose their id. A span's level
    // is not printed, and costs one small allocation per request.
    let span = tracing::error_span!("request", request_id = request_id.as_str());
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // Milliseconds with microsecond decimals: most API calls take under one, so whole milliseconds say little.
    let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let route = route.as_ref().map(MatchedPath::as_str);
    let status = response.status().as_u16();
    let remote = remote.map(tracing::field::display);
    span.in_scope(|| {
        // Health checks and scrapes at debug: a load balancer and Prometheus call them every few seconds
        // forever, which would bury the lines of real callers. Every other request, ingest and publish
        // included, at info: one line per call is what an access log is for, and
        // `HOOKRELAY_LOG=info,hookrelay_api::access_log=warn` turns it off.
        if is_probe(route) {
            tracing::debug!(method = method.as_str(), route, status, duration_ms, remote, "request");
        } else {
            tracing::info!(method = method.as_str(), route, status, duration_ms, remote, "request");
        }
    });
    response
}

/// The caller's request id, if it is one to keep: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters (no
/// spaces or control characters, so it cannot break a log line or a header).
fn caller_request_id(value: &HeaderValue) -> Option<String> {
    let id = value.to_str().ok()?;
    let sane = !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|byte| byte.is_ascii_graphic());
    sane.then(|| id.to_owned())
}

/// A fresh request id, shaped like hookrelay's other ids: `req_` and 27 time-sortable random characters.
fn new_request_id() -> String {
    format!("req_{}", hookrelay_core::id::new_body(now_ms()))
}

/// Whether the route is polled by machines (health checks, metrics scrapes).
fn is_probe(route: Option<&str>) -> bool {
    route.is_some_and(|route| route.starts_with("/api/v1/health") || route == "/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &[u8], kept: bool) {
        let value = HeaderValue::from_bytes(header).expect("a header value");
        let expected = kept.then(|| String::from_utf8(header.to_vec()).expect("ASCII"));
        assert_eq!(caller_request_id(&value), expected, "{header:?}");
    }

    #[test]
    fn a_callers_request_id_is_kept_only_when_short_and_visible_ascii() {
        check(b"abc-123", true);
        check(b"0af7651916cd43dd8448eb211c80319c", true);
        check(b"req_2a8Xyz:/=+!~", true);
        check("x".repeat(MAX_REQUEST_ID_LEN).as_bytes(), true);
        check("x".repeat(MAX_REQUEST_ID_LEN + 1).as_bytes(), false);
        check(b"", false);
        check(b"has space", false);
        check(b"tab\there", false);
        check("caf\u{e9}".as_bytes(), false);
    }

    #[test]
    fn a_fresh_request_id_is_unique_and_would_be_kept_if_sent_back() {
        let (first, second) = (new_request_id(), new_request_id());
        assert_ne!(first, second);
        assert!(first.starts_with("req_") && first.len() == 4 + 27, "{first}");
        let value = HeaderValue::from_str(&first).expect("a header value");
        assert_eq!(caller_request_id(&value), Some(first));
    }

    #[test]
    fn health_checks_and_scrapes_are_probes_and_nothing_else_is() {
        for (route, probe) in [
            (Some("/api/v1/health"), true),
            (Some("/api/v1/health/"), true),
            (Some("/api/v1/health/ping"), true),
            (Some("/metrics"), true),
            (Some("/ingest/{source}"), false),
            (Some("/api/v1/app/{app_id}/msg/"), false),
            (None, false),
        ] {
            assert_eq!(is_probe(route), probe, "{route:?}");
        }
    }
}
