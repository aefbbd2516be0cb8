//! The command line as a user meets it: the built `hookrelay` binary run with arguments, environment variables
//! and config files, against real servers on loopback — `--version`, completions and man pages, boolean flags,
//! host names for `--listen`, the config file's retry schedule, `recover --since 1h`, `token` with the client
//! settings in the environment, and progress bars drawn on a pseudo-terminal but not on a pipe.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Receiver, TOKEN, TestServer, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// What a finished command did: whether it succeeded, its stdout, its stderr.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `hookrelay <args>` with `env` on top of an environment cleared of the client and server settings, output on
/// pipes, as a script would run it.
fn hookrelay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = command(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("hookrelay runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Output { ok: output.status.success(), stdout: text(&output.stdout), stderr: text(&output.stderr) }
}

/// [`hookrelay`] from async tests (it blocks until the command exits).
async fn hookrelay_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        hookrelay(&args, &env)
    })
    .await
    .expect("CLI task")
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    for name in ["HOOKRELAY_URL", "HOOKRELAY_ADMIN_TOKEN", "HOOKRELAY_DATA_DIR", "HOOKRELAY_CONFIG", "HOOKRELAY_LISTEN"]
    {
        command.env_remove(name);
    }
    command.args(args).envs(env.iter().copied()).stdin(Stdio::null());
    command
}

#[test]
fn version_names_the_commit_the_binary_was_built_from() {
    let out = hookrelay(&["--version"], &[]);
    assert!(out.ok, "{}", out.stderr);
    let line = out.stdout.trim();
    let commit = line
        .strip_prefix(concat!("hookrelay ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {line}"));
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()), "no commit in: {line}");
}

#[test]
fn completions_are_printed_for_every_shell() {
    let bash = hookrelay(&["completions", "bash"], &[]);
    assert!(bash.ok, "{}", bash.stderr);
    assert!(bash.stdout.contains("complete -F _hookrelay"), "{}", bash.stdout);
    for word in ["serve", "migrate", "backup", "recover", "token", "completions", "--allow-private-endpoints"] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = hookrelay(&["completions", shell], &[]);
        assert!(out.ok && out.stdout.contains("recover"), "{shell}: {}", out.stderr);
    }
    let unknown = hookrelay(&["completions", "tcsh"], &[]);
    assert!(!unknown.ok && unknown.stderr.contains("possible values"), "{}", unknown.stderr);
}

#[test]
fn man_prints_the_main_page_or_writes_one_page_per_command() {
    let out = hookrelay(&["man"], &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains(".TH hookrelay 1") && out.stdout.contains(".SH NAME"), "not roff:\n{}", out.stdout);
    assert!(out.stdout.contains("recover"), "the subcommands are listed");

    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("man1");
    let out = hookrelay(&["man", "--out-dir", pages.to_str().expect("utf-8 path")], &[]);
    assert!(out.ok, "{}", out.stderr);
    for page in ["hookrelay.1", "hookrelay-serve.1", "hookrelay-migrate.1", "hookrelay-token-create.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not roff");
        assert!(out.stdout.contains(page), "{page} not named on stdout: {}", out.stdout);
    }
    let serve = std::fs::read_to_string(pages.join("hookrelay-serve.1")).expect("serve page");
    assert!(serve.contains("allow\\-private\\-endpoints"), "the serve page lists its settings");
    assert!(!pages.join("hookrelay-bench-reference.1").exists(), "a hidden command got a page");
}

#[test]
fn migrate_lists_its_own_flags_before_the_server_settings() {
    let out = hookrelay(&["migrate", "--help"], &[]);
    assert!(out.ok, "{}", out.stderr);
    let at = |needle: &str| out.stdout.find(needle).unwrap_or_else(|| panic!("no {needle} in:\n{}", out.stdout));
    assert!(at("--from") < at("Server settings:"), "{}", out.stdout);
    assert!(at("--reencrypt") < at("Server settings:"));
    assert!(at("Server settings:") < at("--listen"));
}

/// A data directory with a config file holding `toml`.
fn config_file(toml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hookrelay.toml");
    std::fs::write(&file, toml).expect("config file");
    let path = file.to_str().expect("utf-8 path").to_owned();
    (dir, path)
}

#[test]
fn the_config_file_takes_the_retry_schedule_as_an_array() {
    let (dir, config) = config_file("retry_schedule = [5, 300, 1800]\nhttps_only = true\n");
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().expect("utf-8 path");
    let out = hookrelay(&["migrate", "--config", &config, "--data-dir", data_dir], &[]);
    assert!(out.ok, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("is up to date"), "{}", out.stdout);

    let (_bad_dir, bad) = config_file("retry_schedule = 5\n");
    let out = hookrelay(&["migrate", "--config", &bad, "--data-dir", data_dir], &[]);
    assert!(!out.ok);
    assert!(out.stderr.contains("retry_schedule") && out.stderr.contains("[5, 300, 1800]"), "{}", out.stderr);
    let (_bad_dir, bad) = config_file("retry_schedule = [5, -1]\n");
    let out = hookrelay(&["migrate", "--config", &bad, "--data-dir", data_dir], &[]);
    assert!(!out.ok && out.stderr.contains("retry_schedule"), "{}", out.stderr);
}

