//! Black-box tests of `hookrelay trigger`, the built binary against a real server: publishing an event type's
//! example (or a given payload) to an application, and sending each provider's fixture to an inbound source,
//! signed by the server's admin-only sign route, through the real verification.

mod common;

use std::time::Duration;

use common::{Receiver, TOKEN, TestServer};
use hookrelay_core::inbound::{Headers, InboundRequest, Provider, Verifier};
use hookrelay_core::time::now_ms;
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const STRIPE_SECRET: &str = "whsec_trigger_stripe_secret";
/// `whsec_` and the base64 of 32 bytes, as Clerk's dashboard shows it.
const CLERK_SECRET: &str = "whsec_dHJpZ2dlci1jbGVyay1zZWNyZXQta2V5LTMyYnl0ZXM=";

/// Runs `hookrelay trigger …` against the server with the admin token (or `token`); returns (success, stdout,
/// stderr). The tests run on a multi-threaded runtime, so the server answers while this blocks one thread.
fn trigger_as(server: &TestServer, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("trigger")
        .args(args)
        .args(["--url", &server.base, "--token", token])
        .env_remove("HOOKRELAY_ADMIN_TOKEN")
        .env_remove("HOOKRELAY_URL")
        .output()
        .expect("hookrelay trigger runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8 output");
    (output.status.success(), text(output.stdout), text(output.stderr))
}

fn trigger(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    trigger_as(server, TOKEN, args)
}

/// The `msg_…` id a trigger printed.
fn message_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("msg_"))
        .unwrap_or_else(|| panic!("no message id in {stdout:?}"))
        .to_owned()
}

