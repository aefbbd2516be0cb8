//! Black-box tests of how the browser UI is served (what the pages do is tested in a real browser by
//! tests/browser): the dashboard and the portal come from the binary with a strict Content-Security-Policy,
//! the dashboard cannot be framed and the portal only by the configured origins, the theme comes from
//! configuration, nothing outside the UI's folder is reachable, and `whoami` tells a page which token it holds.

mod common;

use common::TestServer;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_FRAME_OPTIONS};
use serde_json::json;

async fn fetch(server: &TestServer, path: &str) -> reqwest::Response {
    server.http.get(server.url(path)).send().await.expect("request sent")
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn the_pages_are_served_from_the_binary_under_a_strict_policy() {
    let server = TestServer::start().await;

    let root = server.http.get(server.url("/")).send().await.expect("request sent");
    assert_eq!(root.status(), 200, "/ leads to the dashboard");
    assert_eq!(root.url().path(), "/ui/");

    let dashboard = fetch(&server, "/ui/").await;
    assert_eq!(dashboard.status(), 200);
    assert_eq!(header(&dashboard, CONTENT_TYPE), "text/html; charset=utf-8");
    let policy = header(&dashboard, CONTENT_SECURITY_POLICY);
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{directive} missing from {policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(header(&dashboard, X_FRAME_OPTIONS), "DENY");
    let html = dashboard.text().await.expect("body");
    assert!(html.contains(r#"src="/ui/dashboard/app.js""#), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style=\""), "no inline script or style: {html}");

    let script = fetch(&server, "/ui/dashboard/app.js").await;
    assert_eq!(script.status(), 200);
    assert_eq!(header(&script, CONTENT_TYPE), "text/javascript; charset=utf-8");
    let etag = header(&script, reqwest::header::ETAG);
    let again = server
        .http
        .get(server.url("/ui/dashboard/app.js"))
        .header(reqwest::header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("request sent");
    assert_eq!(again.status(), 304, "an unchanged file is not sent again");

    let portal = fetch(&server, "/app-portal").await;
    assert_eq!(portal.status(), 200);
    assert!(header(&portal, CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));

    for missing in ["/ui/nothing.js", "/ui/../Cargo.toml", "/ui/%2e%2e/Cargo.toml", "/ui/shared/../../build.rs"] {
        assert_eq!(fetch(&server, missing).await.status(), 404, "{missing}");
    }
    // Without a configured logo there is none; the theme names hookrelay.
    assert_eq!(fetch(&server, "/ui/logo").await.status(), 404);
    let theme: serde_json::Value = fetch(&server, "/ui/theme.json").await.json().await.expect("JSON");
    assert_eq!(theme, json!({"title": "hookrelay", "logo": null}));
    server.stop().await;
}

#[tokio::test]
async fn the_portal_is_themed_and_framed_as_configured() {
    let logo_dir = tempfile::tempdir().expect("temp dir");
    let logo = logo_dir.path().join("brand.svg");
    std::fs::write(&logo, r#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>"#).expect("logo");
    let server = TestServer::start_with(|args| {
        args.ui_title = Some("Acme webhooks".into());
        args.ui_accent_color = Some("#0F766E".into());
        args.ui_logo = Some(logo.clone());
        args.portal_frame_ancestors = Some("https://app.acme.test, 'self'".into());
    })
    .await;

    let portal = fetch(&server, "/app-portal").await;
    let policy = header(&portal, CONTENT_SECURITY_POLICY);
    assert!(policy.ends_with("frame-ancestors https://app.acme.test 'self'"), "{policy}");
    assert_eq!(header(&portal, X_FRAME_OPTIONS), "", "X-Frame-Options would forbid the configured framing");
    // The dashboard stays unframeable whatever the portal allows.
    assert!(header(&fetch(&server, "/ui/").await, CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));

    let css = fetch(&server, "/ui/theme.css").await.text().await.expect("body");
    assert!(css.contains("--accent: #0f766e"), "{css}");
    let theme: serde_json::Value = fetch(&server, "/ui/theme.json").await.json().await.expect("JSON");
    assert_eq!(theme, json!({"title": "Acme webhooks", "logo": "/ui/logo"}));
    let image = fetch(&server, "/ui/logo").await;
    assert_eq!(header(&image, CONTENT_TYPE), "image/svg+xml");
    assert!(image.text().await.expect("body").starts_with("<svg"));
    server.stop().await;
}

#[test]
fn bad_ui_settings_stop_the_start_with_a_reason() {
    use hookrelay::config::ServeArgs;
    let refused = |args: ServeArgs| args.resolve().expect_err("refused").to_string();
    let error = refused(ServeArgs { ui_accent_color: Some("red".into()), ..Default::default() });
    assert!(error.contains("HOOKRELAY_UI_ACCENT_COLOR"), "{error}");
    let error = refused(ServeArgs {
        portal_frame_ancestors: Some("https://a.test; script-src *".into()),
        ..Default::default()
    });
    assert!(error.contains("HOOKRELAY_PORTAL_FRAME_ANCESTORS"), "{error}");
    let error = refused(ServeArgs { ui_logo: Some("/nonexistent/logo.png".into()), ..Default::default() });
    assert!(error.contains("HOOKRELAY_UI_LOGO"), "{error}");
}

#[tokio::test]
async fn whoami_names_the_calling_tokens_scope() {
    let server = TestServer::start().await;
    let (status, me) = server.get("/api/v1/auth/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me, json!({"scope": "admin", "readOnly": false}));

    let app = server.create_app("portal-owner").await;
    for read_only in [false, true] {
        let (status, access) =
            server.post(&format!("/api/v1/auth/app-portal-access/{app}"), json!({"readOnly": read_only})).await;
        assert_eq!(status, 200, "{access}");
        let token = access["token"].as_str().expect("token");
        let response =
            server.http.get(server.url("/api/v1/auth/whoami/")).bearer_auth(token).send().await.expect("request sent");
        assert_eq!(response.status(), 200);
        let me: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(me, json!({"scope": "app", "appId": app, "readOnly": read_only}));
    }
    let anonymous = server.http.get(server.url("/api/v1/auth/whoami")).send().await.expect("request sent");
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_into_a_loop() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for (from, to) in [("/", "/ui/"), ("/ui", "/ui/")] {
        let response = client.get(server.url(from)).send().await.expect("request sent");
        assert!(response.status().is_redirection(), "{from}: {}", response.status());
        assert_eq!(header(&response, LOCATION), to);
    }
    server.stop().await;
}
