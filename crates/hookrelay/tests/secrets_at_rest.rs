//! Black-box tests of secrets at rest: with `HOOKRELAY_ENCRYPTION_KEY` set, the database file holds no secret in
//! plaintext, deliveries are still signed with the right secrets, a server without the key refuses to start, and
//! `hookrelay migrate --reencrypt` moves every secret to a new key. Without a configured key, SQLite seals with a
//! key it generates into the data directory (and seals what an older version left in plaintext), and a PostgreSQL
//! server without a key never stores a token in plaintext for an idempotency key.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Receiver, TestServer};
use hookrelay::config::ServeArgs;
use hookrelay_core::signing::EndpointSecret;
use hookrelay_testkit::postgres::ScratchSchema;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);
const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW_KEY: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn signed_by(received: &common::Received, secret: &str) -> bool {
    let secret = EndpointSecret::parse(secret).expect("whsec secret");
    let id = received.header("webhook-id");
    let ts: i64 = received.header("webhook-timestamp").parse().expect("numeric timestamp");
    let expected = secret.sign(id, ts, &received.body);
    received.header("webhook-signature").split(' ').any(|sig| sig == expected)
}

/// Every endpoint's two secret columns and every source's secrets, as the database file holds them.
fn stored_secrets(data_dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(data_dir.join("hookrelay.db")).expect("open the database file");
    let mut stmt = conn
        .prepare("SELECT secret || ' ' || previous_secrets FROM endpoints UNION ALL SELECT secrets FROM sources")
        .expect("query");
    stmt.query_map([], |row| row.get(0)).expect("rows").collect::<Result<_, _>>().expect("text")
}

fn args_on(data_dir: &Path, key: Option<&str>, previous: Option<&str>) -> ServeArgs {
    ServeArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(data_dir.to_owned()),
        admin_token: Some(common::TOKEN.into()),
        allow_private_endpoints: Some(true),
        encryption_key: key.map(str::to_owned),
        encryption_key_previous: previous.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test]
