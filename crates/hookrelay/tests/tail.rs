//! `hookrelay tail` as a developer or a script runs it: JSON lines on a pipe, filtered by application, endpoint
//! and outcome; coloured lines on a terminal; an application token follows its own application only.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{CliProcess, Receiver, TOKEN, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn tail(server: &TestServer, token: &str, extra: &[&str], on_terminal: bool) -> CliProcess {
    let mut args = vec!["tail", "--url", &server.base, "--token", token];
    args.extend_from_slice(extra);
    if on_terminal { CliProcess::spawn_on_terminal(&args) } else { CliProcess::spawn(&args) }
}

/// Publishes to `app` until `tail` has shown a line `matches` accepts (it shows attempts made after it connected,
/// and nothing says when it has); returns that line.
async fn publish_until_shown(
    server: &TestServer,
    app: &str,
    tail: &CliProcess,
    matches: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        server.publish(app, "invoice.paid", json!({ "n": 1 })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(line) = tail.lines.lock().expect("lines").iter().find(|line| matches(line)) {
            return line.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "tail showed nothing matching; output:\n{}", tail.output());
    }
}

#[tokio::test]
async fn on_a_pipe_tail_prints_json_lines_of_the_attempts_it_is_asked_for() {
    let server = TestServer::start().await;
    let ok = Receiver::ok().await;
    let failing = Receiver::start(Arc::new(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO))).await;
    let app = server.create_app("acme").await;
    server.create_endpoint(&app, &ok.url(), json!({})).await;
    let (failing_id, _) = server.create_endpoint(&app, &failing.url(), json!({ "uid": "broken" })).await;
    let other_app = server.create_app("other").await;
    server.create_endpoint(&other_app, &failing.url(), json!({})).await;

    let follower = tail(&server, TOKEN, &["--app", &app, "--endpoint", "broken", "--status", "fail"], false);
    let first = publish_until_shown(&server, &app, &follower, |line| line.starts_with('{')).await;
    // Attempts tail must leave out: another application's failure, this application's successes.
    let failed_so_far = failing.count();
    server.publish(&other_app, "invoice.paid", json!({})).await;
    server.publish(&app, "invoice.paid", json!({})).await;
    failing.wait_for(failed_so_far + 2, WAIT).await;
    ok.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempt: Value = serde_json::from_str(&first).expect("a JSON line");
    assert_eq!(attempt["responseStatusCode"], 500, "a number: {attempt}");
    assert_eq!(attempt["status"], "fail");
    assert_eq!(attempt["next"], "retry");
    assert!(attempt["nextAttempt"].is_string() && attempt["msgId"].as_str().is_some_and(|m| m.starts_with("msg_")));
    assert_eq!(attempt["eventType"], "invoice.paid");
    for line in follower.lines.lock().expect("lines").iter() {
        let attempt: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert_eq!(attempt["endpointId"], failing_id.as_str(), "only the endpoint asked for: {line}");
        assert_eq!(attempt["appId"], app.as_str(), "only the application asked for: {line}");
        assert_eq!(attempt["status"], "fail", "only failures: {line}");
    }
    server.stop().await;
}

#[tokio::test]
async fn on_a_terminal_tail_prints_coloured_lines() {
    let server = TestServer::start().await;
    let ok = Receiver::ok().await;
    let app = server.create_app("acme").await;
    server.create_endpoint(&app, &ok.url(), json!({})).await;
    let follower = tail(&server, TOKEN, &[], true);
    follower.wait_for_line(WAIT, |line| line.starts_with("following the attempts of")).await;
    let line = publish_until_shown(&server, &app, &follower, |line| line.contains("invoice.paid")).await;
    assert!(line.contains("[\x1b[32m200\x1b[0m] invoice.paid msg_"), "a green 200: {line:?}");
    assert!(line.contains(&ok.url()) && line.contains(" ms (attempt 1)"), "{line:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_application_token_follows_its_own_application_only() {
    let server = TestServer::start().await;
    let app = server.create_app("acme").await;
    let (status, access) = server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), json!({})).await;
    assert_eq!(status, 200, "{access}");
    let token = access["token"].as_str().expect("token").to_owned();
    let mut everything = tail(&server, &token, &[], false);
    assert!(!everything.wait(WAIT).await.success());
    assert!(everything.output().contains("403"), "{}", everything.output());
    let own = tail(&server, &token, &["--app", &app], false);
    let ok = Receiver::ok().await;
    server.create_endpoint(&app, &ok.url(), json!({})).await;
    publish_until_shown(&server, &app, &own, |line| line.contains("\"status\":\"success\"")).await;
    server.stop().await;
}
