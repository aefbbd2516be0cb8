//! `hookrelay bench`: measures hookrelay on loopback — publish throughput and latency, end-to-end delivery
//! latency, fan-out, a paced steady load and a backlog drain, and (H1, on request) the memory a backlog to
//! endpoints with headers at the limit takes — and prints a table or, with `--json`, a JSON document. It is a benchmark, not a test: it never fails on a figure, only when something breaks (the server
//! does not start, publishes fail en masse, deliveries stop arriving).

mod headers;
mod health;
mod hist;
mod load;
mod receiver;
pub mod reference;
mod target;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;

use hist::Histogram;
use load::{LoadSpec, Stop};
use receiver::Receiver;
use target::{ProcStats, Server, create_schema, proc_stats, reset_own_peak_rss};

/// How long deliveries may stop arriving before the run is declared broken; generous, since a slow machine or
/// a retry after a refused connection (S5) may pause them for seconds.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Padding that brings a payload to about 1 KB, as the S1 asks.
const PAD_1KB: usize = 1_000;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated: s0 (ingest only), s1 (ingest with one endpoint), s2 (end to end),
    /// s2t (s2 with a transformation and a signature header), s2s (s2 beside a million messages scheduled for
    /// tomorrow; only when named), s3 (fan-out), s4 (steady 200 msg/s), s5 (backlog drain; only when named), h1
    /// (memory of a backlog to endpoints with custom headers at the limit, held by a receiver that never answers;
    /// only when named), s6 (paced at --rate with 1 KB payloads: CPU per message and memory over time; only when
    /// named) [default: s0,s1,s2,s2t,s3,s4]
    #[arg(long, value_delimiter = ',')]
    pub scenario: Vec<String>,
    /// Tiny versions of every scenario (about a second each), to check the benchmark still works
    #[arg(long, alias = "smoke")]
    pub quick: bool,
    /// Print a JSON document instead of the table
    #[arg(long)]
    pub json: bool,
    /// How long the timed scenarios (s0, s1, s4, s6) publish, and h1 holds its backlog [default: 20; 1 with
    /// --quick]; e.g. 600 for a ten-minute soak of s6
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Concurrent publishers of s0–s3 and s5 [default: 64 for s0/s1/s5, 32 for s2/s3; 8 with --quick]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Messages s2, s3 and h1 publish [default: 20000 for s2, 1000 for s3 (to 100 endpoints), 25000 for h1 (to 4
    /// endpoints: 100,000 deliveries; 100 to 2 with --quick)]
    #[arg(long)]
    pub messages: Option<u64>,
    /// Messages per second s6 publishes [default: 2000; 200 with --quick]
    #[arg(long)]
    pub rate: Option<f64>,
    /// Fraction of s6's messages whose first delivery the receiver answers 500 (retried later), e.g. 0.2
    /// [default: 0]
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Messages s5 queues while its receiver is down [default: 1000000; 500 with --quick]
    #[arg(long)]
    pub backlog: Option<u64>,
    /// Messages s2s schedules for tomorrow (deliverAt) before its s2 load [default: 1000000; 500 with --quick]
    #[arg(long)]
    pub scheduled: Option<u64>,
    /// Health checks and metrics scrapes s5 times back to back once its backlog is queued (it also polls both
    /// while queueing) [default: 200; 20 with --quick; 0 turns both off]
    #[arg(long)]
    pub health_calls: Option<u64>,
    /// Storage of the server the benchmark starts (one fresh data directory or schema per scenario)
    #[arg(long, value_enum, default_value = "sqlite")]
    pub store: StoreKind,
    /// PostgreSQL URL for --store postgres; the benchmark creates a schema there per scenario and drops it
    #[arg(long, env = "HOOKRELAY_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Benchmark a running server instead of starting one (it must allow private endpoints, since the
    /// benchmark's receiver listens on 127.0.0.1); its CPU and memory are then not measured
    #[arg(long)]
    pub url: Option<String>,
    /// The admin token of the --url server
    #[arg(long, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Instances of the server to run on one PostgreSQL database (with --store postgres): the publishers are
    /// spread over them, and the report gives each one's CPU and deliveries, leases taken over, and PostgreSQL's
    /// CPU
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Also run each scenario but S5 against a no-storage reference server (the ceiling on this machine) and
    /// report each figure as a fraction of it
    #[arg(long)]
    pub reference: bool,
}

/// Microseconds since the Unix epoch: the clock both the publishers and the receiver read.
pub(crate) fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// One scenario's shape.
struct Plan {
    name: &'static str,
    title: &'static str,
    endpoints: usize,
    load: LoadSpec,
    /// S5: the endpoint's receiver is not listening while the messages are published.
    receiver_late: bool,
    /// H1: endpoints carry custom headers at the limit, their receiver accepts connections and never answers,
    /// and the backlog is held this long after publishing (nothing is delivered).
    held_for: Option<Duration>,
    /// S5: health checks and scrapes timed once the backlog is queued (and polled while it is); 0 for none.
    health_calls: u64,
    /// S2T: each endpoint has a plain secret, a signature header of its own and a transformation.
    transformed: bool,
    /// S2S: messages published for tomorrow (`deliverAt`) to the same endpoint before the load starts.
    scheduled: u64,
    /// S6: the fraction of messages whose first delivery the receiver answers 500.
    fail_rate: f64,
    /// S6: the server's resident memory is sampled every second of the load.
    sample_memory: bool,
}

impl Plan {
    /// A scenario that publishes `load` to `endpoints` endpoints of one application, with nothing else special.
    fn new(name: &'static str, title: &'static str, endpoints: usize, load: LoadSpec) -> Self {
        Self {
            name,
            title,
            endpoints,
            load,
            receiver_late: false,
            held_for: None,
            health_calls: 0,
            transformed: false,
            scheduled: 0,
            fail_rate: 0.0,
            sample_memory: false,
        }
    }
}

/// S2T's transformation: Corp Astro's envelope, keeping the publish time where the receiver reads it.
const BENCH_TRANSFORMATION: &str = "function handler(webhook) {
  webhook.payload = { id: webhook.msgId, timestamp: webhook.timestamp, event_type: webhook.eventType,
    data: webhook.payload, sent_at_us: webhook.payload.sent_at_us };
  webhook.headers = { 'X-Bench-Event': webhook.eventType };
  return webhook;
}";

