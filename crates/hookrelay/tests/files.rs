//! What the server keeps on disk is private: the data directory is 0700 and every file in it (database, `-wal`,
//! `-shm`, lock file, admin token) 0600, on a new install and after starting on an older install's 0644 files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::http_client;
use hookrelay::cmd::serve::{RunningServer, start};
use hookrelay::config::ServeArgs;
use serde_json::{Value, json};

/// Starts a server on `data_dir` that generates (or reads) its admin token there.
async fn start_on(data_dir: &Path) -> RunningServer {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(data_dir.to_owned()),
        ..Default::default()
    };
    start(args.resolve().expect("valid config")).await.expect("server starts")
}

/// Creates an application and publishes a message to it, so the database and its log hold data.
async fn publish_something(server: &RunningServer) {
    let (http, base) = (http_client(), format!("http://{}", server.addr));
    let post = async |path: &str, body: Value| {
        let response =
            http.post(format!("{base}{path}")).bearer_auth(&server.admin_token).json(&body).send().await.expect("sent");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON body"))
    };
    let (status, app) = post("/api/v1/app/", json!({ "name": "files" })).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().expect("app id");
    let (status, msg) =
        post(&format!("/api/v1/app/{app_id}/msg/"), json!({ "eventType": "user.created", "payload": {} })).await;
    assert_eq!(status, 202, "{msg}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// Every file in `dir` with its mode, by name.
fn file_modes(dir: &Path) -> Vec<(String, u32)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            (entry.file_name().to_string_lossy().into_owned(), mode(&entry.path()))
        })
        .collect();
    files.sort();
    files
}

fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "the data directory is {:04o}", mode(dir));
    let files = file_modes(dir);
    for expected in ["admin-token", "hookrelay.db", "hookrelay.lock"] {
        assert!(files.iter().any(|(name, _)| name == expected), "{expected} missing from {files:?}");
    }
    let open: Vec<_> =
        files.iter().filter(|(_, mode)| *mode != 0o600).map(|(name, mode)| format!("{name} {mode:04o}")).collect();
    assert!(open.is_empty(), "files other than 0600: {open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_directory_and_every_file_in_it_are_private() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("hookrelay-data");
    let server = start_on(&data_dir).await;
    publish_something(&server).await;
    let files = file_modes(&data_dir);
    // The server is running: the log and its index are there too.
    for expected in ["hookrelay.db-wal", "hookrelay.db-shm"] {
        assert!(files.iter().any(|(name, _)| name == expected), "{expected} missing from {files:?}");
    }
    assert_private(&data_dir);
    server.stop().await.expect("clean stop");
    assert_private(&data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_installs_readable_files_are_made_private_at_start() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("hookrelay-data");
    let server = start_on(&data_dir).await;
    publish_something(&server).await;
    server.stop().await.expect("clean stop");
    // What an older version left: a 0755 directory with 0644 files.
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for (name, _) in file_modes(&data_dir) {
        std::fs::set_permissions(data_dir.join(name), std::fs::Permissions::from_mode(0o644)).expect("chmod file");
    }
    assert_eq!(mode(&data_dir.join("hookrelay.db")), 0o644);

    let server = start_on(&data_dir).await;
    publish_something(&server).await;
    assert_private(&data_dir);
    server.stop().await.expect("clean stop");
}
