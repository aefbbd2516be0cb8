//! `hookrelay trigger`: sends one event through a running server to try what happens next, like `stripe trigger`.
//!
//! ```text
//! hookrelay trigger invoice.paid --app billing        # publish the event type's example to an application
//! hookrelay trigger invoice.paid --payload @event.json
//! hookrelay trigger --source stripe invoice.paid      # a Stripe event, signed with the source's secret, to /ingest
//! hookrelay trigger --source github --list            # the fixtures of the source's provider
//! ```
//!
//! Publishing goes through `POST /api/v1/app/{app}/msg/`. With `--source`, the provider's event is built here
//! (`trigger/fixtures.rs`), signed by the server with the source's secret (`POST /api/v1/source/{source}/sign/`,
//! admin only; the secret never leaves the server) and sent to `/ingest/{source}` without a token, so that it goes
//! through the same verification as the provider's own requests.

mod fixtures;

use std::io::Read;

use anyhow::{Context, anyhow, bail};
use hookrelay_core::model::newest_schema_examples;
use hookrelay_core::time::now_ms;
use serde_json::{Value, json};

use self::fixtures::{BodyFields, FIXTURES};
use super::client::{Api, ClientArgs};

#[derive(clap::Args, Debug)]
pub struct TriggerArgs {
    /// The event type, e.g. invoice.paid; with --source the provider's (invoice.paid, user.created, push,
    /// issues.opened, orders/create, app_mention) [with --source, default: the provider's first fixture]
    pub event_type: Option<String>,
    /// The application to publish to, by id or uid [default: the server's only application]
    #[arg(long, conflicts_with = "source")]
    pub app: Option<String>,
    /// The payload: a JSON object, or @FILE to read it from a file (@- for standard input) [default: the event
    /// type's example]; with --source, the raw body to sign and send instead of the fixture
    #[arg(long, value_name = "JSON|@FILE")]
    pub payload: Option<String>,
    /// A channel of the message (repeatable)
    #[arg(long = "channel", conflicts_with = "source")]
    pub channels: Vec<String>,
    /// Send the provider's event to this inbound source (id or uid) instead, signed with its secret
    #[arg(long)]
    pub source: Option<String>,
    /// List the fixtures (with --source, those of its provider) and exit
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    if args.list && args.source.is_none() {
        print_fixtures(None);
        return Ok(());
    }
    let api = args.client.connect()?;
    match &args.source {
        Some(source) => trigger_source(&api, source, &args).await,
        None => publish(&api, &args).await,
    }
}

fn print_fixtures(provider: Option<&str>) {
    for fixture in FIXTURES.iter().filter(|fixture| provider.is_none_or(|name| name == fixture.provider)) {
        println!("{:<12} {:<26} {}", fixture.provider, fixture.event_type, fixture.about);
    }
}

/// The text of `--payload`: the argument itself, or the file (or standard input) it names after `@`.
fn read_payload(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the payload from standard input")?;
            Ok(text)
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read the payload from {path}")),
        None => Ok(arg.to_owned()),
    }
}

// ---- outbound: publish a message ----

async fn publish(api: &Api, args: &TriggerArgs) -> anyhow::Result<()> {
    let event_type = args
        .event_type
        .as_deref()
        .context("name the event type to publish, e.g. `hookrelay trigger invoice.paid` (or pass --source)")?;
    let app = match &args.app {
        Some(app) => app.clone(),
        None => api.only_application().await?,
    };
    let payload = match &args.payload {
        Some(arg) => {
            let payload: Value = serde_json::from_str(&read_payload(arg)?).context("--payload is not JSON")?;
            if !payload.is_object() {
                bail!("--payload must be a JSON object, e.g. '{{\"id\": 1}}'");
            }
            payload
        }
        None => example_of(api, event_type).await?,
    };
    let mut message = json!({ "eventType": event_type, "payload": payload });
    if !args.channels.is_empty() {
        message["channels"] = json!(args.channels);
    }
    let published = api.post(&["api", "v1", "app", &app, "msg"], &message).await?;
    let msg_id = published["id"].as_str().ok_or_else(|| anyhow!("unexpected answer: {published}"))?;
    let app_id = app_id_of(api, &app).await.unwrap_or(app);
    println!("published {event_type} as {msg_id} to {app_id} ({})", subscribed(api, &app_id, msg_id).await);
    Ok(())
}

/// The application's id when `--app` named it by uid (for the summary line).
async fn app_id_of(api: &Api, app: &str) -> Option<String> {
    let found = api.get(&["api", "v1", "app", app]).await.ok()?;
    found["id"].as_str().map(str::to_owned)
}

/// The first `examples` item of the event type's newest schema, as the dashboard and `send-example` use it.
async fn example_of(api: &Api, event_type: &str) -> anyhow::Result<Value> {
    let hint = "add `examples` to its schema, or pass --payload '{…}' or --payload @file.json";
    let found = api
        .get(&["api", "v1", "event-type", event_type])
        .await
        .with_context(|| format!("no example to publish for `{event_type}`: create the event type and {hint}"))?;
    newest_example(&found)
        .cloned()
        .ok_or_else(|| anyhow!("event type `{event_type}` has no example to publish: {hint}"))
}

fn newest_example(event_type: &Value) -> Option<&Value> {
    newest_schema_examples(&event_type["schemas"]).first().filter(|example| example.is_object())
}

