//! `hookrelay recover`: after an endpoint's outage, start a recover (re-send its failed deliveries) or, with
//! `--missing`, a replay-missing (send it the messages it never got) through the HTTP API, follow the
//! background task with a progress bar on stderr, and print the final counts.
//!
//! Progress comes from the task's `data`: `messagesScanned` of `messagesTotal` candidates looked at (the
//! total is counted when the task starts, so it is an estimate), `messagesSent` deliveries queued.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

/// How often the task is polled.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Consecutive failed polls tolerated (the server restarting, say) before giving up.
const MAX_POLL_FAILURES: u32 = 20;
/// Characters of the progress bar between its brackets.
const BAR_WIDTH: usize = 30;

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// The application's id or uid
    #[arg(long)]
    pub app: String,
    /// The endpoint's id or uid
    #[arg(long)]
    pub endpoint: String,
    /// Start of the window, RFC 3339 (e.g. 2026-11-22T13:00:00Z): messages created at or after it
    #[arg(long)]
    pub since: String,
    /// End of the window, RFC 3339, exclusive [default: now]; the window may span at most 14 days
    #[arg(long)]
    pub until: Option<String>,
    /// Send the messages the endpoint never got a delivery of (replay-missing) instead of re-sending failed ones
    #[arg(long)]
    pub missing: bool,
    /// The hookrelay server's base URL
    #[arg(long, default_value = "http://127.0.0.1:8071")]
    pub url: String,
    /// Admin token [default: read from ./hookrelay-data/admin-token]
    #[arg(long, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `hookrelay recover`. Stopping it (Ctrl-C) stops only the watching: the task keeps running in the server.
pub async fn run(args: RecoverArgs) -> anyhow::Result<()> {
    let token = resolve_token(args.token.as_deref(), Path::new("hookrelay-data/admin-token"))?;
    let api = Api::new(&args.url, token)?;
    let (action, verb) = if args.missing { ("replay-missing", "replay") } else { ("recover", "recover") };
    let mut body = json!({ "since": args.since });
    if let Some(until) = &args.until {
        body["until"] = json!(until);
    }
    let started = api.post(&["api", "v1", "app", &args.app, "endpoint", &args.endpoint, action], &body).await?;
    let task_id = started["id"].as_str().ok_or_else(|| anyhow!("the server's answer has no task id: {started}"))?;
    eprintln!("started {verb} task {task_id} for endpoint {} of application {}", args.endpoint, args.app);

    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut failures = 0;
    let task = loop {
        let task = match api.get(&["api", "v1", "background-task", task_id]).await {
            Ok(task) => {
                failures = 0;
                task
            }
            Err(err) if failures < MAX_POLL_FAILURES => {
                failures += 1;
                tracing::debug!(error = %err, "polling the task failed; trying again");
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            Err(err) => return Err(err.context(format!("lost track of task {task_id}; it may still be running"))),
        };
        progress.show(&Counts::from_data(&task["data"]));
        if task["status"] != "running" {
            break task;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    progress.finish();

    let counts = Counts::from_data(&task["data"]);
    match task["status"].as_str() {
        Some("finished") if args.missing => {
            println!(
                "replayed {} missing message(s) after checking {} message(s) of the window (task {task_id})",
                counts.sent, counts.scanned
            );
            Ok(())
        }
        Some("finished") => {
            println!("re-queued {} failed deliver(ies) (task {task_id}); they are being sent now", counts.sent);
            Ok(())
        }
        _ => {
            let reason = task["data"]["error"].as_str().unwrap_or("no reason given");
            bail!("task {task_id} failed after queuing {} deliver(ies): {reason}", counts.sent)
        }
    }
}

/// The token from `--token`/`HOOKRELAY_ADMIN_TOKEN`, else the one `hookrelay serve` stored in the data dir.
pub(crate) fn resolve_token(given: Option<&str>, stored: &Path) -> anyhow::Result<String> {
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    match std::fs::read_to_string(stored) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => bail!(
            "no admin token: pass --token, set HOOKRELAY_ADMIN_TOKEN, or run from the directory that holds {}",
            stored.display()
        ),
    }
}

/// A small client of the hookrelay API (also used by `hookrelay token`).
pub(crate) struct Api {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Api {
    pub(crate) fn new(base: &str, token: String) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base).with_context(|| format!("--url `{base}` is not a URL"))?;
        if base.cannot_be_a_base() {
            bail!("--url `{base}` must be an http(s) URL such as http://127.0.0.1:8071");
        }
        // reqwest is built without a bundled TLS provider; use ring, as the dispatcher does. Installing twice is
        // harmless (the second call reports the first one and changes nothing).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// The URL of the given path segments under the base, each segment escaped.
    fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow!("--url cannot take a path"))?
            .pop_if_empty()
            .extend(segments)
            .push("");
        Ok(url)
    }

    pub(crate) async fn post(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.post(url.clone()).bearer_auth(&self.token).json(body);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }

    pub(crate) async fn get(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.get(url).bearer_auth(&self.token);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }

    pub(crate) async fn delete(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.delete(url).bearer_auth(&self.token);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }
}

