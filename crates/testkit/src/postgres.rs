//! A scratch PostgreSQL schema: created empty under a unique name, selected by a URL whose `search_path` option
//! names it, and dropped with everything in it. Tests and benchmark scenarios each get one, so they run side by
//! side on one database without seeing each other's rows.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

/// The server the tests use when `HOOKRELAY_TEST_DATABASE_URL` is not set: the one CI provides.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database the PostgreSQL tests use: `HOOKRELAY_TEST_DATABASE_URL`, or [`DEFAULT_TEST_DATABASE_URL`].
pub fn test_database_url() -> String {
    std::env::var("HOOKRELAY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Why a scratch schema could not be created or dropped. It never holds the database URL, which may carry a
/// password: callers that name the server redact it first.
#[derive(Debug)]
pub struct ScratchSchemaError(String);

impl fmt::Display for ScratchSchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScratchSchemaError {}

/// A schema of its own on a PostgreSQL server. [`ScratchSchema::drop_now`] drops it; if it is dropped without
/// that (a failed test), a best-effort drop runs on a thread of its own.
pub struct ScratchSchema {
    name: String,
    admin_url: String,
    url: String,
    dropped: bool,
}

impl ScratchSchema {
    /// Creates an empty schema named `{prefix}_{pid}_{ms}_{n}` (unique across processes, runs and the schemas
    /// of this process; lowercase, so it needs no quoting) in the database `admin_url` names.
    pub async fn create(admin_url: &str, prefix: &str) -> Result<Self, ScratchSchemaError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis());
        let name = format!("{prefix}_{}_{ms}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run(admin_url, &format!("CREATE SCHEMA {name}")).await?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{name}");
        Ok(Self { name, admin_url: admin_url.to_owned(), url, dropped: false })
    }

    /// A schema for one test on [`test_database_url`]; fails the test, saying how to provide a server, when
    /// PostgreSQL is not reachable there.
    pub async fn for_test() -> Self {
        match Self::create(&test_database_url(), "hr_test").await {
            Ok(schema) => schema,
            Err(err) => panic!(
                "cannot create a test schema in PostgreSQL ({err}). These tests need a PostgreSQL server (15 or \
                 newer) and a database they may create schemas in: start one, or point \
                 HOOKRELAY_TEST_DATABASE_URL at one (default: {DEFAULT_TEST_DATABASE_URL})."
            ),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL whose connections work in this schema (and see nothing else unqualified).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's address: the host and port of the URL it was created on (port 5432 when it names none), for
    /// a proxy in front of it.
    pub async fn server_addr(&self) -> std::net::SocketAddr {
        let host = &self.admin_url[host_range(&self.admin_url)];
        let host_port =
            if host.ends_with(']') || !host.contains(':') { format!("{host}:5432") } else { host.to_owned() };
        let mut addrs = tokio::net::lookup_host(&host_port)
            .await
            .unwrap_or_else(|err| panic!("cannot resolve the PostgreSQL server {host_port}: {err}"));
        addrs.next().unwrap_or_else(|| panic!("the PostgreSQL server {host_port} has no address"))
    }

    /// [`url`](Self::url) with the server's host and port replaced by `addr` (a proxy's).
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        let mut url = self.url.clone();
        url.replace_range(host_range(&self.url), &addr.to_string());
        url
    }

    /// A connection of its own to this schema, for reading or changing rows behind a store's back.
    pub async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to scratch schema {}: {}", self.name, describe(&err)));
        tokio::spawn(connection);
        client
    }

    /// Drops the schema and everything in it. Awaited on the caller's runtime, so the connections of stores
    /// dropped just before can still finish what they had queued (a rollback) and release their locks.
    pub async fn drop_now(mut self) -> Result<(), ScratchSchemaError> {
        self.dropped = true;
        run(&self.admin_url, &drop_sql(&self.name)).await
    }
}

impl Drop for ScratchSchema {
    /// The fallback after a failed test: Drop cannot await, and the caller's runtime may be blocked right here,
    /// so a thread with a runtime of its own drops the schema. Best effort: a schema left behind only costs
    /// disk space, and its name says whose it was.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, sql) = (self.admin_url.clone(), drop_sql(&self.name));
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| ScratchSchemaError(err.to_string()))?;
            runtime.block_on(run(&url, &sql))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop scratch schema {} (left behind; drop it by hand)", self.name);
        }
    }
}

/// Where `host[:port]` is in `scheme://[user[:password]@]host[:port][/database][?options]`.
fn host_range(url: &str) -> std::ops::Range<usize> {
    let start = url.find("://").map_or(0, |at| at + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |at| start + at);
    let host_start = url[start..end].rfind('@').map_or(start, |at| start + at + 1);
    host_start..end
}

fn drop_sql(name: &str) -> String {
    // A lock held by a connection that will never finish must not hang the caller.
    format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {name} CASCADE")
}

/// Runs `sql` on a connection of its own, closed before returning.
async fn run(url: &str, sql: &str) -> Result<(), ScratchSchemaError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|err| ScratchSchemaError(format!("cannot connect: {}", describe(&err))))?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(|err| ScratchSchemaError(format!("`{sql}` failed: {err}")));
    drop(client);
    let _ = driver.await;
    result
}

/// The error and its source: tokio-postgres says only "error connecting to server" and keeps the reason
/// (refused, unknown host, …) in the source.
fn describe(err: &tokio_postgres::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::host_range;

    #[test]
    fn the_host_is_found_after_the_user_and_before_the_database() {
        for (url, host) in [
            ("postgres://postgres@127.0.0.1:5432/test", "127.0.0.1:5432"),
            ("postgres://u:p@ss@db.internal/x?options=-csearch_path%3Ds", "db.internal"),
            ("postgresql://[::1]:6432?sslmode=disable", "[::1]:6432"),
            ("postgres://localhost", "localhost"),
        ] {
            assert_eq!(&url[host_range(url)], host, "{url}");
        }
    }
}
