//! Black-box tests of the recovery tools over real HTTP: recover (re-send an endpoint's failed deliveries of
//! a window), replay-missing (send the messages it never got), their background tasks, their validation, a
//! task interrupted by a crash, and the `hookrelay recover` command line against a running server.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Receiver, TOKEN, TestServer, wait_for};
use hookrelay_core::model::{
    Application, BackgroundTask, DeliveryOrder, Endpoint, Message, SecretSet, SignatureScheme, TaskKind, TaskProgress,
    TaskStatus, TimeWindow,
};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AppId, EndpointId, TaskId};
use hookrelay_store::{Catalog, Messages, Recovery};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn rfc3339(ms: i64) -> String {
    hookrelay_api::time::format(ms)
}

/// A server whose deliveries fail for good after two attempts (no waiting between them).
async fn fail_fast_server() -> TestServer {
    // The failures these tests cause open the endpoint's circuit breaker; starting a recover closes it again,
    // or the recovered deliveries would wait for the next probe (30 s).
    TestServer::start_with(|args| args.retry_schedule = Some("0".into())).await
}

/// Waits until the message's delivery to its (only) endpoint has the given status.
async fn wait_for_delivery_status(server: &TestServer, app: &str, msg: &str, status: i64) {
    wait_for(&format!("delivery of {msg} to reach status {status}"), WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/")).await;
        (list["data"][0]["status"] == json!(status)).then_some(())
    })
    .await;
}

/// Polls the background task until it is no longer running and returns it.
async fn wait_for_task(server: &TestServer, task_id: &str) -> Value {
    wait_for(&format!("task {task_id} to end"), WAIT, async || {
        let (status, task) = server.get(&format!("/api/v1/background-task/{task_id}/")).await;
        assert_eq!(status, 200, "{task}");
        (task["status"] != json!("running")).then_some(task)
    })
    .await
}

/// The successful deliveries' message ids (`webhook-id`) among the receiver's requests after the first `skip`.
fn delivered_ids(receiver: &Receiver, skip: usize) -> HashSet<String> {
    receiver.all().iter().skip(skip).map(|r| r.header("webhook-id").to_owned()).collect()
}

