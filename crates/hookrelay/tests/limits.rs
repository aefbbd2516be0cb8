//! Black-box tests of the limits on what an application (app portal) token can make the server hold: custom
//! headers (count, value length, total size) on every route that sets them, the event-type filter, the
//! description, and endpoints per application (`HOOKRELAY_MAX_ENDPOINTS_PER_APP`). Each is a 422 naming the
//! limit, and a refused request changes nothing.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{Map, Value, json};

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

/// `count` headers `x-h0…` whose values are `value_len` bytes each.
fn headers(count: usize, value_len: usize) -> Value {
    Value::Object((0..count).map(|i| (format!("x-h{i}"), Value::String("v".repeat(value_len)))).collect::<Map<_, _>>())
}

/// Asserts a Svix-shaped 422 at `loc` whose message names `limit`.
fn assert_refused(answer: (u16, Value), loc: &[&str], limit: &str) {
    let (status, body) = answer;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(loc), "{body}");
    let msg = body["detail"][0]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(limit), "the message does not name the limit {limit}: {msg}");
}

#[tokio::test]
async fn an_app_token_gets_422_past_the_header_and_endpoint_limits() {
    let server = TestServer::start_with(|args| args.max_endpoints_per_app = Some(3)).await;
    let app = server.create_app("acme").await;
    let (status, access) = server.post(&format!("/api/v1/auth/app-portal-access/{app}/"), json!({})).await;
    assert_eq!(status, 200, "{access}");
    let token = access["token"].as_str().expect("token").to_owned();
    let endpoints = format!("/api/v1/app/{app}/endpoint/");
    let (on, as_app, at) = (&server, token.as_str(), endpoints.as_str());
    let create = move |body: Value| call(on, as_app, Method::POST, at, Some(body));
    let url = "http://127.0.0.1:9/hook";

    // Custom headers at creation: too many, a value too long, too many bytes together.
    assert_refused(create(json!({"url": url, "headers": headers(51, 1)})).await, &["body", "headers"], "50");
    assert_refused(
        create(json!({"url": url, "headers": headers(1, 4097)})).await,
        &["body", "headers", "x-h0"],
        "4096",
    );
    assert_refused(create(json!({"url": url, "headers": headers(5, 4000)})).await, &["body", "headers"], "16384");
    // The other fields an application token sets.
    let many_types: Vec<String> = (0..501).map(|i| format!("type.{i}")).collect();
    assert_refused(create(json!({"url": url, "eventTypes": many_types})).await, &["body", "eventTypes"], "500");
    assert_refused(
        create(json!({"url": url, "description": "d".repeat(8193)})).await,
        &["body", "description"],
        "8192",
    );

    // Exactly at the header limits is fine.
    let (status, endpoint) = create(json!({"url": url, "headers": headers(50, 1)})).await;
    assert_eq!(status, 201, "{endpoint}");
    let one = format!("{endpoints}{}/", endpoint["id"].as_str().expect("endpoint id"));
    let headers_path = format!("{one}headers/");

    // Replacing or merging past the limits is refused, whichever route does it, and changes nothing.
    let put_headers = call(&server, &token, Method::PUT, &headers_path, Some(json!({"headers": headers(51, 1)})));
    assert_refused(put_headers.await, &["body", "headers"], "50");
    let one_more = json!({"headers": {"x-one-more": "1"}});
    assert_refused(
        call(&server, &token, Method::PATCH, &headers_path, Some(one_more)).await,
        &["body", "headers"],
        "50",
    );
    let put_endpoint = call(&server, &token, Method::PUT, &one, Some(json!({"url": url, "headers": headers(51, 1)})));
    assert_refused(put_endpoint.await, &["body", "headers"], "50");
    let (status, kept) = call(&server, &token, Method::GET, &headers_path, None).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["headers"], headers(50, 1));
    // Swapping one header for another stays within the limit.
    let swap = json!({"headers": {"x-one-more": "1", "x-h0": null}});
    assert_eq!(call(&server, &token, Method::PATCH, &headers_path, Some(swap)).await.0, 204);

    // Endpoints per application: two more make three, the limit; a fourth is refused by POST and by PUT.
    for n in 0..2 {
        let (status, body) = create(json!({"url": url, "uid": format!("ep-{n}")})).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_refused(create(json!({"url": url})).await, &["body"], "at most 3 endpoints");
    let (new_uid, ep_0) = (format!("{endpoints}new-uid/"), format!("{endpoints}ep-0/"));
    let upsert = call(&server, &token, Method::PUT, &new_uid, Some(json!({"url": url})));
    assert_refused(upsert.await, &["body"], "HOOKRELAY_MAX_ENDPOINTS_PER_APP");
    // Updating an existing endpoint is not creating one.
    assert_eq!(call(&server, &token, Method::PUT, &ep_0, Some(json!({"url": url}))).await.0, 200);
    // Deleting one makes room again.
    assert_eq!(call(&server, &token, Method::DELETE, &ep_0, None).await.0, 204);
    assert_eq!(create(json!({"url": url})).await.0, 201);
    server.stop().await;
}
