//! The domain model: applications, event types, endpoints, messages, deliveries, attempts, background tasks, and
//! inbound sources with the requests they received, as the store
//! keeps them and the engine and API use them. Wire shapes (camelCase JSON) live in the `api` crate.

use std::collections::BTreeMap;

use crate::id::{AppId, AttemptId, EndpointId, InboundEventId, MessageId, SourceId, TaskId};
use crate::retry::EndpointRetry;
use crate::signature_headers::{SignatureHeader, StandardHeaders};
use crate::signing::EndpointSecret;
use crate::time::UnixMillis;

/// Free-form string labels users attach to applications and endpoints.
pub type Metadata = BTreeMap<String, String>;

/// One customer of the SaaS that uses hookrelay; owns endpoints and messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    /// Deliveries per second across the application's endpoints (Svix `throttleRate`/`rateLimit`).
    pub rate_limit: Option<u32>,
    pub metadata: Metadata,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A kind of event publishers send, such as `invoice.paid`. Deleting one archives it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    /// JSON schemas by version, kept as the user sent them.
    pub schemas: Option<serde_json::Value>,
    pub feature_flag: Option<String>,
    /// The group a dashboard lists it under (Svix's `groupName`).
    pub group_name: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// The `examples` of the newest version of an event type's `schemas` (the highest numeric key), as Svix's
/// `send-example` reads them; empty when there are none.
pub fn newest_schema_examples(schemas: &serde_json::Value) -> &[serde_json::Value] {
    let newest = schemas.as_object().and_then(|versions| {
        versions
            .iter()
            .filter_map(|(version, schema)| Some((version.parse::<u64>().ok()?, schema)))
            .max_by_key(|(v, _)| *v)
    });
    newest
        .and_then(|(_, schema)| schema.get("examples"))
        .and_then(serde_json::Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A previous signing secret, still used to sign until `expires_at` so receivers can roll over.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiringSecret {
    pub secret: EndpointSecret,
    pub expires_at: UnixMillis,
}

/// An endpoint's secrets: the current one and, after rotations, previous ones that have not expired.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretSet {
    pub current: EndpointSecret,
    pub previous: Vec<ExpiringSecret>,
}

impl SecretSet {
    /// Most previous secrets kept at once (Svix keeps at most 10 unexpired old keys).
    pub const MAX_PREVIOUS: usize = 10;

    pub fn new(current: EndpointSecret) -> Self {
        Self { current, previous: Vec::new() }
    }

    /// Every secret a delivery made at `now` is signed with: unexpired previous secrets, then the current.
    pub fn signing_secrets(&self, now: UnixMillis) -> impl Iterator<Item = &EndpointSecret> {
        self.previous
            .iter()
            .filter(move |old| old.expires_at > now)
            .map(|old| &old.secret)
            .chain(std::iter::once(&self.current))
    }

    /// Replaces the current secret, keeping the old one valid for `grace_ms`.
    pub fn rotate(&mut self, new_secret: EndpointSecret, now: UnixMillis, grace_ms: i64) {
        let old = std::mem::replace(&mut self.current, new_secret);
        self.previous.retain(|s| s.expires_at > now);
        self.previous.push(ExpiringSecret { secret: old, expires_at: now + grace_ms });
        if self.previous.len() > Self::MAX_PREVIOUS {
            let excess = self.previous.len() - Self::MAX_PREVIOUS;
            self.previous.drain(..excess);
        }
    }
}

/// A way deliveries to an endpoint are signed. Standard Webhooks headers are always sent; other schemes are
/// added for receivers written to other conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignatureScheme {
    /// `webhook-id`/`webhook-timestamp`/`webhook-signature` (and `svix-*`).
    Standard,
    /// `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed with the `whsec_…` string.
    HmacHex,
}

impl SignatureScheme {
    pub const ALL: [SignatureScheme; 2] = [SignatureScheme::Standard, SignatureScheme::HmacHex];

    /// The name used on the wire and in storage.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::HmacHex => "hmac-hex",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.name() == name)
    }
}

