//! `hookrelay recover`: after an endpoint's outage, start a recover (re-send its failed deliveries) or, with
//! `--missing`, a replay-missing (send it the messages it never got) through the HTTP API, follow the
//! background task with a progress bar on stderr (drawn only on a terminal), and print the final counts.
//!
//! Progress comes from the task's `data`: `messagesScanned` of `messagesTotal` candidates looked at (the
//! total is counted when the task starts, so it is an estimate), `messagesSent` deliveries queued.

use std::time::Duration;

use anyhow::{anyhow, bail};
use hookrelay_core::{rfc3339, time::now_ms};
use serde_json::{Value, json};

use super::client::ClientArgs;
use super::progress;

/// How often the task is polled.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Consecutive failed polls tolerated (the server restarting, say) before giving up.
const MAX_POLL_FAILURES: u32 = 20;

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// The application's id or uid
    #[arg(long)]
    pub app: String,
    /// The endpoint's id or uid
    #[arg(long)]
    pub endpoint: String,
    /// Start of the window: how long ago (`90s`, `30m`, `1h`, `2d`, `1h30m`) or RFC 3339
    /// (`2026-11-22T13:00:00Z`); messages created at or after it
    #[arg(long, value_parser = parse_instant)]
    pub since: Instant,
    /// End of the window, exclusive, in the same forms [default: now]; the window may span at most 14 days
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<Instant>,
    /// Send the messages the endpoint never got a delivery of (replay-missing) instead of re-sending failed ones
    #[arg(long)]
    pub missing: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A bound of the window as given: a time, or a duration before now (read when the command runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instant {
    /// RFC 3339, passed to the server as written.
    At(String),
    Ago(Duration),
}

impl Instant {
    /// The RFC 3339 text the API takes, for `now` (milliseconds since the epoch).
    fn to_rfc3339(&self, now: i64) -> String {
        match self {
            Self::At(text) => text.clone(),
            Self::Ago(ago) => rfc3339::format(now.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))),
        }
    }
}

/// `--since`/`--until`: a duration ago (`30m`) or an RFC 3339 time.
fn parse_instant(text: &str) -> Result<Instant, String> {
    let text = text.trim();
    if let Some(ago) = parse_ago(text) {
        return Ok(Instant::Ago(ago));
    }
    match rfc3339::parse(text) {
        Ok(_) => Ok(Instant::At(text.to_owned())),
        Err(_) if text.starts_with(|c: char| c.is_ascii_digit()) && text.len() < 10 => Err(format!(
            "`{text}` is not a duration: use a number with s, m, h or d (90s, 30m, 1h, 2d, 1h30m), or an RFC 3339 \
             time (2026-11-22T13:00:00Z)"
        )),
        Err(err) => Err(format!(
            "`{text}` is neither a duration ago (90s, 30m, 1h, 2d) nor an RFC 3339 time (2026-11-22T13:00:00Z): {err}"
        )),
    }
}

/// `90s`, `30m`, `1h`, `2d`, or several together (`1h30m`); `None` for anything else.
fn parse_ago(text: &str) -> Option<Duration> {
    let (mut total, mut rest) = (0u64, text);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0)?;
        let number: u64 = rest[..digits].parse().ok()?;
        let mut chars = rest[digits..].chars();
        let unit = match chars.next()? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = chars.as_str();
    }
    Some(Duration::from_secs(total))
}

/// `1 delivery`, `3 deliveries`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `hookrelay recover`. Stopping it (Ctrl-C) stops only the watching: the task keeps running in the server.
pub async fn run(args: RecoverArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
    let (action, verb) = if args.missing { ("replay-missing", "replay") } else { ("recover", "recover") };
    let now = now_ms();
    let mut body = json!({ "since": args.since.to_rfc3339(now) });
    if let Some(until) = &args.until {
        body["until"] = json!(until.to_rfc3339(now));
    }
    let started = api.post(&["api", "v1", "app", &args.app, "endpoint", &args.endpoint, action], &body).await?;
    let task_id = started["id"].as_str().ok_or_else(|| anyhow!("the server's answer has no task id: {started}"))?;
    eprintln!("started {verb} task {task_id} for endpoint {} of application {}", args.endpoint, args.app);

    let bar = progress::bar(0, "[{bar:30}] {pos}/{len} scanned, {msg}");
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
            Err(err) => {
                bar.abandon();
                return Err(err.context(format!("lost track of task {task_id}; it may still be running")));
            }
        };
        let counts = Counts::from_data(&task["data"]);
        // The total is an estimate: the bar grows when the scan passes it.
        bar.set_length(counts.total.max(counts.scanned));
        bar.set_position(counts.scanned);
        bar.set_message(format!("{} queued", counts.sent));
        if task["status"] != "running" {
            break task;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    bar.finish();

    let counts = Counts::from_data(&task["data"]);
    match task["status"].as_str() {
        Some("finished") if args.missing => {
            println!(
                "replayed {} after checking {} of the window (task {task_id})",
                count(counts.sent, "missing message", "missing messages"),
                count(counts.scanned, "message", "messages"),
            );
            Ok(())
        }
        Some("finished") => {
            println!(
                "re-queued {} (task {task_id}){}; deliveries still in their retry schedule are not counted: they \
                 will be retried anyway",
                count(counts.sent, "failed delivery", "failed deliveries"),
                if counts.sent > 0 { ", being sent now" } else { "" },
            );
            Ok(())
        }
        _ => {
            let reason = task["data"]["error"].as_str().unwrap_or("no reason given");
            bail!("task {task_id} failed after queuing {}: {reason}", count(counts.sent, "delivery", "deliveries"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<Instant>) {
        assert_eq!(parse_instant(text).ok(), expected, "{text}");
    }

    #[test]
    fn window_bounds_are_durations_ago_or_rfc3339() {
        let ago = |secs| Some(Instant::Ago(Duration::from_secs(secs)));
        check("90s", ago(90));
        check("30m", ago(1800));
        check("1h", ago(3600));
        check("2d", ago(172_800));
        check("1h30m", ago(5400));
        check(" 1h ", ago(3600));
        check("2026-11-22T13:00:00Z", Some(Instant::At("2026-11-22T13:00:00Z".into())));
        check("2026-11-22T13:00:00+01:00", Some(Instant::At("2026-11-22T13:00:00+01:00".into())));
        for bad in ["", "1", "h", "1x", "1h30", "-1h", "1.5h", "yesterday", "2026-13-01T00:00:00Z"] {
            check(bad, None);
        }
        let err = parse_instant("10").unwrap_err();
        assert!(err.contains("30m") && err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn a_duration_ago_is_sent_as_rfc3339() {
        let now = rfc3339::parse("2026-11-22T13:00:00Z").unwrap();
        assert_eq!(Instant::Ago(Duration::from_secs(3600)).to_rfc3339(now), "2026-11-22T12:00:00.000Z");
        assert_eq!(Instant::At("2026-11-01T00:00:00Z".into()).to_rfc3339(now), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn counts_are_worded_in_the_singular_or_plural() {
        assert_eq!(count(0, "failed delivery", "failed deliveries"), "0 failed deliveries");
        assert_eq!(count(1, "failed delivery", "failed deliveries"), "1 failed delivery");
        assert_eq!(count(2, "message", "messages"), "2 messages");
    }
}
