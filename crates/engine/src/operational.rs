//! The operational webhook: events about endpoints and failing deliveries sent to one URL the operator
//! configures, signed with Standard Webhooks headers, as Svix-shaped JSON or as a Slack or Discord message.
//!
//! Emitting never blocks the API or a delivery: events go through a bounded queue to one sender task, which
//! retries each event a few times. Events are not persisted: if the queue is full or the process stops, the
//! event is dropped and a warning is logged.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::MessageId;
use hookrelay_core::operational::{EventSink, OperationalEvent};
use hookrelay_core::signature_headers::StandardHeaders;
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use reqwest::header::HeaderMap;
use serde_json::json;
use tokio::sync::mpsc;

use crate::EngineError;
use crate::send::insert_signed_headers;

/// Events waiting to be sent before new ones are dropped.
const QUEUE: usize = 1024;
/// Waits between tries of one event.
const RETRY_WAITS: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30), Duration::from_secs(120)];

/// How events are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Svix's operational-webhook JSON: `{"type": …, "data": {…}}`.
    Standard,
    /// A Slack incoming webhook message: `{"text": …}`.
    Slack,
    /// A Discord webhook message: `{"content": …}`.
    Discord,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "standard" | "svix" => Some(Self::Standard),
            "slack" => Some(Self::Slack),
            "discord" => Some(Self::Discord),
            _ => None,
        }
    }

    fn body(self, event: &OperationalEvent) -> serde_json::Value {
        match self {
            Self::Standard => event.to_json(),
            Self::Slack => json!({ "text": event.summary() }),
            Self::Discord => json!({ "content": event.summary() }),
        }
    }
}

/// Where operational events go.
#[derive(Clone, Debug)]
pub struct OperationalConfig {
    pub url: String,
    pub secret: EndpointSecret,
    pub format: Format,
    pub timeout: Duration,
}

/// The sink the API and the dispatcher emit into.
pub struct OperationalWebhook {
    queue: mpsc::Sender<OperationalEvent>,
}

impl EventSink for OperationalWebhook {
    fn emit(&self, event: OperationalEvent) {
        if let Err(err) = self.queue.try_send(event) {
            tracing::warn!(event = err.into_inner().kind(), "operational webhook queue is full; dropping the event");
        }
    }
}

/// Starts the sender task. The URL is the operator's own, so private addresses are allowed; redirects are
/// still not followed.
pub fn start(config: OperationalConfig) -> Result<Arc<OperationalWebhook>, EngineError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| EngineError::HttpClient(e.to_string()))?;
    let (queue, mut events) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            send_with_retries(&client, &config, &event).await;
        }
    });
    Ok(Arc::new(OperationalWebhook { queue }))
}

async fn send_with_retries(client: &reqwest::Client, config: &OperationalConfig, event: &OperationalEvent) {
    let body = config.format.body(event).to_string();
    // One id for every try, so the receiver can de-duplicate.
    let msg_id = MessageId::new();
    for (attempt, wait) in std::iter::once(Duration::ZERO).chain(RETRY_WAITS).enumerate() {
        tokio::time::sleep(wait).await;
        let mut headers = HeaderMap::new();
        insert_signed_headers(
            &mut headers,
            msg_id.as_str(),
            now_ms() / 1000,
            body.as_bytes(),
            [&config.secret],
            StandardHeaders::Both,
        );
        match client.post(&config.url).headers(headers).body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => tracing::warn!(
                event = event.kind(),
                status = response.status().as_u16(),
                attempt = attempt + 1,
                "operational webhook refused an event"
            ),
            Err(err) => tracing::warn!(event = event.kind(), error = %err, attempt = attempt + 1,
                "operational webhook unreachable"),
        }
    }
    tracing::error!(event = event.kind(), "giving up on an operational webhook event");
}