async fn secrets_are_encrypted_in_the_database_and_deliveries_stay_signed() {
    let server = TestServer::start_with(|args| args.encryption_key = Some(KEY.into())).await;
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (endpoint, old_secret) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let (status, rotated) =
        server.post(&format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/rotate/"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["key"].as_str().expect("new key").to_owned();
    let (status, source) = server
        .post(
            "/api/v1/source/",
            json!({ "name": "Stripe", "appId": app, "provider": "stripe", "secret": "whsec_c3RyaXBlIHNlY3JldA" }),
        )
        .await;
    assert_eq!(status, 201, "{source}");

    server.publish(&app, "a", json!({ "n": 1 })).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert!(signed_by(&got[0], &new_secret), "signed with the current secret");
    assert!(signed_by(&got[0], &old_secret), "and with the previous one during its grace period");

    let stored = stored_secrets(server.data_dir.path());
    assert_eq!(stored.len(), 2);
    for text in &stored {
        assert!(text.contains("enc:v1:"), "not encrypted: {text}");
        for secret in [&old_secret, &new_secret, &"whsec_c3RyaXBlIHNlY3JldA".to_owned()] {
            let body = secret.trim_start_matches("whsec_");
            assert!(!text.contains(body), "a secret is stored in plaintext: {text}");
        }
    }
    let data_dir = server.data_dir.path().to_owned();
    let mut server = server;
    server.server.take().expect("running").stop().await.expect("clean stop");

    // Without the key (the data directory's generated key is another one), or with another one, the server
    // refuses to start and names the setting.
    for (key, wanted) in
        [(None, "HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"), (Some(NEW_KEY), "HOOKRELAY_ENCRYPTION_KEY_PREVIOUS")]
    {
        let config = args_on(&data_dir, key, None).resolve().expect("valid config");
        let err = match hookrelay::cmd::serve::start(config).await {
            Ok(_) => panic!("a server started without the key its secrets were encrypted with"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains(wanted), "{err}");
    }

    // Rotation: re-encrypt under the new key (the old one given as previous), then the old key is not needed.
    let output = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["migrate", "--reencrypt", "--data-dir"])
        .arg(&data_dir)
        .env("HOOKRELAY_ENCRYPTION_KEY", NEW_KEY)
        .env("HOOKRELAY_ENCRYPTION_KEY_PREVIOUS", KEY)
        .env("HOOKRELAY_LOG", "error")
        .output()
        .expect("run hookrelay migrate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("endpoints") && stdout.contains("1 rewritten"), "{stdout}");
    assert!(!stdout.contains("whsec_"), "{stdout}");

    let restarted = hookrelay::cmd::serve::start(args_on(&data_dir, Some(NEW_KEY), None).resolve().unwrap())
        .await
        .expect("the new key alone reads every secret");
    let base = format!("http://{}", restarted.addr);
    let http = common::http_client();
    let secret: serde_json::Value = http
        .get(format!("{base}/api/v1/app/{app}/endpoint/{endpoint}/secret/"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(secret["key"], json!(new_secret));
    restarted.stop().await.expect("clean stop");
}

/// Every remembered response body, as the database file holds it.
fn stored_idempotent_bodies(data_dir: &Path) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(data_dir.join("hookrelay.db")).expect("open the database file");
    let mut stmt = conn.prepare("SELECT body FROM idempotency").expect("query");
    stmt.query_map([], |row| row.get(0)).expect("rows").collect::<Result<_, _>>().expect("bytes")
}

/// POSTs with an idempotency key, returning status and body text.
async fn post_with_key(http: &reqwest::Client, url: &str, key: &str, body: serde_json::Value) -> (u16, String) {
    let response = http
        .post(url)
        .bearer_auth(common::TOKEN)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    (response.status().as_u16(), response.text().await.expect("body"))
}

#[tokio::test]
async fn sqlite_seals_with_a_generated_key_by_default() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.path().to_owned();
    let key_file = data_dir.join(hookrelay::encryption_key::KEY_FILE);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("a key file in the data directory").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let receiver = Receiver::ok().await;
    let app = server.create_app("Acme").await;
    let (_, secret) = server.create_endpoint(&app, &receiver.url(), json!({})).await;
    let (status, portal) = post_with_key(
        &server.http,
        &server.url(&format!("/api/v1/auth/app-portal-access/{app}/")),
        "portal-1",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{portal}");
    let token =
        serde_json::from_str::<serde_json::Value>(&portal).expect("JSON")["token"].as_str().expect("token").to_owned();
    server.publish(&app, "a", json!({ "n": 1 })).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert!(signed_by(&got[0], &secret));

    for text in stored_secrets(&data_dir) {
        assert!(text.starts_with("enc:v1:"), "not sealed: {text}");
        assert!(!text.contains(secret.trim_start_matches("whsec_")), "a secret is stored in plaintext: {text}");
    }
    let bodies = stored_idempotent_bodies(&data_dir);
    assert!(!bodies.is_empty(), "the portal response is remembered");
    for body in bodies {
        assert!(!String::from_utf8_lossy(&body).contains(&token), "a token is stored in plaintext");
    }
    // The repeat still gets the same token: sealed is not forgotten.
    let (status, again) = post_with_key(
        &server.http,
        &server.url(&format!("/api/v1/auth/app-portal-access/{app}/")),
        "portal-1",
        json!({}),
    )
    .await;
    assert_eq!((status, again), (200, portal));
    server.stop().await;
}

#[tokio::test]
async fn a_database_from_before_default_sealing_is_sealed_at_the_first_start() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    // An older version wrote plaintext: the store opened without a cipher writes exactly that.
    {
        use hookrelay_core::model::{Application, DeliveryOrder, Endpoint, SecretSet, SignatureScheme};
        let store = hookrelay_store::sqlite::SqliteStore::open(&data_dir.path().join("hookrelay.db")).expect("open");
        let now = hookrelay_core::time::now_ms();
        let app = Application {
            id: hookrelay_core::AppId::at(now),
            uid: None,
            name: "Old".into(),
            rate_limit: None,
            metadata: Default::default(),
            created_at: now,
            updated_at: now,
        };
        hookrelay_store::Catalog::create_app(&store, &app).await.expect("app");
        let endpoint = Endpoint {
            id: hookrelay_core::EndpointId::at(now),
            app_id: app.id.clone(),
            uid: None,
            url: "http://127.0.0.1:9/old".into(),
            description: String::new(),
            filter_types: None,
            channels: None,
            rate_limit: None,
            disabled: false,
            metadata: Default::default(),
            version: 1,
            headers: Default::default(),
            secrets: SecretSet::new(EndpointSecret::generate()),
            signature_schemes: vec![SignatureScheme::Standard],
            ordering: DeliveryOrder::Unordered,
            signature_headers: Vec::new(),
            standard_headers: Default::default(),
            retry: Default::default(),
            transformation: None,
            created_at: now,
            updated_at: now,
        };
        hookrelay_store::Catalog::create_endpoint(&store, &endpoint).await.expect("endpoint");
    }
    assert!(stored_secrets(data_dir.path()).iter().all(|text| text.starts_with("whsec_")), "plaintext before");
    let server = hookrelay::cmd::serve::start(args_on(data_dir.path(), None, None).resolve().expect("config"))
        .await
        .expect("server starts");
    let stored = stored_secrets(data_dir.path());
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("enc:v1:"), "sealed at the first start: {}", stored[0]);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn postgres_without_a_key_remembers_no_token_and_says_why() {
    let schema = ScratchSchema::for_test().await;
    let server = TestServer::start_with(|args| args.database_url = Some(schema.url().to_owned())).await;
    let app = server.create_app("Acme").await;
    let url = server.url(&format!("/api/v1/auth/app-portal-access/{app}/"));
    let (status, portal) = post_with_key(&server.http, &url, "portal-1", json!({})).await;
    assert_eq!(status, 200, "{portal}");
    let token =
        serde_json::from_str::<serde_json::Value>(&portal).expect("JSON")["token"].as_str().expect("token").to_owned();

    let client = schema.client().await;
    let rows = client.query("SELECT body FROM idempotency", &[]).await.expect("read remembered responses");
    assert_eq!(rows.len(), 1, "the key is remembered");
    for row in rows {
        let body: Vec<u8> = row.get(0);
        assert!(!String::from_utf8_lossy(&body).contains(&token), "a token is stored in plaintext");
    }

    let (status, again) = post_with_key(&server.http, &url, "portal-1", json!({})).await;
    assert_eq!(status, 409, "{again}");
    assert!(again.contains("idempotency_not_replayable") && again.contains("new idempotency key"), "{again}");
    assert!(!again.contains(&token));
    // A new key works as usual.
    assert_eq!(post_with_key(&server.http, &url, "portal-2", json!({})).await.0, 200);
    server.stop().await;
}
