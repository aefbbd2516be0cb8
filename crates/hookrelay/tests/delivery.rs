//! Black-box tests of publishing and delivery over real HTTP: signing, routing, retries, idempotency, secret
//! rotation, resend, and isolation of slow endpoints.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Receiver, TestServer, wait_for};
use hookrelay_core::signing::EndpointSecret;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// Checks a delivery the way a Standard Webhooks verifier does, against every given secret.
fn signed_by(received: &common::Received, secret: &str) -> bool {
    let secret = EndpointSecret::parse(secret).expect("whsec secret");
    let id = received.header("webhook-id");
    let ts: i64 = received.header("webhook-timestamp").parse().expect("numeric timestamp");
    let expected = secret.sign(id, ts, &received.body);
    received.header("webhook-signature").split(' ').any(|sig| sig == expected)
}

#[tokio::test]
async fn a_published_message_arrives_signed_with_the_exact_payload_bytes() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (_, secret) = server.create_endpoint(&app, &receiver.url(), json!({ "headers": null })).await;

    let raw = r#"{"invoice":  "in_1", "amount": 4200, "nested": {"b": [1, 2.50]}}"#;
    let body = format!(r#"{{"eventType": "invoice.paid", "payload": {raw}}}"#);
    let response = server
        .http
        .post(server.url(&format!("/api/v1/app/{app}/msg")))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let msg: serde_json::Value = response.json().await.unwrap();

    let got = receiver.wait_for(1, WAIT).await;
    let delivery = &got[0];
    assert_eq!(&delivery.body[..], raw.as_bytes(), "payload bytes must be delivered exactly as published");
    assert_eq!(delivery.header("webhook-id"), msg["id"].as_str().unwrap());
    assert_eq!(delivery.header("svix-id"), delivery.header("webhook-id"));
    assert_eq!(delivery.header("svix-signature"), delivery.header("webhook-signature"));
    assert_eq!(delivery.header("content-type"), "application/json");
    assert!(delivery.header("user-agent").starts_with("hookrelay/"));
    assert!(signed_by(delivery, &secret));
    server.stop().await;
}

#[tokio::test]
async fn messages_fan_out_only_to_endpoints_that_match_type_and_channel() {
    let server = TestServer::start().await;
    server.create_event_types(&["user.created", "user.deleted"]).await;
    let (everything, only_created, only_eu) = (Receiver::ok().await, Receiver::ok().await, Receiver::ok().await);
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &everything.url(), json!({})).await;
    server.create_endpoint(&app, &only_created.url(), json!({ "filterTypes": ["user.created"] })).await;
    server.create_endpoint(&app, &only_eu.url(), json!({ "channels": ["eu"] })).await;

    server.publish(&app, "user.deleted", json!({ "n": 1 })).await;
    let (status, _) = server
        .post(
            &format!("/api/v1/app/{app}/msg/"),
            json!({ "eventType": "user.created", "payload": {"n": 2}, "channels": ["eu"] }),
        )
        .await;
    assert_eq!(status, 202);

    everything.wait_for(2, WAIT).await;
    only_created.wait_for(1, WAIT).await;
    only_eu.wait_for(1, WAIT).await;
    // Give any wrongly routed delivery time to show up before checking counts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(only_created.all().iter().map(|r| r.json()["n"].clone()).collect::<Vec<_>>(), vec![json!(2)]);
    assert_eq!(only_eu.all().iter().map(|r| r.json()["n"].clone()).collect::<Vec<_>>(), vec![json!(2)]);
    server.stop().await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_until_it_succeeds_and_every_attempt_is_logged() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(Arc::new(|n| {
        let status = if n < 2 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
        (status, Duration::ZERO)
    }))
    .await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let msg = server.publish(&app, "invoice.paid", json!({ "a": 1 })).await;

    let got = receiver.wait_for(3, WAIT).await;
    assert!(got.iter().all(|r| r.header("webhook-id") == msg), "retries keep the message id");

    let attempts = wait_for("three recorded attempts", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/attempt/endpoint/{endpoint}/")).await;
        let data = list["data"].as_array()?.clone();
        (data.len() == 3).then_some(data)
    })
    .await;
    // Newest first: the success, then the two failures.
    let codes: Vec<_> = attempts.iter().map(|a| a["responseStatusCode"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![200, 500, 500]);
    let statuses: Vec<_> = attempts.iter().map(|a| a["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, vec![0, 2, 2]);

    let (_, stats) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/stats/")).await;
    assert_eq!(stats, json!({ "success": 1, "pending": 0, "sending": 0, "fail": 0, "canceled": 0 }));
    server.stop().await;
}

#[tokio::test]
async fn a_delivery_is_marked_failed_when_the_schedule_is_exhausted() {
    let server = TestServer::start_with(|args| args.retry_schedule = Some("0".into())).await;
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::BAD_GATEWAY, Duration::ZERO))).await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let msg = server.publish(&app, "a", json!({})).await;
    receiver.wait_for(2, WAIT).await;
    let destinations = wait_for("the delivery to be failed", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/")).await;
        (list["data"][0]["status"] == json!(2)).then_some(list)
    })
    .await;
    assert_eq!(destinations["data"][0]["id"], json!(endpoint));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 2, "no attempt after the schedule ran out");
    server.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_response_and_publishes_once() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let send = || {
        server
            .http
            .post(server.url(&format!("/api/v1/app/{app}/msg/")))
            .bearer_auth(common::TOKEN)
            .header("idempotency-key", "auto_7f1b2c")
            .json(&json!({ "eventType": "a", "payload": { "n": 1 } }))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), 202);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second);

    receiver.wait_for(1, WAIT).await;
    let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn after_a_secret_rotation_deliveries_are_signed_with_old_and_new_secret() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (endpoint, old_secret) = server.create_endpoint(&app, &receiver.url(), json!({})).await;

    let (status, rotated) =
        server.post(&format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/rotate/"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let (_, current) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/")).await;
    let new_secret = current["key"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);

    server.publish(&app, "a", json!({ "n": 1 })).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(signed_by(&got[0], &old_secret), "receivers still on the old secret keep verifying");
    assert!(signed_by(&got[0], &new_secret));

    // Rotating to a chosen key.
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, _) =
        server.post(&format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/rotate/"), json!({ "key": chosen })).await;
    assert_eq!(status, 200);
    let (_, current) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/")).await;
    assert_eq!(current["key"], json!(chosen));
    server.stop().await;
}

