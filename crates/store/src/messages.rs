//! The messages role: publishing a message with its deliveries, reading messages, deliveries and attempts
//! back, and the responses remembered for idempotency keys.

use async_trait::async_trait;
use hookrelay_core::model::{Attempt, Delivery, DeliveryStatus, Endpoint, Message};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, EndpointId, MessageId};

use crate::{Page, PageRequest, StoreResult};

/// The `Conflict` text of `publish_message` (and `ingest`) when the message's eventId was used before in its
/// application; the API recognises it to name the eventId in its answer. Other publish conflicts (another
/// process answering the same idempotency key) carry their own text.
pub const EVENT_ID_TAKEN: &str = "a message with this eventId already exists in this application";

/// A response remembered for an `idempotency-key`, replayed byte for byte when the key comes again.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotentResponse {
    /// Scope + key, already combined by the API (token, path and the client's key).
    pub key: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub expires_at: UnixMillis,
}

/// Filters of the message list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageFilter {
    /// Only these event types (any of them).
    pub event_types: Option<Vec<String>>,
    /// Only messages published on this channel.
    pub channel: Option<String>,
    /// Only messages with this tag.
    pub tag: Option<String>,
    /// Only messages created strictly before this time.
    pub before: Option<UnixMillis>,
    /// Only messages created strictly after this time.
    pub after: Option<UnixMillis>,
}

impl MessageFilter {
    /// Whether any filter is set: a list then has to read each message to know whether it belongs.
    pub(crate) fn narrows(&self) -> bool {
        self.event_types.as_ref().is_some_and(|types| !types.is_empty())
            || self.channel.is_some()
            || self.tag.is_some()
            || self.before.is_some()
            || self.after.is_some()
    }
}

/// Filters of the attempt lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptFilter {
    pub status: Option<DeliveryStatus>,
    /// Only attempts whose status code is in this class (e.g. 200 for 2xx; 0 for no response).
    pub status_code_class: Option<u16>,
    pub endpoint_id: Option<EndpointId>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Only attempts of messages with this tag.
    pub tag: Option<String>,
    pub before: Option<UnixMillis>,
    pub after: Option<UnixMillis>,
}

/// Counts of an endpoint's deliveries by status (`GET .../endpoint/{id}/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
}

/// A published message and how many endpoints it was routed to.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedMessage {
    pub message: Message,
    pub deliveries: usize,
    /// How many of them wait for a claim: all but those the store handed to this process's dispatcher as it
    /// stored them (see [`crate::Queue::hand_new_work_to`]). Only these need the dispatcher woken.
    pub to_claim: usize,
}

/// Messages, their deliveries and attempts, and idempotent responses. `publish_message` is durable before it
/// returns.
#[async_trait]
pub trait Messages: Send + Sync + 'static {
    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts>;
    /// The oldest open (pending or sending) delivery of the endpoint, by message id: on a FIFO endpoint, the
    /// one every later delivery waits for.
    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>>;
    /// Stores the message and one pending delivery, due now, for each enabled endpoint of its application
    /// that accepts it, and the idempotent response if given: all in one durable transaction.
    /// Fails with `Conflict` when the event id was used before in this application, and with `NotFound` when
    /// the application no longer exists.
    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage>;
    /// Stores the message with one delivery, to `endpoint_id` alone whatever its filters (a test send), and the
    /// idempotent response if given: all in one durable transaction. Fails with `NotFound` when the endpoint is
    /// not an enabled endpoint of the message's application.
    async fn publish_to_endpoint(
        &self,
        message: &Message,
        endpoint_id: &EndpointId,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage>;
    /// Finds a message of the application by id or event id.
    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message>;
    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>>;
    /// The message's deliveries with their endpoints, paged by endpoint id.
    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>>;
    /// The messages delivered (or being delivered) to the endpoint with their delivery, paged by message id;
    /// `status` keeps only deliveries in that state. Without it, each status is read on its own, as an ordered
    /// range of the endpoint's deliveries by status and message id, and the ranges are merged: a page costs
    /// about `4 × limit` index entries however many deliveries the endpoint has. A filtered list (event types,
    /// channel, tag, time range) reads those ranges, looking at each delivery's message, until it fills a page:
    /// its cost grows with the deliveries it skips.
    async fn list_endpoint_messages(
        &self,
        endpoint_id: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<(Message, Delivery)>>;
    /// Schedules one manual attempt of the message to the endpoint, due now.
    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()>;
    /// Erases the message's payload for good (it reads back as expired; deliveries still owed fail unsent).
    async fn expunge_message_content(&self, msg_id: &MessageId) -> StoreResult<()>;
    /// Replaces the response body recorded with one of the message's attempts by `EXPUNGED`, as Svix does.
    async fn expunge_attempt_content(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<()>;
    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt>;
    /// Every attempt of the application's endpoints (`filter.endpoint_id` narrows it to one), paged by id.
    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    /// The remembered response for this key, if one exists and has not expired.
    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>>;
    /// Remembers a response; an existing unexpired one for the same key is kept.
    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()>;
}
