//! `hookrelay listen`: receive an application's deliveries on a laptop with no public address, as the Stripe CLI's
//! `listen --forward-to` does. The command makes (or reuses) an endpoint `listen-<name>` whose URL is
//! `listen://<name>`, prints its signing secret (the same on every run, since the endpoint stays), and opens a
//! stream from the server over which the server delivers to it; no port is opened on the laptop. Each delivery is
//! forwarded to `--forward-to` with its original headers (signatures included) and the local answer goes back as
//! the attempt's response, so retries, the attempt log and `hookrelay tail` work as for any endpoint. Without
//! `--forward-to`, each delivery is printed with its signature checked, and answered with `--status`.
//!
//! With `--source`, the endpoint goes to the application the inbound source publishes to, so the source's verified
//! events arrive the same way. Ctrl-C disables the endpoint (nothing piles up while no one listens); the next
//! `listen` enables it again.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::text;
use hookrelay_core::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Api, ClientArgs};
use super::stream::{self, Event};
use super::tail::paint_status;

/// How far a webhook's timestamp may be from now, as the Standard Webhooks libraries allow.
const TOLERANCE_SECS: i64 = 300;
/// How long the local URL has to answer (the server's delivery timeout, 15 s by default, ends the attempt sooner).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of the local answer sent back to be kept on the attempt (the server keeps 20,000).
const MAX_ANSWER_BYTES: usize = 20_000;
/// Headers not copied onto the forwarded request: they describe the hop, not the webhook.
const HOP_HEADERS: &[&str] = &["host", "content-length", "connection", "transfer-encoding", "keep-alive"];

#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// Forward each delivery to this URL (e.g. http://localhost:3000/webhooks) and record its answer [default:
    /// print each delivery]
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// The application whose deliveries to receive (id or uid) [default: the only application]
    #[arg(long)]
    pub app: Option<String>,
    /// Receive an inbound source's verified events instead (its id or uid): its application's deliveries
    #[arg(long, conflicts_with = "app")]
    pub source: Option<String>,
    /// Only these event types, comma-separated (e.g. invoice.paid,invoice.payment_failed) [default: all]
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Names the session: the endpoint is `listen-<name>` and keeps its secret across runs [default: user-host]
    #[arg(long)]
    pub name: Option<String>,
    /// Without --forward-to: the status to answer each delivery with (e.g. 500 to watch retries)
    #[arg(long, default_value_t = 200, conflicts_with = "forward_to")]
    pub status: u16,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A delivery as the server streams it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    id: u64,
    msg_id: String,
    event_type: String,
    method: String,
    headers: serde_json::Map<String, Value>,
    body: String,
}

/// Where deliveries go: the local URL, or the terminal.
enum Target {
    Forward { url: reqwest::Url, http: reqwest::Client },
    Print { status: u16, secret: EndpointSecret },
}

/// The endpoint a session receives through.
struct Session {
    app_id: String,
    endpoint_id: String,
    uid: String,
}

/// What handling a delivery needs, shared by the tasks that handle them.
struct Receiver {
    api: Api,
    session: Session,
    target: Target,
    colour: bool,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
    let name = match &args.name {
        Some(name) => checked_name(name)?,
        None => default_name(),
    };
    let app_id = application(&api, args.app.as_deref(), args.source.as_deref()).await?;
    let session = open_endpoint(&api, &app_id, &name, &args.events).await?;
    let secret = api.get(&["api", "v1", "app", &app_id, "endpoint", &session.endpoint_id, "secret"]).await?;
    let secret = secret["key"].as_str().ok_or_else(|| anyhow!("the server's answer has no secret"))?.to_owned();
    let target = match &args.forward_to {
        Some(url) => Target::Forward { url: local_url(url)?, http: local_client()? },
        None => Target::Print { status: args.status, secret: EndpointSecret::parse(&secret)? },
    };
    let what = match &args.source {
        Some(source) => format!("source {source}'s events (application {app_id})"),
        None => format!("deliveries of application {app_id}"),
    };
    let filter = if args.events.is_empty() { String::new() } else { format!(" ({})", args.events.join(", ")) };
    match &args.forward_to {
        Some(url) => println!("Ready! Forwarding {what}{filter} to {url} through endpoint {}", session.uid),
        None => println!("Ready! Printing {what}{filter}, received through endpoint {}", session.uid),
    }
    println!("Your webhook signing secret is {secret} (^C to quit)");