fn plans(args: &BenchArgs) -> anyhow::Result<Vec<Plan>> {
    let quick = args.quick;
    if !(0.0..1.0).contains(&args.fail_rate) {
        bail!("--fail-rate is a fraction of messages, from 0 up to (not including) 1, e.g. 0.2");
    }
    if args.rate.is_some_and(|rate| !(rate > 0.0 && rate.is_finite())) {
        bail!("--rate is messages per second, more than 0");
    }
    let duration = Duration::from_secs(args.duration_secs.unwrap_or(if quick { 1 } else { 20 }));
    let concurrency = |default| args.concurrency.unwrap_or(if quick { 8 } else { default });
    let all = ["s0", "s1", "s2", "s2t", "s2s", "s3", "s4", "s5", "s6"];
    let wanted: Vec<String> = if !args.scenario.is_empty() {
        args.scenario.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
    } else if quick {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        all.iter().filter(|s| !["s2s", "s5", "s6"].contains(s)).map(|s| s.to_string()).collect()
    };
    // The load of most scenarios: as fast as the server accepts, no padding, delivered at once.
    let load = |workers, stop| LoadSpec { workers, stop, rate: None, pad: 0, deliver_at: None };
    // S2, and S2T: the same to an endpoint with a transformation and a signature header of its own.
    let s2 = |transformed: bool| Plan {
        transformed,
        ..Plan::new(
            if transformed { "S2T" } else { "S2" },
            if transformed {
                "end to end, 1 endpoint, transformation + signature header"
            } else {
                "end to end, 1 endpoint"
            },
            1,
            load(concurrency(32), Stop::Count(args.messages.unwrap_or(if quick { 200 } else { 20_000 }))),
        )
    };
    let mut plans = Vec::new();
    for name in &wanted {
        let plan = match name.as_str() {
            "s0" => Plan::new("S0", "ingest only (no endpoints)", 0, load(concurrency(64), Stop::After(duration))),
            "s1" => Plan::new(
                "S1",
                "ingest, 1 endpoint, 1 KB payload",
                1,
                LoadSpec { pad: PAD_1KB, ..load(concurrency(64), Stop::After(duration)) },
            ),
            "s2" => s2(false),
            "s2t" => s2(true),
            "s2s" => Plan {
                name: "S2S",
                title: "end to end, 1 endpoint, beside messages scheduled for tomorrow",
                scheduled: args.scheduled.unwrap_or(if quick { 500 } else { 1_000_000 }),
                ..s2(false)
            },
            "s3" => Plan::new(
                "S3",
                "fan-out to 100 endpoints",
                if quick { 10 } else { 100 },
                load(concurrency(32), Stop::Count(args.messages.unwrap_or(if quick { 20 } else { 1_000 }))),
            ),
            // Paced: 16 publishers are plenty for 200/s while each request takes milliseconds.
            "s4" => Plan::new(
                "S4",
                "steady 200 msg/s, 1 endpoint",
                1,
                LoadSpec { rate: Some(200.0), ..load(16, Stop::After(duration)) },
            ),
            "s5" => Plan {
                receiver_late: true,
                health_calls: args.health_calls.unwrap_or(if quick { 20 } else { 200 }),
                ..Plan::new(
                    "S5",
                    "backlog queued while the receiver is down, then drained",
                    1,
                    load(concurrency(64), Stop::Count(args.backlog.unwrap_or(if quick { 500 } else { 1_000_000 }))),
                )
            },
            "h1" => Plan {
                held_for: Some(duration),
                ..Plan::new(
                    "H1",
                    "backlog to endpoints with custom headers at the limit, held",
                    if quick { 2 } else { 4 },
                    load(concurrency(64), Stop::Count(args.messages.unwrap_or(if quick { 100 } else { 25_000 }))),
                )
            },
            // Paced: 64 connections, as a fleet of application servers would hold.
            "s6" => Plan {
                fail_rate: args.fail_rate,
                sample_memory: true,
                ..Plan::new(
                    "S6",
                    "paced, 1 endpoint, 1 KB payload",
                    1,
                    LoadSpec {
                        rate: Some(args.rate.unwrap_or(if quick { 200.0 } else { 2_000.0 })),
                        pad: PAD_1KB,
                        ..load(64, Stop::After(duration))
                    },
                )
            },
            other => bail!("unknown scenario {other:?}: use s0, s1, s2, s2t, s2s, s3, s4, s5, s6 or h1"),
        };
        plans.push(plan);
    }
    Ok(plans)
}

/// CPU time and memory over one scenario.
#[derive(Serialize, Debug, Clone, Copy)]
struct ProcFigures {
    cpu_secs: f64,
    peak_rss_mb: f64,
    /// Resident memory before the load started (the server just started, or the benchmark between scenarios).
    start_rss_mb: f64,
}

