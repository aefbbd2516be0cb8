//! `hookrelay listen` as a developer runs it: deliveries reach a local URL through the connection the command
//! opened to the server (no port is open on its side), signed as for any endpoint, with the local answer recorded
//! as the attempt; the secret stays the same across runs; Ctrl-C disables the endpoint; a source's verified
//! inbound events arrive the same way; and an endpoint with no listener connected fails its attempts saying so.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use common::{CliProcess, Receiver, TOKEN, TestServer, wait_for};
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn listen(server: &TestServer, extra: &[&str]) -> CliProcess {
    let mut args = vec!["listen", "--url", &server.base, "--token", TOKEN];
    args.extend_from_slice(extra);
    CliProcess::spawn(&args)
}

/// The secret `listen` printed once it was ready.
async fn ready(listener: &CliProcess) -> String {
    let line = listener.wait_for_line(WAIT, |line| line.starts_with("Your webhook signing secret is ")).await;
    line.split_whitespace().find(|word| word.starts_with("whsec_")).expect("a secret").to_owned()
}

/// The inodes of the TCP sockets in LISTEN state on this machine (`/proc/net/tcp` and `tcp6`).
fn listening_socket_inodes() -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            // st (the 4th column) 0A is LISTEN; the inode is the 10th.
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.insert((*inode).to_owned());
            }
        }
    }
    inodes
}

/// The socket inodes a process holds open.
fn socket_inodes_of(pid: u32) -> HashSet<String> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the process's descriptors");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect()
}

