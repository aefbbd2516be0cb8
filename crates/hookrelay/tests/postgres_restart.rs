//! The PostgreSQL server restarts while hookrelay is publishing and delivering. Requests that reach the API
//! while it is down get 503 (never a 500), the dispatcher backs off and resumes, and every acknowledged message
//! is delivered in the end. The test restarts the local server with `pg_ctlcluster`, as CI's machine provides it.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Receiver, ServerProcess, TOKEN};
use hookrelay_testkit::http::{Publication, publish_until_accepted};
use hookrelay_testkit::postgres::ScratchSchema;
use serde_json::json;

const MESSAGES: usize = 2_000;
const PUBLISHERS: usize = 8;
const DEADLINE: Duration = Duration::from_secs(120);

/// Restarts the local PostgreSQL cluster (the one CI runs on 127.0.0.1:5432).
fn restart_postgres() {
    let versions = std::fs::read_dir("/etc/postgresql").expect("a Debian PostgreSQL install under /etc/postgresql");
    let version = versions
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .max()
        .expect("a PostgreSQL cluster version");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {version} main restart failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_during_delivery_loses_nothing() {
    let started = Instant::now();
    let schema = ScratchSchema::for_test().await;
    // A receiver slow enough that deliveries are still running when the database goes away.
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_millis(20)))).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let env = [("HOOKRELAY_DATABASE_URL", schema.url()), ("HOOKRELAY_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1")];
    let server = ServerProcess::spawn(data_dir.path(), &env);
    let http = common::http_client();
    let app = common::create(&http, &format!("{}/api/v1/app/", server.base), json!({"name": "restart"})).await;
    common::create(&http, &format!("{}/api/v1/app/{app}/endpoint/", server.base), json!({"url": receiver.url()})).await;

    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|worker| {
            let (http, base, app) = (http.clone(), server.base.clone(), app.clone());
            let (acknowledged, statuses) = (acknowledged.clone(), statuses.clone());
            tokio::spawn(async move {
                for seq in (worker..MESSAGES).step_by(PUBLISHERS) {
                    let id = publish(&http, &base, &app, seq, &statuses).await;
                    acknowledged.lock().expect("acks").insert(id);
                }
            })
        })
        .collect();

    // Restart once deliveries are well under way and publishing is still going on.
    while receiver.count() < 200 {
        assert!(started.elapsed() < DEADLINE, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = (acknowledged.lock().expect("acks").len(), receiver.count());
    tokio::task::block_in_place(restart_postgres);
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    let acknowledged = acknowledged.lock().expect("acks").clone();
    assert_eq!(acknowledged.len(), MESSAGES);

    loop {
        let ids: HashSet<String> =
            receiver.all().iter().map(|request| request.header("webhook-id").to_owned()).collect();
        let missing = acknowledged.difference(&ids).count();
        if missing == 0 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{missing} acknowledged messages were never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses = statuses.lock().expect("statuses").clone();
    let unavailable = statuses.iter().filter(|status| **status == 503).count();
    println!(
        "restarted PostgreSQL after {} acknowledgements and {} deliveries; {unavailable} publishes got 503 and were \
         retried; everything delivered after {:.1} s ({} requests at the receiver)",
        before.0,
        before.1,
        started.elapsed().as_secs_f64(),
        receiver.count()
    );
    assert!(statuses.iter().all(|status| *status != 500), "a request failed with 500 instead of 503: {statuses:?}");
    let health = http.get(format!("{}/api/v1/health/", server.base)).send().await.expect("health");
    assert!(health.status().is_success(), "health after the restart: {}", health.status());
    drop(server);
}

/// Publishes with an idempotency key until acknowledged, recording every non-202 status seen.
async fn publish(http: &reqwest::Client, base: &str, app: &str, seq: usize, statuses: &Mutex<Vec<u16>>) -> String {
    let body = json!({"eventType": "restart.test", "payload": {"seq": seq}});
    let key = format!("restart-{seq}");
    let publication = Publication { token: TOKEN, app, body: &body, idempotency_key: &key };
    publish_until_accepted(
        http,
        &publication,
        |_| Some(base.to_owned()),
        |status| {
            if let Some(status) = status {
                statuses.lock().expect("statuses").push(status.as_u16());
            }
        },
    )
    .await
}