#[tokio::test]
async fn recover_resends_the_failed_deliveries_of_the_window_with_a_fresh_schedule() {
    let server = fail_fast_server().await;
    let (receiver, healthy) = Receiver::flaky().await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;

    let since = now_ms() - 1_000;
    let mut in_window = Vec::new();
    for n in 0..4 {
        in_window.push(server.publish(&app, "invoice.paid", json!({ "n": n })).await);
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let until = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after_window = server.publish(&app, "invoice.paid", json!({ "n": 99 })).await;
    for msg in in_window.iter().chain([&after_window]) {
        wait_for_delivery_status(&server, &app, msg, 2).await;
    }

    healthy.store(true, Ordering::SeqCst);
    let before_recover = receiver.count();
    let (status, started) = server
        .post(
            &format!("/api/v1/app/{app}/endpoint/{endpoint}/recover/"),
            json!({ "since": rfc3339(since), "until": rfc3339(until) }),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert!(started["id"].as_str().is_some_and(|id| id.starts_with("qtask_")), "{started}");
    assert_eq!((&started["status"], &started["task"]), (&json!("running"), &json!("endpoint.recover")));
    assert!(started["updatedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{started}");

    let task = wait_for_task(&server, started["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], json!("finished"), "{task}");
    assert_eq!(task["task"], json!("endpoint.recover"));
    assert_eq!(task["data"]["messagesSent"], json!(4), "{task}");
    assert_eq!(task["data"]["messagesTotal"], json!(4), "{task}");

    let expected: HashSet<String> = in_window.iter().cloned().collect();
    wait_for("every recovered message to arrive", WAIT, async || {
        (delivered_ids(&receiver, before_recover) == expected).then_some(())
    })
    .await;
    for msg in &in_window {
        wait_for_delivery_status(&server, &app, msg, 0).await;
    }
    // Outside the window: still failed, and the task (finished above) never touched it.
    let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/{after_window}/endpoint/")).await;
    assert_eq!(list["data"][0]["status"], json!(2), "{list}");
    assert!(!delivered_ids(&receiver, before_recover).contains(&after_window));

    // The task is listed, and the filters select it.
    let (status, listed) = server.get("/api/v1/background-task/?task=endpoint.recover&status=finished").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], task["id"], "{listed}");
    assert!(listed.get("iterator").is_some() && listed["done"] == json!(true), "{listed}");
    let (_, none) = server.get("/api/v1/background-task/?status=failed").await;
    assert_eq!(none["data"], json!([]), "{none}");
    server.stop().await;
}

#[tokio::test]
async fn replay_missing_sends_only_the_old_messages_the_new_endpoint_accepts() {
    let server = TestServer::start().await;
    server.create_event_types(&["order.created", "order.deleted"]).await;
    let app = server.create_app("Acme").await;
    let since = now_ms() - 1_000;
    let created_1 = server.publish(&app, "order.created", json!({ "n": 1 })).await;
    let deleted = server.publish(&app, "order.deleted", json!({ "n": 2 })).await;
    let created_2 = server.publish(&app, "order.created", json!({ "n": 3 })).await;

    let receiver = Receiver::ok().await;
    let (endpoint, _) =
        server.create_endpoint(&app, &receiver.url(), json!({ "filterTypes": ["order.created"] })).await;
    let (disabled, _) = server.create_endpoint(&app, &receiver.url(), json!({ "disabled": true })).await;
    let live = server.publish(&app, "order.created", json!({ "n": 4 })).await;
    receiver.wait_for(1, WAIT).await;

    let (status, started) = server
        .post(&format!("/api/v1/app/{app}/endpoint/{endpoint}/replay-missing"), json!({ "since": rfc3339(since) }))
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!((&started["status"], &started["task"]), (&json!("running"), &json!("endpoint.replay")));
    let task = wait_for_task(&server, started["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], json!("finished"), "{task}");
    assert_eq!(task["data"]["messagesSent"], json!(2), "{task}");

    let expected: HashSet<String> = [created_1, created_2, live.clone()].into_iter().collect();
    wait_for("the replayed messages to arrive", WAIT, async || (delivered_ids(&receiver, 0) == expected).then_some(()))
        .await;
    assert_eq!(receiver.count(), 3, "each message exactly once");
    // The filtered-out message has no delivery at all, so it can never be sent.
    let (_, destinations) = server.get(&format!("/api/v1/app/{app}/msg/{deleted}/endpoint/")).await;
    assert_eq!(destinations["data"], json!([]), "{destinations}");

    // A disabled endpoint gets nothing.
    let (status, started) = server
        .post(&format!("/api/v1/app/{app}/endpoint/{disabled}/replay-missing/"), json!({ "since": rfc3339(since) }))
        .await;
    assert_eq!(status, 202, "{started}");
    let task = wait_for_task(&server, started["id"].as_str().unwrap()).await;
    assert_eq!((&task["status"], &task["data"]["messagesSent"]), (&json!("finished"), &json!(0)), "{task}");
    let (_, destinations) = server.get(&format!("/api/v1/app/{app}/msg/{live}/endpoint/")).await;
    assert_eq!(destinations["data"].as_array().map(Vec::len), Some(1), "{destinations}");
    server.stop().await;
}

#[tokio::test]
async fn bad_windows_are_422_and_unknown_resources_404() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, "http://127.0.0.1:9/webhook", json!({})).await;
    let now = now_ms();
    let day = 24 * 3_600_000;
    for action in ["recover", "replay-missing"] {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/{action}/");
        for (body, field) in [
            (json!({ "since": "last tuesday" }), "since"),
            (json!({}), "since"),
            (json!({ "since": rfc3339(now + 60_000) }), "since"),
            (json!({ "since": rfc3339(now - 15 * day) }), "since"),
            (json!({ "since": rfc3339(now - 30 * day), "until": rfc3339(now - 10 * day) }), "since"),
            (json!({ "since": rfc3339(now - day), "until": rfc3339(now - 2 * day) }), "until"),
            (json!({ "since": rfc3339(now - day), "until": "soon" }), "until"),
        ] {
            let (status, got) = server.post(&path, body.clone()).await;
            assert_eq!(status, 422, "{action} {body}: {got}");
            assert_eq!(got["detail"][0]["loc"], json!(["body", field]), "{action} {body}: {got}");
            assert!(got["detail"][0]["msg"].as_str().is_some_and(|m| !m.is_empty()), "{got}");
        }
        let ok_body = json!({ "since": rfc3339(now - day) });
        for (path, what) in [
            (format!("/api/v1/app/app_unknown/endpoint/{endpoint}/{action}"), "application"),
            (format!("/api/v1/app/{app}/endpoint/ep_unknown/{action}"), "endpoint"),
        ] {
            let (status, got) = server.post(&path, ok_body.clone()).await;
            assert_eq!(status, 404, "{path}: {got}");
            assert_eq!(got["code"], json!("not_found"));
            assert!(got["detail"].as_str().is_some_and(|d| d.starts_with(what)), "{got}");
        }
    }
    let (status, got) = server.get("/api/v1/background-task/qtask_unknown").await;
    assert_eq!((status, &got["code"]), (404, &json!("not_found")), "{got}");
    let (status, got) = server.get("/api/v1/background-task/?task=endpoint.nonsense").await;
    assert_eq!(status, 422, "{got}");
    let (status, got) = server.get("/api/v1/background-task/?task=application.stats").await;
    assert_eq!((status, &got["data"]), (200, &json!([])), "another Svix task type finds nothing: {got}");
    server.stop().await;
}

#[tokio::test]
async fn a_task_left_running_by_a_crash_is_resumed_at_start() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::ok().await;
    let now = now_ms();
    let (app_id, endpoint_id, task_id) = (AppId::new(), EndpointId::new(), TaskId::at(now));
    let mut published = HashSet::new();
    {
        // What a crashed run leaves behind: messages the endpoint never got, and a replay task still `running`.
        let store = hookrelay_store::sqlite::SqliteStore::open(&data_dir.path().join("hookrelay.db")).expect("store");
        let app = Application {
            id: app_id.clone(),
            uid: None,
            name: "Acme".into(),
            rate_limit: None,
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        store.create_app(&app).await.expect("app");
        for n in 0..3 {
            let at = now - 10_000 + n;
            let msg = Message::new(app_id.clone(), "a".into(), format!(r#"{{"n": {n}}}"#), at);
            store.publish_message(&msg, None).await.expect("message");
            published.insert(msg.id.to_string());
        }
        let endpoint = Endpoint {
            id: endpoint_id.clone(),
            app_id: app_id.clone(),
            uid: None,
            url: receiver.url(),
            description: String::new(),
            filter_types: None,
            channels: None,
            rate_limit: None,
            disabled: false,
            metadata: BTreeMap::new(),
            version: 1,
            headers: BTreeMap::new(),
            secrets: SecretSet::new(EndpointSecret::generate()),
            signature_schemes: vec![SignatureScheme::Standard],
            ordering: DeliveryOrder::Unordered,
            signature_headers: Vec::new(),
            standard_headers: Default::default(),
            retry: Default::default(),
            transformation: None,
            created_at: now,
            updated_at: now,
        };
        store.create_endpoint(&endpoint).await.expect("endpoint");
        let task = BackgroundTask {
            id: task_id.clone(),
            kind: TaskKind::ReplayMissing,
            app_id,
            endpoint_id,
            status: TaskStatus::Running,
            window: TimeWindow { since: now - 60_000, until: now },
            cursor: None,
            progress: TaskProgress { total: 3, ..TaskProgress::default() },
            created_at: now,
            updated_at: now,
        };
        store.create_background_task(&task).await.expect("task");
    }

    let dir = data_dir.path().to_owned();
    let server = TestServer::start_with(move |args| args.data_dir = Some(dir)).await;
    let task = wait_for_task(&server, task_id.as_str()).await;
    assert_eq!((&task["status"], &task["data"]["messagesSent"]), (&json!("finished"), &json!(3)), "{task}");
    wait_for("the replayed messages", WAIT, async || (delivered_ids(&receiver, 0) == published).then_some(())).await;
    server.stop().await;
}

/// Runs the built `hookrelay` binary with `args`; returns (success, stdout, stderr).
async fn run_cli(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(&args)
            .env_remove("HOOKRELAY_ADMIN_TOKEN")
            .output()
            .expect("hookrelay runs");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    })
    .await
    .expect("CLI task")
}

#[tokio::test]
async fn the_recover_command_starts_the_task_shows_progress_and_reports_the_counts() {
    let server = fail_fast_server().await;
    let (receiver, healthy) = Receiver::flaky().await;
    let (status, app) = server.post("/api/v1/app/", json!({ "name": "Acme", "uid": "acme" })).await;
    assert_eq!(status, 201, "{app}");
    let (endpoint, _) = server.create_endpoint("acme", &receiver.url(), json!({ "uid": "acme-main" })).await;
    let since = now_ms() - 1_000;
    let mut failed = HashSet::new();
    for n in 0..3 {
        let msg = server.publish("acme", "invoice.paid", json!({ "n": n })).await;
        wait_for_delivery_status(&server, "acme", &msg, 2).await;
        failed.insert(msg);
    }
    healthy.store(true, Ordering::SeqCst);
    let before = receiver.count();

    let base_args = |endpoint: &str| {
        ["recover", "--app", "acme", "--endpoint", endpoint, "--since", &rfc3339(since), "--url", &server.base]
            .map(str::to_owned)
            .into_iter()
            .chain(["--token".to_owned(), TOKEN.to_owned()])
            .collect::<Vec<_>>()
    };
    let (ok, stdout, stderr) = run_cli(base_args("acme-main")).await;
    assert!(ok, "exit status; stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("re-queued 3 failed deliveries"), "stdout: {stdout}");
    assert!(stdout.contains("still in their retry schedule are not counted"), "stdout: {stdout}");
    // stderr is a pipe here, so no progress bar is drawn (tests/cli.rs draws one on a terminal).
    assert!(stderr.contains("started recover task qtask_"), "stderr: {stderr}");
    assert!(!stderr.contains("scanned"), "stderr: {stderr}");
    wait_for("the recovered deliveries", WAIT, async || (delivered_ids(&receiver, before) == failed).then_some(()))
        .await;

    // --missing: every message already has its delivery, so nothing is replayed.
    let mut missing = base_args(&endpoint);
    missing.push("--missing".into());
    let (ok, stdout, stderr) = run_cli(missing).await;
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("replayed 0 missing messages after checking 3 messages"), "stdout: {stdout}");

    // Failures exit non-zero with the server's explanation.
    let (ok, _, stderr) = run_cli(base_args("nobody")).await;
    assert!(!ok);
    assert!(stderr.contains("404") && stderr.contains("endpoint `nobody` not found"), "stderr: {stderr}");
    let mut bad_token = base_args("acme-main");
    let last = bad_token.len() - 1;
    bad_token[last] = "wrong-token".into();
    let (ok, _, stderr) = run_cli(bad_token).await;
    assert!(!ok && stderr.contains("401"), "stderr: {stderr}");
    let mut bad_since = base_args("acme-main");
    bad_since[6] = "yesterday".into();
    let (ok, _, stderr) = run_cli(bad_since).await;
    assert!(!ok && stderr.contains("neither a duration ago"), "refused before reaching the server: {stderr}");
    server.stop().await;
}