async fn attempts_of(server: &TestServer, app: &str, msg: &str) -> Vec<Value> {
    let (status, page) = server.get(&format!("/api/v1/app/{app}/attempt/msg/{msg}/")).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn listen_forwards_deliveries_over_its_own_connection_and_keeps_its_secret_across_runs() {
    let server = TestServer::start().await;
    let local = Receiver::start(std::sync::Arc::new(|_| (StatusCode::CREATED, Duration::ZERO))).await;
    let app = server.create_app("acme").await;
    let forward_to = local.url_for("/webhooks");
    let mut listener = listen(&server, &["--forward-to", &forward_to, "--app", &app, "--name", "laptop"]);
    let secret = ready(&listener).await;

    // The listener holds sockets (its connection to the server), and none of them listens.
    let sockets = socket_inodes_of(listener.pid());
    assert!(!sockets.is_empty(), "the listener has its connection to the server open");
    let listening_anywhere = listening_socket_inodes();
    assert!(!listening_anywhere.is_empty(), "the server's own listening socket is seen");
    let listening: Vec<_> = sockets.intersection(&listening_anywhere).collect();
    assert!(listening.is_empty(), "hookrelay listen opened a listening socket: {listening:?}");

    let msg = server.publish(&app, "invoice.paid", json!({ "invoice": "in_1" })).await;
    let got = local.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/webhooks");
    assert_eq!(got[0].json()["invoice"], "in_1");
    assert_eq!(got[0].header("webhook-id"), msg, "the original headers are forwarded");
    let ts: i64 = got[0].header("webhook-timestamp").parse().expect("timestamp");
    let expected = EndpointSecret::parse(&secret).expect("whsec").sign(&msg, ts, &got[0].body);
    assert!(
        got[0].header("webhook-signature").split(' ').any(|sig| sig == expected),
        "signed with the secret listen printed"
    );
    listener.wait_for_line(WAIT, |line| line == format!("--> invoice.paid [{msg}]")).await;
    let answered = listener.wait_for_line(WAIT, |line| line.starts_with("<-- [201] POST ")).await;
    assert!(answered.contains(&forward_to) && answered.contains(&msg) && answered.ends_with(" ms"), "{answered}");

    // The local answer is the attempt's.
    let attempts = wait_for("the attempt", WAIT, async || {
        let attempts = attempts_of(&server, &app, &msg).await;
        (!attempts.is_empty()).then_some(attempts)
    })
    .await;
    assert_eq!(attempts[0]["responseStatusCode"], 201, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 0, "succeeded: {attempts:?}");

    // Ctrl-C disables the endpoint; the next run enables it and prints the same secret.
    assert!(listener.interrupt(WAIT).await.success(), "{}", listener.output());
    let (_, endpoint) = server.get(&format!("/api/v1/app/{app}/endpoint/listen-laptop/")).await;
    assert_eq!(endpoint["disabled"], true, "{endpoint}");
    assert_eq!(endpoint["url"], "listen://laptop");
    let again = listen(&server, &["--forward-to", &forward_to, "--app", &app, "--name", "laptop"]);
    assert_eq!(ready(&again).await, secret, "the secret stays the same across runs");
    let (_, endpoint) = server.get(&format!("/api/v1/app/{app}/endpoint/listen-laptop/")).await;
    assert_eq!(endpoint["disabled"], false, "{endpoint}");
    server.publish(&app, "invoice.paid", json!({ "invoice": "in_2" })).await;
    local.wait_for(2, WAIT).await;
    drop(again);
    server.stop().await;
}

#[tokio::test]
async fn without_forward_to_listen_prints_deliveries_with_their_signature_checked_and_answers_with_status() {
    let server = TestServer::start().await;
    let app = server.create_app("acme").await;
    server.create_event_types(&["invoice.paid", "invoice.voided"]).await;
    let listener = listen(&server, &["--status", "500", "--events", "invoice.paid", "--name", "printer"]);
    ready(&listener).await;
    server.publish(&app, "invoice.voided", json!({ "skipped": true })).await;
    let msg = server.publish(&app, "invoice.paid", json!({ "invoice": "in_9" })).await;
    listener.wait_for_line(WAIT, |line| line == format!("--> invoice.paid [{msg}]")).await;
    listener.wait_for_line(WAIT, |line| line.trim() == "signature: valid").await;
    listener.wait_for_line(WAIT, |line| line.contains("\"invoice\":\"in_9\"")).await;
    let attempt =
        wait_for("the attempt", WAIT, async || attempts_of(&server, &app, &msg).await.into_iter().next()).await;
    assert_eq!(attempt["responseStatusCode"], 500, "answered with --status: {attempt}");
    assert!(!listener.output().contains("invoice.voided"), "filtered out by --events:\n{}", listener.output());
    server.stop().await;
}

#[tokio::test]
async fn listen_source_forwards_the_sources_verified_inbound_events() {
    let server = TestServer::start().await;
    let local = Receiver::ok().await;
    let app = server.create_app("billing").await;
    let (status, source) = server
        .post(
            "/api/v1/source/",
            json!({ "name": "Stripe", "provider": "stripe", "secret": "whsec_stripe_listen", "uid": "stripe", "appId": app }),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    let listener = listen(&server, &["--source", "stripe", "--forward-to", &local.url(), "--name", "inbound"]);
    ready(&listener).await;

    let body = br#"{"id":"evt_listen_1","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#;
    let mut request = server.http.post(server.url("/ingest/stripe")).header("content-type", "application/json");
    for (name, value) in Provider::Stripe.sign(body, "whsec_stripe_listen", now_ms() / 1000, "") {
        request = request.header(name, value);
    }
    let response = request.body(body.to_vec()).send().await.expect("ingest");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    let got = local.wait_for(1, WAIT).await;
    assert_eq!(&got[0].body[..], &body[..], "the provider's body arrives unchanged");
    listener.wait_for_line(WAIT, |line| line.starts_with("--> invoice.paid [msg_")).await;

    // A connected listener does not hold the server's shutdown for its grace period (10 s): streams end at once.
    let stopping = std::time::Instant::now();
    server.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(5), "stopping took {:?}", stopping.elapsed());
}

#[tokio::test]
async fn an_endpoint_whose_listener_is_not_connected_fails_its_attempts_saying_so() {
    let server = TestServer::start().await;
    let app = server.create_app("acme").await;
    let (status, endpoint) =
        server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": "listen://nobody" })).await;
    assert_eq!(status, 201, "{endpoint}");
    let msg = server.publish(&app, "invoice.paid", json!({})).await;
    let attempt =
        wait_for("the attempt", WAIT, async || attempts_of(&server, &app, &msg).await.into_iter().next()).await;
    assert_eq!(attempt["responseStatusCode"], 0, "{attempt}");
    assert!(attempt["response"].as_str().unwrap_or("").contains("no `hookrelay listen` is connected"), "{attempt}");

    // The stream of an ordinary endpoint is refused with what to do instead.
    let (_, ordinary) =
        server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": "http://127.0.0.1:9/hook" })).await;
    let (status, refused) =
        server.get(&format!("/api/v1/app/{app}/endpoint/{}/listen/", ordinary["id"].as_str().expect("id"))).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["detail"].as_str().unwrap_or("").contains("listen://"), "{refused}");
    server.stop().await;
}