    let receiver = Arc::new(Receiver { api, session, target, colour: std::io::stdout().is_terminal() });
    let (api, session) = (&receiver.api, &receiver.session);
    let segments = ["api", "v1", "app", &app_id, "endpoint", &session.endpoint_id, "listen"];
    let receiving = stream::follow(api, &segments, &[], |event| {
        let receiver = receiver.clone();
        async move {
            // Each delivery on a task of its own: a slow local handler does not hold up the ones behind it (the
            // server sends at most the endpoint's concurrency at once, 10 by default).
            if event.name == "delivery" {
                tokio::spawn(async move { receiver.handle(event).await });
            }
            Ok(())
        }
    });
    tokio::select! {
        result = receiving => result,
        _ = tokio::signal::ctrl_c() => {
            // Nothing piles up for a listener that is gone: the next `listen` enables the endpoint again.
            let disabled = api
                .patch(&["api", "v1", "app", &app_id, "endpoint", &session.endpoint_id], &json!({ "disabled": true }))
                .await;
            match disabled {
                Ok(_) => eprintln!("stopped; endpoint {} is disabled until the next `hookrelay listen`", session.uid),
                Err(err) => eprintln!("stopped; could not disable endpoint {}: {err:#}", session.uid),
            }
            Ok(())
        }
    }
}

/// The application to listen on: the one named, the source's, or the only one there is.
async fn application(api: &Api, app: Option<&str>, source: Option<&str>) -> anyhow::Result<String> {
    if let Some(app) = app {
        return Ok(api.get(&["api", "v1", "app", app]).await?["id"].as_str().unwrap_or(app).to_owned());
    }
    if let Some(source) = source {
        let source = api.get(&["api", "v1", "source", source]).await?;
        return source["appId"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("the source has no application"));
    }
    api.only_application().await
}

/// Finds the session's endpoint, or makes it: `listen-<name>`, URL `listen://<name>`, filtered to `events`.
async fn open_endpoint(api: &Api, app_id: &str, name: &str, events: &[String]) -> anyhow::Result<Session> {
    let uid = format!("listen-{name}");
    let filter = if events.is_empty() { Value::Null } else { json!(events) };
    let wanted = json!({ "url": format!("listen://{name}"), "filterTypes": filter, "disabled": false });
    let endpoint = match api.get_optional(&["api", "v1", "app", app_id, "endpoint", &uid]).await? {
        Some(existing) => {
            let id = existing["id"].as_str().unwrap_or(&uid).to_owned();
            api.patch(&["api", "v1", "app", app_id, "endpoint", &id], &wanted).await?
        }
        None => {
            let mut new = wanted;
            new["uid"] = json!(uid);
            new["description"] = json!(format!("hookrelay listen ({name})"));
            api.post(&["api", "v1", "app", app_id, "endpoint"], &new).await?
        }
    };
    let endpoint_id = endpoint["id"].as_str().ok_or_else(|| anyhow!("the server's answer has no endpoint id"))?;
    Ok(Session { app_id: app_id.to_owned(), endpoint_id: endpoint_id.to_owned(), uid })
}

impl Receiver {
    /// Forwards (or prints) one delivery of the stream and sends the answer back.
    async fn handle(&self, event: Event) {
        let delivery: Delivery = match serde_json::from_str(&event.data) {
            Ok(delivery) => delivery,
            Err(err) => return eprintln!("the server sent a delivery that is not valid: {err}"),
        };
        println!("--> {} [{}]", delivery.event_type, delivery.msg_id);
        let (status_code, body) = match &self.target {
            Target::Forward { url, http } => forward(http, url, &delivery, self.colour).await,
            Target::Print { status, secret } => {
                println!("{}", describe(&delivery, secret));
                (*status, String::new())
            }
        };
        let answer =
            json!({ "id": delivery.id, "statusCode": status_code, "body": text::prefix(&body, MAX_ANSWER_BYTES) });
        let session = &self.session;
        let segments = ["api", "v1", "app", &session.app_id, "endpoint", &session.endpoint_id, "listen"];
        if let Err(err) = self.api.post(&segments, &answer).await {
            // The attempt fails on the server and is retried; the stream goes on.
            eprintln!("could not send the answer to {} back: {err:#}", delivery.msg_id);
        }
    }
}

