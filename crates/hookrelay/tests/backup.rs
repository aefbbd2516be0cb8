//! `hookrelay backup` copies a running server's SQLite database consistently: a server started on the copy has
//! every message acknowledged before the backup began, although publishing went on during the backup.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{ServerProcess, TOKEN, create, http_client, list_message_ids};
use serde_json::json;

/// Runs `hookrelay backup` with `args`, reading the database from `data_dir` as `serve` does.
fn run_backup(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("backup")
        .args(args)
        .env("HOOKRELAY_DATA_DIR", data_dir)
        .env_remove("HOOKRELAY_DATABASE_URL")
        .output()
        .expect("hookrelay backup runs")
}

async fn publish(http: &reqwest::Client, base: &str, app: &str, n: usize) -> String {
    let response = http
        .post(format!("{base}/api/v1/app/{app}/msg/"))
        .bearer_auth(TOKEN)
        .json(&json!({ "eventType": "order.paid", "payload": { "n": n } }))
        .send()
        .await
        .expect("publish sent");
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.expect("JSON body");
    body["id"].as_str().expect("message id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_publishing_holds_every_message_acknowledged_before_it() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::spawn(data_dir.path(), &[]);
    let http = http_client();
    let app = create(&http, &format!("{}/api/v1/app/", server.base), json!({ "name": "backup" })).await;
    let mut acknowledged = Vec::new();
    for n in 0..300 {
        acknowledged.push(publish(&http, &server.base, &app, n).await);
    }

    // Publishing goes on while the backup runs.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = {
        let (http, base, app) = (http.clone(), server.base.clone(), app.clone());
        tokio::spawn(async move {
            let mut published = 0;
            while stopped.try_recv().is_err() {
                publish(&http, &base, &app, 1000 + published).await;
                published += 1;
            }
            published
        })
    };
    let backups = tempfile::tempdir().expect("temp dir");
    let copy = backups.path().join("hookrelay-backup.db");
    let copy_arg = copy.to_str().expect("utf-8 path");
    let output = {
        let data_dir = data_dir.path().to_owned();
        let copy_arg = copy_arg.to_owned();
        tokio::task::spawn_blocking(move || run_backup(&data_dir, &[&copy_arg])).await.expect("backup task")
    };
    let _ = stop.send(());
    let during = publisher.await.expect("publisher");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "backup failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("backed up"), "{stdout}");
    println!("{during} messages were published while the backup ran");
    assert_eq!(std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777, 0o600);

    // An existing file is replaced only with --force.
    let refused = run_backup(data_dir.path(), &[copy_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"), "{refused:?}");

    // A server on the copy (the original keeps running: the copy is independent of it) has them all.
    let restored_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&copy, restored_dir.path().join("hookrelay.db")).expect("restore the copy");
    let restored = ServerProcess::spawn(restored_dir.path(), &[]);
    let ids = list_message_ids(&http, &restored.base, &app).await;
    let missing: Vec<_> = acknowledged.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages missing from the backup, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(ids.len() >= acknowledged.len());

    let forced = run_backup(data_dir.path(), &[copy_arg, "--force"]);
    assert!(forced.status.success(), "{forced:?}");
}
