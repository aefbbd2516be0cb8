//! Operational webhooks in chat format: a Slack-formatted event reaches the operator's URL when an endpoint
//! answers 410 Gone and is disabled.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, TestServer};
use serde_json::json;

#[tokio::test]
async fn a_disabled_endpoint_is_announced_in_slack_format() {
    let ops = Receiver::ok().await;
    let ops_url = ops.url();
    let server = TestServer::start_with(move |args| {
        args.operational_webhook_url = Some(ops_url);
        args.operational_webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        args.operational_webhook_format = Some("slack".into());
    })
    .await;
    let gone = Receiver::start(Arc::new(|_| (StatusCode::GONE, Duration::ZERO))).await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &gone.url(), json!({})).await;
    server.publish(&app, "a", json!({})).await;

    let text = common::wait_for("a Slack message about the disabled endpoint", Duration::from_secs(15), async || {
        ops.all()
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned())
            .find(|t| t.contains("disabled"))
    })
    .await;
    assert!(text.contains(&endpoint), "{text}");
    // Chat formats are still signed, so a relay in front of the chat can check them.
    let first = &ops.all()[0];
    assert!(first.header("webhook-signature").starts_with("v1,"));
    server.stop().await;
}
