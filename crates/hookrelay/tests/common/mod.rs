//! Test harness for black-box tests: a hookrelay server started through the same `start` function as
//! `hookrelay serve` (on port 0, with a temp data dir), a `hookrelay serve` child process for tests that kill
//! it, an API client, and a real receiver on loopback. What does not need hookrelay itself (the loopback HTTP
//! client, polling, the scratch PostgreSQL schema, the retrying publisher) is in the `hookrelay-testkit` crate.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use hookrelay::cmd::serve::{RunningServer, start};
use hookrelay::config::ServeArgs;
use serde_json::{Value, json};

pub use hookrelay_testkit::http::client as http_client;
pub use hookrelay_testkit::wait::wait_for;

pub const TOKEN: &str = "test-admin-token";

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl TestServer {
    /// A server on a fresh data dir that may deliver to loopback, retrying after 1 s and 1 s.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServeArgs)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut args = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            data_dir: Some(data_dir.path().to_owned()),
            admin_token: Some(TOKEN.into()),
            retry_schedule: Some("1,1".into()),
            delivery_timeout_secs: Some(5),
            allow_private_endpoints: Some(true),
            ..Default::default()
        };
        tweak(&mut args);
        let server = start(args.resolve().expect("valid config")).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        Self { server: Some(server), base, data_dir, http: http_client() }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean stop");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body read");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates event types (endpoint filters may only name existing ones).
    pub async fn create_event_types(&self, names: &[&str]) {
        for name in names {
            let (status, body) = self.post("/api/v1/event-type/", json!({ "name": name, "description": name })).await;
            assert_eq!(status, 201, "{body}");
        }
    }

    /// Creates an app, returning its id.
    pub async fn create_app(&self, name: &str) -> String {
        let (status, app) = self.post("/api/v1/app/", json!({ "name": name })).await;
        assert_eq!(status, 201, "{app}");
        app["id"].as_str().expect("app id").to_owned()
    }

    /// Creates an endpoint with the given extra fields, returning (id, secret).
    pub async fn create_endpoint(&self, app_id: &str, url: &str, extra: Value) -> (String, String) {
        let mut body = json!({ "url": url });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, endpoint) = self.post(&format!("/api/v1/app/{app_id}/endpoint/"), body).await;
        assert_eq!(status, 201, "{endpoint}");
        let id = endpoint["id"].as_str().expect("endpoint id").to_owned();
        let (status, secret) = self.get(&format!("/api/v1/app/{app_id}/endpoint/{id}/secret/")).await;
        assert_eq!(status, 200, "{secret}");
        (id, secret["key"].as_str().expect("secret key").to_owned())
    }

    pub async fn publish(&self, app_id: &str, event_type: &str, payload: Value) -> String {
        let (status, msg) = self
            .post(&format!("/api/v1/app/{app_id}/msg/"), json!({ "eventType": event_type, "payload": payload }))
            .await;
        assert_eq!(status, 202, "{msg}");
        msg["id"].as_str().expect("message id").to_owned()
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path, e.g. `/webhook`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request reached the receiver.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How the receiver answers its n-th request (0-based): a status, after an optional delay.
pub type Behaviour = Arc<dyn Fn(usize) -> (StatusCode, Duration) + Send + Sync>;

/// How the receiver answers its n-th request: a status with response headers.
pub type HeaderBehaviour = Arc<dyn Fn(usize) -> (StatusCode, Vec<(&'static str, &'static str)>) + Send + Sync>;

/// A status, a delay before answering, and response headers.
pub type Reply = (StatusCode, Duration, Vec<(&'static str, &'static str)>);

/// How the receiver answers a request, given its index (0-based) and the request itself.
pub type RequestBehaviour = Arc<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

/// A webhook receiver on a loopback port that records every request.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// A receiver that answers 500 until the flag returned with it is set, then 200.
    pub async fn flaky() -> (Self, Arc<std::sync::atomic::AtomicBool>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let healthy = Arc::new(AtomicBool::new(false));
        let flag = healthy.clone();
        let receiver = Self::start(Arc::new(move |_| {
            let status = if flag.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
            (status, Duration::ZERO)
        }))
        .await;
        (receiver, healthy)
    }

    pub async fn ok() -> Self {
        Self::start(Arc::new(|_| (StatusCode::OK, Duration::ZERO))).await
    }

    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), behaviour).await
    }

    pub async fn start_with_headers(behaviour: HeaderBehaviour) -> Self {
        let reply = Arc::new(move |n, _: &Received| {
            let (status, headers) = behaviour(n);
            (status, Duration::ZERO, headers)
        });
        Self::serve("127.0.0.1:0".parse().expect("addr"), reply).await
    }

    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let reply = Arc::new(move |n, _: &Received| {
            let (status, delay) = behaviour(n);
            (status, delay, Vec::new())
        });
        Self::serve(addr, reply).await
    }

    /// A receiver whose answer may depend on the request (its path, headers or body).
    pub async fn start_with_requests(behaviour: RequestBehaviour) -> Self {
        Self::serve("127.0.0.1:0".parse().expect("addr"), behaviour).await
    }

    async fn serve(addr: SocketAddr, behaviour: RequestBehaviour) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, behaviour) = (log.clone(), behaviour.clone());
            async move {
                let request = Received { path: uri.path().to_owned(), headers, body, at: Instant::now() };
                let n = {
                    let mut log = log.lock().expect("receiver log");
                    log.push(request.clone());
                    log.len() - 1
                };
                let (status, delay, headers) = behaviour(n, &request);
                tokio::time::sleep(delay).await;
                let mut response = axum::response::IntoResponse::into_response(status);
                for (name, value) in headers {
                    response.headers_mut().insert(name, axum::http::HeaderValue::from_static(value));
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("receiver binds");
        let addr = listener.local_addr().expect("receiver addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// The URL of another path on this receiver, for several endpoints on one receiver.
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("receiver log").len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().expect("receiver log").clone()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        wait_for(&format!("{n} webhooks at {}", self.addr), timeout, async || (self.count() >= n).then(|| self.all()))
            .await
    }
}

/// A `hookrelay serve` child process, killed (SIGKILL) when dropped so a failing test leaves nothing behind.
pub struct ServerProcess {
    child: Child,
    /// The base URL it listens on, e.g. `http://127.0.0.1:40123`.
    pub base: String,
}

impl ServerProcess {
    /// Starts `hookrelay serve` on a free loopback port with `data_dir`, the test admin token, loopback
    /// endpoints allowed, quiet logs, and `env` on top (`HOOKRELAY_*` settings); returns once it listens.
    pub fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start(data_dir, env, None, None)
    }

    /// Like [`ServerProcess::spawn`], collecting the lines the server writes to stderr (its logs) into `logs`.
    pub fn spawn_capturing_logs(data_dir: &Path, env: &[(&str, &str)], logs: Arc<Mutex<Vec<String>>>) -> Self {
        Self::start(data_dir, env, Some(logs), None)
    }

    /// Like [`ServerProcess::spawn`], with the process's open-file limit set by the shell's `ulimit` with
    /// `ulimit_args`: `-S -n 256` sets the soft limit only, `-n 128` the soft and the hard limit.
    pub fn spawn_with_open_file_limit(data_dir: &Path, env: &[(&str, &str)], ulimit_args: &str) -> Self {
        Self::start(data_dir, env, None, Some(ulimit_args))
    }

    /// The child's process id (for reading /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start(
        data_dir: &Path,
        env: &[(&str, &str)],
        logs: Option<Arc<Mutex<Vec<String>>>>,
        ulimit_args: Option<&str>,
    ) -> Self {
        let mut command = match ulimit_args {
            None => Command::new(env!("CARGO_BIN_EXE_hookrelay")),
            Some(args) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit {args} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_hookrelay"));
                shell
            }
        };
        command
            .arg("serve")
            .env("HOOKRELAY_LISTEN", "127.0.0.1:0")
            .env("HOOKRELAY_DATA_DIR", data_dir)
            .env("HOOKRELAY_ADMIN_TOKEN", TOKEN)
            .env("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
            .env("HOOKRELAY_LOG", "error")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if logs.is_some() { Stdio::piped() } else { Stdio::inherit() });
        let mut child = command.spawn().expect("hookrelay starts");
        if let (Some(logs), Some(stderr)) = (logs, child.stderr.take()) {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().expect("log lines").push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("server printed its address").expect("stdout line");
            if let Some(rest) = line.strip_prefix("hookrelay listening on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }

    /// SIGKILL: no shutdown code runs. Waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit, failing the test if it takes longer than `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(sent.success(), "could not send SIGTERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            assert!(Instant::now() < deadline, "server still running {timeout:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// POSTs a resource to a server (a child process, reached by URL) and returns its id; it must answer 201.
pub async fn create(http: &reqwest::Client, url: &str, body: Value) -> String {
    let response = http.post(url).bearer_auth(TOKEN).json(&body).send().await.expect("request sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("JSON body");
    created["id"].as_str().expect("id").to_owned()
}

/// Every message id a server holds for `app`, through the paginated list.
pub async fn list_message_ids(http: &reqwest::Client, base: &str, app: &str) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let mut iterator: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/app/{app}/msg/?limit=250&with_content=false");
        if let Some(iterator) = &iterator {
            url.push_str(&format!("&iterator={iterator}"));
        }
        let page: Value =
            http.get(url).bearer_auth(TOKEN).send().await.expect("list sent").json().await.expect("list body");
        for message in page["data"].as_array().expect("data") {
            ids.insert(message["id"].as_str().expect("id").to_owned());
        }
        if page["done"].as_bool().expect("done") {
            return ids;
        }
        iterator = Some(page["iterator"].as_str().expect("iterator").to_owned());
    }
}

/// A `hookrelay` command (a client such as `listen` or `tail`) running as a child process, every line it writes
/// to stdout or stderr collected as it comes.
pub struct CliProcess {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl CliProcess {
    /// Runs `hookrelay <args>` with its output on pipes, as a script or a log collector would.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hookrelay starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take().expect("stdout"), lines.clone());
        collect_lines(child.stderr.take().expect("stderr"), lines.clone());
        Self { child, lines }
    }

    /// Runs `hookrelay <args>` with its stdout and stderr on a pseudo-terminal, as a user at a terminal sees it.
    pub fn spawn_on_terminal(args: &[&str]) -> Self {
        let (controller, terminal) = pseudo_terminal();
        let child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .stdout(Stdio::from(terminal.try_clone().expect("dup")))
            .stderr(Stdio::from(terminal))
            .spawn()
            .expect("hookrelay starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        // Reading the controller side ends with an error (EIO) once the child and every copy of the terminal side
        // are closed.
        collect_lines(std::fs::File::from(controller), lines.clone());
        Self { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line `matches` accepts and returns it; panics with everything written so far after `timeout`.
    pub async fn wait_for_line(&self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines.lock().expect("lines").iter().find(|line| matches(line)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no such line within {timeout:?}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything written so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Sends SIGINT, as Ctrl-C at a terminal does, and waits for the process to exit (without blocking the
    /// runtime: an in-process server may have to answer the command on its way out).
    pub async fn interrupt(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT sent");
        self.wait(timeout).await
    }

    /// Waits for the process to exit by itself.
    pub async fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `source` line by line on a thread of its own into `lines` (carriage returns dropped).
fn collect_lines(source: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(source).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
            lines.lock().expect("lines").push(line);
        }
    });
}

/// A new pseudo-terminal of 24 rows and 120 columns: the controller side, from which a test reads what the
/// terminal shows, and the terminal side, which a child process writes to as to a user's terminal.
pub fn pseudo_terminal() -> (std::os::fd::OwnedFd, std::fs::File) {
    use std::os::unix::ffi::OsStrExt;

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let name = ptsname(&controller, Vec::new()).expect("ptsname");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::ffi::OsStr::from_bytes(name.as_bytes()))
        .expect("the terminal side");
    let size = rustix::termios::Winsize { ws_row: 24, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&terminal, size).expect("terminal size");
    (controller, terminal)
}