#[derive(Serialize, Debug)]
struct ScenarioReport {
    name: &'static str,
    title: &'static str,
    concurrency: usize,
    endpoints: usize,
    published: u64,
    publish_errors: u64,
    publish_secs: f64,
    accepted_per_sec: f64,
    api_p50_ms: Option<f64>,
    api_p99_ms: Option<f64>,
    expected_deliveries: u64,
    delivered: u64,
    /// Deliveries the receiver got more than once (retries after a lost answer), not counted in `delivered`.
    duplicates: u64,
    /// H1: requests the server had started to the silent receiver by the end of the hold (claimed deliveries).
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_held: Option<u64>,
    /// Deliveries already received when publishing stopped: whether delivery kept up with ingest.
    delivered_when_publishing_stopped: Option<u64>,
    /// Distinct deliveries per second, from the first publish (S5: the first receipt) to the last receipt.
    deliveries_per_sec: Option<f64>,
    /// Seconds from the end of publishing (S5: the receiver coming up) to the last delivery.
    drain_secs: Option<f64>,
    receipt_p50_ms: Option<f64>,
    receipt_p99_ms: Option<f64>,
    /// S5: health checks and scrapes polled while the backlog was being queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    health_while_queueing: Option<health::HealthFigures>,
    /// S5: health checks and scrapes back to back once the backlog was queued, before the receiver came up.
    #[serde(skip_serializing_if = "Option::is_none")]
    health_at_backlog: Option<health::HealthFigures>,
    /// With `--instances`, each instance's CPU seconds (their sum is `server.cpu_secs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    instances_cpu_secs: Option<Vec<f64>>,
    /// CPU seconds of every `postgres` process on this machine over the scenario (with `--store postgres`).
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_cpu_secs: Option<f64>,
    /// With `--store postgres`: the database's write-ahead log over the scenario (server-wide `pg_stat_wal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_wal: Option<WalFigures>,
    /// With `--instances`: the deliveries each instance made (its successful attempts, from its `/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    instances_delivered: Option<Vec<u64>>,
    /// With `--store postgres`: deliveries an instance took over from a lease that lapsed or whose holder stopped
    /// (`hookrelay_leases_taken_over_total`, all instances together).
    #[serde(skip_serializing_if = "Option::is_none")]
    leases_taken_over: Option<u64>,
    /// S6 with --fail-rate: first deliveries the receiver answered 500 (each delivered later, by a retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_first_answers: Option<u64>,
    /// S6: the server's resident memory over the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryOverTime>,
    /// The `hookrelay serve` process (with `--instances`, all of them); `None` for a `--url` server.
    server: Option<ProcFigures>,
    /// This process: the load generator and the receiver.
    load_and_receiver: Option<ProcFigures>,
    /// The same scenario against the no-storage reference server (`--reference`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<Box<ScenarioReport>>,
    /// Each figure divided by the reference's: above 1 is more for rates, slower for latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    fraction_of_reference: Option<Fractions>,
}

/// What PostgreSQL wrote to its log during a scenario.
#[derive(Serialize, Debug, Clone, Copy)]
struct WalFigures {
    /// Log syncs to disk (fdatasync) per second.
    syncs_per_sec: f64,
    /// MiB written to the log.
    mb: f64,
}

/// hookrelay's figures ÷ the reference's; `None` where either side has no figure.
#[derive(Serialize, Debug, Clone, Copy)]
struct Fractions {
    accepted_per_sec: Option<f64>,
    api_p50_ms: Option<f64>,
    api_p99_ms: Option<f64>,
    deliveries_per_sec: Option<f64>,
    receipt_p50_ms: Option<f64>,
    receipt_p99_ms: Option<f64>,
    /// Server CPU per published message (publish and delivery).
    server_cpu_per_message: Option<f64>,
}

impl Fractions {
    fn of(ours: &ScenarioReport, reference: &ScenarioReport) -> Self {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        Self {
            accepted_per_sec: ratio(Some(ours.accepted_per_sec), Some(reference.accepted_per_sec)),
            api_p50_ms: ratio(ours.api_p50_ms, reference.api_p50_ms),
            api_p99_ms: ratio(ours.api_p99_ms, reference.api_p99_ms),
            deliveries_per_sec: ratio(ours.deliveries_per_sec, reference.deliveries_per_sec),
            receipt_p50_ms: ratio(ours.receipt_p50_ms, reference.receipt_p50_ms),
            receipt_p99_ms: ratio(ours.receipt_p99_ms, reference.receipt_p99_ms),
            server_cpu_per_message: ratio(ours.server_cpu_ms_per_1000(), reference.server_cpu_ms_per_1000()),
        }
    }

    /// The scenario's headline: deliveries per second where there are deliveries, else accepted per second.
    fn headline(&self) -> Option<f64> {
        self.deliveries_per_sec.or(self.accepted_per_sec)
    }
}

#[derive(Serialize)]
struct Report {
    machine: Machine,
    build: &'static str,
    store: &'static str,
    server: String,
    notes: Vec<String>,
    scenarios: Vec<ScenarioReport>,
}

#[derive(Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
}

fn machine() -> Machine {
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    Machine { cpus, cpu_model }
}

struct Ctx {
    client: reqwest::Client,
    store: StoreKind,
    database_url: Option<String>,
    external: Option<(String, String)>,
    quiet: bool,
    /// Server instances on one PostgreSQL database.
    instances: usize,
    /// Runs done of all runs (each scenario, and each against the reference), on stderr when it is a terminal.
    progress: indicatif::ProgressBar,
}

