//! Black-box tests of forged-request floods on `/ingest/{source}`: rejected requests are counted per source,
//! reason and minute (a handful of rows, whatever their number) with a bodiless sample, the statistics still
//! count every one of them, and a source's `rateLimit` answers 429 with `Retry-After` before any verification.

mod common;

use std::time::Instant;

use common::TestServer;
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_core::time::now_ms;
use serde_json::{Value, json};

const SECRET: &str = "whsec_floods_test_secret";
/// Forged requests sent by the flood test.
const FLOOD: usize = 500;
/// Requests sent at once.
const CONCURRENCY: usize = 25;
const BODY: &[u8] = br#"{"id": "evt_flood", "type": "invoice.paid", "marker": "BODY-MUST-NOT-BE-KEPT"}"#;

async fn stripe_source(server: &TestServer, extra: Value) -> Value {
    let app = server.create_app("Floods").await;
    let mut body = json!({"name": "Stripe", "provider": "stripe", "secret": SECRET, "appId": app});
    body.as_object_mut().expect("an object").extend(extra.as_object().cloned().unwrap_or_default());
    let (status, source) = server.post("/api/v1/source/", body).await;
    assert_eq!(status, 201, "{source}");
    source
}

/// A request signed with the wrong secret: what anyone who knows the URL can send.
fn forged_headers() -> Vec<(String, String)> {
    Provider::Stripe.sign(BODY, "whsec_forged", now_ms() / 1000, "")
}

/// Sends one request to `path` and returns its status and `Retry-After` header.
async fn send(http: &reqwest::Client, url: &str, headers: &[(String, String)]) -> (u16, Option<String>) {
    let mut request = http.post(url).header("content-type", "application/json").body(BODY.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("sent");
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status().as_u16(), retry_after)
}

/// Sends `count` requests, `CONCURRENCY` at a time, and returns how many got each status.
async fn flood(server: &TestServer, path: &str, count: usize, headers: Vec<(String, String)>) -> Vec<u16> {
    let url = server.url(path);
    let mut statuses = Vec::with_capacity(count);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        if i >= CONCURRENCY {
            statuses.push(tasks.join_next().await.expect("a task").expect("no panic"));
        }
        let (http, url, headers) = (server.http.clone(), url.clone(), headers.clone());
        tasks.spawn(async move { send(&http, &url, &headers).await.0 });
    }
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("no panic"));
    }
    statuses
}

fn sqlite_count(server_data: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        server_data.join("hookrelay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database read-only");
    conn.query_row(sql, [], |row| row.get(0)).unwrap_or_else(|err| panic!("{sql}: {err}"))
}

