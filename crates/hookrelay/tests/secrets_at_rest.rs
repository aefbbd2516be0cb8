//! Black-box tests of secrets at rest: with `HOOKRELAY_ENCRYPTION_KEY` set, the database file holds no secret in
//! plaintext, deliveries are still signed with the right secrets, a server without the key refuses to start, and
//! `hookrelay migrate --reencrypt` moves every secret to a new key.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Receiver, TestServer};
use hookrelay::config::ServeArgs;
use hookrelay_core::signing::EndpointSecret;
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

    // Without the key, or with another one, the server refuses to start and names the setting.
    for (key, wanted) in
        [(None, "HOOKRELAY_ENCRYPTION_KEY is not set"), (Some(NEW_KEY), "HOOKRELAY_ENCRYPTION_KEY_PREVIOUS")]
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