impl Ctx {
    /// A status line on stderr (not with --json), printed above the progress bar.
    fn say(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            self.progress.suspend(|| eprintln!("bench: {line}"));
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // reqwest is built without a bundled TLS provider; install ring as the server does (only plain HTTP to
    // loopback is used here, but the client builder wants a provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plans = plans(&args)?;
    let external = match (&args.url, &args.token) {
        (Some(url), Some(token)) => Some((url.clone(), token.clone())),
        (Some(_), None) => bail!("--url needs --token (or HOOKRELAY_ADMIN_TOKEN): the server's admin token"),
        (None, _) => None,
    };
    if external.is_some() && args.store == StoreKind::Postgres {
        bail!("--store applies to the server the benchmark starts; with --url the server uses its own store");
    }
    if args.instances > 1 && (args.store != StoreKind::Postgres || external.is_some()) {
        bail!("--instances shares one database between servers: it needs --store postgres (and no --url)");
    }
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.store == StoreKind::Postgres && args.database_url.is_none() {
        bail!("--store postgres needs --database-url postgres://user@127.0.0.1:5432/database");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    // Each scenario is one run, and one more against the reference server where it has something to compare.
    let runs = plans.len()
        + if args.reference {
            plans.iter().filter(|plan| plan.name != "S5" && plan.held_for.is_none()).count()
        } else {
            0
        };
    let ctx = Ctx {
        client,
        store: args.store,
        database_url: args.database_url.clone(),
        external,
        quiet: args.json,
        instances: args.instances,
        progress: super::progress::bar(runs as u64, "{bar:30} {pos}/{len} runs ({elapsed}) {msg}"),
    };
    let mut scenarios = Vec::new();
    for plan in &plans {
        ctx.progress.set_message(format!("{} {}", plan.name, plan.title));
        ctx.say(format_args!("{} {} …", plan.name, plan.title));
        let mut report =
            run_scenario(&ctx, plan, false).await.with_context(|| format!("scenario {} failed", plan.name))?;
        ctx.progress.inc(1);
        // S5 measures retries after refused connections, and H1 memory held by queued deliveries, which the
        // reference does not have: nothing to compare.
        if args.reference && plan.name != "S5" && plan.held_for.is_none() {
            ctx.progress.set_message(format!("{} against the reference server", plan.name));
            ctx.say(format_args!("{} against the reference server …", plan.name));
            let reference = run_scenario(&ctx, plan, true)
                .await
                .with_context(|| format!("scenario {} against the reference server failed", plan.name))?;
            ctx.progress.inc(1);
            report.fraction_of_reference = Some(Fractions::of(&report, &reference));
            report.reference = Some(Box::new(reference));
        }
        scenarios.push(report);
    }
    ctx.progress.finish_and_clear();
    let mut notes = vec![
        "api_*: publish request latency (POST /api/v1/app/{app}/msg/ until 202), accepted requests only".to_owned(),
        "receipt_*: from the sent_at_us timestamp the publisher put in the payload to the receiver getting it"
            .to_owned(),
        "load_and_receiver: this process (load generator and receiver), which shares the machine with the server"
            .to_owned(),
    ];
    if args.reference {
        notes.push(
            "reference: the same scenario against `hookrelay bench-reference`, which stores nothing and forwards \
             each message at once with one POST per endpoint (no retries, no signatures); vs ref: hookrelay's \
             deliveries/s (or msg/s without endpoints) ÷ the reference's"
                .to_owned(),
        );
    }
    let server = match &ctx.external {
        Some((url, _)) => {
            notes
                .push(format!("server at {url} was not started by the benchmark: its CPU and memory are not measured"));
            url.clone()
        }
        None => {
            notes.push(
                "server: a `hookrelay serve` child process per scenario (fresh store), measured from /proc/<pid>"
                    .to_owned(),
            );
            "spawned".to_owned()
        }
    };
    let report = Report {
        machine: machine(),
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
        store: match (ctx.external.is_some(), ctx.store) {
            (true, _) => "external",
            (false, StoreKind::Sqlite) => "sqlite",
            (false, StoreKind::Postgres) => "postgres",
        },
        server,
        notes,
        scenarios,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("cannot encode the report")?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Runs `plan` against hookrelay, or with `reference` against a fresh reference server child process.
async fn run_scenario(ctx: &Ctx, plan: &Plan, reference: bool) -> anyhow::Result<ScenarioReport> {
    let schema = match (&ctx.external, ctx.store, &ctx.database_url, reference) {
        (None, StoreKind::Postgres, Some(url), false) => Some(create_schema(url).await?),
        _ => None,
    };
    let server = match &ctx.external {
        _ if reference => Server::spawn_reference().await,
        Some((url, token)) => Ok(Server::external(url, token)),
        None => Server::spawn(schema.as_ref().map(|schema| schema.url()), None).await,
    };
    // More instances of the same server on the same schema (the first one migrated it).
    let mut others = Vec::new();
    let server = match server {
        Ok(server) if !reference && ctx.instances > 1 => {
            let token = server.token.clone();
            let mut started = Ok(server);
            for _ in 1..ctx.instances {
                match Server::spawn(schema.as_ref().map(|schema| schema.url()), Some(&token)).await {
                    Ok(other) => others.push(other),
                    Err(err) => {
                        started = Err(err);
                        break;
                    }
                }
            }
            started
        }
        other => other,
    };
    let result = match server {
        Ok(server) => {
            let result = measure(ctx, plan, &server, &others, schema.as_ref().map(|schema| schema.url())).await;
            server.stop();
            result
        }
        Err(err) => Err(err),
    };
    drop(others);
    if let Some(schema) = schema {
        let name = schema.name().to_owned();
        if let Err(err) = schema.drop_now().await {
            eprintln!("bench: warning: cannot drop the bench schema {name}: {err}");
        }
    }
    result
}

async fn measure(
    ctx: &Ctx,
    plan: &Plan,
    server: &Server,
    others: &[Server],
    database_url: Option<&str>,
) -> anyhow::Result<ScenarioReport> {
    if let Some(hold) = plan.held_for {
        return headers::measure_held(ctx, plan, server, hold).await;
    }
    let instances: Vec<&Server> = std::iter::once(server).chain(others).collect();
    let bases: Vec<&str> = instances.iter().map(|instance| instance.base.as_str()).collect();
    // An external server (`--url`) has no pid here: its figures stay empty rather than reading this process.
    // With several instances, each one's figures, and their sum as the server's.
    let each_stats = || -> Option<Vec<ProcStats>> {
        instances.iter().map(|instance| instance.pid().and_then(|pid| proc_stats(Some(pid)))).collect()
    };
    let server_stats = || each_stats().map(|each| sum_stats(&each));
    let postgres_cpu = || (ctx.store == StoreKind::Postgres).then(target::postgres_cpu_secs).flatten();
    let mut server_start = server_stats();
    let mut each_start = each_stats();
    let mut postgres_start = postgres_cpu();
    let wal = async || match database_url {
        Some(url) => target::wal_counters(url).await.map(|counters| (counters, Instant::now())),
        None => None,
    };
    let mut wal_start = wal().await;
    // The reference server does not retry: it meets no failures.
    let fail_rate = if server.reference { 0.0 } else { plan.fail_rate };
    // The receiver listens now, or (S5) on a port reserved now and opened only after publishing, so the server
    // meets refused connections meanwhile.
    let (mut receiver, receiver_addr) = if plan.receiver_late {
        (None, reserve_port()?)
    } else {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)), fail_rate).await?;
        let addr = receiver.addr;
        (Some(receiver), addr)
    };
    let app = server.create_app(&ctx.client, &format!("bench-{}", plan.name)).await?;
    for n in 0..plan.endpoints {
        let url = format!("http://{receiver_addr}/endpoint/{n}");
        if plan.transformed && !server.reference {
            let body = json!({
                "url": url,
                "secret": "bench_plain_secret_2026",
                "signatureHeaders": [{"header": "X-Bench-Signature", "algorithm": "sha256", "encoding": "hex"}],
            });
            let endpoint = server.create_endpoint_with(&ctx.client, &app, body).await?;
            server.set_transformation(&ctx.client, &app, &endpoint, BENCH_TRANSFORMATION).await?;
        } else {
            server.create_endpoint(&ctx.client, &app, &url).await?;
        }
    }
    if plan.scheduled > 0 && !server.reference {
        schedule_for_tomorrow(ctx, plan, server, &app).await?;
        // The server's figures are S2's alone, from when it has settled (its WAL checkpointed).
        settle(ctx, server).await;
        server_start = server_stats();
        each_start = each_stats();
        postgres_start = postgres_cpu();
        wal_start = wal().await;
    }
    reset_own_peak_rss();
    let bench_start = proc_stats(None);
    let poller = (plan.health_calls > 0).then(|| health::Poller::start(&ctx.client, &server.base));
    let started = Instant::now();
    let memory = plan.sample_memory.then(|| MemorySampler::start(instances.iter().filter_map(|i| i.pid()).collect()));
    let load = load::publish(&ctx.client, &bases, &server.token, &app, &plan.load).await;
    let publish_end = Instant::now();
    let memory = match memory {
        Some(sampler) => sampler.finish().await,
        None => None,
    };
    let health_while_queueing = match poller {
        Some(poller) => poller.finish().await.figures(),
        None => None,
    };
    let health_at_backlog = if plan.health_calls > 0 {
        health::time_calls(&ctx.client, &server.base, plan.health_calls).await.figures()
    } else {
        None
    };
    for (phase, figures) in [("while queueing", &health_while_queueing), ("at backlog", &health_at_backlog)] {
        if let Some(figures) = figures {
            ctx.say(format_args!("  health {phase}: {}", figures.summary()));
        }
    }
    check_publishes(&load)?;
    let delivered_when_publishing_stopped = receiver.as_ref().map(Receiver::unique);
    let drain_from = publish_end;
    // S5's rate counts from the first delivery after the receiver came up, so the time the server takes to
    // notice it (its next retry) is in the drain time but not in the rate.
    // A breaker's pause doubles after each failed probe, so when S5's receiver comes up the next probe may be as
    // far away as the receiver was down: the first delivery may take that much longer than the stall guard.
    let (receiver, drain_from, from_first_receipt, first_delivery_within) = match receiver.take() {
        Some(receiver) => (receiver, drain_from, false, STALL_TIMEOUT),
        None => {
            let receiver = Receiver::start(receiver_addr, fail_rate).await?;
            (receiver, Instant::now(), true, STALL_TIMEOUT + started.elapsed())
        }
    };
    let expected = load.accepted * plan.endpoints as u64;
    let waited = wait_for_deliveries(ctx, &receiver, expected, first_delivery_within).await;
    let receipts = receiver.receipts();
    receiver.stop();
    waited?;
    let server_end = server_stats();
    let each_end = each_stats();
    let postgres_end = postgres_cpu();
    let wal_end = wal().await;
    let bench_end = proc_stats(None);
    // Each instance's own counters (it started with the scenario, so they count the scenario alone).
    let mut scraped = None;
    if database_url.is_some() {
        let mut each = Vec::new();
        for instance in &instances {
            each.push(target::scraped_counters(&ctx.client, &instance.base).await);
        }
        scraped = each.into_iter().collect::<Option<Vec<(f64, f64)>>>();
    }
    let delivery_start = if from_first_receipt { receipts.first.unwrap_or(drain_from) } else { started };
    let (deliveries_per_sec, drain_secs) = match (expected, receipts.last) {
        (1.., Some(last)) => (
            Some(receipts.unique as f64 / last.saturating_duration_since(delivery_start).as_secs_f64().max(1e-9)),
            Some(last.saturating_duration_since(drain_from).as_secs_f64()),
        ),
        _ => (None, None),
    };
    Ok(ScenarioReport {
        expected_deliveries: expected,
        delivered: receipts.unique,
        duplicates: receipts.duplicates,
        delivered_when_publishing_stopped: delivered_when_publishing_stopped.filter(|_| expected > 0),
        deliveries_per_sec,
        drain_secs,
        receipt_p50_ms: ms(&receipts.latency, 0.5),
        receipt_p99_ms: ms(&receipts.latency, 0.99),
        health_while_queueing,
        health_at_backlog,
        instances_cpu_secs: match (each_start, each_end) {
            (Some(start), Some(end)) if !others.is_empty() => {
                Some(start.iter().zip(&end).map(|(start, end)| end.cpu_secs - start.cpu_secs).collect())
            }
            _ => None,
        },
        postgres_cpu_secs: postgres_start.zip(postgres_end).map(|(start, end)| end - start),
        postgres_wal: wal_start.zip(wal_end).map(|((start, from), (end, to))| WalFigures {
            syncs_per_sec: (end.syncs - start.syncs) as f64 / to.duration_since(from).as_secs_f64().max(1e-9),
            mb: (end.bytes - start.bytes) / (1024.0 * 1024.0),
        }),
        instances_delivered: scraped
            .as_ref()
            .filter(|_| !others.is_empty())
            .map(|each| each.iter().map(|(delivered, _)| *delivered as u64).collect()),
        leases_taken_over: scraped.as_ref().map(|each| each.iter().map(|(_, taken)| *taken as u64).sum()),
        failed_first_answers: (fail_rate > 0.0).then_some(receipts.failed_first),
        memory,
        ..ScenarioReport::published(plan, &load, figures(server_start, server_end), figures(bench_start, bench_end))
    })
}

/// S2S: publishes `plan.scheduled` messages due tomorrow, before the timed load; the claim must not slow down
/// for them. (The reference server has no scheduling: it runs plain S2.)
async fn schedule_for_tomorrow(ctx: &Ctx, plan: &Plan, server: &Server, app: &str) -> anyhow::Result<()> {
    let tomorrow = hookrelay_core::rfc3339::format(hookrelay_core::time::now_ms() + 24 * 3_600_000);
    let spec =
        LoadSpec { workers: 64, stop: Stop::Count(plan.scheduled), rate: None, pad: 0, deliver_at: Some(tomorrow) };
    let load = load::publish(&ctx.client, &[&server.base], &server.token, app, &spec).await;
    check_publishes(&load)?;
    ctx.say(format_args!(
        "  scheduled {} messages for tomorrow in {:.1} s ({:.0} msg/s)",
        load.accepted,
        load.elapsed.as_secs_f64(),
        load.accepted as f64 / load.elapsed.as_secs_f64().max(1e-9)
    ));
    Ok(())
}

/// Waits (at most two minutes) until the server uses less than 5% of a CPU over a second: the work a preload
/// left behind (a checkpoint of its WAL) is done, and the timed load measures the steady state.
async fn settle(ctx: &Ctx, server: &Server) {
    let Some(pid) = server.pid() else { return };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let before = proc_stats(Some(pid));
        tokio::time::sleep(Duration::from_secs(1)).await;
        match (before, proc_stats(Some(pid))) {
            (Some(before), Some(after)) if after.cpu_secs - before.cpu_secs < 0.05 => break,
            (Some(_), Some(_)) => {}
            _ => return,
        }
    }
    ctx.say(format_args!("  the server settled in {:.1} s", started.elapsed().as_secs_f64()));
}

