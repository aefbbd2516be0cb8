//! `hookrelay bench --quick --json` runs every scenario end to end (and, with `--reference`, S0–S2 against the
//! no-storage reference too; H1, which is only run when named, on its own; S6 with failures and the reference) and reports plausible figures; no thresholds on throughput, since this only keeps
//! the benchmark from rotting.

use std::process::Command;

use serde_json::Value;

/// Runs `hookrelay bench --quick --json` with `args` (never the caller's admin token) and returns its report.
fn quick_bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["bench", "--quick", "--json"])
        .args(args)
        .env_remove("HOOKRELAY_ADMIN_TOKEN")
        .output()
        .expect("hookrelay bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("bench prints JSON")
}

#[test]
fn quick_bench_reports_every_scenario() {
    let report = quick_bench(&[]);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["S0", "S1", "S2", "S2T", "S2S", "S3", "S4", "S5", "S6"], "{report}");
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap_or("?");
        assert!(scenario["published"].as_u64().unwrap_or(0) > 0, "{name}: {scenario}");
        assert!(scenario["accepted_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(scenario["api_p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(scenario["server"]["peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(scenario["server"]["cpu_secs"].as_f64().is_some(), "{name}: {scenario}");
        if name == "S0" {
            assert_eq!(scenario["expected_deliveries"], 0, "{scenario}");
            continue;
        }
        if name == "S5" {
            // Health checks and scrapes were timed once the backlog was queued, and all answered.
            let health = &scenario["health_at_backlog"];
            assert_eq!((health["calls"].as_u64(), health["errors"].as_u64()), (Some(20), Some(0)), "{scenario}");
            assert!(health["health_p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{scenario}");
            assert!(health["scrape_p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{scenario}");
        }
        // Every accepted message reached every endpoint, and latency was measured from the payload stamp; S2S's
        // messages scheduled for tomorrow did not (they would count as more deliveries than expected).
        let expected = scenario["published"].as_u64().unwrap_or(0) * scenario["endpoints"].as_u64().unwrap_or(0);
        assert_eq!(scenario["delivered"].as_u64(), Some(expected), "{name}: {scenario}");
        assert!(scenario["deliveries_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(scenario["receipt_p50_ms"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
    }
}

/// `--reference` runs S0–S2 also against the no-storage reference server and reports its figures and the
/// fractions beside hookrelay's; only their presence is checked, since the ratio depends on the machine.
#[test]
fn quick_bench_reports_the_reference() {
    let report = quick_bench(&["--reference", "--scenario", "s0,s1,s2"]);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["S0", "S1", "S2"], "{report}");
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap_or("?");
        let reference = &scenario["reference"];
        let fraction = &scenario["fraction_of_reference"];
        assert!(reference["accepted_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(reference["api_p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(reference["server"]["peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(fraction["accepted_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(fraction["api_p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        if name == "S0" {
            continue;
        }
        // The reference forwards every accepted message to the receiver too.
        assert_eq!(reference["delivered"], reference["published"], "{name}: {scenario}");
        assert!(reference["deliveries_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(fraction["deliveries_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
        assert!(fraction["receipt_p50_ms"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {scenario}");
    }
}

/// `--scenario h1` (never run by default) publishes to endpoints with custom headers at the limit behind a
/// receiver that never answers: nothing is delivered, the server started requests (it claimed deliveries), and
/// its memory is reported.
#[test]
fn quick_bench_holds_a_backlog_to_endpoints_at_the_header_limit() {
    let report = quick_bench(&["--scenario", "h1"]);
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["name"], "H1", "{report}");
    let published = scenario["published"].as_u64().unwrap_or(0);
    assert!(published > 0, "{scenario}");
    assert_eq!(scenario["expected_deliveries"].as_u64(), Some(published * 2), "{scenario}");
    assert_eq!(scenario["delivered"], 0, "{scenario}");
    assert!(scenario["requests_held"].as_u64().unwrap_or(0) > 0, "{scenario}");
    assert!(scenario["server"]["peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0, "{scenario}");
}

/// `--instances 2 --store postgres` runs two servers on one schema: publishers are spread over both, every
/// message is delivered once, and the report gives each instance's CPU and PostgreSQL's.
#[test]
fn quick_bench_runs_two_instances_on_one_postgres_database() {
    let report = quick_bench(&[
        "--scenario",
        "s2",
        "--store",
        "postgres",
        "--instances",
        "2",
        "--database-url",
        &hookrelay_testkit::postgres::test_database_url(),
    ]);
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["name"], "S2", "{report}");
    assert_eq!(scenario["delivered"], scenario["published"], "{scenario}");
    let each = scenario["instances_cpu_secs"].as_array().expect("each instance's CPU");
    assert_eq!(each.len(), 2, "{scenario}");
    assert!(each.iter().all(|cpu| cpu.as_f64().unwrap_or(0.0) > 0.0), "both instances worked: {scenario}");
    assert!(scenario["postgres_cpu_secs"].as_f64().is_some(), "{scenario}");
}

/// `--scenario s6 --fail-rate 0.5 --reference`: paced; the receiver answers 500 to the first delivery of about half
/// the messages and every one still arrives (by its retry); the report has the server's memory over the load and its
/// CPU per message beside the reference's (which meets no failures: it does not retry).
#[test]
fn quick_bench_paces_s6_with_failures_and_samples_memory() {
    let report = quick_bench(&["--scenario", "s6", "--fail-rate", "0.5", "--reference"]);
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["name"], "S6", "{report}");
    let published = scenario["published"].as_u64().unwrap_or(0);
    assert!(published > 0, "{scenario}");
    assert_eq!(scenario["delivered"].as_u64(), Some(published), "every message arrived: {scenario}");
    let failed = scenario["failed_first_answers"].as_u64().unwrap_or(0);
    assert!(failed > 0 && failed < published, "about half answered 500 first: {scenario}");
    assert!(scenario["memory"]["samples"].as_u64().unwrap_or(0) >= 1, "{scenario}");
    assert!(scenario["memory"]["max_mb"].as_f64().unwrap_or(0.0) > 0.0, "{scenario}");
    assert!(scenario["fraction_of_reference"]["server_cpu_per_message"].as_f64().unwrap_or(0.0) > 0.0, "{scenario}");
    let reference = &scenario["reference"];
    assert_eq!(reference["delivered"], reference["published"], "{scenario}");
    assert!(reference["failed_first_answers"].is_null(), "the reference meets no failures: {scenario}");
}
