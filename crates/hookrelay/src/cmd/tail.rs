//! `hookrelay tail`: the attempts a server makes, live, as they are made: one coloured line each on a terminal,
//! one JSON object per line otherwise (or with `--json`), for `jq` and log tools. It follows the process it is
//! connected to: behind a load balancer in front of several processes, it sees the attempts of the one it
//! reached.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use serde_json::Value;

use super::client::ClientArgs;
use super::stream::{self, Event};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Outcome {
    Success,
    Fail,
}

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Only this application's attempts (id or uid)
    #[arg(long)]
    pub app: Option<String>,
    /// Only this endpoint's attempts (id or uid; needs --app)
    #[arg(long, requires = "app")]
    pub endpoint: Option<String>,
    /// Only attempts that succeeded, or that failed
    #[arg(long, value_enum)]
    pub status: Option<Outcome>,
    /// Print JSON lines even on a terminal
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
    let mut query = Vec::new();
    if let Some(endpoint) = &args.endpoint {
        query.push(("endpoint", endpoint.as_str()));
    }
    match args.status {
        Some(Outcome::Success) => query.push(("status", "success")),
        Some(Outcome::Fail) => query.push(("status", "fail")),
        None => {}
    }
    let segments: Vec<&str> = match &args.app {
        Some(app) => vec!["api", "v1", "app", app, "attempt", "stream"],
        None => vec!["api", "v1", "attempt", "stream"],
    };
    let terminal = std::io::stdout().is_terminal();
    let lines = !args.json && terminal;
    if terminal {
        eprintln!("following the attempts of {} (^C to stop)", api.base());
    }
    stream::follow(&api, &segments, &query, |event| async move { show(&event, lines, terminal) }).await
}

fn show(event: &Event, lines: bool, colour: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match event.name.as_str() {
        "attempt" if lines => {
            let attempt: Value =
                serde_json::from_str(&event.data).context("the server sent an attempt that is not JSON")?;
            writeln!(out, "{}", line(&attempt, colour))?;
        }
        "attempt" => writeln!(out, "{}", event.data)?,
        "lagged" => {
            let missed: Value = serde_json::from_str(&event.data).unwrap_or_default();
            eprintln!("… {} attempt(s) not shown: tail fell behind", missed["missed"]);
        }
        _ => {}
    }
    out.flush()?;
    Ok(())
}

/// `13:02:11.204 [500] invoice.paid msg_… → http://… 12 ms (attempt 2, retry at 13:02:16.204)`.
fn line(attempt: &Value, colour: bool) -> String {
    let text = |key: &str| attempt[key].as_str().unwrap_or("").to_owned();
    let time = |key: &str| {
        let at = text(key);
        at.get(11..23).map(str::to_owned).unwrap_or(at)
    };
    let status = attempt["responseStatusCode"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
    let next = match attempt["next"].as_str() {
        Some("retry") => format!(", retry at {}", time("nextAttempt")),
        Some("failed") => ", no more retries".to_owned(),
        _ => String::new(),
    };
    let reason = if status == 0 { format!(" — {}", text("response")) } else { String::new() };
    format!(
        "{} [{}] {} {} → {} {} ms (attempt {}{next}){reason}",
        time("timestamp"),
        paint_status(status, colour),
        text("eventType"),
        text("msgId"),
        text("url"),
        attempt["responseDurationMs"],
        attempt["attemptNumber"],
    )
}

/// The status as a terminal shows it: green for 2xx, yellow for 3xx, red otherwise (`ERR` when none came).
pub fn paint_status(status: u16, colour: bool) -> String {
    let text = if status == 0 { "ERR".to_owned() } else { status.to_string() };
    if !colour {
        return text;
    }
    let code = match status {
        200..=299 => "32",
        300..=399 => "33",
        _ => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn attempts_read_as_one_line() {
        let attempt = json!({
            "timestamp": "2026-12-08T13:02:11.204Z", "responseStatusCode": 500, "eventType": "invoice.paid",
            "msgId": "msg_1", "url": "http://127.0.0.1:9/", "responseDurationMs": 12, "attemptNumber": 2,
            "next": "retry", "nextAttempt": "2026-12-08T13:02:16.204Z", "response": "oops",
        });
        assert_eq!(
            line(&attempt, false),
            "13:02:11.204 [500] invoice.paid msg_1 → http://127.0.0.1:9/ 12 ms (attempt 2, retry at 13:02:16.204)"
        );
        assert!(line(&attempt, true).contains("[\x1b[31m500\x1b[0m]"));
        let unreachable = json!({ "responseStatusCode": 0, "next": "failed", "response": "connection refused" });
        assert!(line(&unreachable, false).contains("[ERR]"));
        assert!(line(&unreachable, false).ends_with("no more retries) — connection refused"));
    }

    #[test]
    fn statuses_are_coloured_by_class() {
        assert_eq!(paint_status(204, true), "\x1b[32m204\x1b[0m");
        assert_eq!(paint_status(204, false), "204");
        assert_eq!(paint_status(0, false), "ERR");
    }
}