/// A server's resident memory over a load, sampled every second.
#[derive(Serialize, Debug, Clone, Copy)]
struct MemoryOverTime {
    /// When the load started.
    start_mb: f64,
    /// A fifth of the way in (at least 10 s, when the load lasts that long): after warm-up.
    warm_mb: f64,
    /// The largest sample.
    max_mb: f64,
    /// When the load stopped.
    end_mb: f64,
    samples: usize,
}

/// Samples the resident memory of the server's processes every second until finished.
struct MemorySampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<f64>>,
}

impl MemorySampler {
    fn start(pids: Vec<u32>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let kb: Option<u64> = pids.iter().map(|pid| proc_stats(Some(*pid)).map(|s| s.rss_kb)).sum();
                if let Some(kb) = kb {
                    samples.push(kb as f64 / 1024.0);
                }
            }
            samples
        });
        Self { stop, task }
    }

    /// The figures, with a last sample taken now; `None` without samples (no pid).
    async fn finish(self) -> Option<MemoryOverTime> {
        let _ = self.stop.send(());
        let samples = self.task.await.ok()?;
        let (first, last) = (*samples.first()?, *samples.last()?);
        let warm_at = (samples.len() / 5).max(10).min(samples.len() - 1);
        Some(MemoryOverTime {
            start_mb: first,
            warm_mb: samples[warm_at],
            max_mb: samples.iter().copied().fold(first, f64::max),
            end_mb: last,
            samples: samples.len(),
        })
    }
}

