//! Black-box tests of API tokens over real HTTP: application-scoped (app portal) tokens confined to their
//! application (404 on other applications, 403 on admin routes, read-only tokens, expiry), named admin tokens
//! created, listed and revoked through the API and the `hookrelay token` command (a revoke reaching another
//! process on the same PostgreSQL database within the cache time), and the per-token rate limit.

mod common;

use std::time::Duration;

use common::{TOKEN, TestServer, wait_for};
use hookrelay_testkit::postgres::ScratchSchema;
use reqwest::Method;
use serde_json::{Value, json};

/// A request with the given bearer token; returns the status and the JSON body (`Null` when empty).
async fn call(server: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") })
}

/// An app portal token for `app` (id or uid) with the given `AppPortalAccessIn` body.
async fn portal_token(server: &TestServer, app: &str, body: Value) -> String {
    let (status, access) = server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), body).await;
    assert_eq!(status, 200, "{access}");
    let token = access["token"].as_str().expect("token").to_owned();
    assert_eq!(access["url"], format!("http://{}/app-portal#key={token}", server.base.trim_start_matches("http://")));
    token
}

/// An application with one endpoint and one message, all made with the admin token: (app id, endpoint id, msg id).
async fn app_with_traffic(server: &TestServer, uid: &str) -> (String, String, String) {
    let (status, app) = server.post("/api/v1/app/", json!({"name": uid, "uid": uid})).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().expect("app id").to_owned();
    let (endpoint, _) = server.create_endpoint(&app_id, "http://127.0.0.1:9/hook", json!({})).await;
    let msg = server.publish(&app_id, "invoice.paid", json!({"n": 1})).await;
    (app_id, endpoint, msg)
}

