//! Black-box tests of inbound sources over real HTTP: what `/ingest/{source}` answers for verified, duplicate
//! and rejected requests, that a verified event reaches the application's endpoints byte for byte with a
//! Standard Webhooks signature, and the source's event list, rejection counts and statistics (floods of forged
//! requests and rate limits: tests/floods.rs). The per-provider signature
//! matrix, with signatures made by the providers' own libraries, is in tests/interop/test_inbound.py.

mod common;

use std::time::Duration;

use common::{Receiver, TestServer};
use hookrelay_core::inbound::{Provider, Verifier};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const STRIPE_SECRET: &str = "whsec_stripe_test_secret";

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Creates an app and a source for it, returning (app id, source).
async fn source(server: &TestServer, body: Value) -> (String, Value) {
    let app = server.create_app("Inbound").await;
    let mut body = body;
    body["appId"] = json!(app);
    let (status, source) = server.post("/api/v1/source/", body).await;
    assert_eq!(status, 201, "{source}");
    (app, source)
}

/// Sends a body to a source's ingest URL with the given headers (no bearer token), returning status and JSON.
async fn ingest(server: &TestServer, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    let mut request = server.http.post(server.url(path)).header("content-type", "application/json").body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn stripe_headers(body: &[u8], secret: &str, at: i64) -> Vec<(String, String)> {
    Provider::Stripe.sign(body, secret, at, "")
}

#[tokio::test]
async fn a_verified_event_is_published_once_and_reaches_the_endpoint_byte_for_byte() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let (app, source) =
        source(&server, json!({"name": "Stripe", "provider": "stripe", "secret": STRIPE_SECRET, "uid": "stripe-live"}))
            .await;
    assert_eq!(source["ingestUrl"], format!("/ingest/{}", source["id"].as_str().unwrap()));
    assert!(source.get("secret").is_none(), "the secret is never sent back: {source}");
    let (_, endpoint_secret) = server.create_endpoint(&app, &receiver.url(), json!({})).await;

    let body = br#"{"id": "evt_1", "type": "invoice.paid",  "data": {"amount": 4200}}"#;
    let (status, answer) =
        ingest(&server, "/ingest/stripe-live", &stripe_headers(body, STRIPE_SECRET, now_secs()), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["received"], true);
    assert_eq!(answer["duplicate"], false);
    let msg_id = answer["messageId"].as_str().expect("message id").to_owned();

    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(&delivered[0].body[..], &body[..], "the provider's body is forwarded unchanged");
    assert_eq!(delivered[0].header("webhook-id"), msg_id);
    let secret = EndpointSecret::parse(&endpoint_secret).expect("whsec");
    let ts: i64 = delivered[0].header("webhook-timestamp").parse().expect("timestamp");
    assert!(delivered[0].header("webhook-signature").split(' ').any(|sig| sig == secret.sign(&msg_id, ts, body)));
    let (_, msg) = server.get(&format!("/api/v1/app/{app}/msg/{msg_id}")).await;
    assert_eq!(msg["eventType"], "invoice.paid");

    // Stripe retries the same event (a new timestamp, the same id): acknowledged, not published again.
    let (status, again) =
        ingest(&server, "/ingest/stripe-live", &stripe_headers(body, STRIPE_SECRET, now_secs()), body).await;
    assert_eq!((status, &again["duplicate"], &again["messageId"]), (200, &json!(true), &json!(msg_id)));
    let (_, messages) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1, "a duplicate is not delivered again");
    server.stop().await;
}

