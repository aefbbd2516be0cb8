//! Honest health, black-box over loopback: while the database refuses writes, `GET /api/v1/health/` answers 503
//! `store_unwritable` with the reason, and it answers 200 again by itself once writes work, with no traffic
//! needed. The writes fail for real: on SQLite the server process's file-size limit is lowered under it (writes
//! then fail with `EFBIG`, as on a full disk), on PostgreSQL the role it connects as loses its write privileges.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ServerProcess, TestServer, http_client, wait_for};
use serde_json::{Value, json};

/// Long enough for a write probe (every 5 s while writes work, every second while they fail) on a busy machine.
const WAIT: Duration = Duration::from_secs(30);

async fn health(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = http.get(format!("{base}/api/v1/health/")).send().await.expect("health answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("health body is JSON"))
}

/// Polls health until it answers `status`; returns the body.
async fn health_becomes(http: &reqwest::Client, base: &str, status: u16) -> Value {
    wait_for(&format!("health {status}"), WAIT, async || {
        let (got, body) = health(http, base).await;
        (got == status).then_some(body)
    })
    .await
}

async fn publish(http: &reqwest::Client, base: &str, app: &str) -> u16 {
    let response = http
        .post(format!("{base}/api/v1/app/{app}/msg/"))
        .bearer_auth(common::TOKEN)
        .json(&json!({"eventType": "health.probe", "payload": {"n": 1}}))
        .send()
        .await
        .expect("publish answers");
    response.status().as_u16()
}

/// Sets the soft file-size limit of process `pid` (the hard one stays unlimited).
fn limit_file_size(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --fsize={soft} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_health_is_503_while_writes_fail_and_200_again_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::spawn(dir.path(), &[]);
    let http = http_client();
    let app = common::create(&http, &format!("{}/api/v1/app/", server.base), json!({"name": "health"})).await;
    assert_eq!(health_becomes(&http, &server.base, 200).await["status"], "ok");

    // No file may grow past 1 byte: every commit's write to the log fails, as on a full disk.
    limit_file_size(server.pid(), "1");
    assert_eq!(publish(&http, &server.base, &app).await, 503, "a publish that cannot be stored is a clean 503");
    let body = health_becomes(&http, &server.base, 503).await;
    assert_eq!(body["code"], "store_unwritable", "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("disk I/O error") || detail.contains("disk is full"), "{detail}");
    assert!(!detail.contains(&dir.path().display().to_string()), "no path in a public answer: {detail}");

    // Fixed: health recovers through the write probe alone, without any request writing.
    limit_file_size(server.pid(), "unlimited");
    assert_eq!(health_becomes(&http, &server.base, 200).await["database"], "ok");
    assert_eq!(publish(&http, &server.base, &app).await, 202);
}

/// A PostgreSQL role of the test's own, dropped (with what it owns) at the end.
struct TestRole {
    name: String,
    admin: tokio_postgres::Client,
}

impl TestRole {
    async fn create(schema: &str) -> Self {
        let url = hookrelay_testkit::postgres::test_database_url();
        let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        let name = format!("hr_test_role_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{name}'; GRANT USAGE, CREATE ON SCHEMA {schema} TO {name}"
            ))
            .await
            .expect("create role");
        Self { name, admin }
    }

    /// `schema_url` (the test schema's URL, as the admin user) with this role as the user.
    fn url(&self, schema_url: &str) -> String {
        let (scheme, rest) = schema_url.split_once("://").expect("URL scheme");
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{0}:{0}@{host}", self.name)
    }

    async fn set_writes(&self, schema: &str, allowed: bool) {
        let sql = if allowed {
            format!("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {}", self.name)
        } else {
            format!("REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} FROM {}", self.name)
        };
        self.admin.batch_execute(&sql).await.expect("grant or revoke");
    }

    async fn drop(self) {
        let name = &self.name;
        self.admin.batch_execute(&format!("DROP OWNED BY {name}; DROP ROLE {name}")).await.expect("drop role");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_health_is_503_while_writes_are_refused_and_200_again_after() {
    let schema = hookrelay_testkit::postgres::ScratchSchema::for_test().await;
    let role = TestRole::create(schema.name()).await;
    let url = role.url(schema.url());
    let server = TestServer::start_with(|args| args.database_url = Some(url)).await;
    let app = server.create_app("health").await;
    assert_eq!(health_becomes(&server.http, &server.base, 200).await["status"], "ok");

    role.set_writes(schema.name(), false).await;
    assert!(publish(&server.http, &server.base, &app).await >= 500, "a publish that cannot be stored fails");
    let body = health_becomes(&server.http, &server.base, 503).await;
    assert_eq!(body["code"], "store_unwritable", "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("permission denied (SQLSTATE 42501)"), "{detail}");

    role.set_writes(schema.name(), true).await;
    assert_eq!(health_becomes(&server.http, &server.base, 200).await["database"], "ok");
    assert_eq!(publish(&server.http, &server.base, &app).await, 202);
    server.stop().await;
    role.drop().await;
}