/// Whether an endpoint's deliveries may overtake each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryOrder {
    /// Concurrent, retries overtake (the default, and what Svix does).
    #[default]
    Unordered,
    /// One at a time in publish order: a failing delivery holds back the ones behind it until it succeeds or
    /// its retries are exhausted.
    Fifo,
}

impl DeliveryOrder {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unordered => "unordered",
            Self::Fifo => "fifo",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "unordered" => Some(Self::Unordered),
            "fifo" => Some(Self::Fifo),
            _ => None,
        }
    }
}

/// A customer URL that receives an application's messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    /// Event types this endpoint receives; `None` means all.
    pub filter_types: Option<Vec<String>>,
    /// Channels this endpoint listens on; `None` means messages on any channel.
    pub channels: Option<Vec<String>>,
    /// Deliveries per second (Svix `throttleRate`/`rateLimit`).
    pub rate_limit: Option<u32>,
    pub disabled: bool,
    pub metadata: Metadata,
    pub version: i32,
    /// Extra headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    pub secrets: SecretSet,
    /// How deliveries are signed; always includes `Standard`.
    pub signature_schemes: Vec<SignatureScheme>,
    pub ordering: DeliveryOrder,
    /// Signature headers of the endpoint's own, beside (or instead of) the standard ones.
    pub signature_headers: Vec<SignatureHeader>,
    /// Which Standard Webhooks header families its deliveries carry.
    pub standard_headers: StandardHeaders,
    /// This endpoint's retry rules where they differ from the server's.
    pub retry: EndpointRetry,
    /// Its transformation: JavaScript run on every delivery before it is signed.
    pub transformation: Option<Transformation>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Endpoint {
    /// Whether this endpoint receives a message of `event_type` on `channels`.
    pub fn accepts(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        !self.disabled
            && crate::routing::endpoint_accepts(
                self.filter_types.as_deref(),
                self.channels.as_deref(),
                event_type,
                channels,
            )
    }
}

/// An endpoint's transformation: the code of `function handler(webhook)`, and whether it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transformation {
    pub code: String,
    pub enabled: bool,
}

/// One published event, stored once and delivered to every matching endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub app_id: AppId,
    /// The publisher's own id for the event, unique per application.
    pub event_id: Option<String>,
    pub event_type: String,
    /// The payload exactly as the publisher sent it, delivered byte for byte: the JSON object, or a raw payload
    /// (Svix's `transformationsParams.rawPayload`) of any text. Empty once its content was expunged or its
    /// retention ran out ([`Message::is_expunged`]).
    pub payload: String,
    /// The content type a raw payload is delivered with; `None` for a JSON payload (`application/json`).
    pub content_type: Option<String>,
    pub channels: Option<Vec<String>>,
    /// Free-form tags the message list can be filtered by.
    pub tags: Option<Vec<String>>,
    /// No attempt before this time (Svix's `deliverAt`); `None` delivers at once.
    pub deliver_at: Option<UnixMillis>,
    /// When the payload is purged, where the publisher set its own retention; `None` follows the server's.
    pub payload_expires_at: Option<UnixMillis>,
    /// Request headers of the inbound webhook this message came from that its source forwards (such as
    /// `Stripe-Signature`), sent with every delivery; empty for published messages.
    pub forwarded_headers: BTreeMap<String, String>,
    pub created_at: UnixMillis,
}

impl Message {
    /// A message of `event_type` with `payload`, created at `created_at` (its id says when), and nothing else set:
    /// no event id, channels, tags, schedule, retention, raw content type or forwarded headers.
    pub fn new(app_id: AppId, event_type: String, payload: String, created_at: UnixMillis) -> Self {
        Self {
            id: MessageId::at(created_at),
            app_id,
            event_id: None,
            event_type,
            payload,
            content_type: None,
            channels: None,
            tags: None,
            deliver_at: None,
            payload_expires_at: None,
            forwarded_headers: BTreeMap::new(),
            created_at,
        }
    }

    /// Whether the payload is gone (expunged, or purged after its retention): it reads back as Svix's
    /// `{"expired": true}` and cannot be sent again.
    pub fn is_expunged(&self) -> bool {
        self.payload.is_empty()
    }

    /// When its deliveries are first due: at once, or at `deliver_at` if that is later.
    pub fn first_due(&self) -> UnixMillis {
        self.deliver_at.map_or(self.created_at, |at| at.max(self.created_at))
    }
}