impl ScenarioReport {
    /// The server's CPU milliseconds per 1,000 published messages (publish and delivery together).
    fn server_cpu_ms_per_1000(&self) -> Option<f64> {
        let server = self.server?;
        (self.published > 0).then(|| server.cpu_secs * 1e6 / self.published as f64)
    }

    /// What publishing `load` under `plan` measured, with no delivery figures yet.
    fn published(
        plan: &Plan,
        load: &load::LoadResult,
        server: Option<ProcFigures>,
        load_and_receiver: Option<ProcFigures>,
    ) -> Self {
        Self {
            name: plan.name,
            title: plan.title,
            concurrency: plan.load.workers,
            endpoints: plan.endpoints,
            published: load.accepted,
            publish_errors: load.errors,
            publish_secs: load.elapsed.as_secs_f64(),
            accepted_per_sec: load.accepted as f64 / load.elapsed.as_secs_f64().max(1e-9),
            api_p50_ms: ms(&load.latency, 0.5),
            api_p99_ms: ms(&load.latency, 0.99),
            expected_deliveries: load.accepted * plan.endpoints as u64,
            delivered: 0,
            duplicates: 0,
            requests_held: None,
            delivered_when_publishing_stopped: None,
            deliveries_per_sec: None,
            drain_secs: None,
            receipt_p50_ms: None,
            receipt_p99_ms: None,
            health_while_queueing: None,
            health_at_backlog: None,
            instances_cpu_secs: None,
            postgres_cpu_secs: None,
            postgres_wal: None,
            instances_delivered: None,
            leases_taken_over: None,
            failed_first_answers: None,
            memory: None,
            server,
            load_and_receiver,
            reference: None,
            fraction_of_reference: None,
        }
    }
}