#[tokio::test]
async fn a_manual_resend_delivers_again_once() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let msg = server.publish(&app, "a", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    wait_for("the first attempt to be recorded", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/attempt/msg/{msg}/")).await;
        (list["data"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let (status, body) =
        server.post(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/{endpoint}/resend/"), json!({})).await;
    assert_eq!((status, body), (202, json!({})));
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), msg);
    let attempts = wait_for("the manual attempt to be recorded", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/attempt/msg/{msg}/")).await;
        let data = list["data"].as_array()?.clone();
        (data.len() == 2).then_some(data)
    })
    .await;
    assert_eq!(attempts[0]["triggerType"], json!(1));
    server.stop().await;
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_a_healthy_one() {
    let server = TestServer::start_with(|args| args.delivery_timeout_secs = Some(30)).await;
    let hanging = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_secs(20)))).await;
    let healthy = Receiver::ok().await;
    let slow_app = server.create_app("Slow").await;
    let fast_app = server.create_app("Fast").await;
    server.create_endpoint(&slow_app, &hanging.url(), json!({})).await;
    server.create_endpoint(&fast_app, &healthy.url(), json!({})).await;
    for n in 0..100 {
        server.publish(&slow_app, "a", json!({ "n": n })).await;
    }
    let started = Instant::now();
    for n in 0..20 {
        server.publish(&fast_app, "a", json!({ "n": n })).await;
    }
    healthy.wait_for(20, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hanging endpoint never gets more than its concurrency limit at once.
    assert!(hanging.count() <= 10, "{} requests in flight to one endpoint", hanging.count());
    drop(server);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let server = TestServer::start_with(|args| args.allow_private_endpoints = Some(false)).await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let localhost_url = format!("http://localhost:{}/webhook", receiver.addr.port());
    // An IP address is refused when the endpoint is created; a name when it resolves, at delivery.
    let (status, refused) =
        server.post(&format!("/api/v1/app/{app}/endpoint/"), json!({ "url": receiver.url() })).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["detail"][0]["msg"].as_str().unwrap().contains("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"), "{refused}");
    let (by_name, _) = server.create_endpoint(&app, &localhost_url, json!({})).await;
    server.publish(&app, "a", json!({})).await;
    let attempt = wait_for("a refused attempt", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/attempt/endpoint/{by_name}/")).await;
        list["data"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(attempt["responseStatusCode"], json!(0));
    assert!(attempt["response"].as_str().unwrap().contains("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"), "{attempt}");
    assert_eq!(receiver.count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_answers_410_gone_is_disabled_at_once() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::GONE, Duration::ZERO))).await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let msg = server.publish(&app, "a", json!({})).await;
    let ep = wait_for("the endpoint to be disabled", WAIT, async || {
        let (_, ep) = server.get(&format!("/api/v1/app/{app}/endpoint/{endpoint}/")).await;
        (ep["disabled"] == json!(true)).then_some(ep)
    })
    .await;
    assert_eq!(ep["id"], json!(endpoint));
    let (_, destinations) = server.get(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/")).await;
    assert_eq!(destinations["data"][0]["status"], json!(2), "no retry after 410");
    server.publish(&app, "a", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.count(), 1, "a disabled endpoint gets nothing more");
    server.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_pushes_the_next_attempt_back() {
    // Schedule: 1 s, then 4 s. The receiver asks for 3 s on the first try, so the retry waits ~3 s, not ~1 s.
    let server = TestServer::start_with(|args| args.retry_schedule = Some("1,4".into())).await;
    let receiver = Receiver::start_with_headers(Arc::new(|n| {
        if n == 0 { (StatusCode::TOO_MANY_REQUESTS, vec![("retry-after", "3")]) } else { (StatusCode::OK, vec![]) }
    }))
    .await;
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let started = Instant::now();
    server.publish(&app, "a", json!({})).await;
    receiver.wait_for(2, WAIT).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(2_900), "retried after {waited:?}, before the receiver's Retry-After");
    assert!(waited < Duration::from_secs(4), "retried after {waited:?}");
    server.stop().await;
}