#[tokio::test]
async fn rejections_have_the_right_status_publish_nothing_and_are_counted() {
    let server = TestServer::start_with(|args| args.ingest_max_body_bytes = Some(2048)).await;
    let (app, source) = source(&server, json!({"name": "Stripe", "provider": "stripe", "secret": STRIPE_SECRET})).await;
    let path = source["ingestUrl"].as_str().unwrap().to_owned();
    let body = br#"{"id": "evt_2", "type": "customer.created"}"#;
    let now = now_secs();

    /// A request and what it must get: (name, headers, body, status, code).
    type Case = (&'static str, Vec<(String, String)>, Vec<u8>, u16, &'static str);
    let cases: Vec<Case> = vec![
        ("missing header", vec![], body.to_vec(), 400, "missing_header"),
        (
            "malformed header",
            vec![("Stripe-Signature".into(), "v1=abc".into())],
            body.to_vec(),
            400,
            "malformed_header",
        ),
        ("wrong secret", stripe_headers(body, "whsec_wrong", now), body.to_vec(), 401, "signature_mismatch"),
        (
            "tampered body",
            stripe_headers(body, STRIPE_SECRET, now),
            br#"{"id": "evt_2", "type": "customer.deleted"}"#.to_vec(),
            401,
            "signature_mismatch",
        ),
        (
            "stale timestamp",
            stripe_headers(body, STRIPE_SECRET, now - 600),
            body.to_vec(),
            401,
            "timestamp_outside_tolerance",
        ),
        ("not JSON", stripe_headers(b"a=1&b=2", STRIPE_SECRET, now), b"a=1&b=2".to_vec(), 400, "body_not_json"),
        ("too large", stripe_headers(&[b' '; 4096], STRIPE_SECRET, now), vec![b' '; 4096], 413, "payload_too_large"),
    ];
    for (name, headers, body, status, code) in &cases {
        let (got, answer) = ingest(&server, &path, headers, body).await;
        assert_eq!((got, answer["code"].as_str()), (*status, Some(*code)), "{name}: {answer}");
        assert!(!answer.to_string().contains(STRIPE_SECRET), "{name}: the secret leaked: {answer}");
        if *status == 413 {
            let detail = answer["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("2048 bytes") && detail.contains("HOOKRELAY_INGEST_MAX_BODY_BYTES"), "{answer}");
        }
    }
    let (status, answer) =
        ingest(&server, "/ingest/src_unknown", &stripe_headers(body, STRIPE_SECRET, now), body).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("not_found")));

    let (_, messages) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    assert_eq!(messages["data"], json!([]), "nothing is published for a rejected request");

    let (status, stats) = server.get(&format!("/api/v1/source/{}/stats/", source["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{stats}");
    let expected = json!({
        "received": 7, "verified": 0, "rejected": 7, "duplicates": 0,
        "rejectedByReason": {
            "missing_header": 1, "malformed_header": 1, "signature_mismatch": 2, "timestamp_outside_tolerance": 1,
            "body_not_json": 1, "payload_too_large": 1
        }
    });
    for period in [&stats, &stats["last24h"]] {
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&period[key], value, "{key} in {stats}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_event_list_and_stats_show_every_request() {
    let server = TestServer::start().await;
    let (_, source) = source(&server, json!({"name": "Stripe", "provider": "stripe", "secret": STRIPE_SECRET})).await;
    let id = source["id"].as_str().unwrap().to_owned();
    let path = format!("/ingest/{id}");
    let body = br#"{"id": "evt_3", "type": "charge.succeeded"}"#;
    for _ in 0..2 {
        assert_eq!(ingest(&server, &path, &stripe_headers(body, STRIPE_SECRET, now_secs()), body).await.0, 200);
    }
    assert_eq!(ingest(&server, &path, &stripe_headers(body, "whsec_wrong", now_secs()), body).await.0, 401);

    let (status, events) = server.get(&format!("/api/v1/source/{id}/event/")).await;
    assert_eq!(status, 200, "{events}");
    let statuses: Vec<&str> =
        events["data"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["duplicate", "verified"], "newest first: {events}");
    let verified = &events["data"][1];
    assert_eq!((&verified["eventId"], &verified["eventType"]), (&json!("evt_3"), &json!("charge.succeeded")));
    assert_eq!(events["data"][0]["messageId"], verified["messageId"], "a duplicate points at the original");

    // Rejected requests are counted per minute and reason rather than listed.
    let (_, only_duplicates) = server.get(&format!("/api/v1/source/{id}/event/?status=duplicate")).await;
    assert_eq!(only_duplicates["data"].as_array().unwrap().len(), 1);
    let (status, rejections) = server.get(&format!("/api/v1/source/{id}/rejection/")).await;
    assert_eq!(status, 200, "{rejections}");
    assert_eq!(rejections["data"].as_array().unwrap().len(), 1, "{rejections}");
    assert_eq!(
        (&rejections["data"][0]["reason"], &rejections["data"][0]["count"]),
        (&json!("signature_mismatch"), &json!(1))
    );
    for bad in ["rejected", "lost"] {
        let (status, answer) = server.get(&format!("/api/v1/source/{id}/event/?status={bad}")).await;
        assert_eq!(status, 422, "{answer}");
    }

    let (_, stats) = server.get(&format!("/api/v1/source/{id}/stats/")).await;
    assert_eq!(
        (&stats["received"], &stats["verified"], &stats["duplicates"], &stats["rejected"]),
        (&json!(3), &json!(1), &json!(1), &json!(1)),
        "{stats}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_stays_valid_for_its_grace_period() {
    let server = TestServer::start().await;
    let (_, source) = source(&server, json!({"name": "GitHub", "provider": "github", "secret": "old-secret"})).await;
    let id = source["id"].as_str().unwrap().to_owned();
    let path = format!("/ingest/{id}");
    let send = |secret: &'static str, delivery: &'static str| {
        let body = br#"{"action": "opened"}"#;
        let mut headers = Provider::Github.sign(body, secret, 0, delivery);
        headers.push(("X-GitHub-Event".into(), "issues".into()));
        let server = &server;
        let path = path.clone();
        async move { ingest(server, &path, &headers, body).await.0 }
    };

    let (status, patched) =
        server.request(Method::PATCH, &format!("/api/v1/source/{id}/"), Some(json!({"secret": "new-secret"}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(send("new-secret", "d-1").await, 200);
    assert_eq!(send("old-secret", "d-2").await, 200, "the old secret works during the grace period");
    assert_eq!(send("other-secret", "d-3").await, 401);

    // Rotating again with no grace revokes the previous secret at once.
    let body = json!({"secret": "newest-secret", "secretGraceSecs": 0});
    assert_eq!(server.request(Method::PATCH, &format!("/api/v1/source/{id}/"), Some(body)).await.0, 200);
    assert_eq!(send("newest-secret", "d-4").await, 200);
    assert_eq!(send("new-secret", "d-5").await, 401);
    // The still-unexpired first secret keeps its own grace period.
    assert_eq!(send("old-secret", "d-6").await, 200);
    server.stop().await;
}

#[tokio::test]
async fn slack_url_verification_is_answered_after_verification() {
    let server = TestServer::start().await;
    let (app, source) = source(&server, json!({"name": "Slack", "provider": "slack", "secret": "slack-signing"})).await;
    let path = source["ingestUrl"].as_str().unwrap().to_owned();
    let body = br#"{"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}"#;
    let slack = Provider::from_name("slack").unwrap();

    let (status, answer) = ingest(&server, &path, &slack.sign(body, "slack-signing", now_secs(), ""), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}));
    let (status, _) = ingest(&server, &path, &slack.sign(body, "wrong", now_secs(), ""), body).await;
    assert_eq!(status, 401, "an unsigned challenge gets no answer");
    let (_, messages) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    assert_eq!(messages["data"], json!([]), "a challenge is not an event");

    let event = br#"{"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}"#;
    let (status, answer) = ingest(&server, &path, &slack.sign(event, "slack-signing", now_secs(), ""), event).await;
    assert_eq!((status, &answer["duplicate"]), (200, &json!(false)), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn source_configuration_is_validated_and_managed() {
    let server = TestServer::start().await;
    let app = server.create_app("Inbound").await;
    let cases = [
        (json!({"name": "x", "provider": "paypal", "secret": "s", "appId": app}), "provider"),
        (json!({"name": "x", "provider": "stripe", "secret": "", "appId": app}), "secret"),
        (json!({"name": "x", "provider": "svix", "secret": "whsec_!!", "appId": app}), "secret"),
        (json!({"name": "x", "provider": "stripe", "secret": "s", "appId": "app_missing"}), "appId"),
        (
            json!({"name": "x", "provider": "stripe", "secret": "s", "appId": app, "signatureHeader": "X"}),
            "signatureHeader",
        ),
        (
            json!({"name": "x", "provider": "hmac-sha256", "secret": "s", "appId": app, "signatureEncoding": "rot13"}),
            "signatureEncoding",
        ),
        (json!({"name": "x", "provider": "stripe", "secret": "s", "appId": app, "toleranceSecs": 0}), "toleranceSecs"),
        (json!({"name": "x", "provider": "stripe", "secret": "s", "appId": app, "uid": "src_x"}), "uid"),
    ];
    for (body, field) in cases {
        let (status, answer) = server.post("/api/v1/source/", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", field]), "{body}: {answer}");
    }

    let body = json!({"name": "Corp", "provider": "hmac-sha256", "secret": "s3cret", "appId": app, "uid": "corp",
                      "signatureHeader": "X-Corp-Signature", "eventTypeField": "event"});
    let (status, created) = server.post("/api/v1/source/", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["signatureHeader"], "X-Corp-Signature");
    assert_eq!(created["signaturePrefix"], "sha256=");
    let (status, conflict) = server
        .post(
            "/api/v1/source/",
            json!({"name": "Again", "provider": "github", "secret": "s", "appId": app, "uid": "corp"}),
        )
        .await;
    assert_eq!(status, 409, "{conflict}");

    let (status, patched) = server
        .request(Method::PATCH, "/api/v1/source/corp/", Some(json!({"signatureHeader": null, "name": "Corp 2"})))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (&patched["signatureHeader"], &patched["eventTypeField"]),
        (&json!("X-Webhook-Signature"), &json!("event"))
    );
    let (status, refused) =
        server.request(Method::PATCH, "/api/v1/source/corp/", Some(json!({"provider": "svix"}))).await;
    assert_eq!((status, &refused["detail"][0]["loc"]), (422, &json!(["body", "secret"])), "{refused}");
    let (_, listed) = server.get("/api/v1/source/").await;
    assert_eq!(listed["data"][0]["name"], "Corp 2");

    // The generic scheme, as a home-grown sender signs: sha256=<hex> of the body in the default header.
    let body = br#"{"event": "user.created", "id": 7}"#;
    let headers = Provider::from_name("hmac-sha256").unwrap().sign(body, "s3cret", 0, "");
    let (status, answer) = ingest(&server, "/ingest/corp", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    let (_, msg) = server.get(&format!("/api/v1/app/{app}/msg/{}", answer["messageId"].as_str().unwrap())).await;
    assert_eq!(msg["eventType"], "user.created");

    assert_eq!(server.request(Method::DELETE, "/api/v1/source/corp/", None).await.0, 204);
    assert_eq!(server.get("/api/v1/source/corp/").await.0, 404);
    assert_eq!(ingest(&server, "/ingest/corp", &headers, body).await.0, 404);
    // Admin routes need the token; the ingest route does not (it was answered above without one).
    let response = server.http.get(server.url("/api/v1/source/")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

/// Inbound bodies have the same depth limit as the API's (issue 15, finding 9): a signed body nested 128 levels
/// deep is published, one level more is refused (and recorded as a rejection).
#[tokio::test]
async fn inbound_bodies_nested_beyond_the_limit_are_refused() {
    let server = TestServer::start().await;
    let (_, created) =
        source(&server, json!({"name": "Deep", "provider": "hmac-sha256", "secret": "s3cret", "uid": "deep"})).await;
    assert_eq!(created["uid"], "deep");
    let provider = Provider::from_name("hmac-sha256").expect("generic provider");
    for (levels, expected) in [(128, 200), (129, 400)] {
        let body = format!(r#"{{"a": {}{}}}"#, "[".repeat(levels - 1), "]".repeat(levels - 1));
        let headers = provider.sign(body.as_bytes(), "s3cret", now_secs(), "");
        let (status, answer) = ingest(&server, "/ingest/deep", &headers, body.as_bytes()).await;
        assert_eq!(status, expected, "{levels} levels: {answer}");
        if expected == 400 {
            assert_eq!(answer["code"], "body_too_deep", "{answer}");
        }
    }
    server.stop().await;
}