#[tokio::test]
async fn an_app_token_manages_its_application_and_nothing_else() {
    let server = TestServer::start().await;
    server.create_event_types(&["invoice.paid"]).await;
    let (acme, acme_ep, acme_msg) = app_with_traffic(&server, "acme").await;
    let (other, other_ep, other_msg) = app_with_traffic(&server, "other").await;
    // Asked for by uid, with the body the SDK sends by default.
    let token = portal_token(&server, "acme", json!({})).await;

    // Its own application: read it (by id or uid), manage endpoints, publish and read messages and attempts.
    for path in [
        format!("/api/v1/app/{acme}/"),
        "/api/v1/app/acme".to_owned(),
        format!("/api/v1/app/{acme}/endpoint/"),
        format!("/api/v1/app/acme/endpoint/{acme_ep}/"),
        format!("/api/v1/app/{acme}/endpoint/{acme_ep}/secret/"),
        format!("/api/v1/app/{acme}/msg/"),
        format!("/api/v1/app/{acme}/msg/{acme_msg}/"),
        format!("/api/v1/app/{acme}/attempt/endpoint/{acme_ep}/"),
        format!("/api/v1/app/{acme}/attempt/msg/{acme_msg}/"),
        format!("/api/v1/app/{acme}/msg/{acme_msg}/endpoint/"),
        "/api/v1/event-type/".to_owned(),
        "/api/v1/event-type/invoice.paid".to_owned(),
    ] {
        let (status, body) = call(&server, &token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
    }
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        &format!("/api/v1/app/{acme}/endpoint/"),
        Some(json!({"url": "http://127.0.0.1:9/second"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let second = body["id"].as_str().expect("endpoint id").to_owned();
    let (status, body) = call(
        &server,
        &token,
        Method::PATCH,
        &format!("/api/v1/app/acme/endpoint/{second}/"),
        Some(json!({"description": "mine"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        &format!("/api/v1/app/{acme}/msg/"),
        Some(json!({"eventType": "invoice.paid", "payload": {"n": 2}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) =
        call(&server, &token, Method::DELETE, &format!("/api/v1/app/{acme}/endpoint/{second}/"), None).await;
    assert_eq!(status, 204);

    // Another application's paths do not exist for it, by id or uid, for reads and writes alike.
    for (method, path) in [
        (Method::GET, format!("/api/v1/app/{other}/")),
        (Method::GET, "/api/v1/app/other/".to_owned()),
        (Method::GET, format!("/api/v1/app/{other}/endpoint/")),
        (Method::GET, format!("/api/v1/app/{other}/endpoint/{other_ep}/")),
        (Method::DELETE, format!("/api/v1/app/{other}/endpoint/{other_ep}/")),
        (Method::GET, format!("/api/v1/app/{other}/msg/")),
        (Method::GET, format!("/api/v1/app/{other}/msg/{other_msg}/")),
        (Method::GET, format!("/api/v1/app/{other}/attempt/endpoint/{other_ep}/")),
        (Method::GET, format!("/api/v1/app/{other}/attempt/msg/{other_msg}/")),
        (Method::GET, "/api/v1/app/app_2Zc8nXhKJ7mQvN3pR5sT1uW9yB0/".to_owned()),
        // The application's own id does not unlock another application's objects either.
        (Method::GET, format!("/api/v1/app/{acme}/endpoint/{other_ep}/")),
        (Method::GET, format!("/api/v1/app/{acme}/msg/{other_msg}/")),
    ] {
        let (status, body) = call(&server, &token, method.clone(), &path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["code"], "not_found", "{method} {path}: {body}");
    }
    let (status, _) = call(
        &server,
        &token,
        Method::POST,
        &format!("/api/v1/app/{other}/msg/"),
        Some(json!({"eventType": "invoice.paid", "payload": {}})),
    )
    .await;
    assert_eq!(status, 404);

    // Admin routes are refused outright.
    for (method, path, body) in [
        (Method::GET, "/api/v1/app/".to_owned(), None),
        (Method::POST, "/api/v1/app/".to_owned(), Some(json!({"name": "mine"}))),
        (Method::PUT, format!("/api/v1/app/{acme}/"), Some(json!({"name": "renamed"}))),
        (Method::PATCH, format!("/api/v1/app/{acme}/"), Some(json!({"name": "renamed"}))),
        (Method::DELETE, format!("/api/v1/app/{acme}/"), None),
        (Method::POST, "/api/v1/event-type/".to_owned(), Some(json!({"name": "x.y", "description": ""}))),
        (Method::DELETE, "/api/v1/event-type/invoice.paid/".to_owned(), None),
        (Method::GET, "/api/v1/source/".to_owned(), None),
        (Method::POST, "/api/v1/source/".to_owned(), Some(json!({"name": "s", "provider": "stripe"}))),
        (Method::GET, "/api/v1/background-task/".to_owned(), None),
        (Method::POST, format!("/api/v1/auth/app-portal-access/{acme}/"), Some(json!({}))),
        (Method::GET, "/api/v1/auth/token/".to_owned(), None),
        (Method::POST, "/api/v1/auth/token/".to_owned(), Some(json!({"name": "escalate"}))),
    ] {
        let (status, got) = call(&server, &token, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {got}");
        assert_eq!(got["code"], "insufficient_access", "{method} {path}: {got}");
        assert!(got["detail"].as_str().is_some_and(|d| !d.is_empty()), "{got}");
    }
    // Nothing of the above happened.
    let (_, app) = server.get(&format!("/api/v1/app/{acme}/")).await;
    assert_eq!(app["name"], "acme");
    let (_, apps) = server.get("/api/v1/app/").await;
    assert_eq!(apps["data"].as_array().map(Vec::len), Some(2));
    server.stop().await;
}

#[tokio::test]
async fn read_only_and_expired_app_tokens() {
    let server = TestServer::start().await;
    server.create_event_types(&["invoice.paid"]).await;
    let (acme, acme_ep, _) = app_with_traffic(&server, "acme").await;

    let reader = portal_token(&server, &acme, json!({"readOnly": true, "featureFlags": []})).await;
    let (status, _) = call(&server, &reader, Method::GET, &format!("/api/v1/app/{acme}/endpoint/"), None).await;
    assert_eq!(status, 200);
    for (method, path, body) in [
        (Method::POST, format!("/api/v1/app/{acme}/endpoint/"), Some(json!({"url": "http://127.0.0.1:9/x"}))),
        (Method::DELETE, format!("/api/v1/app/{acme}/endpoint/{acme_ep}/"), None),
        (Method::POST, format!("/api/v1/app/{acme}/msg/"), Some(json!({"eventType": "invoice.paid", "payload": {}}))),
        (Method::POST, format!("/api/v1/app/{acme}/endpoint/{acme_ep}/secret/rotate/"), Some(json!({}))),
    ] {
        let (status, got) = call(&server, &reader, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {got}");
        assert_eq!(got["code"], "insufficient_access");
    }

    // A token that lives one second works, then is refused as if unknown.
    let brief = portal_token(&server, &acme, json!({"expiry": 1})).await;
    let path = format!("/api/v1/app/{acme}/");
    let (status, _) = call(&server, &brief, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let body = wait_for("the token to expire", Duration::from_secs(10), async || {
        let (status, body) = call(&server, &brief, Method::GET, &path, None).await;
        (status == 401).then_some(body)
    })
    .await;
    assert_eq!(body["code"], "authentication_failed");

    // Lifetimes beyond Svix's 7 days, and unknown applications, are refused.
    let (status, got) =
        server.post(&format!("/api/v1/auth/app-portal-access/{acme}/"), json!({"expiry": 604_801})).await;
    assert_eq!((status, &got["detail"][0]["loc"]), (422, &json!(["body", "expiry"])), "{got}");
    let (status, _) = server.post("/api/v1/auth/app-portal-access/nobody/", json!({})).await;
    assert_eq!(status, 404);
    // A made-up token is refused like no token at all.
    let (status, _) = call(&server, "hr_app_made-up", Method::GET, &path, None).await;
    assert_eq!(status, 401);
    // Deleting the application takes its tokens with it.
    let keeper = portal_token(&server, &acme, json!({})).await;
    let (status, _) = server.request(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = wait_for("the deleted app's token to be refused", Duration::from_secs(10), async || {
        let (status, body) = call(&server, &keeper, Method::GET, &path, None).await;
        (status == 401).then_some((status, body))
    })
    .await;
    assert_eq!(status, 401);
    server.stop().await;
}

/// Runs `hookrelay token …` against `base` with the bootstrap token; returns (success, stdout, stderr).
fn token_cli(base: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("token")
        .args(args)
        .args(["--url", base, "--token", TOKEN])
        .env_remove("HOOKRELAY_ADMIN_TOKEN")
        .output()
        .expect("hookrelay token runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8 output");
    (output.status.success(), text(output.stdout), text(output.stderr))
}

// Multi-threaded: the command runs as a blocking child process while this runtime serves its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_admin_tokens_are_created_listed_and_revoked_with_the_cli() {
    let server = TestServer::start().await;
    let (ok, stdout, stderr) = token_cli(&server.base, &["create", "--name", "ci"]);
    assert!(ok, "{stderr}");
    let ci = stdout.trim().to_owned();
    assert!(ci.starts_with("hr_admin_") && ci.len() >= 40, "{stdout}");
    assert!(!stderr.contains(&ci), "the token is printed once, on stdout");

    // A named admin token is an admin: it may do everything, including making app tokens.
    let (status, body) = call(&server, &ci, Method::POST, "/api/v1/app/", Some(json!({"name": "by ci"}))).await;
    assert_eq!(status, 201, "{body}");
    let app = body["id"].as_str().expect("app id").to_owned();
    let (status, _) =
        call(&server, &ci, Method::POST, &format!("/api/v1/auth/app-portal-access/{app}"), Some(json!({}))).await;
    assert_eq!(status, 200);

    // Names are unique; a bad name says what to fix.
    let (ok, _, stderr) = token_cli(&server.base, &["create", "--name", "ci"]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = token_cli(&server.base, &["create", "--name", "has space"]);
    assert!(!ok && stderr.contains("name"), "{stderr}");

    let (ok, stdout, _) = token_cli(&server.base, &["create", "--name", "deploy"]);
    assert!(ok);
    let deploy = stdout.trim().to_owned();
    let (ok, listed, stderr) = token_cli(&server.base, &["list"]);
    assert!(ok, "{stderr}");
    let names: Vec<&str> = listed.lines().filter_map(|line| line.split('\t').nth(1)).collect();
    assert_eq!(names, ["ci", "deploy"], "{listed}");
    assert!(!listed.contains(&ci) && !listed.contains(&deploy), "list never shows tokens");
    let deploy_id = listed.lines().nth(1).and_then(|line| line.split('\t').next()).expect("id").to_owned();
    assert!(deploy_id.starts_with("tok_"), "{listed}");

    // Revoked by name, and by id through the API: refused at once by this process.
    let (ok, _, stderr) = token_cli(&server.base, &["revoke", "ci"]);
    assert!(ok, "{stderr}");
    let (status, body) = call(&server, &ci, Method::GET, "/api/v1/app/", None).await;
    assert_eq!((status, &body["code"]), (401, &json!("authentication_failed")));
    let (status, _) = server.request(Method::DELETE, &format!("/api/v1/auth/token/{deploy_id}/"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&server, &deploy, Method::GET, "/api/v1/app/", None).await;
    assert_eq!(status, 401);
    let (ok, _, stderr) = token_cli(&server.base, &["revoke", "ci"]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");
    let (_, listed, _) = token_cli(&server.base, &["list"]);
    assert!(listed.trim().is_empty(), "{listed}");
    // The bootstrap token keeps working.
    let (status, _) = server.get("/api/v1/app/").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_revoke_reaches_another_process_on_the_same_postgres_database_within_the_cache_time() {
    let schema = ScratchSchema::for_test().await;
    let on = |url: String| move |args: &mut hookrelay::config::ServeArgs| args.database_url = Some(url);
    let first = TestServer::start_with(on(schema.url().to_owned())).await;
    let second = TestServer::start_with(on(schema.url().to_owned())).await;
    let (status, created) = first.post("/api/v1/auth/token/", json!({"name": "shared"})).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    // The second process learns the token from the database and caches it.
    let (status, _) = call(&second, &token, Method::GET, "/api/v1/app/", None).await;
    assert_eq!(status, 200);

    let (status, _) = first.request(Method::DELETE, "/api/v1/auth/token/shared/", None).await;
    assert_eq!(status, 204);
    let revoked_at = std::time::Instant::now();
    wait_for("the other process to refuse the revoked token", Duration::from_secs(15), async || {
        let (status, _) = call(&second, &token, Method::GET, "/api/v1/app/", None).await;
        (status == 401).then_some(())
    })
    .await;
    // The documented bound (hookrelay_api::auth::CACHE_TTL), with room for a slow machine.
    assert!(
        revoked_at.elapsed() <= hookrelay_api::auth::CACHE_TTL + Duration::from_secs(2),
        "{:?}",
        revoked_at.elapsed()
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn each_token_is_rate_limited_on_its_own_and_health_is_not() {
    let server = TestServer::start_with(|args| {
        args.api_rate_limit = Some(1);
        args.api_rate_limit_burst = Some(5);
    })
    .await;
    let (status, created) = server.post("/api/v1/auth/token/", json!({"name": "other"})).await;
    assert_eq!(status, 201, "{created}");
    let other = created["token"].as_str().expect("token").to_owned();

    // The bootstrap token spends its burst (one request is gone already, and one more refills each second).
    let mut limited = None;
    for _ in 0..20 {
        let response =
            server.http.get(server.url("/api/v1/app/")).bearer_auth(TOKEN).send().await.expect("request sent");
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let response = limited.expect("a 429 within 20 rapid requests at 1/s with a burst of 5");
    let retry_after: u64 =
        response.headers()["retry-after"].to_str().ok().and_then(|v| v.parse().ok()).expect("Retry-After seconds");
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["code"], "rate_limit_exceeded", "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("retry")), "{body}");

    // Another token has its own bucket; health and ingest are not limited.
    let (status, _) = call(&server, &other, Method::GET, "/api/v1/app/", None).await;
    assert_eq!(status, 200);
    for _ in 0..10 {
        let response = server.http.get(server.url("/api/v1/health/")).send().await.expect("health");
        assert_eq!(response.status(), 200);
    }
    // The bucket refills: after Retry-After the token is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = server.get("/api/v1/app/").await;
    assert_eq!(status, 200);
    server.stop().await;
}