/// The JSON body of a 2xx response, or an error carrying the server's explanation.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.context("cannot read hookrelay's response")?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        return Ok(body);
    }
    bail!("hookrelay answered {status}: {}", explain(&body))
}

/// Turns an error body (`{code, detail}` or a 422's `{detail: [{loc, msg}]}`) into one line.
fn explain(body: &Value) -> String {
    match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Array(problems) => problems
            .iter()
            .map(|p| {
                let field = p["loc"].as_array().and_then(|loc| loc.last()).and_then(Value::as_str).unwrap_or("");
                let msg = p["msg"].as_str().unwrap_or("invalid");
                if field.is_empty() { msg.to_owned() } else { format!("{field}: {msg}") }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.to_string(),
    }
}

/// A task's progress counters, as its `data` reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    sent: u64,
    scanned: u64,
    total: u64,
}

impl Counts {
    fn from_data(data: &Value) -> Self {
        let n = |key: &str| data[key].as_u64().unwrap_or(0);
        Self { sent: n("messagesSent"), scanned: n("messagesScanned"), total: n("messagesTotal") }
    }
}

/// `[#####.....] 12/40` for `done` of `total`; the total is an estimate, so `done` may pass it.
fn bar(done: u64, total: u64, width: usize) -> String {
    let total = total.max(done);
    let filled = if total == 0 { width } else { (done as u128 * width as u128 / total as u128) as usize };
    format!("[{}{}] {done}/{total}", "#".repeat(filled), ".".repeat(width - filled))
}

/// Draws progress on stderr: one line redrawn with `\r` on a terminal, else one line per change.
struct Progress {
    terminal: bool,
    last: Option<Counts>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self { terminal, last: None }
    }

    fn show(&mut self, counts: &Counts) {
        if self.last.as_ref() == Some(counts) {
            return;
        }
        let line = format!("{} scanned, {} queued", bar(counts.scanned, counts.total, BAR_WIDTH), counts.sent);
        let mut err = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the recovery.
        let _ = if self.terminal { write!(err, "\r{line}") } else { writeln!(err, "{line}") };
        let _ = err.flush();
        self.last = Some(counts.clone());
    }

    fn finish(&mut self) {
        if self.terminal && self.last.is_some() {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bar(done: u64, total: u64, expected: &str) {
        assert_eq!(bar(done, total, 10), expected, "{done}/{total}");
    }

    #[test]
    fn progress_bars() {
        check_bar(0, 10, "[..........] 0/10");
        check_bar(5, 10, "[#####.....] 5/10");
        check_bar(10, 10, "[##########] 10/10");
        check_bar(0, 0, "[##########] 0/0");
        check_bar(12, 10, "[##########] 12/12");
        check_bar(1, 3, "[###.......] 1/3");
    }

    #[test]
    fn error_bodies_become_one_line() {
        let validation =
            json!({"detail": [{"loc": ["body", "since"], "msg": "is in the future", "type": "value_error"}]});
        assert_eq!(explain(&validation), "since: is in the future");
        assert_eq!(
            explain(&json!({"code": "not_found", "detail": "endpoint `x` not found"})),
            "endpoint `x` not found"
        );
        assert_eq!(explain(&json!("plain text")), "\"plain text\"");
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_data_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("admin-token");
        assert_eq!(resolve_token(Some(" t1 "), &file).ok(), Some("t1".to_owned()));
        assert!(resolve_token(None, &file).is_err());
        std::fs::write(&file, "t2\n").expect("write token");
        assert_eq!(resolve_token(None, &file).ok(), Some("t2".to_owned()));
        assert_eq!(resolve_token(Some(""), &file).ok(), Some("t2".to_owned()));
    }

    #[test]
    fn urls_escape_segments_and_keep_a_base_path() {
        let api = Api::new("http://127.0.0.1:8071/hr/", "t".into()).expect("valid");
        let url = api.url(&["api", "v1", "app", "my app", "endpoint"]).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:8071/hr/api/v1/app/my%20app/endpoint/");
        assert!(Api::new("not a url", "t".into()).is_err());
    }
}