/// Sends the delivery to the local URL with its original headers; returns the status (0 when none came) and body.
async fn forward(http: &reqwest::Client, url: &reqwest::Url, delivery: &Delivery, colour: bool) -> (u16, String) {
    let method = reqwest::Method::from_bytes(delivery.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = http.request(method.clone(), url.clone()).body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        if let Some(value) = value.as_str()
            && !HOP_HEADERS.contains(&name.as_str())
        {
            request = request.header(name, value);
        }
    }
    let started = Instant::now();
    let result = async {
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        // Only what goes back is read: the start of the body.
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // The status came; a body cut short does not change the answer.
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(MAX_ANSWER_BYTES);
        Ok::<_, reqwest::Error>((status, String::from_utf8_lossy(&body).into_owned()))
    }
    .await;
    let ms = started.elapsed().as_millis();
    match result {
        Ok((status, body)) => {
            println!("<-- [{}] {method} {url} [{}] {ms} ms", paint_status(status, colour), delivery.msg_id);
            (status, body)
        }
        Err(err) => {
            let reason = format!("{url} did not answer: {:#}", anyhow::Error::new(err));
            println!("<-- [{}] {method} {url} [{}] {reason}", paint_status(0, colour), delivery.msg_id);
            (0, reason)
        }
    }
}

fn local_url(url: &str) -> anyhow::Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--forward-to `{url}` is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("--forward-to must be an http:// or https:// URL, such as http://localhost:3000/webhooks");
    }
    Ok(parsed)
}

fn local_client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(FORWARD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")
}

/// `user-host`, made of the characters endpoint uids allow.
fn default_name() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = format!("{}-{}", user.trim(), host.trim())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() { "cli".to_owned() } else { name.chars().take(64).collect() }
}

fn checked_name(name: &str) -> anyhow::Result<String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("--name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    Ok(name.to_owned())
}

/// The delivery as the terminal shows it without --forward-to: its signature checked, then its body.
fn describe(delivery: &Delivery, secret: &EndpointSecret) -> String {
    let header = |name: &str| delivery.headers.get(name).and_then(Value::as_str).unwrap_or("");
    let verdict =
        verify(secret, header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"), &delivery.body);
    format!("    signature: {verdict}\n    {}", delivery.body)
}

fn verify(secret: &EndpointSecret, id: &str, timestamp: &str, signatures: &str, body: &str) -> String {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return "INVALID (missing or malformed webhook-timestamp)".into();
    };
    if (now_ms() / 1000 - ts).abs() > TOLERANCE_SECS {
        return "INVALID (timestamp outside the 5-minute tolerance)".into();
    }
    let expected = secret.sign(id, ts, body.as_bytes());
    if signatures.split(' ').any(|candidate| candidate == expected) {
        "valid".into()
    } else {
        "INVALID (no signature matches this secret)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_endpoint_uids() {
        assert!(checked_name("alice-laptop.dev_1").is_ok());
        assert!(checked_name("alice laptop").is_err());
        assert!(checked_name("").is_err());
        let name = default_name();
        assert!(checked_name(&name).is_ok(), "{name}");
    }

    #[test]
    fn signatures_are_checked_with_the_secret() {
        let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let ts = now_ms() / 1000;
        let good = secret.sign("msg_1", ts, b"{}");
        assert_eq!(verify(&secret, "msg_1", &ts.to_string(), &format!("v1,bogus {good}"), "{}"), "valid");
        assert!(verify(&secret, "msg_1", &ts.to_string(), &good, "{\"x\":1}").starts_with("INVALID"));
        assert!(verify(&secret, "msg_1", "1", &good, "{}").contains("tolerance"));
    }
}
