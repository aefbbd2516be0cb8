//! Logs for log tools: a `hookrelay serve` child with `HOOKRELAY_LOG_FORMAT=json` writes one flat JSON object
//! per line (no nested `fields` or `span`), answers every API request with an `x-request-id` (the caller's when
//! sane, else a fresh one), logs one access line per request carrying that id as a top-level field (and the
//! request's other lines carry it too), and logs a failed delivery's next step as typed fields.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, ServerProcess, TOKEN, create, http_client, wait_for};
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_core::time::now_ms;
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Every stderr line parsed; fails the test on a line that is not a flat JSON object.
fn parsed(logs: &Mutex<Vec<String>>) -> Vec<Map<String, Value>> {
    let lines = logs.lock().expect("log lines").clone();
    lines
        .iter()
        .map(|line| {
            let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
                panic!("a log line that is not a JSON object: {line}");
            };
            for (name, value) in &object {
                assert!(!value.is_object() && !value.is_array(), "`{name}` is not flat in {line}");
            }
            object
        })
        .collect()
}

/// The lines whose `message` is `message`.
fn events(logs: &Mutex<Vec<String>>, message: &str) -> Vec<Map<String, Value>> {
    parsed(logs).into_iter().filter(|line| line["message"] == message).collect()
}

/// The access lines of the request with this id.
fn access_lines(logs: &Mutex<Vec<String>>, request_id: &str) -> Vec<Map<String, Value>> {
    events(logs, "request").into_iter().filter(|line| line.get("request_id") == Some(&json!(request_id))).collect()
}

/// Waits for the one access line of `request_id`, and checks it says what was asked and nothing more.
async fn the_access_line(
    logs: &Mutex<Vec<String>>,
    request_id: &str,
    method: &str,
    route: Option<&str>,
    status: u16,
) -> Map<String, Value> {
    let line = wait_for(&format!("the access line of {request_id}"), WAIT, async || {
        access_lines(logs, request_id).into_iter().next()
    })
    .await;
    assert_eq!(access_lines(logs, request_id).len(), 1, "one access line per request");
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["target"], "hookrelay_api::access_log", "{line:?}");
    assert_eq!(line["method"], method, "{line:?}");
    assert_eq!(line.get("route").and_then(Value::as_str), route, "{line:?}");
    assert_eq!(line["status"], status, "{line:?}");
    assert!(line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line:?}");
    assert!(line["remote"].as_str().is_some_and(|remote| remote.starts_with("127.0.0.1:")), "{line:?}");
    let mut names: Vec<&str> = line.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected =
        vec!["timestamp", "level", "target", "message", "method", "status", "duration_ms", "remote", "request_id"];
    if route.is_some() {
        expected.push("route");
    }
    expected.sort_unstable();
    assert_eq!(names, expected, "no other field (no header, token or body): {line:?}");
    line
}

