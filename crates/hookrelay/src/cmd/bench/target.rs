//! The server under test: a `hookrelay serve` child process spawned from this executable on 127.0.0.1:0 with a
//! fresh data directory (SQLite) or a fresh PostgreSQL schema, so its CPU time and memory can be read from
//! /proc apart from the load generator's; or an existing server given by `--url`, whose figures are not
//! measured. Also the few admin API calls the scenarios need, and the /proc readings.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use hookrelay_testkit::postgres::ScratchSchema;
use serde_json::{Value, json};

/// The retry schedule of spawned servers: short, so a refused delivery (S5) is retried within seconds.
const RETRY_SCHEDULE: &str = "1,1,1,1,1,1,1,1,1,1,2,5,10,30,60";
/// The circuit breaker's pause of spawned servers: S5 trips it, and its drain should start about when the
/// receiver comes up, not after the default pause.
const BREAKER_PAUSE_SECS: &str = "1";

/// A fresh schema for one scenario's server on the PostgreSQL at `admin_url`.
pub async fn create_schema(admin_url: &str) -> anyhow::Result<ScratchSchema> {
    ScratchSchema::create(admin_url, "hr_bench").await.with_context(|| {
        format!("cannot create the bench schema in PostgreSQL at {}", crate::config::redact_password(admin_url))
    })
}

/// A server the benchmark talks to.
pub struct Server {
    /// e.g. `http://127.0.0.1:40123`
    pub base: String,
    pub token: String,
    /// `hookrelay bench-reference`, which stores nothing and has no transformations.
    pub reference: bool,
    child: Option<Child>,
    _data_dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn external(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            reference: false,
            child: None,
            _data_dir: None,
        }
    }

    /// Spawns `hookrelay serve` (this same executable) and waits until it prints its address. Instances sharing
    /// a database share their admin token (`token`); otherwise a new one is made.
    pub async fn spawn(database_url: Option<&str>, token: Option<&str>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the hookrelay executable to spawn the server")?;
        let data_dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let token = token.map_or_else(|| format!("bench-{:016x}", rand::random::<u64>()), str::to_owned);
        let mut command = Command::new(&exe);
        // The caller's HOOKRELAY_* settings (a config file, a database URL…) must not leak into the server under
        // test: every run measures the same configuration.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HOOKRELAY_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("HOOKRELAY_LISTEN", "127.0.0.1:0")
            .env("HOOKRELAY_DATA_DIR", data_dir.path())
            .env("HOOKRELAY_ADMIN_TOKEN", &token)
            .env("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
            .env("HOOKRELAY_RETRY_SCHEDULE", RETRY_SCHEDULE)
            .env("HOOKRELAY_BREAKER_PAUSE_SECS", BREAKER_PAUSE_SECS)
            .env("HOOKRELAY_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            command.env("HOOKRELAY_DATABASE_URL", url);
        }
        Self::start(command, token, Some(data_dir)).await
    }

    /// Spawns `hookrelay bench-reference`, the no-storage ceiling (it takes no token and keeps no data).
    pub async fn spawn_reference() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the hookrelay executable to spawn the server")?;
        let mut command = Command::new(&exe);
        command
            .args(["bench-reference", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut server = Self::start(command, "reference".to_owned(), None).await?;
        server.reference = true;
        Ok(server)
    }

    async fn start(mut command: Command, token: String, data_dir: Option<tempfile::TempDir>) -> anyhow::Result<Self> {
        let mut child = command.spawn().with_context(|| format!("cannot start {command:?}"))?;
        let stdout = child.stdout.take().context("no stdout from the server process")?;
        // Blocking reads on a thread of their own; the thread keeps draining stdout so the child never blocks.
        let (found, address) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("hookrelay listening on ")
                    && let (Some(url), Some(found)) = (rest.split_whitespace().next(), found.take())
                {
                    let _ = found.send(url.to_owned());
                }
            }
        });
        let base = match tokio::time::timeout(Duration::from_secs(30), address).await {
            Ok(Ok(base)) => base,
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                bail!("the hookrelay server did not start (exit status: {status}); its errors are above");
            }
        };
        Ok(Self { base, token, reference: false, child: Some(child), _data_dir: data_dir })
    }

    /// The spawned server's process id; `None` for an external server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills a spawned server (its data directory goes with `self`).
    pub fn stop(self) {
        drop(self);
    }

    async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(client, reqwest::Method::POST, path, body).await
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method} {path} to {} failed", self.base))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("{method} {path}: cannot read the answer"))?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path} answered something that is not JSON"))
    }

    pub async fn create_app(&self, client: &reqwest::Client, name: &str) -> anyhow::Result<String> {
        let app = self.post(client, "/api/v1/app/", json!({ "name": name })).await?;
        app["id"].as_str().map(str::to_owned).context("the created app has no id")
    }

    pub async fn create_endpoint(&self, client: &reqwest::Client, app: &str, url: &str) -> anyhow::Result<String> {
        self.create_endpoint_with(client, app, json!({ "url": url })).await
    }

    /// Creates an endpoint from a whole `EndpointIn` body; returns its id.
    pub async fn create_endpoint_with(
        &self,
        client: &reqwest::Client,
        app: &str,
        body: Value,
    ) -> anyhow::Result<String> {
        let endpoint = self.post(client, &format!("/api/v1/app/{app}/endpoint/"), body).await?;
        Ok(endpoint["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Sets and enables an endpoint's transformation.
    pub async fn set_transformation(
        &self,
        client: &reqwest::Client,
        app: &str,
        endpoint: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/transformation/");
        self.send(client, reqwest::Method::PATCH, &path, json!({ "code": code, "enabled": true })).await.map(|_| ())
    }
}

impl Drop for Server {
    /// Also on an early return or a panic: a spawned server must not outlive the benchmark. SIGKILL is enough,
    /// since its data directory is thrown away.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time and memory of a process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub cpu_secs: f64,
    /// Peak resident set (VmHWM), in KiB.
    pub peak_rss_kb: u64,
    /// Current resident set (VmRSS), in KiB.
    pub rss_kb: u64,
}

/// Reads `/proc/<pid>` (or `/proc/self`); `None` where /proc is not available.
pub fn proc_stats(pid: Option<u32>) -> Option<ProcStats> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, hence the last ')'): state is field 3, utime 14,
    // stime 15, in clock ticks. USER_HZ is 100 on every Linux architecture hookrelay builds for.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(ProcStats { cpu_secs: ticks as f64 / 100.0, peak_rss_kb: kb("VmHWM:"), rss_kb: kb("VmRSS:") })
}

