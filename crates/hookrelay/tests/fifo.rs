//! FIFO endpoints: deliveries go one at a time in publish order, and a failing delivery holds back the ones
//! behind it until it succeeds (or its retries run out).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, TestServer, wait_for};
use serde_json::json;

/// The receiver's answer to its n-th request: about 30% fail, in a fixed pseudo-random pattern.
fn flaky(n: usize) -> StatusCode {
    if (n * 7919 + 13) % 10 < 3 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_arrive_in_publish_order_despite_failures() {
    let server = TestServer::start_with(|args| {
        args.retry_schedule = Some("0,0,0,0,0,0,0,0,0,0,0,0".into());
        // A 30% failure rate makes runs of failures likely over 1,000 messages; the breaker is tested elsewhere.
        args.breaker_threshold = Some(1_000);
    })
    .await;
    let receiver = Receiver::start(Arc::new(|n| (flaky(n), Duration::ZERO))).await;
    let app = server.create_app("Ledger").await;
    server.create_endpoint(&app, &receiver.url(), json!({ "ordering": "fifo" })).await;
    let mut published = Vec::new();
    for n in 0..1_000 {
        published.push(server.publish(&app, "ledger.entry", json!({ "n": n })).await);
    }

    let requests = wait_for("every message to be delivered", Duration::from_secs(120), async || {
        let all = receiver.all();
        let successes = (0..all.len()).filter(|&n| flaky(n) == StatusCode::OK).count();
        (successes >= published.len()).then_some(all)
    })
    .await;
    // Walk the requests: each must be for the message at the head of the queue, and the head moves on only
    // when the receiver accepted it.
    let mut head = 0;
    for (n, request) in requests.iter().enumerate() {
        assert!(head < published.len(), "request {n} came after every message was delivered");
        assert_eq!(
            request.header("webhook-id"),
            published[head],
            "request {n} delivered out of order (expected message #{head})"
        );
        if flaky(n) == StatusCode::OK {
            head += 1;
        }
    }
    assert_eq!(head, published.len());
    server.stop().await;
}

#[tokio::test]
async fn the_api_shows_which_message_blocks_a_fifo_endpoint() {
    let server = TestServer::start_with(|args| args.retry_schedule = Some("30".into())).await;
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO))).await;
    let app = server.create_app("Ledger").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({ "ordering": "fifo" })).await;
    let first = server.publish(&app, "a", json!({ "n": 1 })).await;
    server.publish(&app, "a", json!({ "n": 2 })).await;
    let blocked = wait_for("the endpoint to report its blocker", Duration::from_secs(15), async || {
        let (_, ep) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/")).await;
        ep.get("blockedBy").cloned()
    })
    .await;
    assert_eq!(blocked["msgId"], json!(first));
    assert_eq!(blocked["attempts"], json!(1));
    assert!(blocked["nextAttempt"].is_string(), "{blocked}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 1, "the second message waits behind the failing first one");
    let (_, ep) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/")).await;
    assert_eq!(ep["ordering"], json!("fifo"));
    server.stop().await;
}