#[tokio::test]
async fn a_flood_of_forged_requests_is_counted_in_a_few_rows_without_bodies() {
    let server = TestServer::start().await;
    let source = stripe_source(&server, json!({})).await;
    let id = source["id"].as_str().expect("an id").to_owned();
    let path = format!("/ingest/{id}");

    let statuses = flood(&server, &path, FLOOD, forged_headers()).await;
    assert!(statuses.iter().all(|s| *s == 401), "every forged request is refused");
    let missing = flood(&server, &path, 3, vec![]).await;
    assert_eq!(missing, [400, 400, 400]);

    // The statistics count every request at once (this process writes its counts before answering them).
    let (status, stats) = server.get(&format!("/api/v1/source/{id}/stats/")).await;
    assert_eq!(status, 200, "{stats}");
    let expected = json!({"signature_mismatch": FLOOD, "missing_header": 3});
    for period in [&stats, &stats["last24h"]] {
        assert_eq!(period["rejected"], json!(FLOOD + 3), "{stats}");
        assert_eq!(period["received"], json!(FLOOD + 3), "{stats}");
        assert_eq!(period["rejectedByReason"], expected, "{stats}");
    }

    // They are listed by minute and reason, each with a sample that has no body and no signature.
    let (status, list) = server.get(&format!("/api/v1/source/{id}/rejection/")).await;
    assert_eq!(status, 200, "{list}");
    let rows = list["data"].as_array().expect("rows");
    assert!((2..=4).contains(&rows.len()), "two reasons within at most two minutes: {list}");
    let total: u64 = rows.iter().map(|row| row["count"].as_u64().expect("a count")).sum();
    assert_eq!(total, FLOOD as u64 + 3);
    let forged = rows.iter().find(|row| row["reason"] == "signature_mismatch").expect("a signature_mismatch row");
    let sample = &forged["sample"];
    assert!(sample["detail"].as_str().is_some_and(|d| d.contains("no signature matches")), "{forged}");
    assert!(sample["headers"]["stripe-signature"].as_str().is_some_and(|v| v.starts_with("[redacted, ")), "{forged}");
    assert_eq!(sample["headers"]["content-type"], "application/json", "{forged}");
    assert_eq!(sample["bodyBytes"], json!(BODY.len()), "{forged}");
    assert!(!list.to_string().contains("BODY-MUST-NOT-BE-KEPT") && !list.to_string().contains("v1="), "{list}");
    for row in rows {
        assert!(row["firstSeen"].as_str() <= row["lastSeen"].as_str(), "{row}");
    }
    // Rejected requests are not events: the event list points to the counts instead.
    let (status, refused) = server.get(&format!("/api/v1/source/{id}/event/?status=rejected")).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("/rejection/"), "{refused}");
    let (_, events) = server.get(&format!("/api/v1/source/{id}/event/")).await;
    assert_eq!(events["data"], json!([]));

    // Counted after the last read and before the stop: written when the server stops.
    assert_eq!(flood(&server, &path, 10, forged_headers()).await, [401; 10]);
    let mut server = server;
    server.server.take().expect("running").stop().await.expect("clean stop");
    let data_dir = server.data_dir.path();

    // The database grew by a handful of rows, not one per request.
    assert_eq!(sqlite_count(data_dir, "SELECT COUNT(*) FROM inbound_events"), 0, "no row per rejected request");
    let rows = sqlite_count(data_dir, "SELECT COUNT(*) FROM inbound_rejections");
    assert!((2..=4).contains(&rows), "{rows} rows for {} requests", FLOOD + 13);
    let counted = sqlite_count(data_dir, "SELECT SUM(count) FROM inbound_rejections");
    assert_eq!(counted, (FLOOD + 13) as i64, "the counts of the last seconds are written at shutdown");
}

#[tokio::test]
async fn a_source_over_its_rate_limit_gets_429_with_retry_after_before_verification() {
    let server = TestServer::start().await;
    let (status, refused) = {
        let app = server.create_app("Limits").await;
        let body = json!({"name": "S", "provider": "stripe", "secret": SECRET, "appId": app, "rateLimit": 0});
        server.post("/api/v1/source/", body).await
    };
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("rateLimit"), "{refused}");

    let source = stripe_source(&server, json!({"rateLimit": 5})).await;
    assert_eq!(source["rateLimit"], 5, "{source}");
    let id = source["id"].as_str().expect("an id").to_owned();
    let url = server.url(&format!("/ingest/{id}"));

    // Sent one after the other: the burst (5) is verified and refused for its signature, the rest are refused
    // for the rate before the signature is looked at.
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..30 {
        answers.push(send(&server.http, &url, &forged_headers()).await);
    }
    let elapsed = started.elapsed();
    assert!(answers[..5].iter().all(|(status, _)| *status == 401), "{answers:?}");
    let limited: Vec<_> = answers.iter().filter(|(status, _)| *status == 429).collect();
    // At 5 per second, at most 5 more can have been let through for every second the loop took.
    let refills = (elapsed.as_secs_f64() * 5.0).ceil() as usize;
    assert!(limited.len() + refills >= 25, "{} limited in {elapsed:?}: {answers:?}", limited.len());
    assert!(limited.iter().all(|(_, retry)| retry.as_deref() == Some("1")), "{answers:?}");
    let verified = answers.iter().filter(|(status, _)| *status == 401).count();
    assert_eq!(verified + limited.len(), 30, "{answers:?}");

    let (_, stats) = server.get(&format!("/api/v1/source/{id}/stats/")).await;
    let expected = json!({"signature_mismatch": verified, "rate_limit_exceeded": limited.len()});
    assert_eq!(stats["rejectedByReason"], expected, "{stats}");

    // Without the limit, nothing is refused for the rate.
    let (status, patched) = server
        .request(reqwest::Method::PATCH, &format!("/api/v1/source/{id}/"), Some(json!({"rateLimit": null})))
        .await;
    assert_eq!((status, &patched["rateLimit"]), (200, &Value::Null), "{patched}");
    for _ in 0..10 {
        assert_eq!(send(&server.http, &url, &forged_headers()).await.0, 401);
    }
    server.stop().await;
}
