//! Black-box tests of what operators see: `/metrics` after real traffic (published, delivered, failed, gone,
//! unreachable, disabled for failing, rejected inbound), its optional token, the health report with the queue, the 24-hour statistics, the
//! activity series over time with the open circuit breakers, the app-wide list of failed attempts, and the JSON logs of a failing delivery and a rejected inbound request
//! (with their ids, status and duration, and never a secret, a signature or a payload).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, ServerProcess, TOKEN, TestServer, create, http_client, wait_for};
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_core::time::now_ms;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const METRICS_TOKEN: &str = "scrape-token-for-tests";
const SOURCE_SECRET: &str = "whsec_inbound_source_secret_for_tests";

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(server: &TestServer, token: Option<&str>) -> (u16, String) {
    let mut request = server.http.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape sent");
    (response.status().as_u16(), response.text().await.expect("scrape body"))
}

/// A receiver that answers by path: `/ok` 200, `/refuse` 400, `/gone` 410.
async fn receiver_by_path() -> Receiver {
    Receiver::start_with_requests(Arc::new(|_, request| {
        let status = match request.path.as_str() {
            "/ok" => StatusCode::OK,
            "/gone" => StatusCode::GONE,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, Duration::ZERO, Vec::new())
    }))
    .await
}

#[tokio::test]
async fn metrics_stats_health_and_failed_attempts_reflect_real_traffic() {
    let server = TestServer::start_with(|args| {
        args.metrics_token = Some(METRICS_TOKEN.into());
        // A refused delivery is given up at once, so every count below is exact.
        args.retry_client_errors = Some(false);
    })
    .await;
    let receiver = receiver_by_path().await;
    server.create_event_types(&["ok.event", "refused.event", "gone.event"]).await;
    let app = server.create_app("Observed").await;
    let mut endpoint_for = std::collections::HashMap::new();
    for (path, event_type) in [("/ok", "ok.event"), ("/refuse", "refused.event"), ("/gone", "gone.event")] {
        let (id, _) =
            server.create_endpoint(&app, &receiver.url_for(path), json!({ "filterTypes": [event_type] })).await;
        endpoint_for.insert(path, id);
    }
    for event_type in ["ok.event", "refused.event", "gone.event"] {
        server.publish(&app, event_type, json!({ "n": 1 })).await;
    }
    // An inbound request with a wrong signature.
    let (status, source) = server
        .post(
            "/api/v1/source/",
            json!({
                "name": "Stripe", "provider": "stripe", "secret": SOURCE_SECRET, "uid": "stripe-live", "appId": app
            }),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    let body = br#"{"id": "evt_1", "type": "invoice.paid"}"#;
    let forged = Provider::Stripe.sign(body, "whsec_not_the_secret", now_ms() / 1000, "");
    let mut request = server.http.post(server.url("/ingest/stripe-live")).body(body.to_vec());
    for (name, value) in forged {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.expect("ingest sent").status(), StatusCode::UNAUTHORIZED);

    // Without the metrics token (or with the admin token instead) /metrics is refused.
    assert_eq!(scrape(&server, None).await.0, 401);
    assert_eq!(scrape(&server, Some(TOKEN)).await.0, 401);

    let text = wait_for("three attempts recorded and the queue empty", WAIT, async || {
        let (status, text) = scrape(&server, Some(METRICS_TOKEN)).await;
        assert_eq!(status, 200, "{text}");
        let attempts = sample(&text, "hookrelay_delivery_attempt_duration_seconds_count");
        (attempts == Some(3.0) && sample(&text, "hookrelay_queue_depth") == Some(0.0)).then_some(text)
    })
    .await;
    for (series, value) in [
        (r#"hookrelay_messages_total{event_type="ok.event"}"#, 1.0),
        (r#"hookrelay_messages_total{event_type="refused.event"}"#, 1.0),
        (r#"hookrelay_messages_total{event_type="gone.event"}"#, 1.0),
        (r#"hookrelay_delivery_attempts_total{result="success"}"#, 1.0),
        (r#"hookrelay_delivery_attempts_total{result="fail"}"#, 2.0),
        (r#"hookrelay_delivery_attempts_total{result="unreachable"}"#, 0.0),
        // The deprecated name, kept for one release, counts the same attempts.
        (r#"hookrelay_deliveries_total{status="success"}"#, 1.0),
        (r#"hookrelay_deliveries_total{status="fail"}"#, 2.0),
        ("hookrelay_delivery_attempts_in_flight", 0.0),
        ("hookrelay_circuit_breakers_open", 0.0),
        (r#"hookrelay_delivery_attempt_duration_seconds_bucket{le="+Inf"}"#, 3.0),
        (r#"hookrelay_endpoints_disabled_total{reason="gone"}"#, 1.0),
        (r#"hookrelay_inbound_events_total{source="stripe-live",status="rejected"}"#, 1.0),
        (r#"hookrelay_http_requests_total{method="POST",route="/api/v1/app/{app_id}/msg",status="202"}"#, 3.0),
        (r#"hookrelay_http_requests_total{method="POST",route="/ingest/{source}",status="401"}"#, 1.0),
        (r#"hookrelay_http_requests_total{method="GET",route="/metrics",status="401"}"#, 2.0),
        (r#"hookrelay_http_request_duration_seconds_count{method="POST",route="/api/v1/app/{app_id}/msg"}"#, 3.0),
        ("hookrelay_queue_oldest_age_seconds", 0.0),
        ("hookrelay_database_up", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    assert!(sample(&text, "hookrelay_delivery_attempt_duration_seconds_sum").is_some_and(|sum| sum >= 0.0));
    // The binary names its version and commit (as `hookrelay --version` does).
    let build = format!(
        r#"hookrelay_build_info{{version="{}",commit="{}"}}"#,
        env!("CARGO_PKG_VERSION"),
        hookrelay::cmd::VERSION.split_once('(').and_then(|(_, commit)| commit.strip_suffix(')')).expect("commit")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{build} in:\n{text}");
    // The standard process metrics, unprefixed (read from /proc).
    if cfg!(target_os = "linux") {
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(sample(&text, name).is_some_and(|value| value > 0.0), "{name} in:\n{text}");
        }
    }
    assert!(!text.contains(&app) && !text.contains("127.0.0.1"), "no ids or URLs in labels:\n{text}");

    // Health: the database answers and the queue is empty.
    let (status, health) = server.get("/api/v1/health/").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["queue"]["depth"], 0);

    // The last 24 hours, as stored.
    let (status, stats) = server.get("/api/v1/stats/").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["messages"], 3, "{stats}");
    assert_eq!(stats["deliveries"], json!({ "success": 1, "pending": 0, "sending": 0, "fail": 2 }), "{stats}");
    assert_eq!(stats["attempts"], json!({ "total": 3, "success": 1, "fail": 2 }), "{stats}");
    assert!((stats["failureRate"].as_f64().expect("rate") - 2.0 / 3.0).abs() < 1e-9, "{stats}");
    let (p50, p99) = (stats["attemptDurationMs"]["p50"].as_i64(), stats["attemptDurationMs"]["p99"].as_i64());
    assert!(p50.is_some_and(|p50| p99.is_some_and(|p99| 0 <= p50 && p50 <= p99)), "{stats}");
    let mut failing: Vec<(String, i64)> = stats["failingEndpoints"]
        .as_array()
        .expect("failing endpoints")
        .iter()
        .map(|ep| {
            assert_eq!(ep["appId"], app.as_str());
            (ep["endpointId"].as_str().expect("id").to_owned(), ep["failures"].as_i64().expect("failures"))
        })
        .collect();
    failing.sort();
    let mut expected = vec![(endpoint_for["/refuse"].clone(), 1), (endpoint_for["/gone"].clone(), 1)];
    expected.sort();
    assert_eq!(failing, expected);
    assert_eq!(stats["pausedEndpoints"], json!([]), "no breaker opened (10 failures in a row open one): {stats}");

    // The application's failed attempts, all endpoints at once, by name or by Svix's status code.
    for query in ["status=fail", "status=2"] {
        let (status, list) = server.get(&format!("/api/v1/app/{app}/attempt/?{query}")).await;
        assert_eq!(status, 200, "{list}");
        let mut endpoints: Vec<&str> =
            list["data"].as_array().expect("data").iter().map(|a| a["endpointId"].as_str().expect("id")).collect();
        endpoints.sort();
        let mut wanted = vec![endpoint_for["/refuse"].as_str(), endpoint_for["/gone"].as_str()];
        wanted.sort();
        assert_eq!(endpoints, wanted, "{list}");
        assert_eq!(list["done"], true);
    }
    let (_, one) = server
        .get(&format!("/api/v1/app/{app}/attempt?status=fail&endpoint_id={}&limit=1", endpoint_for["/gone"]))
        .await;
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["data"][0]["responseStatusCode"], 410);
    let (_, all) = server.get(&format!("/api/v1/app/{app}/attempt")).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(3), "{all}");
    server.stop().await;
}

/// Sums an activity series' buckets: `(messages, attempts total, successes, failures)`.
fn series_totals(series: &Value) -> (i64, i64, i64, i64) {
    let buckets = series["data"].as_array().expect("data");
    let sum = |pick: &dyn Fn(&Value) -> &Value| buckets.iter().map(|b| pick(b).as_i64().expect("a count")).sum();
    (
        sum(&|b| &b["messages"]),
        sum(&|b| &b["attempts"]["total"]),
        sum(&|b| &b["attempts"]["success"]),
        sum(&|b| &b["attempts"]["fail"]),
    )
}

/// Checks a series' shape: consecutive buckets of `bucket_seconds` from `since` to `until`, every one listed.
fn assert_whole_buckets(series: &Value, bucket_seconds: i64) {
    assert_eq!(series["bucketSeconds"], bucket_seconds, "{series}");
    let time = |value: &Value| hookrelay_core::rfc3339::parse(value.as_str().expect("a time")).expect("RFC 3339");
    let (since, until) = (time(&series["since"]), time(&series["until"]));
    let length = bucket_seconds * 1000;
    assert_eq!(since % length, 0, "since is aligned: {series}");
    let starts: Vec<i64> = series["data"].as_array().expect("data").iter().map(|b| time(&b["start"])).collect();
    let expected: Vec<i64> = (since..until).step_by(length as usize).collect();
    assert_eq!(starts, expected, "every bucket of the range, in order: {series}");
}

#[tokio::test]
async fn activity_over_time_counts_stored_messages_and_attempts_and_open_breakers_are_listed() {
    let server = TestServer::start_with(|args| {
        // A refused delivery is given up at once, and two refusals in a row open the endpoint's breaker for long.
        args.retry_client_errors = Some(false);
        args.breaker_threshold = Some(2);
        args.breaker_pause_secs = Some(3600);
    })
    .await;
    let receiver = receiver_by_path().await;
    server.create_event_types(&["ok.event", "refused.event"]).await;
    let app = server.create_app("Charted").await;
    server.create_endpoint(&app, &receiver.url_for("/ok"), json!({ "filterTypes": ["ok.event"] })).await;
    let (refusing, _) =
        server.create_endpoint(&app, &receiver.url_for("/refuse"), json!({ "filterTypes": ["refused.event"] })).await;
    let started = now_ms();
    for event_type in ["ok.event", "ok.event", "ok.event", "refused.event", "refused.event"] {
        server.publish(&app, event_type, json!({ "n": 1 })).await;
    }
    // A publish repeated with its idempotency key is answered again but stores (and counts) nothing new.
    for _ in 0..2 {
        let response = server
            .http
            .post(server.url(&format!("/api/v1/app/{app}/msg/")))
            .bearer_auth(TOKEN)
            .header("idempotency-key", "charted-once")
            .json(&json!({ "eventType": "ok.event", "payload": {} }))
            .send()
            .await
            .expect("publish sent");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    // The last 24 hours by the hour (the default), once every attempt is recorded.
    let day = wait_for("six attempts in the activity series", WAIT, async || {
        let (status, series) = server.get("/api/v1/stats/activity").await;
        assert_eq!(status, 200, "{series}");
        (series_totals(&series).1 == 6).then_some(series)
    })
    .await;
    assert_eq!(series_totals(&day), (6, 6, 4, 2), "{day}");
    assert_whole_buckets(&day, 3600);
    assert!(matches!(day["data"].as_array().map(Vec::len), Some(24 | 25)), "{day}");
    // The last few minutes by the minute: the same traffic, in the minutes it happened.
    let since = hookrelay_core::rfc3339::format(started - 5 * 60_000);
    let (status, minutes) = server.get(&format!("/api/v1/stats/activity/?since={since}&bucket=minute")).await;
    assert_eq!(status, 200, "{minutes}");
    assert_eq!(series_totals(&minutes), (6, 6, 4, 2), "{minutes}");
    assert_whole_buckets(&minutes, 60);
    let quiet = minutes["data"].as_array().expect("data").iter().filter(|b| b["messages"] == 0).count();
    assert!(quiet >= 4, "minutes before the traffic are listed as zeros: {minutes}");

    // The refusing endpoint's breaker is open, and the summary says until when.
    let stats = wait_for("the refusing endpoint's breaker open", WAIT, async || {
        let (status, stats) = server.get("/api/v1/stats/").await;
        assert_eq!(status, 200, "{stats}");
        (stats["pausedEndpoints"].as_array().is_some_and(|paused| !paused.is_empty())).then_some(stats)
    })
    .await;
    let paused = &stats["pausedEndpoints"][0];
    assert_eq!(
        (paused["appId"].as_str(), paused["endpointId"].as_str()),
        (Some(app.as_str()), Some(refusing.as_str()))
    );
    let until = hookrelay_core::rfc3339::parse(paused["pausedUntil"].as_str().expect("pausedUntil")).expect("a time");
    assert!(until > now_ms() + 3_000_000, "paused for the hour: {stats}");
    // The dispatcher's gauge of open breakers says the same (it is read at least once a second).
    wait_for("hookrelay_circuit_breakers_open at 1", WAIT, async || {
        let (status, text) = scrape(&server, None).await;
        assert_eq!(status, 200, "{text}");
        (sample(&text, "hookrelay_circuit_breakers_open") == Some(1.0)).then_some(())
    })
    .await;

    // Refusals name the parameter.
    let long_ago = hookrelay_core::rfc3339::format(now_ms() - 91 * 24 * 3_600_000);
    let two_days_ago = hookrelay_core::rfc3339::format(now_ms() - 2 * 24 * 3_600_000);
    for (query, parameter) in [
        ("bucket=week".to_owned(), "bucket"),
        (format!("since={long_ago}"), "since"),
        (format!("since={since}&until={two_days_ago}"), "since"),
        (format!("since={two_days_ago}&bucket=minute"), "bucket"),
        ("until=tomorrow".to_owned(), "until"),
    ] {
        let (status, body) = server.get(&format!("/api/v1/stats/activity?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", parameter]), "{query}: {body}");
    }
    // Operators only: an application's token is refused.
    let (status, access) = server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), json!({})).await;
    assert_eq!(status, 200, "{access}");
    let as_app = server
        .http
        .get(server.url("/api/v1/stats/activity"))
        .bearer_auth(access["token"].as_str().expect("token"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(as_app.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn without_a_metrics_token_metrics_are_open_and_the_admin_token_is_not_needed() {
    let server = TestServer::start().await;
    let (status, text) = scrape(&server, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("# TYPE hookrelay_delivery_attempts_total counter"), "{text}");
    assert_eq!(sample(&text, r#"hookrelay_delivery_attempts_total{result="success"}"#), Some(0.0), "{text}");
    assert_eq!(sample(&text, "hookrelay_queue_depth"), Some(0.0));
    server.stop().await;
}

#[tokio::test]
async fn an_attempt_counts_as_in_flight_until_its_answer() {
    let server = TestServer::start().await;
    // The receiver holds its answer for a while, so a scrape sees the attempt in flight.
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_secs(3)))).await;
    let app = server.create_app("Slow").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    server.publish(&app, "a", json!({})).await;
    wait_for("one attempt in flight", WAIT, async || {
        let (_, text) = scrape(&server, None).await;
        (sample(&text, "hookrelay_delivery_attempts_in_flight") == Some(1.0)).then_some(())
    })
    .await;
    // The attempt is counted a moment before it stops being in flight: wait for both.
    wait_for("the attempt answered and no longer in flight", WAIT, async || {
        let (_, text) = scrape(&server, None).await;
        let answered = sample(&text, r#"hookrelay_delivery_attempts_total{result="success"}"#) == Some(1.0);
        (answered && sample(&text, "hookrelay_delivery_attempts_in_flight") == Some(0.0)).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_never_answers_counts_as_unreachable_and_then_as_disabled_for_failing() {
    let server = TestServer::start_with(|args| {
        args.metrics_token = Some(METRICS_TOKEN.into());
        args.retry_schedule = Some("1,1,1,1,1,1,1,1".into());
        args.disable_failing_after_secs = Some(2);
    })
    .await;
    // A port nobody listens on: every attempt is refused before any answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let app = server.create_app("Silent").await;
    server.create_endpoint(&app, &format!("http://{closed}/webhook"), json!({})).await;
    server.publish(&app, "a", json!({})).await;
    let text = wait_for("the endpoint disabled for failing", WAIT, async || {
        let (_, text) = scrape(&server, Some(METRICS_TOKEN)).await;
        (sample(&text, r#"hookrelay_endpoints_disabled_total{reason="failing"}"#) == Some(1.0)).then_some(text)
    })
    .await;
    let unreachable = sample(&text, r#"hookrelay_delivery_attempts_total{result="unreachable"}"#);
    assert!(unreachable.is_some_and(|n| n >= 2.0), "{text}");
    assert_eq!(sample(&text, r#"hookrelay_deliveries_total{status="unreachable"}"#), unreachable, "{text}");
    assert_eq!(sample(&text, r#"hookrelay_delivery_attempts_total{result="fail"}"#), Some(0.0), "{text}");
    assert_eq!(sample(&text, r#"hookrelay_delivery_attempts_total{result="success"}"#), Some(0.0), "{text}");
    assert_eq!(sample(&text, r#"hookrelay_endpoints_disabled_total{reason="gone"}"#), Some(0.0), "{text}");
    server.stop().await;
}

/// The JSON log lines whose `message` is `message`.
fn log_events(lines: &[String], message: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == message)
        .collect()
}

#[tokio::test]
async fn failed_deliveries_and_rejected_inbound_requests_are_logged_without_secrets() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = ServerProcess::spawn_capturing_logs(
        data_dir.path(),
        &[("HOOKRELAY_LOG", "info"), ("HOOKRELAY_LOG_FORMAT", "json"), ("HOOKRELAY_RETRY_CLIENT_ERRORS", "false")],
        logs.clone(),
    );
    let http = http_client();
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::UNPROCESSABLE_ENTITY, Duration::ZERO))).await;
    let base = &server.base;
    let app = create(&http, &format!("{base}/api/v1/app/"), json!({ "name": "Logged" })).await;
    let endpoint = create(&http, &format!("{base}/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await;
    let secret: Value = http
        .get(format!("{base}/api/v1/app/{app}/endpoint/{endpoint}/secret/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("secret read")
        .json()
        .await
        .expect("secret body");
    let secret = secret["key"].as_str().expect("whsec").to_owned();
    let payload_marker = "payload-marker-that-must-not-be-logged";
    let published = http
        .post(format!("{base}/api/v1/app/{app}/msg/"))
        .bearer_auth(TOKEN)
        .json(&json!({ "eventType": "user.created", "payload": { "marker": payload_marker } }))
        .send()
        .await
        .expect("publish sent");
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let msg_id = published.json::<Value>().await.expect("message")["id"].as_str().expect("id").to_owned();

    create(
        &http,
        &format!("{base}/api/v1/source/"),
        json!({
            "name": "Stripe", "provider": "stripe", "secret": SOURCE_SECRET, "uid": "logged-source", "appId": app
        }),
    )
    .await;
    let body = format!(r#"{{"id": "evt_1", "type": "x", "marker": "{payload_marker}"}}"#);
    let forged = Provider::Stripe.sign(body.as_bytes(), "whsec_forged", now_ms() / 1000, "");
    let forged_signature = forged[0].1.clone();
    let mut request = http.post(format!("{base}/ingest/logged-source")).body(body);
    for (name, value) in forged {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.expect("ingest sent").status(), StatusCode::UNAUTHORIZED);

    let delivered = receiver.wait_for(1, WAIT).await;
    let signature = delivered[0].header("webhook-signature").to_owned();
    let failed = wait_for("the failed attempt's log line", WAIT, async || {
        let lines = logs.lock().expect("log lines").clone();
        log_events(&lines, "delivery attempt failed").into_iter().next()
    })
    .await;
    assert_eq!(failed["level"], "INFO", "{failed}");
    assert_eq!(failed["msg_id"], msg_id.as_str(), "{failed}");
    assert_eq!(failed["endpoint_id"], endpoint.as_str(), "{failed}");
    assert_eq!(failed["app_id"], app.as_str(), "{failed}");
    assert_eq!(failed["status"], 422, "{failed}");
    assert_eq!(failed["next"], "give_up", "a final 4xx, as a name: {failed}");
    assert!(failed["duration_ms"].as_i64().is_some(), "{failed}");
    assert!(failed["attempt_id"].as_str().is_some_and(|id| id.starts_with("atmpt_")), "{failed}");

    let rejected = wait_for("the rejection's log line", WAIT, async || {
        let lines = logs.lock().expect("log lines").clone();
        log_events(&lines, "inbound request rejected").into_iter().next()
    })
    .await;
    assert_eq!(rejected["reason"], "signature_mismatch", "{rejected}");
    assert_eq!(rejected["status"], 401, "{rejected}");
    assert!(rejected["source"].as_str().is_some_and(|s| s.starts_with("src_")), "{rejected}");

    let everything = logs.lock().expect("log lines").join("\n");
    let secret_body = secret.trim_start_matches("whsec_");
    for (what, needle) in [
        ("the endpoint secret", secret_body),
        ("the source secret", SOURCE_SECRET),
        ("the delivery signature", signature.trim_start_matches("v1,")),
        ("the forged signature", forged_signature.as_str()),
        ("the payload", payload_marker),
        ("the admin token", TOKEN),
    ] {
        assert!(!everything.contains(needle), "{what} appears in the logs:\n{everything}");
    }
}