/// CPU seconds used so far by every process named `postgres` on this machine (the server the benchmark's
/// instances share, when it runs here); `None` without /proc or without such a process.
pub fn postgres_cpu_secs() -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else { continue };
        if comm.trim() == "postgres"
            && let Some(stats) = proc_stats(Some(pid))
        {
            *total.get_or_insert(0.0) += stats.cpu_secs;
        }
    }
    total
}

/// PostgreSQL's write-ahead log counters so far (`pg_stat_wal`, PostgreSQL 14 and later), server-wide.
#[derive(Clone, Copy, Debug)]
pub struct WalCounters {
    /// Times the log was synced to disk (fdatasync or fsync).
    pub syncs: i64,
    pub bytes: f64,
}

/// Reads [`WalCounters`] from the PostgreSQL of the scratch schema at `url`; `None` if it cannot (an older server).
pub async fn wal_counters(url: &str) -> Option<WalCounters> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.ok()?;
    let driver = tokio::spawn(connection);
    let row = client.query_one("SELECT wal_sync, wal_bytes::float8 FROM pg_stat_wal", &[]).await.ok();
    drop(client);
    let _ = driver.await;
    let row = row?;
    Some(WalCounters { syncs: row.try_get(0).ok()?, bytes: row.try_get(1).ok()? })
}

/// The counters a server keeps of its own that the report shows per instance, from its `GET /metrics`: successful
/// attempts and leases taken over. `None` if the scrape fails.
pub async fn scraped_counters(client: &reqwest::Client, base: &str) -> Option<(f64, f64)> {
    let text = client.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    let value = |series: &str| {
        text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    Some((value("hookrelay_delivery_attempts_total{result=\"success\"}"), value("hookrelay_leases_taken_over_total")))
}

/// Resets this process's peak RSS (VmHWM) to its current RSS, so each scenario reports its own peak; best
/// effort (Linux ≥ 4.0).
pub fn reset_own_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