async fn create_source(server: &TestServer, app: &str, body: Value) {
    let mut body = body;
    body["appId"] = json!(app);
    let (status, source) = server.post("/api/v1/source/", body).await;
    assert_eq!(status, 201, "{source}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_types_example_is_published_to_the_only_app_and_delivered() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let example = json!({"invoice": "in_1", "amountPaid": 4200, "currency": "eur"});
    let (status, body) = server
        .post(
            "/api/v1/event-type/",
            json!({
                "name": "invoice.paid",
                "description": "An invoice was paid",
                "schemas": {"1": {"examples": [{"old": true}]}, "2": {"type": "object", "examples": [example]}},
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let app = server.create_app("Billing").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;

    let (ok, stdout, stderr) = trigger(&server, &["invoice.paid"]);
    assert!(ok, "{stderr}");
    let msg_id = message_id(&stdout);
    assert_eq!(stdout.trim(), format!("published invoice.paid as {msg_id} to {app} (1 endpoint subscribed)"));
    let (status, msg) = server.get(&format!("/api/v1/app/{app}/msg/{msg_id}")).await;
    assert_eq!(status, 200, "{msg}");
    assert_eq!((&msg["eventType"], &msg["payload"]), (&json!("invoice.paid"), &example), "the newest schema's example");

    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(delivered[0].json(), example);
    assert_eq!(delivered[0].header("webhook-id"), msg_id);

    let (ok, stdout, stderr) = trigger(&server, &["invoice.paid", "--channel", "eu", "--channel", "vip"]);
    assert!(ok, "{stderr}");
    let (_, msg) = server.get(&format!("/api/v1/app/{app}/msg/{}", message_id(&stdout))).await;
    assert_eq!(msg["channels"], json!(["eu", "vip"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_comes_from_a_file_and_several_apps_need_app() {
    let server = TestServer::start().await;
    for uid in ["billing", "shipping"] {
        let (status, app) = server.post("/api/v1/app/", json!({"name": uid, "uid": uid})).await;
        assert_eq!(status, 201, "{app}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("order.json");
    std::fs::write(&file, r#"{"order": 17, "carrier": "dhl"}"#).expect("write payload");
    let payload = format!("@{}", file.display());

    let (ok, _, stderr) = trigger(&server, &["order.shipped", "--payload", &payload]);
    assert!(!ok, "two applications: which one is not guessed");
    assert!(stderr.contains("--app") && stderr.contains("(billing)") && stderr.contains("(shipping)"), "{stderr}");

    let (ok, stdout, stderr) = trigger(&server, &["order.shipped", "--payload", &payload, "--app", "shipping"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("no endpoint subscribed"), "{stdout}");
    let (status, msg) = server.get(&format!("/api/v1/app/shipping/msg/{}", message_id(&stdout))).await;
    assert_eq!(status, 200, "{msg}");
    assert_eq!(
        (&msg["eventType"], &msg["payload"]),
        (&json!("order.shipped"), &json!({"order": 17, "carrier": "dhl"}))
    );

    let (ok, stdout, stderr) =
        trigger(&server, &["order.shipped", "--payload", r#"{"inline": true}"#, "--app", "billing"]);
    assert!(ok, "{stderr}");
    let (_, msg) = server.get(&format!("/api/v1/app/billing/msg/{}", message_id(&stdout))).await;
    assert_eq!(msg["payload"], json!({"inline": true}));

    let (ok, _, stderr) = trigger(&server, &["order.shipped", "--payload", "[1, 2]", "--app", "billing"]);
    assert!(!ok);
    assert!(stderr.contains("JSON object"), "{stderr}");
    // The server's explanation comes through: an invalid event type name is refused with its rule.
    let (ok, _, stderr) = trigger(&server, &["order shipped!", "--payload", "{}", "--app", "billing"]);
    assert!(!ok);
    assert!(stderr.contains("422") && stderr.contains("eventType"), "{stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_type_without_an_example_is_a_clear_error() {
    let server = TestServer::start().await;
    let app = server.create_app("Accounts").await;
    server.create_event_types(&["user.signed_up"]).await;

    let (ok, stdout, stderr) = trigger(&server, &["user.signed_up"]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("`user.signed_up` has no example") && stderr.contains("--payload"), "{stderr}");

    let (ok, _, stderr) = trigger(&server, &["no.such.type"]);
    assert!(!ok);
    assert!(stderr.contains("create the event type") && stderr.contains("404"), "{stderr}");

    let (_, messages) = server.get(&format!("/api/v1/app/{app}/msg/")).await;
    assert_eq!(messages["data"], json!([]), "nothing was published");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_providers_fixture_is_verified_by_its_source_and_published() {
    let server = TestServer::start().await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Inbound").await;
    server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let sources = [
        json!({"name": "Stripe", "uid": "stripe", "provider": "stripe", "secret": STRIPE_SECRET}),
        json!({"name": "Clerk", "uid": "clerk", "provider": "svix", "secret": CLERK_SECRET}),
        json!({"name": "GitHub", "uid": "github", "provider": "github", "secret": "a long random github secret"}),
        json!({"name": "Shopify", "uid": "shop", "provider": "shopify", "secret": "shpss_trigger_secret"}),
        json!({"name": "Slack", "uid": "slack", "provider": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5",
               "eventTypeField": "event.type"}),
        json!({"name": "Corp", "uid": "corp", "provider": "hmac-sha256", "secret": "corp-secret",
               "timestampHeader": "X-Corp-Timestamp", "eventTypeField": "event.name", "eventIdHeader": "X-Corp-Event"}),
    ];
    for source in sources {
        create_source(&server, &app, source).await;
    }

    // (source, what is triggered, the event type the source records)
    let cases = [
        ("stripe", "invoice.paid", "invoice.paid"),
        ("stripe", "payment_intent.succeeded", "payment_intent.succeeded"),
        ("stripe", "customer.created", "customer.created"),
        ("stripe", "charge.refunded", "charge.refunded"),
        ("clerk", "user.created", "user.created"),
        ("github", "push", "push"),
        ("github", "issues", "issues.opened"),
        ("github", "ping", "ping"),
        ("shop", "orders/create", "orders.create"),
        ("slack", "app_mention", "app_mention"),
        ("slack", "message", "message"),
        ("corp", "order.shipped", "order.shipped"),
    ];
    for (source, event_type, recorded) in cases {
        let (ok, stdout, stderr) = trigger(&server, &["--source", source, event_type]);
        assert!(ok, "{source} {event_type}: {stderr}");
        assert!(
            stdout.starts_with(&format!("triggered {event_type} on source {source}: 200 OK, published {recorded} as ")),
            "{stdout}"
        );
        let msg_id = message_id(&stdout);
        let (_, events) = server.get(&format!("/api/v1/source/{source}/event/")).await;
        let newest = &events["data"][0];
        assert_eq!(
            (&newest["status"], &newest["eventType"], &newest["messageId"]),
            (&json!("verified"), &json!(recorded), &json!(msg_id)),
            "{source} {event_type}: {events}"
        );
        let (status, msg) = server.get(&format!("/api/v1/app/{app}/msg/{msg_id}")).await;
        assert_eq!((status, &msg["eventType"]), (200, &json!(recorded)), "{msg}");
    }
    let delivered = receiver.wait_for(cases.len(), WAIT).await;
    let stripe = delivered.iter().map(|request| request.json()).find(|body| body["type"] == "invoice.paid");
    let stripe = stripe.expect("the Stripe event was delivered");
    assert_eq!((&stripe["object"], &stripe["livemode"]), (&json!("event"), &json!(false)));
    assert_eq!(stripe["data"]["object"]["object"], "invoice");

    // Fresh ids every time: triggering the same fixture again is a new event, not a duplicate.
    let (ok, stdout, stderr) = trigger(&server, &["--source", "stripe", "invoice.paid"]);
    assert!(ok && !stdout.contains("duplicate"), "{stdout} {stderr}");
    let (_, stats) = server.get("/api/v1/source/stripe/stats/").await;
    assert_eq!((&stats["verified"], &stats["duplicates"]), (&json!(5), &json!(0)), "{stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_source_lists_fixtures_defaults_and_reports_refusals() {
    let server = TestServer::start().await;
    let app = server.create_app("Inbound").await;
    create_source(&server, &app, json!({"name": "Slack", "uid": "slack", "provider": "slack", "secret": "s3cr3t"}))
        .await;
    create_source(
        &server,
        &app,
        json!({"name": "Stripe", "uid": "stripe", "provider": "stripe", "secret": STRIPE_SECRET}),
    )
    .await;

    let (ok, stdout, stderr) = trigger(&server, &["--source", "stripe", "--list"]);
    assert!(ok, "{stderr}");
    for event_type in ["invoice.paid", "payment_intent.succeeded", "customer.created"] {
        assert!(stdout.contains(event_type), "{stdout}");
    }
    assert!(!stdout.contains("orders/create"), "only the source's provider: {stdout}");

    // No event type: the provider's first fixture. A Slack source that reads the envelope's `type` records
    // `event_callback`, and trigger says how to name the messages by the inner event.
    let (ok, stdout, stderr) = trigger(&server, &["--source", "slack"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("triggered app_mention on source slack: 200 OK, published event_callback as "),
        "{stdout}"
    );
    assert!(stderr.contains("eventTypeField"), "{stderr}");

    // The server's refusal is shown with its status and reason, and the exit status is non-zero.
    let (ok, _, stderr) = trigger(&server, &["--source", "stripe", "--payload", "not json"]);
    assert!(!ok);
    assert!(stderr.contains("400 Bad Request (body_not_json)"), "{stderr}");
    let (ok, _, stderr) = trigger(&server, &["--source", "nowhere", "invoice.paid"]);
    assert!(!ok);
    assert!(stderr.contains("404") && stderr.contains("nowhere"), "{stderr}");

    // A body of one's own, signed by the source: the event type comes from the body.
    let (ok, stdout, stderr) =
        trigger(&server, &["--source", "stripe", "--payload", r#"{"id": "evt_own_1", "type": "payout.paid"}"#]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("published payout.paid as "), "{stdout}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_tokens_may_sign_and_the_secret_is_never_returned() {
    let server = TestServer::start().await;
    let app = server.create_app("Inbound").await;
    create_source(
        &server,
        &app,
        json!({"name": "Stripe", "uid": "stripe", "provider": "stripe", "secret": STRIPE_SECRET}),
    )
    .await;
    create_source(
        &server,
        &app,
        json!({"name": "GitHub", "uid": "github", "provider": "github", "secret": "gh-secret"}),
    )
    .await;

    let body = r#"{"id": "evt_sign_1", "object": "event", "type": "invoice.paid"}"#;
    let (status, signed) = server.post("/api/v1/source/stripe/sign/", json!({"body": body})).await;
    assert_eq!(status, 200, "{signed}");
    assert!(!signed.to_string().contains(STRIPE_SECRET), "never the secret: {signed}");
    let headers = signed["headers"].as_object().expect("headers");
    let headers = Headers::from_pairs(headers.iter().map(|(name, value)| (name, value.as_str().unwrap_or_default())));
    let request = InboundRequest { headers: &headers, body: body.as_bytes() };
    assert_eq!(Provider::Stripe.verify(&request, &[STRIPE_SECRET], now_ms() / 1000, 300), Ok(()));
    assert!(Provider::Stripe.verify(&request, &["whsec_other"], now_ms() / 1000, 300).is_err());

    let (status, signed) =
        server.post("/api/v1/source/github/sign/", json!({"body": "{}", "eventType": "push", "eventId": "d-1"})).await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(
        (&signed["headers"]["X-GitHub-Event"], &signed["headers"]["X-GitHub-Delivery"]),
        (&json!("push"), &json!("d-1"))
    );
    let (status, refused) = server.post("/api/v1/source/stripe/sign/", json!({"body": body, "eventType": "x"})).await;
    assert_eq!(status, 422, "Stripe reads the type from the body: {refused}");

    let (status, access) = server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), json!({})).await;
    assert_eq!(status, 200, "{access}");
    let app_token = access["token"].as_str().expect("app token").to_owned();
    let response = server
        .http
        .request(Method::POST, server.url("/api/v1/source/stripe/sign/"))
        .bearer_auth(&app_token)
        .json(&json!({"body": body}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 403, "an application token may not sign for a source");
    let (ok, _, stderr) = trigger_as(&server, &app_token, &["--source", "stripe", "invoice.paid"]);
    assert!(!ok);
    assert!(stderr.contains("403"), "{stderr}");
    let (_, events) = server.get("/api/v1/source/stripe/event/").await;
    assert_eq!(events["data"], json!([]), "nothing reached the source");
    server.stop().await;
}