/// A few failed publishes are a figure (reported); failing more than one in ten means the run is broken.
fn check_publishes(load: &load::LoadResult) -> anyhow::Result<()> {
    if load.accepted == 0 || load.errors * 10 > load.errors + load.accepted {
        bail!(
            "{} of {} publishes failed; the first error: {}",
            load.errors,
            load.errors + load.accepted,
            load.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

/// Several processes' readings as one: CPU and memory added up.
fn sum_stats(each: &[ProcStats]) -> ProcStats {
    each.iter().fold(ProcStats::default(), |sum, one| ProcStats {
        cpu_secs: sum.cpu_secs + one.cpu_secs,
        peak_rss_kb: sum.peak_rss_kb + one.peak_rss_kb,
        rss_kb: sum.rss_kb + one.rss_kb,
    })
}

/// CPU time and memory between two readings of a process.
fn figures(start: Option<ProcStats>, end: Option<ProcStats>) -> Option<ProcFigures> {
    let (start, end) = (start?, end?);
    Some(ProcFigures {
        cpu_secs: end.cpu_secs - start.cpu_secs,
        peak_rss_mb: end.peak_rss_kb as f64 / 1024.0,
        start_rss_mb: start.rss_kb as f64 / 1024.0,
    })
}

fn ms(histogram: &Histogram, q: f64) -> Option<f64> {
    histogram.quantile(q).map(|us| us as f64 / 1000.0)
}

/// A loopback port nothing listens on yet (bound, then released), for S5's receiver to open later.
fn reserve_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot reserve a loopback port")?;
    Ok(listener.local_addr()?)
}

/// Waits until the receiver has `expected` distinct deliveries; fails if the first does not arrive within
/// `first_within`, or if none arrive for [`STALL_TIMEOUT`] after that.
async fn wait_for_deliveries(
    ctx: &Ctx,
    receiver: &Receiver,
    expected: u64,
    first_within: Duration,
) -> anyhow::Result<()> {
    let mut last_count = receiver.unique();
    let mut last_progress = Instant::now();
    let mut last_report = Instant::now();
    let mut stall_limit = first_within;
    let run = ctx.progress.message();
    while receiver.unique() < expected {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let count = receiver.unique();
        if count > last_count {
            last_count = count;
            last_progress = Instant::now();
            stall_limit = STALL_TIMEOUT;
        } else if last_progress.elapsed() > stall_limit {
            bail!("deliveries stopped: {count} of {expected} arrived, none in the last {}s", stall_limit.as_secs());
        }
        // On a terminal the bar says it; in a log, a line every 5 s.
        if ctx.progress.is_hidden() && last_report.elapsed() > Duration::from_secs(5) {
            ctx.say(format_args!("  {count} of {expected} delivered …"));
            last_report = Instant::now();
        } else if !ctx.progress.is_hidden() && last_report.elapsed() > Duration::from_millis(250) {
            ctx.progress.set_message(format!("{run}: {count} of {expected} delivered"));
            last_report = Instant::now();
        }
    }
    ctx.progress.set_message(run);
    Ok(())
}

fn print_table(report: &Report) {
    println!(
        "hookrelay bench — {} build, {} store, {} CPUs ({})",
        report.build, report.store, report.machine.cpus, report.machine.cpu_model
    );
    println!();
    let header = [
        "scenario",
        "conc",
        "published",
        "msg/s",
        "api p50",
        "api p99",
        "delivered",
        "deliv/s",
        "rcpt p50",
        "rcpt p99",
        "drain s",
        "srv cpu s",
        "srv peak MB",
        "gen cpu s",
        "gen peak MB",
        "vs ref",
    ];
    let widths = [8, 5, 10, 9, 8, 8, 10, 9, 8, 8, 8, 9, 11, 9, 11, 6];
    let line = |cells: Vec<String>| {
        let row: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:>width$}")).collect();
        println!("{}", row.join(" "));
    };
    line(header.iter().map(|s| s.to_string()).collect());
    let opt = |value: Option<f64>, digits: usize| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
    let row = |name: String, s: &ScenarioReport| {
        vec![
            name,
            s.concurrency.to_string(),
            s.published.to_string(),
            format!("{:.0}", s.accepted_per_sec),
            opt(s.api_p50_ms, 2),
            opt(s.api_p99_ms, 2),
            if s.expected_deliveries > 0 { s.delivered.to_string() } else { "-".to_owned() },
            opt(s.deliveries_per_sec, 0),
            opt(s.receipt_p50_ms, 2),
            opt(s.receipt_p99_ms, 2),
            opt(s.drain_secs, 2),
            opt(s.server.map(|f| f.cpu_secs), 2),
            opt(s.server.map(|f| f.peak_rss_mb), 1),
            opt(s.load_and_receiver.map(|f| f.cpu_secs), 2),
            opt(s.load_and_receiver.map(|f| f.peak_rss_mb), 1),
            opt(s.fraction_of_reference.and_then(|f| f.headline()), 2),
        ]
    };
    for s in &report.scenarios {
        line(row(s.name.to_owned(), s));
        if let Some(reference) = &s.reference {
            line(row(format!("{} ref", s.name), reference));
        }
    }
    println!();
    for s in &report.scenarios {
        let kept_up = match (s.delivered_when_publishing_stopped, s.requests_held) {
            (Some(n), _) => format!("; {n} of {} delivered when publishing stopped", s.expected_deliveries),
            (None, Some(held)) => {
                format!("; {} deliveries queued, {held} requests held open by the receiver", s.expected_deliveries)
            }
            (None, None) => String::new(),
        };
        let start_rss = match s.server {
            Some(server) => format!("; server RSS {:.1} MB before the load", server.start_rss_mb),
            None => String::new(),
        };
        let mut cpu_split = String::new();
        if let Some(each) = &s.instances_cpu_secs {
            let each: Vec<String> = each.iter().map(|cpu| format!("{cpu:.2}")).collect();
            cpu_split.push_str(&format!("; CPU s per instance {}", each.join(" / ")));
        }
        if let Some(each) = &s.instances_delivered {
            let each: Vec<String> = each.iter().map(u64::to_string).collect();
            cpu_split.push_str(&format!("; deliveries per instance {}", each.join(" / ")));
        }
        if let Some(taken) = s.leases_taken_over {
            cpu_split.push_str(&format!("; {taken} leases taken over, {} duplicates", s.duplicates));
        }
        if let Some(postgres) = s.postgres_cpu_secs {
            let messages = s.published.max(1) as f64 / 1000.0;
            let hookrelay = s.server.map_or(0.0, |server| server.cpu_secs);
            cpu_split.push_str(&format!(
                "; PostgreSQL CPU {postgres:.2} s; CPU per 1,000 messages: hookrelay {:.3} s + PostgreSQL {:.3} s",
                hookrelay / messages,
                postgres / messages
            ));
        }
        if let (Some(cpu), Some(_)) = (s.server_cpu_ms_per_1000(), s.memory) {
            cpu_split.push_str(&format!("; server CPU {cpu:.0} ms per 1,000 messages"));
            if let Some(reference) = s.reference.as_ref().and_then(|r| r.server_cpu_ms_per_1000()) {
                cpu_split.push_str(&format!(" (reference {reference:.0} ms: {:.2}x)", cpu / reference.max(1e-9)));
            }
        }
        if let Some(memory) = s.memory {
            cpu_split.push_str(&format!(
                "; server RSS MB start {:.1}, warm {:.1}, max {:.1}, end {:.1} ({} samples)",
                memory.start_mb, memory.warm_mb, memory.max_mb, memory.end_mb, memory.samples
            ));
        }
        if let Some(failed) = s.failed_first_answers {
            cpu_split.push_str(&format!("; {failed} first deliveries answered 500, all retried"));
        }
        if let Some(wal) = s.postgres_wal {
            cpu_split.push_str(&format!("; WAL {:.0} fsyncs/s, {:.0} MB", wal.syncs_per_sec, wal.mb));
        }
        println!(
            "{}: {} ({} endpoints, {} publish errors{kept_up}{start_rss}{cpu_split})",
            s.name, s.title, s.endpoints, s.publish_errors
        );
        for (phase, figures) in [("while queueing", s.health_while_queueing), ("at backlog", s.health_at_backlog)] {
            if let Some(figures) = figures {
                println!("    health {phase}: {}", figures.summary());
            }
        }
        if let Some(f) = s.fraction_of_reference {
            println!(
                "    ÷ reference: msg/s {}, api p50 {}, api p99 {}, deliv/s {}, rcpt p50 {}, rcpt p99 {}",
                opt(f.accepted_per_sec, 2),
                opt(f.api_p50_ms, 2),
                opt(f.api_p99_ms, 2),
                opt(f.deliveries_per_sec, 2),
                opt(f.receipt_p50_ms, 2),
                opt(f.receipt_p99_ms, 2),
            );
        }
    }
    println!();
    println!("Times in ms unless marked; MB are MiB of resident memory (VmHWM: peak).");
    for note in &report.notes {
        println!("- {note}");
    }
}