/// Where a delivery (or an attempt) stands, with Svix's numeric codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
}

impl DeliveryStatus {
    /// Every status, in code order.
    pub const ALL: [DeliveryStatus; 4] = [Self::Success, Self::Pending, Self::Fail, Self::Sending];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::Pending,
            2 => Self::Fail,
            3 => Self::Sending,
            _ => return None,
        })
    }

    /// Svix's `statusText`.
    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Fail => "fail",
            Self::Sending => "sending",
        }
    }
}

/// What caused an attempt: the retry schedule or a user's resend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

impl TriggerType {
    pub fn from_code(code: i64) -> Self {
        if code == 1 { Self::Manual } else { Self::Scheduled }
    }
}

/// The state of one message's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, while one is planned.
    pub next_attempt_at: Option<UnixMillis>,
}

/// One try at delivering a message to an endpoint, as recorded in the attempt log.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub app_id: AppId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub url: String,
    /// The response body, truncated; for a network error, what went wrong.
    pub response: String,
    /// HTTP status; 0 when no response came (timeout, refused, blocked).
    pub response_status_code: u16,
    pub response_duration_ms: i64,
    /// `Success` or `Fail`.
    pub status: DeliveryStatus,
    pub trigger_type: TriggerType,
    pub created_at: UnixMillis,
}

/// A half-open span of message creation times, `[since, until)`, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    pub since: UnixMillis,
    pub until: UnixMillis,
}

impl TimeWindow {
    pub fn contains(&self, at: UnixMillis) -> bool {
        self.since <= at && at < self.until
    }
}

/// What a background task does, with Svix's `BackgroundTaskType` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Re-queue an endpoint's failed deliveries (`endpoint.recover`).
    Recover,
    /// Create deliveries for messages an endpoint never got (`endpoint.replay`).
    ReplayMissing,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Recover => "endpoint.recover",
            Self::ReplayMissing => "endpoint.replay",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "endpoint.recover" => Some(Self::Recover),
            "endpoint.replay" => Some(Self::ReplayMissing),
            _ => None,
        }
    }
}

/// Where a background task stands, with Svix's `BackgroundTaskStatus` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Running,
    Finished,
    Failed,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "running" => Some(Self::Running),
            "finished" => Some(Self::Finished),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// How far a background task has got. `total` is counted when the task starts, so it is an estimate: the
/// queue keeps moving while the task runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskProgress {
    /// Deliveries queued so far (Svix's `messagesSent`).
    pub sent: u64,
    /// Candidate rows looked at so far: failed deliveries (recover) or messages in the window (replay).
    pub scanned: u64,
    /// Candidate rows in the window when the task started.
    pub total: u64,
    /// Why the task failed, for `Failed` tasks.
    pub error: Option<String>,
}

/// A recover or replay-missing job on one endpoint, run in batches by the server. The cursor (the last
/// message id handled) is saved after every batch, so a task interrupted by a restart resumes where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundTask {
    pub id: TaskId,
    pub kind: TaskKind,
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    pub status: TaskStatus,
    pub window: TimeWindow,
    /// The last message id handled; the next batch starts after it.
    pub cursor: Option<MessageId>,
    pub progress: TaskProgress,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_secret_for_the_grace_period() {
        let first = EndpointSecret::generate();
        let second = EndpointSecret::generate();
        let mut set = SecretSet::new(first.clone());
        set.rotate(second.clone(), 1_000, 500);
        assert_eq!(set.signing_secrets(1_499).collect::<Vec<_>>(), vec![&first, &second]);
        assert_eq!(set.signing_secrets(1_500).collect::<Vec<_>>(), vec![&second]);
    }

    #[test]
    fn rotation_keeps_at_most_ten_previous_secrets() {
        let mut set = SecretSet::new(EndpointSecret::generate());
        for _ in 0..15 {
            set.rotate(EndpointSecret::generate(), 0, 1_000);
        }
        assert_eq!(set.previous.len(), SecretSet::MAX_PREVIOUS);
    }
}