#[tokio::test]
async fn listen_explains_what_to_fix() {
    let server = TestServer::start().await;
    let mut none = listen(&server, &["--name", "x"]);
    assert!(!none.wait(WAIT).await.success());
    assert!(none.output().contains("no application yet"), "{}", none.output());
    server.create_app("one").await;
    server.create_app("two").await;
    let mut several = listen(&server, &["--name", "x"]);
    assert!(!several.wait(WAIT).await.success());
    assert!(several.output().contains("choose one with --app"), "{}", several.output());
    let mut bad_name = listen(&server, &["--name", "not ok"]);
    assert!(!bad_name.wait(WAIT).await.success());
    assert!(bad_name.output().contains("--name"), "{}", bad_name.output());
    server.stop().await;
}

#[tokio::test]
async fn a_read_only_token_cannot_take_an_endpoints_deliveries_over() {
    let server = TestServer::start().await;
    let app = server.create_app("acme").await;
    let (status, endpoint) =
        server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": "listen://laptop" })).await;
    assert_eq!(status, 201, "{endpoint}");
    let stream = format!("/api/v1/app/{app}/endpoint/{}/listen/", endpoint["id"].as_str().expect("id"));
    for (read_only, expected) in [(true, 403), (false, 200)] {
        let (status, access) =
            server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), json!({ "readOnly": read_only })).await;
        assert_eq!(status, 200, "{access}");
        let token = access["token"].as_str().expect("token");
        let response = server.http.get(server.url(&stream)).bearer_auth(token).send().await.expect("answered");
        assert_eq!(response.status(), expected, "read-only: {read_only}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_slow_local_answer_does_not_hold_up_the_next_delivery() {
    let server = TestServer::start().await;
    // The first request takes 4 s to answer; the rest at once.
    let local = Receiver::start(std::sync::Arc::new(|n| {
        (StatusCode::OK, if n == 0 { Duration::from_secs(4) } else { Duration::ZERO })
    }))
    .await;
    let app = server.create_app("acme").await;
    let listener = listen(&server, &["--forward-to", &local.url(), "--app", &app, "--name", "slow"]);
    ready(&listener).await;
    let first = server.publish(&app, "invoice.paid", json!({ "n": 1 })).await;
    local.wait_for(1, WAIT).await;
    let second = server.publish(&app, "invoice.paid", json!({ "n": 2 })).await;
    // Answered while the first is still being held by the local URL.
    let answered = listener.wait_for_line(Duration::from_secs(3), |line| line.starts_with("<-- [200]")).await;
    assert!(answered.contains(&second), "the second delivery was answered first: {answered}");
    listener.wait_for_line(WAIT, |line| line.starts_with("<-- [200]") && line.contains(&first)).await;
    server.stop().await;
}