#[test]
fn boolean_settings_take_a_bare_flag_a_value_or_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let migrate =
        |args: &[&str], env: &[(&str, &str)]| hookrelay(&[&["migrate", "--data-dir", data_dir], args].concat(), env);
    for (args, env) in [
        (&["--allow-private-endpoints", "--https-only"][..], &[][..]),
        (&["--allow-private-endpoints", "false", "--https-only=true"], &[]),
        (&[], &[("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true"), ("HOOKRELAY_HTTPS_ONLY", "false")]),
    ] {
        let out = migrate(args, env);
        assert!(out.ok, "{args:?} {env:?}: {}", out.stderr);
    }
    let out = migrate(&["--https-only", "sometimes"], &[]);
    assert!(!out.ok && out.stderr.contains("possible values: true, false"), "{}", out.stderr);
    let out = migrate(&[], &[("HOOKRELAY_HTTPS_ONLY", "sometimes")]);
    assert!(!out.ok, "a bad value in the environment is refused");
}

/// `hookrelay serve <args>` as a child process, with the test admin token; returns it and the URL it printed.
fn spawn_serve(args: &[&str]) -> (std::process::Child, String) {
    let mut child =
        command(&[&["serve"], args].concat(), &[("HOOKRELAY_ADMIN_TOKEN", TOKEN), ("HOOKRELAY_LOG", "error")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hookrelay serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("hookrelay listening on ") {
                    break rest.split_whitespace().next().expect("url").to_owned();
                }
            }
            _ => {
                let status = child.wait().expect("exit status");
                panic!("hookrelay serve {args:?} stopped before listening: {status}");
            }
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

#[tokio::test]
async fn serve_takes_bare_boolean_flags_before_other_flags_and_a_host_name_to_listen_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    // `--https-only --listen …`: the next flag is not read as the boolean's value.
    let (mut child, base) =
        spawn_serve(&["--allow-private-endpoints", "--https-only", "--listen", "localhost:0", "--data-dir", data_dir]);
    assert!(base.starts_with("http://127.0.0.1:"), "localhost is listened on at its IPv4 address: {base}");

    let http = common::http_client();
    let post =
        |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send();
    let app = post("/api/v1/app/", json!({ "name": "Acme", "uid": "acme" })).await.expect("create app");
    assert_eq!(app.status(), 201);
    // --https-only is on: a plain-HTTP endpoint is refused.
    let plain = post("/api/v1/app/acme/endpoint/", json!({ "url": "http://127.0.0.1:9/hook" })).await.expect("post");
    assert_eq!(plain.status(), 422, "{}", plain.text().await.unwrap_or_default());
    // --allow-private-endpoints is on: a loopback HTTPS endpoint is accepted.
    let private = post("/api/v1/app/acme/endpoint/", json!({ "url": "https://127.0.0.1:9/hook" })).await.expect("post");
    assert_eq!(private.status(), 201, "{}", private.text().await.unwrap_or_default());

    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn token_finds_the_server_and_its_generated_token_through_the_environment() {
    let server = TestServer::start_with(|args| args.admin_token = None).await;
    let data_dir = server.data_dir.path().to_str().expect("utf-8 path").to_owned();
    let env = [("HOOKRELAY_URL", server.base.as_str()), ("HOOKRELAY_DATA_DIR", data_dir.as_str())];

    let created = hookrelay_async(&["token", "create", "--name", "ci"], &env).await;
    assert!(created.ok, "{}", created.stderr);
    let token = created.stdout.trim().to_owned();
    assert!(!token.is_empty() && !token.contains(' '), "stdout holds the token alone: {}", created.stdout);
    assert!(!created.stderr.contains(&token), "the token is printed once, on stdout");

    let listed = hookrelay_async(&["token", "list"], &env).await;
    assert!(listed.ok && listed.stdout.contains("\tci\t"), "{}\n{}", listed.stdout, listed.stderr);
    assert!(!listed.stdout.contains(&token), "list never shows a token");

    // The new token alone (no data directory) authenticates through HOOKRELAY_ADMIN_TOKEN.
    let empty = tempfile::tempdir().expect("temp dir");
    let empty = empty.path().to_str().expect("utf-8 path");
    let with_token = [
        ("HOOKRELAY_URL", server.base.as_str()),
        ("HOOKRELAY_ADMIN_TOKEN", token.as_str()),
        ("HOOKRELAY_DATA_DIR", empty),
    ];
    let listed = hookrelay_async(&["token", "list"], &with_token).await;
    assert!(listed.ok, "{}", listed.stderr);

    let no_token =
        hookrelay_async(&["token", "list"], &[("HOOKRELAY_URL", &server.base), ("HOOKRELAY_DATA_DIR", empty)]).await;
    assert!(!no_token.ok && no_token.stderr.contains("no admin token"), "{}", no_token.stderr);

    let revoked = hookrelay_async(&["token", "revoke", "ci"], &env).await;
    assert!(revoked.ok, "{}", revoked.stderr);
    let refused = hookrelay_async(&["token", "list"], &with_token).await;
    assert!(!refused.ok && refused.stderr.contains("401"), "a revoked token is refused: {}", refused.stderr);
    server.stop().await;
}

/// Publishes `n` messages to `acme` and waits until each one's delivery has failed for good.
async fn publish_failing(server: &TestServer, n: usize) {
    for i in 0..n {
        let msg = server.publish("acme", "invoice.paid", json!({ "n": i })).await;
        wait_for(&format!("the delivery of {msg} to fail"), WAIT, async || {
            let (_, list) = server.get(&format!("/api/v1/app/acme/msg/{msg}/endpoint/")).await;
            (list["data"][0]["status"] == json!(2)).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn recover_since_an_hour_ago_draws_its_progress_only_on_a_terminal() {
    // Deliveries fail for good after one attempt.
    let server = TestServer::start_with(|args| args.retry_schedule = Some("0".into())).await;
    let (receiver, healthy) = Receiver::flaky().await;
    let (status, app) = server.post("/api/v1/app/", json!({ "name": "Acme", "uid": "acme" })).await;
    assert_eq!(status, 201, "{app}");
    server.create_endpoint("acme", &receiver.url(), json!({ "uid": "acme-main" })).await;
    publish_failing(&server, 3).await;
    healthy.store(true, Ordering::SeqCst);
    let env = [("HOOKRELAY_URL", server.base.as_str()), ("HOOKRELAY_ADMIN_TOKEN", TOKEN)];
    let recover = ["recover", "--app", "acme", "--endpoint", "acme-main"];

    // A window that ended an hour ago holds none of them.
    let out = hookrelay_async(&[&recover[..], &["--since", "2h", "--until", "1h"]].concat(), &env).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.starts_with("re-queued 0 failed deliveries"), "{}", out.stdout);

    // On a pipe: the result on stdout, no progress bar on stderr.
    let out = hookrelay_async(&[&recover[..], &["--since", "1h"]].concat(), &env).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.starts_with("re-queued 3 failed deliveries"), "{}", out.stdout);
    assert!(out.stdout.contains("still in their retry schedule are not counted"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1, "stdout holds the result alone: {}", out.stdout);
    assert!(out.stderr.contains("started recover task"), "{}", out.stderr);
    assert!(!out.stderr.contains("scanned"), "a bar was drawn on a pipe: {:?}", out.stderr);
    receiver.wait_for(3, WAIT).await;

    // On a terminal: the bar is drawn there, and stdout still holds the result alone.
    healthy.store(false, Ordering::SeqCst);
    publish_failing(&server, 2).await;
    healthy.store(true, Ordering::SeqCst);
    let args: Vec<String> = [&recover[..], &["--since", "1h"]].concat().iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (ok, stdout, terminal) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        on_terminal(&args, &env)
    })
    .await
    .expect("terminal run");
    assert!(ok, "terminal: {terminal:?}");
    assert!(stdout.starts_with("re-queued 2 failed deliveries"), "{stdout}");
    assert!(terminal.contains("started recover task"), "{terminal:?}");
    assert!(terminal.contains("scanned, 2 queued"), "no progress bar on the terminal: {terminal:?}");
    assert!(terminal.contains('\r') && terminal.contains('='), "not drawn as a bar: {terminal:?}");
    server.stop().await;
}

/// Runs `hookrelay <args>` with stderr on a pseudo-terminal (120 columns) and stdout on a pipe; returns whether it
/// succeeded, its stdout, and everything the terminal received.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let (controller, terminal) = common::pseudo_terminal();

    // The command (holding the terminal side) is dropped once spawned, so the reader sees the end when the child
    // exits: reading the controller side then fails with EIO, after everything written was read.
    let mut child = command(args, env)
        .env("TERM", "xterm-256color")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(terminal))
        .spawn()
        .expect("hookrelay runs");
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let _ = std::fs::File::from(controller).read_to_end(&mut shown);
        String::from_utf8_lossy(&shown).into_owned()
    });
    let mut stdout = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("stdout");
    let status = child.wait().expect("exit status");
    (status.success(), stdout, reader.join().expect("terminal reader"))
}