/// A provider's secret as the provider shows it (Stripe's `whsec_…`, GitHub's string, …) and, after a rotation,
/// the previous ones, still accepted until they expire so nothing is rejected while the provider switches over.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecrets {
    pub current: String,
    /// Previous secrets with the time they stop being accepted.
    pub previous: Vec<(String, UnixMillis)>,
}

impl SourceSecrets {
    pub fn new(current: String) -> Self {
        Self { current, previous: Vec::new() }
    }

    /// The secrets a request received at `now` may be signed with: the current one first.
    pub fn valid_at(&self, now: UnixMillis) -> Vec<&str> {
        let previous =
            self.previous.iter().filter(|(_, expires_at)| *expires_at > now).map(|(secret, _)| secret.as_str());
        std::iter::once(self.current.as_str()).chain(previous).collect()
    }

    /// Replaces the current secret, keeping the old one accepted for `grace_ms`. Setting the same secret again
    /// changes nothing.
    pub fn rotate(&mut self, new_secret: String, now: UnixMillis, grace_ms: i64) {
        if new_secret == self.current {
            return;
        }
        let old = std::mem::replace(&mut self.current, new_secret);
        self.previous.retain(|(secret, expires_at)| *expires_at > now && *secret != self.current);
        self.previous.push((old, now + grace_ms));
        if self.previous.len() > SecretSet::MAX_PREVIOUS {
            let excess = self.previous.len() - SecretSet::MAX_PREVIOUS;
            self.previous.drain(..excess);
        }
    }
}

impl std::fmt::Debug for SourceSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceSecrets(<{} redacted>)", 1 + self.previous.len())
    }
}

/// An inbound source: a public ingest URL (`/ingest/{id or uid}`) that verifies one provider's signatures and
/// publishes each new event as a message of `app_id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub uid: Option<String>,
    pub name: String,
    pub app_id: AppId,
    pub provider: crate::inbound::Provider,
    pub secrets: SourceSecrets,
    /// How far a signed timestamp may be from the clock, for providers that sign one.
    pub tolerance_secs: i64,
    /// Requests per second `/ingest/…` accepts for this source, checked before the signature; `None` is no limit.
    pub rate_limit: Option<u32>,
    /// Request headers stored with each event and sent with every delivery of its message (at most 10).
    pub forward_headers: Vec<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// What became of a request that reached a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundStatus {
    /// Signature valid and the event new: published as a message.
    Verified,
    /// Signature valid, but the provider's event id was seen before: nothing published.
    Duplicate,
    /// Refused (bad or missing signature, stale timestamp, body too large or not JSON, over the source's rate
    /// limit): nothing published, and only counted ([`InboundRejections`]), never stored as an event.
    Rejected,
}

impl InboundStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "verified" => Some(Self::Verified),
            "duplicate" => Some(Self::Duplicate),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// Rejected requests to one source for one reason within one minute. They are counted, not stored one by one,
/// so that a flood of forged requests costs at most one row per source, reason and minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRejections {
    pub source_id: SourceId,
    /// Why they were refused (`signature_mismatch`, `rate_limit_exceeded`, …).
    pub reason: String,
    /// The start of their minute ([`minute_of`]).
    pub minute: UnixMillis,
    pub count: u64,
    pub first_seen: UnixMillis,
    pub last_seen: UnixMillis,
    /// One of the requests without its body, as JSON built by the API (bounded in size); `None` if none was kept.
    pub sample: Option<String>,
}

/// The start of the minute `at` falls in: rejections are counted per minute.
pub fn minute_of(at: UnixMillis) -> UnixMillis {
    at - at.rem_euclid(60_000)
}

/// One verified request that reached a source (new or a duplicate). The body is not kept here: it is its
/// message's payload. Rejected requests are counted in [`InboundRejections`] instead, and their bodies are never
/// stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    pub id: InboundEventId,
    pub source_id: SourceId,
    pub status: InboundStatus,
    /// Why it was rejected (`signature_mismatch`, …); `None` unless rejected.
    pub reason: Option<String>,
    /// The provider's event id, if the request carried one.
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The message it was published as (verified), or the message of the original event (duplicate).
    pub msg_id: Option<MessageId>,
    pub received_at: UnixMillis,
}