fn echoed_id(response: &reqwest::Response) -> String {
    response.headers().get("x-request-id").expect("x-request-id").to_str().expect("ASCII").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_flat_with_a_request_id_and_typed_values() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = ServerProcess::spawn_capturing_logs(
        data_dir.path(),
        &[
            ("HOOKRELAY_LOG", "info,hookrelay_engine=debug"),
            ("HOOKRELAY_LOG_FORMAT", "json"),
            ("HOOKRELAY_RETRY_SCHEDULE", "1"),
        ],
        logs.clone(),
    );
    let base = &server.base;
    let http = http_client();

    // The caller's id is echoed and logged.
    let created = http
        .post(format!("{base}/api/v1/app/"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "caller-id-1")
        .json(&json!({ "name": "Logged" }))
        .send()
        .await
        .expect("create app");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(echoed_id(&created), "caller-id-1");
    let app = created.json::<Value>().await.expect("app")["id"].as_str().expect("id").to_owned();
    the_access_line(&logs, "caller-id-1", "POST", Some("/api/v1/app/"), 201).await;

    // Without one (or with one that is too long), a fresh id is made; the route is the template, not the path.
    for sent in [None, Some("x".repeat(129))] {
        let mut request = http.get(format!("{base}/api/v1/app/{app}/")).bearer_auth(TOKEN);
        if let Some(sent) = &sent {
            request = request.header("x-request-id", sent);
        }
        let read = request.send().await.expect("read app");
        assert_eq!(read.status(), StatusCode::OK);
        let id = echoed_id(&read);
        assert!(id.starts_with("req_") && id.len() == 31, "a fresh id, not {id}");
        let line = the_access_line(&logs, &id, "GET", Some("/api/v1/app/{app_id}/"), 200).await;
        assert!(!line.values().any(|value| value.as_str().is_some_and(|text| text.contains(&app))), "{line:?}");
    }

    // An unknown path has no route; its query string (which may carry anything) is not logged.
    let missing = http.get(format!("{base}/no/such/path?token=query-secret-5e7a")).send().await.expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    the_access_line(&logs, &echoed_id(&missing), "GET", None, 404).await;

    // Health checks are answered with an id but logged at debug, so not at info.
    let health = http.get(format!("{base}/api/v1/health/")).header("x-request-id", "health-1").send().await;
    let health = health.expect("health");
    assert_eq!(echoed_id(&health), "health-1");

    // A line logged while serving a request carries its id: the ingest rejection.
    let source = create(
        &http,
        &format!("{base}/api/v1/source/"),
        json!({ "name": "Stripe", "provider": "stripe", "secret": "whsec_logs_test_source", "appId": app }),
    )
    .await;
    let body = r#"{"id": "evt_1", "type": "x"}"#;
    let mut forged = http.post(format!("{base}/ingest/{source}")).header("x-request-id", "ingest-1").body(body);
    for (name, value) in Provider::Stripe.sign(body.as_bytes(), "whsec_forged", now_ms() / 1000, "") {
        forged = forged.header(name, value);
    }
    assert_eq!(forged.send().await.expect("ingest").status(), StatusCode::UNAUTHORIZED);
    the_access_line(&logs, "ingest-1", "POST", Some("/ingest/{source}"), 401).await;
    let rejected = events(&logs, "inbound request rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["request_id"], "ingest-1", "{:?}", rejected[0]);
    assert_eq!(rejected[0]["status"], 401, "a number: {:?}", rejected[0]);

    // A delivery that fails, is retried after 1 s, and fails again: its next step is a name and a time.
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO))).await;
    create(&http, &format!("{base}/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await;
    let published = http
        .post(format!("{base}/api/v1/app/{app}/msg/"))
        .bearer_auth(TOKEN)
        .json(&json!({ "eventType": "user.created", "payload": {} }))
        .send()
        .await
        .expect("publish");
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let msg_id = published.json::<Value>().await.expect("message")["id"].as_str().expect("id").to_owned();
    let failed = wait_for("two failed attempts logged", WAIT, async || {
        let failed = events(&logs, "delivery attempt failed");
        (failed.len() >= 2).then_some(failed)
    })
    .await;
    let (first, last) = (&failed[0], &failed[1]);
    assert_eq!(first["msg_id"], msg_id.as_str(), "{first:?}");
    assert_eq!(first["attempt"], 1, "{first:?}");
    assert_eq!(first["status"], 500, "{first:?}");
    assert_eq!(first["next"], "retry", "{first:?}");
    let retry_at = first["retry_at_ms"].as_i64().expect("retry_at_ms is a number");
    assert!((now_ms() - 60_000..now_ms() + 60_000).contains(&retry_at), "{first:?}");
    assert_eq!(last["attempt"], 2, "{last:?}");
    assert_eq!(last["next"], "give_up", "{last:?}");
    assert!(!last.contains_key("retry_at_ms"), "{last:?}");

    let everything = logs.lock().expect("log lines").join("\n");
    for needle in ["RetryAt(", "GiveUp", "Some(", "query-secret-5e7a", TOKEN] {
        assert!(!everything.contains(needle), "`{needle}` in the log:\n{everything}");
    }
    assert!(access_lines(&logs, "health-1").is_empty(), "health checks are logged at debug");
    let lines = parsed(&logs);
    assert!(lines.len() > 10, "{everything}");
    for line in &lines {
        for nested in ["fields", "span", "spans"] {
            assert!(!line.contains_key(nested), "`{nested}` in {line:?}");
        }
    }
}

#[tokio::test]
async fn pretty_logs_written_to_a_pipe_carry_no_colour_codes() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = ServerProcess::spawn_capturing_logs(data_dir.path(), &[("HOOKRELAY_LOG", "info")], logs.clone());
    let response = http_client().get(format!("{}/api/v1/app/", server.base)).bearer_auth(TOKEN).send().await;
    assert_eq!(response.expect("answered").status(), 200);
    let lines = wait_for("the access line", Duration::from_secs(10), async || {
        let lines = logs.lock().expect("logs").clone();
        lines.iter().any(|line| line.contains("GET")).then_some(lines)
    })
    .await;
    assert!(lines.iter().all(|line| !line.contains('\x1b')), "escape codes in a log file: {lines:?}");
}
