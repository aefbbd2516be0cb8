//! Black-box tests of the Svix-compatible API over real HTTP: resources, errors, pagination and auth.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn check_error(response: &(u16, Value), status: u16, code: &str) {
    assert_eq!(response.0, status, "{}", response.1);
    if status == 422 {
        assert!(response.1["detail"].as_array().is_some_and(|d| !d.is_empty()), "422 body: {}", response.1);
    } else {
        assert_eq!(response.1["code"], json!(code), "{}", response.1);
        assert!(response.1["detail"].is_string(), "{}", response.1);
    }
}

#[tokio::test]
async fn requests_without_the_admin_token_are_refused_but_health_is_open() {
    let server = TestServer::start().await;
    let anonymous = server.http.get(server.url("/api/v1/app/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], json!("authentication_failed"));
    let wrong = server.http.get(server.url("/api/v1/app/")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    for path in ["/api/v1/health", "/api/v1/health/"] {
        assert_eq!(server.http.get(server.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    assert_eq!(server.http.get(server.url("/api/v1/health/ping")).send().await.unwrap().status(), 204);
    server.stop().await;
}

#[tokio::test]
async fn applications_support_uids_upsert_patch_and_conflicts() {
    let server = TestServer::start().await;
    let (status, app) =
        server.post("/api/v1/app", json!({ "name": "Acme", "uid": "acme", "metadata": {"tier": "gold"} })).await;
    assert_eq!(status, 201, "{app}");
    for key in ["id", "uid", "name", "metadata", "createdAt", "updatedAt"] {
        assert!(app.get(key).is_some(), "ApplicationOut lacks {key}: {app}");
    }
    let id = app["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("app_"));
    assert_eq!(server.get("/api/v1/app/acme").await.1["id"], json!(id));
    assert_eq!(server.get(&format!("/api/v1/app/{id}/")).await.1["uid"], json!("acme"));

    check_error(&server.post("/api/v1/app/", json!({ "name": "Again", "uid": "acme" })).await, 409, "conflict");
    let (status, existing) =
        server.post("/api/v1/app/?get_if_exists=true", json!({ "name": "Again", "uid": "acme" })).await;
    assert_eq!((status, existing["id"].clone()), (200, json!(id)));

    // PATCH: absent keeps, null clears.
    let (status, patched) = server.request(Method::PATCH, "/api/v1/app/acme/", Some(json!({ "uid": null }))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["uid"].clone(), patched["name"].clone()), (Value::Null, json!("Acme")));

    // PUT on an unknown uid creates.
    let (status, created) =
        server.request(Method::PUT, "/api/v1/app/other", Some(json!({ "name": "Other", "uid": "other" }))).await;
    assert_eq!(status, 201, "{created}");
    let (status, updated) =
        server.request(Method::PUT, "/api/v1/app/other", Some(json!({ "name": "Renamed", "uid": "other" }))).await;
    assert_eq!((status, updated["name"].clone()), (200, json!("Renamed")));

    check_error(&server.post("/api/v1/app/", json!({ "name": "Bad", "uid": "app_123" })).await, 422, "");
    check_error(&server.post("/api/v1/app/", json!({ "uid": "no-name" })).await, 422, "");
    check_error(&server.get("/api/v1/app/app_2fakefakefakefakefakefake000").await, 404, "not_found");

    let (status, _) = server.request(Method::DELETE, &format!("/api/v1/app/{id}"), None).await;
    assert_eq!(status, 204);
    check_error(&server.get(&format!("/api/v1/app/{id}")).await, 404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn lists_page_with_iterators_until_done() {
    let server = TestServer::start().await;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(server.create_app(&format!("app {n}")).await);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/app/?limit=3".to_owned();
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.as_object().unwrap().contains_key("iterator"), "iterator key must always be present");
        seen.extend(page["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        if page["done"] == json!(true) {
            break;
        }
        path = format!("/api/v1/app/?limit=3&iterator={}", page["iterator"].as_str().unwrap());
    }
    let mut expected = created.clone();
    expected.sort();
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    assert_eq!(seen_sorted, expected, "every app exactly once");
    assert_eq!(seen.len(), 7);

    check_error(&server.get("/api/v1/app/?limit=251").await, 422, "");
    check_error(&server.get("/api/v1/app/?limit=abc").await, 422, "");
    server.stop().await;
}

#[tokio::test]
async fn endpoints_validate_input_and_return_both_field_spellings() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    server.create_event_types(&["user.created"]).await;

    let base = format!("/api/v1/app/{app}/endpoint");
    let (status, ep) = server
        .post(&base, json!({ "url": "https://example.com/hook", "eventTypes": ["user.created"], "throttleRate": 5, "uid": "main" }))
        .await;
    assert_eq!(status, 201, "{ep}");
    assert_eq!(ep["filterTypes"], json!(["user.created"]));
    assert_eq!(ep["eventTypes"], json!(["user.created"]));
    assert_eq!((ep["rateLimit"].clone(), ep["throttleRate"].clone()), (json!(5), json!(5)));
    assert!(ep.get("secret").is_none(), "secrets only come from the secret route");
    assert_eq!(server.get(&format!("{base}/main/")).await.1["id"], ep["id"]);

    check_error(
        &server.post(&base, json!({ "url": "https://example.com", "filterTypes": ["nope.unknown"] })).await,
        422,
        "",
    );
    check_error(&server.post(&base, json!({ "url": "not a url" })).await, 422, "");
    check_error(&server.post(&base, json!({ "url": "ftp://example.com" })).await, 422, "");
    check_error(&server.post(&base, json!({ "url": "https://example.com", "secret": "nope" })).await, 422, "");
    check_error(&server.post(&base, json!({ "url": "https://example.com", "filterTypes": [] })).await, 422, "");

    let headers = format!("{base}/main/headers");
    let (status, _) =
        server.request(Method::PUT, &headers, Some(json!({ "headers": { "x-tenant": "42", "x-a": "1" } }))).await;
    assert_eq!(status, 204);
    let (status, _) =
        server.request(Method::PATCH, &headers, Some(json!({ "headers": { "x-a": null, "x-b": "2" } }))).await;
    assert_eq!(status, 204);
    let (_, current) = server.get(&headers).await;
    assert_eq!(current["headers"], json!({ "x-tenant": "42", "x-b": "2" }));
    check_error(&server.request(Method::PUT, &headers, Some(json!({ "headers": { "svix-id": "x" } }))).await, 422, "");

    let (status, patched) =
        server.request(Method::PATCH, &format!("{base}/main"), Some(json!({ "description": "primary" }))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["description"].clone(), patched["url"].clone()),
        (json!("primary"), json!("https://example.com/hook"))
    );
    let (status, _) = server.request(Method::DELETE, &format!("{base}/main"), None).await;
    assert_eq!(status, 204);
    check_error(&server.get(&format!("{base}/main")).await, 404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn messages_are_found_by_event_id_and_event_ids_are_unique() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    let path = format!("/api/v1/app/{app}/msg/");
    let (status, msg) =
        server.post(&path, json!({ "eventType": "a.b", "eventId": "evt_1", "payload": { "x": 1 } })).await;
    assert_eq!(status, 202, "{msg}");
    for key in ["id", "eventType", "eventId", "payload", "timestamp"] {
        assert!(msg.get(key).is_some(), "MessageOut lacks {key}: {msg}");
    }
    check_error(
        &server.post(&path, json!({ "eventType": "a.b", "eventId": "evt_1", "payload": {} })).await,
        409,
        "conflict",
    );
    assert_eq!(server.get(&format!("{path}evt_1")).await.1["id"], msg["id"]);
    let (_, without) = server.get(&format!("{path}?with_content=false")).await;
    assert_eq!(without["data"][0]["payload"], json!({}));
    let (_, with) = server.get(&format!("{path}{}", msg["id"].as_str().unwrap())).await;
    assert_eq!(with["payload"], json!({ "x": 1 }));

    check_error(&server.post(&path, json!({ "eventType": "a.b", "payload": [1, 2] })).await, 422, "");
    check_error(&server.post(&path, json!({ "eventType": "bad type!", "payload": {} })).await, 422, "");
    check_error(&server.post(&path, json!({ "payload": {} })).await, 422, "");
    let raw = server
        .http
        .post(server.url(&path))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(raw.status().is_client_error(), "malformed JSON gets a 4xx, got {}", raw.status());
    check_error(
        &server
            .post("/api/v1/app/app_2fakefakefakefakefakefake000/msg/", json!({ "eventType": "a", "payload": {} }))
            .await,
        404,
        "not_found",
    );
    server.stop().await;
}

#[tokio::test]
async fn event_types_are_archived_on_delete() {
    let server = TestServer::start().await;
    let (status, et) =
        server.post("/api/v1/event-type/", json!({ "name": "invoice.paid", "description": "paid" })).await;
    assert_eq!(status, 201, "{et}");
    let (status, _) = server.request(Method::DELETE, "/api/v1/event-type/invoice.paid/", None).await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/v1/event-type/invoice.paid").await.1["archived"], json!(true));
    assert_eq!(server.get("/api/v1/event-type/").await.1["data"], json!([]));
    let (_, all) = server.get("/api/v1/event-type/?include_archived=true").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    let (status, _) = server.request(Method::DELETE, "/api/v1/event-type/invoice.paid/?expunge=true", None).await;
    assert_eq!(status, 204);
    check_error(&server.get("/api/v1/event-type/invoice.paid").await, 404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let server = TestServer::start_with(|args| args.max_body_bytes = Some(1024)).await;
    let app = server.create_app("Acme").await;
    let big = "x".repeat(4096);
    let response =
        server.post(&format!("/api/v1/app/{app}/msg/"), json!({ "eventType": "a", "payload": { "big": big } })).await;
    check_error(&response, 413, "payload_too_large");
    assert!(response.1["detail"].as_str().is_some_and(|d| d.contains("HOOKRELAY_MAX_BODY_BYTES")), "{}", response.1);
    server.stop().await;
}

#[tokio::test]
async fn a_message_can_create_its_application() {
    let server = TestServer::start().await;
    let body = json!({ "eventType": "a", "payload": {}, "application": { "name": "Lazy Corp" } });
    let (status, msg) = server.post("/api/v1/app/lazy-corp/msg/", body.clone()).await;
    assert_eq!(status, 202, "{msg}");
    let (status, app) = server.get("/api/v1/app/lazy-corp").await;
    assert_eq!((status, app["name"].clone()), (200, json!("Lazy Corp")));
    // Once it exists, `application` is ignored.
    let (status, _) = server.post("/api/v1/app/lazy-corp/msg/", body).await;
    assert_eq!(status, 202);
    assert_eq!(server.get("/api/v1/app/").await.1["data"].as_array().unwrap().len(), 1);
    let invalid = json!({ "eventType": "a", "payload": {}, "application": { "name": "" } });
    let (status, error) = server.post("/api/v1/app/other/msg/", invalid).await;
    assert_eq!(status, 422);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "application", "name"]));
    server.stop().await;
}

#[tokio::test]
async fn signature_schemes_are_validated_and_default_to_standard() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    let base = format!("/api/v1/app/{app}/endpoint/");
    let (status, plain) = server.post(&base, json!({ "url": "https://example.com/a" })).await;
    assert_eq!((status, plain["signatureSchemes"].clone()), (201, json!(["standard"])));
    let (status, legacy) = server
        .post(&base, json!({ "url": "https://example.com/b", "signatureSchemes": ["hmac-hex", "standard"] }))
        .await;
    assert_eq!((status, legacy["signatureSchemes"].clone()), (201, json!(["standard", "hmac-hex"])));
    check_error(
        &server.post(&base, json!({ "url": "https://example.com", "signatureSchemes": ["hmac-hex"] })).await,
        422,
        "",
    );
    check_error(
        &server.post(&base, json!({ "url": "https://example.com", "signatureSchemes": ["md5"] })).await,
        422,
        "",
    );
    let id = legacy["id"].as_str().unwrap();
    let (status, patched) =
        server.request(Method::PATCH, &format!("{base}{id}"), Some(json!({ "signatureSchemes": null }))).await;
    assert_eq!((status, patched["signatureSchemes"].clone()), (200, json!(["standard"])));
    server.stop().await;
}

#[tokio::test]
async fn publishing_follows_application_renames_and_deletes_at_once() {
    let server = TestServer::start().await;
    let publish = |app: &'static str| {
        let server = &server;
        async move { server.post(&format!("/api/v1/app/{app}/msg/"), json!({ "eventType": "a", "payload": {} })).await }
    };
    server.post("/api/v1/app/", json!({ "name": "Acme", "uid": "acme" })).await;
    assert_eq!(publish("acme").await.0, 202);
    // The publish path remembers uids for a second; a change made through this server is seen at once.
    let (status, _) = server.request(Method::PATCH, "/api/v1/app/acme/", Some(json!({ "uid": "acme-2" }))).await;
    assert_eq!(status, 200);
    check_error(&publish("acme").await, 404, "not_found");
    assert_eq!(publish("acme-2").await.0, 202);
    let (status, _) = server.request(Method::DELETE, "/api/v1/app/acme-2/", None).await;
    assert_eq!(status, 204);
    check_error(&publish("acme-2").await, 404, "not_found");
    server.stop().await;
}

/// Issue 15, finding 9: a payload is kept as raw JSON text, which was never parsed into a tree, so any depth was
/// accepted (520,000 levels with 202). Bodies may nest 128 levels of arrays and objects; the payload sits one
/// level inside the publish body.
#[tokio::test]
async fn publishing_a_payload_nested_beyond_the_limit_is_refused() {
    let server = TestServer::start().await;
    let app = server.create_app("Acme").await;
    let publish = |deep: usize| {
        let server = &server;
        let app = &app;
        async move {
            let levels = format!("{}{}", "[".repeat(deep), "]".repeat(deep));
            let body = format!(r#"{{"eventType": "a", "payload": {{"deep": {levels}}}}}"#);
            let response = server
                .http
                .post(server.url(&format!("/api/v1/app/{app}/msg/")))
                .bearer_auth(common::TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // `{"eventType": …, "payload": {"deep": [[…]]}}`: the body nests the `deep` levels plus two.
    let (status, accepted) = publish(126).await;
    assert_eq!(status, 202, "{accepted}");
    for deep in [127, 500_000] {
        let (status, refused) = publish(deep).await;
        check_error(&(status, refused.clone()), 422, "");
        assert_eq!(refused["detail"][0]["loc"], json!(["body"]), "{refused}");
        assert!(refused["detail"][0]["msg"].as_str().unwrap_or_default().contains("128 levels"), "{refused}");
    }
    server.stop().await;
}
