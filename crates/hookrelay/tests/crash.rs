//! Crash safety and shutdown: a server killed with SIGKILL while publishing and delivering loses nothing, and
//! one stopped with SIGTERM exits 0 promptly, also losing nothing. Every message answered 202 is delivered at
//! least once after a restart on the same data directory.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, ServerProcess, TOKEN};
use serde_json::{Value, json};

/// The server settings for these tests: quick retries.
const ENV: &[(&str, &str)] = &[("HOOKRELAY_RETRY_SCHEDULE", "1,1,1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_delivery_loses_no_accepted_message() {
    let data_dir = tempfile::tempdir().unwrap();
    // A slow receiver: 40 ms per request, so the kill lands while deliveries are queued and in flight.
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_millis(40)))).await;
    let mut child = ServerProcess::spawn(data_dir.path(), ENV);
    let base = child.base.clone();
    let http = common::http_client();

    let (_, app) = post(&http, &format!("{base}/api/v1/app/"), json!({ "name": "crash" })).await.unwrap();
    let app = app["id"].as_str().unwrap().to_owned();
    let (status, _) =
        post(&http, &format!("{base}/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await.unwrap();
    assert_eq!(status, 201);

    // Publish from several tasks; remember exactly which messages were acknowledged.
    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut publishers = Vec::new();
    for worker in 0..4 {
        let (http, url, acknowledged) = (http.clone(), format!("{base}/api/v1/app/{app}/msg/"), acknowledged.clone());
        publishers.push(tokio::spawn(async move {
            for n in 0..150 {
                match post(&http, &url, json!({ "eventType": "crash.test", "payload": { "worker": worker, "n": n } }))
                    .await
                {
                    Ok((202, msg)) => {
                        acknowledged.lock().unwrap().insert(msg["id"].as_str().unwrap().to_owned());
                    }
                    _ => break, // the server is gone
                }
            }
        }));
    }

    common::wait_for("some deliveries before the kill", Duration::from_secs(30), async || {
        (receiver.count() >= 40).then_some(())
    })
    .await;
    child.kill(); // SIGKILL: no shutdown code runs
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let delivered_before = received_ids(&receiver).len();
    assert!(delivered_before < acknowledged.len(), "the kill must land mid-way for this test to mean anything");

    let mut child = ServerProcess::spawn(data_dir.path(), ENV);
    common::wait_for("every acknowledged message to be delivered", Duration::from_secs(60), async || {
        let delivered = received_ids(&receiver);
        acknowledged.iter().all(|id| delivered.contains(id)).then_some(())
    })
    .await;
    child.kill();
    println!(
        "acknowledged {}, delivered before kill {}, requests in total {}",
        acknowledged.len(),
        delivered_before,
        receiver.count()
    );
}

fn received_ids(receiver: &Receiver) -> HashSet<String> {
    receiver.all().iter().map(|r| r.header("webhook-id").to_owned()).collect()
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<(u16, Value), reqwest::Error> {
    let response = http.post(url).bearer_auth(TOKEN).json(&body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_deliveries_exits_cleanly_and_loses_nothing() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_millis(100)))).await;
    let mut child = ServerProcess::spawn(data_dir.path(), ENV);
    let base = child.base.clone();
    let http = common::http_client();
    let (_, app) = post(&http, &format!("{base}/api/v1/app/"), json!({ "name": "shutdown" })).await.unwrap();
    let app = app["id"].as_str().unwrap().to_owned();
    let (status, _) =
        post(&http, &format!("{base}/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await.unwrap();
    assert_eq!(status, 201);
    let mut published = HashSet::new();
    for n in 0..200 {
        let (status, msg) =
            post(&http, &format!("{base}/api/v1/app/{app}/msg/"), json!({ "eventType": "a", "payload": { "n": n } }))
                .await
                .unwrap();
        assert_eq!(status, 202);
        published.insert(msg["id"].as_str().unwrap().to_owned());
    }
    common::wait_for("deliveries under way", Duration::from_secs(30), async || (receiver.count() >= 20).then_some(()))
        .await;

    // 200 deliveries at 10 × 100 ms would take 2 s more; shutdown hands back what has not started instead.
    let status = tokio::task::block_in_place(|| child.terminate(Duration::from_secs(8)));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let delivered_before = received_ids(&receiver).len();
    assert!(delivered_before < published.len(), "SIGTERM must land mid-way for this test to mean anything");

    let _child = ServerProcess::spawn(data_dir.path(), ENV);
    common::wait_for("every message to be delivered after restart", Duration::from_secs(60), async || {
        let delivered = received_ids(&receiver);
        published.iter().all(|id| delivered.contains(id)).then_some(())
    })
    .await;
}
