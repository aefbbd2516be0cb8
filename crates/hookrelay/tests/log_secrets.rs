//! No secret reaches the log at any level: a `hookrelay serve` child at `HOOKRELAY_LOG=trace` on each backend
//! creates an endpoint with a known secret and custom header, a source with a known secret, publishes a message,
//! delivers it and ingests a signed event; then the whole log is searched for each secret, header value and payload.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Receiver, ServerProcess, TOKEN, create, http_client, wait_for};
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_testkit::postgres::ScratchSchema;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// base64 of `log-test-endpoint-secret-bytes!!`: distinctive in both forms.
const ENDPOINT_SECRET: &str = "whsec_bG9nLXRlc3QtZW5kcG9pbnQtc2VjcmV0LWJ5dGVzISE=";
const SOURCE_SECRET: &str = "source-secret-7f3a9c1e55";
const HEADER_VALUE: &str = "Bearer header-secret-2b8d4e6f";
const PAYLOAD_VALUE: &str = "payload-secret-9e1c3a5b";
const INBOUND_VALUE: &str = "inbound-secret-4d6f8a2c";

async fn exercise_every_secret(base: &str) {
    let http = http_client();
    let receiver = Receiver::ok().await;
    let app = create(&http, &format!("{base}/api/v1/app/"), json!({"name": "Log test"})).await;
    create(
        &http,
        &format!("{base}/api/v1/app/{app}/endpoint/"),
        json!({"url": receiver.url(), "secret": ENDPOINT_SECRET, "headers": {"Authorization": HEADER_VALUE}}),
    )
    .await;
    let source = create(
        &http,
        &format!("{base}/api/v1/source/"),
        json!({"name": "GitHub", "provider": "github", "secret": SOURCE_SECRET, "appId": app}),
    )
    .await;

    let published = http
        .post(format!("{base}/api/v1/app/{app}/msg/"))
        .bearer_auth(TOKEN)
        .header("idempotency-key", "log-test-publish")
        .json(&json!({"eventType": "invoice.paid", "payload": {"note": PAYLOAD_VALUE}}))
        .send()
        .await
        .expect("publish sent");
    assert_eq!(published.status(), 202);

    let body = format!(r#"{{"action": "opened", "note": "{INBOUND_VALUE}"}}"#);
    let mut headers = Provider::Github.sign(body.as_bytes(), SOURCE_SECRET, 0, "delivery-1");
    headers.push(("X-GitHub-Event".into(), "issues".into()));
    let mut ingest = http.post(format!("{base}/ingest/{source}")).body(body.clone());
    for (name, value) in &headers {
        ingest = ingest.header(name, value);
    }
    assert_eq!(ingest.send().await.expect("ingest sent").status(), 200);

    // The published message and the ingested event both reach the endpoint, with the custom header.
    let received = receiver.wait_for(2, WAIT).await;
    assert!(received.iter().all(|r| r.header("authorization") == HEADER_VALUE));
}

/// Every line that contains one of the secrets, header values or payloads.
fn leaks(logs: &Mutex<Vec<String>>) -> Vec<String> {
    let secret_bytes = "bG9nLXRlc3QtZW5kcG9pbnQtc2VjcmV0LWJ5dGVzISE";
    let needles = [
        "log-test-endpoint-secret",
        secret_bytes,
        SOURCE_SECRET,
        "header-secret-2b8d4e6f",
        PAYLOAD_VALUE,
        INBOUND_VALUE,
    ];
    let logs = logs.lock().expect("log lines");
    logs.iter().filter(|line| needles.iter().any(|needle| line.contains(needle))).cloned().collect()
}

async fn run(env: &[(&str, &str)]) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut env = env.to_vec();
    env.push(("HOOKRELAY_LOG", "trace"));
    let mut server = ServerProcess::spawn_capturing_logs(data_dir.path(), &env, logs.clone());
    exercise_every_secret(&server.base).await;
    server.terminate(WAIT);
    // The log must be a real trace log (or the search below proves nothing): dependencies' info lines and
    // hookrelay's own debug lines are both there.
    wait_for("the server's last log lines", WAIT, async || {
        let logs = logs.lock().expect("log lines");
        logs.iter().any(|line| line.contains("shutting down")).then_some(())
    })
    .await;
    let lines = logs.lock().expect("log lines").len();
    assert!(lines > 5, "a trace log has more than {lines} lines:\n{}", logs.lock().expect("log lines").join("\n"));
    assert!(logs.lock().expect("log lines").iter().any(|line| line.contains("DEBUG")), "no debug line in a trace log");
    let leaked = leaks(&logs);
    assert!(
        leaked.is_empty(),
        "{} log lines hold a secret, header value or payload:\n{}",
        leaked.len(),
        leaked.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_log_on_sqlite_holds_no_secret() {
    run(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_log_on_postgres_holds_no_secret() {
    let schema = ScratchSchema::for_test().await;
    run(&[("HOOKRELAY_DATABASE_URL", schema.url())]).await;
}