/// What happens next: how many endpoints got a delivery of the message.
async fn subscribed(api: &Api, app_id: &str, msg_id: &str) -> String {
    let Ok(listed) = api.get(&["api", "v1", "app", app_id, "msg", msg_id, "endpoint"]).await else {
        return "delivery follows to the subscribed endpoints".to_owned();
    };
    let count = listed["data"].as_array().map_or(0, Vec::len);
    let more = if listed["done"].as_bool() == Some(false) { "+" } else { "" };
    match count {
        0 => "no endpoint subscribed: nothing will be delivered".to_owned(),
        1 => "1 endpoint subscribed".to_owned(),
        n => format!("{n}{more} endpoints subscribed"),
    }
}

// ---- inbound: a provider's event to a source ----

async fn trigger_source(api: &Api, source_ref: &str, args: &TriggerArgs) -> anyhow::Result<()> {
    let source = api.get(&["api", "v1", "source", source_ref]).await?;
    let field = |name: &str| source[name].as_str().ok_or_else(|| anyhow!("unexpected answer: {source}"));
    let (source_id, provider, app_id) = (field("id")?, field("provider")?, field("appId")?);
    if args.list {
        print_fixtures(Some(provider));
        return Ok(());
    }
    let event_type = match &args.event_type {
        Some(event_type) => event_type.clone(),
        None if args.payload.is_some() => String::new(),
        None => fixtures::default_event_type(provider)
            .ok_or_else(|| anyhow!("no fixtures for provider `{provider}`"))?
            .to_owned(),
    };
    let (body, header_event_type, delivery_id) = match &args.payload {
        Some(arg) => {
            let header_event_type = match provider {
                "github" => Some(fixtures::github_event_and_action(&event_type).0.to_owned()),
                "shopify" => Some(fixtures::shopify_topic(&event_type)),
                _ => None,
            };
            if header_event_type.as_deref() == Some("") {
                bail!("name the event type: {provider} sends it in a header (e.g. `push`, `orders/create`)");
            }
            (read_payload(arg)?, header_event_type, None)
        }
        None => {
            let fields = BodyFields {
                event_type_field: source["eventTypeField"].as_str().map(str::to_owned),
                event_id_field: source["eventIdField"].as_str().map(str::to_owned),
            };
            let event = fixtures::build(provider, &event_type, &fields, now_ms())?;
            let delivery_id = Some(event.delivery_id).filter(|id| !id.is_empty());
            (event.body, event.header_event_type, delivery_id)
        }
    };

    let mut sign = json!({ "body": body });
    if let Some(header_event_type) = &header_event_type {
        sign["eventType"] = json!(header_event_type);
    }
    if let Some(delivery_id) = &delivery_id {
        sign["eventId"] = json!(delivery_id);
    }
    let signed = api.post(&["api", "v1", "source", source_id, "sign"], &sign).await?;
    let headers = signed["headers"].as_object().ok_or_else(|| anyhow!("unexpected answer: {signed}"))?;

    // The ingest route takes no token: the signature is the authentication, as for the provider's requests.
    let mut request = api.post_without_token(&["ingest", source_id])?.header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str().unwrap_or_default());
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach hookrelay's ingest URL at {}", api.base()))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let shown = if event_type.is_empty() { "the payload" } else { event_type.as_str() };
    if !status.is_success() {
        let code = answer["code"].as_str().unwrap_or("error");
        let detail = answer["detail"].as_str().map_or_else(|| answer.to_string(), str::to_owned);
        bail!("source {source_ref} refused {shown}: {status} ({code}): {detail}");
    }
    let Some(msg_id) = answer["messageId"].as_str() else {
        println!("triggered {shown} on source {source_ref}: {status}, answered {answer} (nothing published)");
        return Ok(());
    };
    let recorded = api.get(&["api", "v1", "app", app_id, "msg", msg_id]).await.ok();
    let recorded_type = recorded.as_ref().and_then(|msg| msg["eventType"].as_str()).unwrap_or("?");
    let duplicate = if answer["duplicate"] == json!(true) { " (a duplicate of an earlier event)" } else { "" };
    println!(
        "triggered {shown} on source {source_ref}: {status}, published {recorded_type} as {msg_id} to {app_id}{duplicate} \
         ({})",
        subscribed(api, app_id, msg_id).await
    );
    if provider == "slack" && recorded_type == "event_callback" && event_type != "event_callback" {
        eprintln!(
            "note: the source names Slack events by the envelope's `type`; PATCH it with \
             {{\"eventTypeField\": \"event.type\"}} to name them `{event_type}`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_first_of_the_newest_schema() {
        let event_type = json!({"schemas": {
            "1": {"examples": [{"v": 1}]},
            "10": {"examples": [{"v": 10}, {"v": 11}]},
            "2": {"examples": [{"v": 2}]},
        }});
        assert_eq!(newest_example(&event_type), Some(&json!({"v": 10})));
        assert_eq!(newest_example(&json!({"schemas": {"1": {"examples": []}}})), None);
        assert_eq!(newest_example(&json!({"schemas": {"1": {"examples": ["text"]}}})), None);
        assert_eq!(newest_example(&json!({"schemas": null})), None);
    }

    #[test]
    fn payloads_come_inline_or_from_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("payload.json");
        std::fs::write(&path, r#"{"from": "file"}"#).expect("write");
        assert_eq!(read_payload(&format!("@{}", path.display())).expect("read"), r#"{"from": "file"}"#);
        assert_eq!(read_payload(r#"{"a": 1}"#).expect("inline"), r#"{"a": 1}"#);
        assert!(read_payload("@/nonexistent/payload.json").is_err());
    }
}
