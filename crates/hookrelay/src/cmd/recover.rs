//! `hookrelay recover`: after an endpoint's outage, start a recover (re-send its failed deliveries) or, with
//! `--missing`, a replay-missing (send it the messages it never got) through the HTTP API, follow the
//! background task with a progress bar on stderr, and print the final counts.
//!
//! Progress comes from the task's `data`: `messagesScanned` of `messagesTotal` candidates looked at (the
//! total is counted when the task starts, so it is an estimate), `messagesSent` deliveries queued.

use super::client::ClientArgs;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{anyhow, bail};
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
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `hookrelay recover`. Stopping it (Ctrl-C) stops only the watching: the task keeps running in the server.
pub async fn run(args: RecoverArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
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
}
