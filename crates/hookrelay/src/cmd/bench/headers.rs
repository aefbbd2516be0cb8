//! Scenario H1: the server's memory while a large backlog waits for endpoints whose custom headers are at the
//! limit. The endpoints' receiver accepts connections and never answers, so the dispatcher claims deliveries
//! up to its in-flight bound and holds them (waiting in lanes or sent and awaiting an answer) while the rest
//! stay queued; the figure is the server's peak RSS. Before claimed deliveries shared their endpoint's parsed
//! headers, each held its own copy and this grew with headers × claimed deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hookrelay_api::validate::{MAX_HEADERS, MAX_HEADERS_BYTES};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use super::target::{Server, proc_stats, reset_own_peak_rss};
use super::{Ctx, Plan, ScenarioReport, check_publishes, figures, load};

/// `MAX_HEADERS` custom headers whose names and values total exactly `MAX_HEADERS_BYTES`.
pub fn headers_at_limit() -> Value {
    let name = |i: usize| format!("x-bench-{i:02}");
    let names_len: usize = (0..MAX_HEADERS).map(|i| name(i).len()).sum();
    let values_len = MAX_HEADERS_BYTES - names_len;
    let headers: Map<String, Value> = (0..MAX_HEADERS)
        .map(|i| {
            let len = values_len / MAX_HEADERS + usize::from(i < values_len % MAX_HEADERS);
            (name(i), Value::String("v".repeat(len)))
        })
        .collect();
    Value::Object(headers)
}

/// A receiver that accepts connections, reads whatever comes and never answers, so every request the server
/// sends stays open until the server's delivery timeout.
struct BlackHole {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl BlackHole {
    async fn start() -> anyhow::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.context("the silent receiver cannot listen")?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            let mut readers = tokio::task::JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                // Aborted with the JoinSet when the receiver stops, which closes the sockets.
                readers.spawn(async move {
                    let mut sink = vec![0u8; 16 * 1024];
                    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                });
            }
        });
        Ok(Self { addr, connections, task })
    }

    /// Connections the server opened so far: one per request it started, since none is ever answered.
    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// Runs H1: endpoints with headers at the limit, the plan's messages published to them, then the backlog held
/// for `hold` while the dispatcher claims what it may; reports the server's peak RSS over the whole run.
pub(super) async fn measure_held(
    ctx: &Ctx,
    plan: &Plan,
    server: &Server,
    hold: Duration,
) -> anyhow::Result<ScenarioReport> {
    let server_stats = || server.pid().and_then(|pid| proc_stats(Some(pid)));
    let server_start = server_stats();
    let hole = BlackHole::start().await?;
    let app = server.create_app(&ctx.client, &format!("bench-{}", plan.name)).await?;
    let headers = headers_at_limit();
    for n in 0..plan.endpoints {
        let body = json!({ "url": format!("http://{}/endpoint/{n}", hole.addr), "headers": headers });
        server.create_endpoint_with(&ctx.client, &app, body).await?;
    }
    reset_own_peak_rss();
    let bench_start = proc_stats(None);
    let load = load::publish(&ctx.client, &[&server.base], &server.token, &app, &plan.load).await;
    check_publishes(&load)?;
    ctx.say(format_args!("  {} messages queued; holding them for {}s …", load.accepted, hold.as_secs()));
    tokio::time::sleep(hold).await;
    let requests_held = hole.connections();
    let server_end = server_stats();
    let bench_end = proc_stats(None);
    hole.stop();
    Ok(ScenarioReport {
        requests_held: Some(requests_held),
        ..ScenarioReport::published(plan, &load, figures(server_start, server_end), figures(bench_start, bench_end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_are_exactly_at_the_limit() {
        let headers = headers_at_limit();
        let headers = headers.as_object().expect("an object");
        assert_eq!(headers.len(), MAX_HEADERS);
        let bytes: usize = headers.iter().map(|(name, value)| name.len() + value.as_str().map_or(0, str::len)).sum();
        assert_eq!(bytes, MAX_HEADERS_BYTES);
    }
}