#[tokio::test]
async fn client_errors_stop_retries_when_configured() {
    let server = TestServer::start_with(|args| args.retry_client_errors = Some(false)).await;
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::BAD_REQUEST, Duration::ZERO))).await;
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let msg = server.publish(&app, "a", json!({})).await;
    wait_for("the delivery to fail", WAIT, async || {
        let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/")).await;
        (list["data"][0]["status"] == json!(2)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.count(), 1, "a 400 is final when HOOKRELAY_RETRY_CLIENT_ERRORS=false");
    server.stop().await;
}

#[tokio::test]
async fn an_endpoints_own_retry_rules_replace_the_servers() {
    // The server retries after 1 s and 1 s, 4xx included (its defaults here). BrainSAIT's receivers want a
    // retry at once, then their own waits, and a 4xx other than 429 to be final.
    let server = TestServer::start().await;
    let brainsait = Receiver::start(Arc::new(|n| {
        let status = match n {
            0 => StatusCode::TOO_MANY_REQUESTS,
            1 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, Duration::ZERO)
    }))
    .await;
    let plain = Receiver::start(Arc::new(|_| (StatusCode::BAD_REQUEST, Duration::ZERO))).await;
    let app = server.create_app("Acme").await;
    let rules = json!({"retrySchedule": [0, 1, 1, 1, 1], "retryClientErrors": false});
    let (own, _) = server.create_endpoint(&app, &brainsait.url(), rules).await;
    server.create_endpoint(&app, &plain.url(), json!({})).await;
    server.publish(&app, "a", json!({})).await;

    let tries = brainsait.wait_for(3, WAIT).await;
    plain.wait_for(3, WAIT).await;
    let after_429 = tries[1].at - tries[0].at;
    assert!(after_429 < Duration::from_millis(800), "the endpoint's first wait is 0 s; it waited {after_429:?}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(brainsait.count(), 3, "429 and 500 retried, the 400 final although the schedule had more waits");
    assert_eq!(plain.count(), 3, "the other endpoint keeps the server's rules: a 400 is retried, twice");

    let path = format!("/api/v1/app/{app}/endpoint/{own}/");
    let (_, ep) = server.get(&path).await;
    assert_eq!((&ep["retrySchedule"], &ep["retryClientErrors"]), (&json!([0, 1, 1, 1, 1]), &json!(false)), "{ep}");
    let (status, ep) = server.request(reqwest::Method::PATCH, &path, Some(json!({"retrySchedule": null}))).await;
    assert_eq!(status, 200, "{ep}");
    assert_eq!((&ep["retrySchedule"], &ep["retryClientErrors"]), (&json!(null), &json!(false)), "{ep}");

    for (body, says) in [
        (json!({"retrySchedule": vec![1; 51]}), "at most 50"),
        (json!({"retrySchedule": [604_801]}), "7 days"),
        (json!({"retrySchedule": [-1]}), ""),
        (json!({"retrySchedule": "5,300"}), ""),
        (json!({"retryClientErrors": "no"}), ""),
    ] {
        let (status, error) = server.request(reqwest::Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {error}");
        let field = body.as_object().and_then(|fields| fields.keys().next().cloned()).unwrap_or_default();
        assert_eq!(error["detail"][0]["loc"][1], json!(field), "{body}: {error}");
        assert!(error["detail"][0]["msg"].as_str().unwrap_or_default().contains(says), "{body}: {error}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_chooses_its_signature_headers_and_standard_header_families() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let options = json!({
        "secret": "a_secret_the_user_picked",
        "signatureHeaders": [{"header": "X-Acme-Signature", "algorithm": "sha1", "encoding": "base64", "prefix": "t="}],
        "standardHeaders": "webhook",
    });
    let (endpoint, secret) = server.create_endpoint(&app, &receiver.url(), options).await;
    assert_eq!(secret, "a_secret_the_user_picked", "the secret reads back as given");
    server.publish(&app, "a", json!({"n": 1})).await;
    let received = receiver.wait_for(1, WAIT).await.remove(0);
    let signature = received.header("x-acme-signature");
    // HMAC-SHA1 is 20 bytes: 28 characters of base64.
    assert!(signature.starts_with("t=") && signature.len() == 2 + 28, "{signature}");
    assert!(!received.header("webhook-signature").is_empty());
    assert!(received.headers.get("svix-signature").is_none(), "standardHeaders `webhook` sends no svix-* headers");

    let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/");
    let entry = |header: &str, algorithm: &str, encoding: &str, prefix: &str| json!({"header": header, "algorithm": algorithm, "encoding": encoding, "prefix": prefix});
    let five: Vec<_> = (0..5).map(|n| entry(&format!("X-Sig-{n}"), "sha256", "hex", "")).collect();
    for (body, loc, says) in [
        (json!({"signatureHeaders": five}), json!(["body", "signatureHeaders"]), "at most 4"),
        (
            json!({"signatureHeaders": [entry("X-Sig", "md5", "hex", "")]}),
            json!(["body", "signatureHeaders", "0", "algorithm"]),
            "sha1, sha256 or sha512",
        ),
        (
            json!({"signatureHeaders": [entry("X-Sig", "sha256", "base32", "")]}),
            json!(["body", "signatureHeaders", "0", "encoding"]),
            "hex or base64",
        ),
        (
            json!({"signatureHeaders": [entry("X-Sig", "sha256", "hex", ""), entry("x-sig", "sha1", "hex", "")]}),
            json!(["body", "signatureHeaders", "1", "header"]),
            "twice",
        ),
        (
            json!({"signatureHeaders": [entry("webhook-signature", "sha256", "hex", "")]}),
            json!(["body", "signatureHeaders", "0", "header"]),
            "set by hookrelay",
        ),
        (
            json!({"signatureHeaders": [entry("X-Sig", "sha256", "hex", &"p".repeat(65))]}),
            json!(["body", "signatureHeaders", "0", "prefix"]),
            "at most 64",
        ),
        (json!({"standardHeaders": "some"}), json!(["body", "standardHeaders"]), "both, webhook, svix or none"),
    ] {
        let (status, error) = server.request(reqwest::Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["detail"][0]["loc"], loc, "{body}: {error}");
        assert!(error["detail"][0]["msg"].as_str().unwrap_or_default().contains(says), "{body}: {error}");
    }
    for (secret, says) in [("too-short", "16 to 256"), ("has spaces in the middle", "without spaces")] {
        let body = json!({"url": receiver.url(), "secret": secret});
        let (status, error) = server.post(&format!("/api/v1/app/{app}/endpoint/"), body).await;
        assert_eq!(status, 422, "{secret}: {error}");
        assert_eq!(error["detail"][0]["loc"], json!(["body", "secret"]), "{error}");
        assert!(error["detail"][0]["msg"].as_str().unwrap_or_default().contains(says), "{secret}: {error}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_transformation_reshapes_cancels_or_fails_deliveries() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (endpoint, secret) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/transformation/");
    let set = |body: Value| server.request(reqwest::Method::PATCH, &path, Some(body));

    // Checked before it is stored: a syntax error names its line, and so does a handler that is missing.
    let (status, error) = set(json!({"code": "function handler(w) {\n  return w\n}}"})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["detail"][0]["loc"], json!(["body", "code"]));
    assert!(error["detail"][0]["msg"].as_str().unwrap().contains("(line 3)"), "{error}");
    let (status, error) = set(json!({"code": "x".repeat(65 * 1024)})).await;
    assert!(status == 422 && error["detail"][0]["msg"].as_str().unwrap().contains("at most"), "{error}");
    let (status, error) = set(json!({"enabled": true})).await;
    assert!(status == 422 && error["detail"][0]["loc"] == json!(["body", "enabled"]), "{error}");
    let (status, error) = set(json!({"code": "function handler(w) { return w; }", "variables": {"k": "v"}})).await;
    assert!(status == 422 && error["detail"][0]["loc"] == json!(["body", "variables"]), "{error}");

    let envelope = "function handler(webhook) {\n\
        if (webhook.payload.skip) { webhook.cancel = true; return webhook; }\n\
        if (webhook.payload.boom) { throw new Error('cannot wrap ' + webhook.eventType); }\n\
        webhook.payload = { id: webhook.msgId, event_type: webhook.eventType, data: webhook.payload };\n\
        webhook.headers = { 'X-Acme-Event': webhook.eventType, 'webhook-signature': 'forged' };\n\
        return webhook;\n}";
    let (status, body) = set(json!({"code": envelope, "enabled": true})).await;
    assert_eq!(status, 204, "{body}");
    let (_, shown) = server.get(&path).await;
    assert_eq!((shown["code"].as_str(), &shown["enabled"]), (Some(envelope), &json!(true)));

    let msg = server.publish(&app, "order.created", json!({"order": 7})).await;
    let received = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(received.json(), json!({"id": msg, "event_type": "order.created", "data": {"order": 7}}));
    assert_eq!(received.header("x-acme-event"), "order.created");
    assert!(signed_by(&received, &secret), "signed over the transformed body, and the forged header lost");

    let skipped = server.publish(&app, "order.created", json!({"skip": true})).await;
    let failing = server.publish(&app, "order.created", json!({"boom": true})).await;
    let attempts_of = |msg: String| {
        let server = &server;
        let app = app.clone();
        async move { server.get(&format!("/api/v1/app/{app}/attempt/msg/{msg}/")).await.1["data"].clone() }
    };
    let cancelled = wait_for("the cancelled attempt", WAIT, async || {
        let attempts = attempts_of(skipped.clone()).await;
        (attempts.as_array()?.len() == 1).then_some(attempts)
    })
    .await;
    assert_eq!((&cancelled[0]["status"], &cancelled[0]["responseStatusCode"]), (&json!(0), &json!(0)), "{cancelled}");
    assert!(cancelled[0]["response"].as_str().unwrap().contains("cancelled by the endpoint's transformation"));
    // A handler that throws fails the attempt with a reason naming the transformation, and is retried.
    let failed = wait_for("two failed attempts", WAIT, async || {
        let attempts = attempts_of(failing.clone()).await;
        (attempts.as_array()?.len() >= 2).then_some(attempts)
    })
    .await;
    let reason = failed[0]["response"].as_str().unwrap();
    assert!(reason.contains("the transformation threw (line 3): Error: cannot wrap order.created"), "{reason}");
    assert_eq!(receiver.count(), 1, "neither the cancelled nor the failing delivery reached the receiver");

    let (status, _) = set(json!({"code": null})).await;
    assert_eq!(status, 204);
    assert_eq!(server.get(&path).await.1, json!({"code": null, "enabled": false}));
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_rate_limit_spaces_its_deliveries() {
    let server = TestServer::start().await;
    let limited = Receiver::ok().await;
    let free = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &limited.url(), json!({ "throttleRate": 5 })).await;
    server.create_endpoint(&app, &free.url(), json!({})).await;
    let started = Instant::now();
    for n in 0..11 {
        server.publish(&app, "a", json!({ "n": n })).await;
    }
    free.wait_for(11, WAIT).await;
    let unthrottled = started.elapsed();
    limited.wait_for(11, WAIT).await;
    let throttled = started.elapsed();
    // 5 per second: the 11th request starts 2 s after the first.
    assert!(throttled >= Duration::from_millis(1_900), "11 deliveries at 5/s took only {throttled:?}");
    assert!(unthrottled < Duration::from_millis(1_500), "the other endpoint was held back: {unthrottled:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failing_endpoint_is_paused_and_its_backlog_keeps_its_retries() {
    use std::sync::atomic::Ordering;
    let (receiver, healthy) = Receiver::flaky().await;
    let server = TestServer::start_with(|args| {
        args.retry_schedule = Some("0,0,0,0,0,0,0,0,0,0".into());
        args.endpoint_concurrency = Some(1);
        args.breaker_threshold = Some(3);
        args.breaker_pause_secs = Some(1);
    })
    .await;
    let app = server.create_app("Acme").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    for n in 0..20 {
        server.publish(&app, "a", json!({ "n": n })).await;
    }
    // Three failures open the breaker; then nothing is sent until the pause ends.
    receiver.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 3, "requests went out while the endpoint was paused");
    // After the pause one probe goes out, fails, and the pause doubles.
    receiver.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(receiver.count(), 4, "more than one probe per pause");

    healthy.store(true, Ordering::SeqCst);
    let got = receiver.wait_for(24, WAIT).await;
    let delivered: std::collections::HashSet<_> = got[4..].iter().map(|r| r.json()["n"].clone()).collect();
    assert_eq!(delivered.len(), 20, "every message arrives once the probe succeeds");
    // None was given up on: 10 retries were available and at most 2 were used by any message.
    let (_, list) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    for msg in list["data"].as_array().unwrap() {
        let (_, dest) = server.get(&format!("/api/v1/app/{app}/msg/{}/endpoint/", msg["id"].as_str().unwrap())).await;
        let status = &dest["data"][0]["status"];
        assert!(status == &json!(0) || status == &json!(1) || status == &json!(3), "{dest}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_and_a_healthy_one_is_not() {
    let server = TestServer::start_with(|args| {
        args.retry_schedule = Some("1,1,1,1,1,1,1,1".into());
        args.disable_failing_after_secs = Some(2);
    })
    .await;
    let failing = Receiver::start(Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO))).await;
    let healthy = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (failing_id, _) = server.create_endpoint(&app, &failing.url(), json!({})).await;
    let (healthy_id, _) = server.create_endpoint(&app, &healthy.url(), json!({})).await;
    server.publish(&app, "a", json!({})).await;
    wait_for("the failing endpoint to be disabled", WAIT, async || {
        let (_, ep) = server.get(&format!("/api/v1/app/{app}/endpoint/{failing_id}/")).await;
        (ep["disabled"] == json!(true)).then_some(())
    })
    .await;
    assert!(failing.count() >= 2, "disabled only after failing for a while");
    let (_, ep) = server.get(&format!("/api/v1/app/{app}/endpoint/{healthy_id}/")).await;
    assert_eq!(ep["disabled"], json!(false));
    server.stop().await;
}

#[tokio::test]
async fn changing_a_paused_endpoint_resumes_it_at_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let receiver = Receiver::start(Arc::new(move |_| {
        let status = if flag.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        (status, Duration::ZERO)
    }))
    .await;
    let server = TestServer::start_with(|args| {
        args.retry_schedule = Some("0,0,0,0,0,0".into());
        args.endpoint_concurrency = Some(1);
        args.breaker_threshold = Some(2);
        args.breaker_pause_secs = Some(600);
    })
    .await;
    let app = server.create_app("Acme").await;
    let (endpoint, _) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    for n in 0..5 {
        server.publish(&app, "a", json!({ "n": n })).await;
    }
    receiver.wait_for(2, WAIT).await;
    // Paused for ten minutes. The customer fixes its credentials; the user updates the endpoint's headers.
    healthy.store(true, Ordering::SeqCst);
    let (status, _) = server
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/app/{app}/endpoint/{endpoint}/headers/"),
            Some(json!({ "headers": { "authorization": "Bearer fixed" } })),
        )
        .await;
    assert_eq!(status, 204);
    let got = receiver.wait_for(7, WAIT).await;
    assert!(got[2..].iter().all(|r| r.header("authorization") == "Bearer fixed"));
    server.stop().await;
}
