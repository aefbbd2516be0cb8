//! The inbound role: sources that providers call, the events they sent (verified or duplicate), and counts of
//! the requests refused.

use async_trait::async_trait;
use hookrelay_core::model::{InboundEvent, InboundRejections, InboundStatus, Message, Source};
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{MessageId, SourceId};

use crate::{Page, PageRequest, PublishedMessage, StoreResult};

/// What [`Store::ingest`] did with a verified event.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestOutcome {
    /// The event was new: recorded as verified, and its message (if one was given) published.
    Recorded(Option<Box<PublishedMessage>>),
    /// A verified event of the source already had this provider event id: recorded as a duplicate pointing at
    /// the original's message, nothing published.
    Duplicate { original_msg_id: Option<MessageId> },
}

/// How many requests reached a source, split by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundCounts {
    pub verified: u64,
    pub duplicates: u64,
    /// Rejected requests by reason (`signature_mismatch`, …).
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

impl InboundCounts {
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }

    /// Every request that reached the source.
    pub fn received(&self) -> u64 {
        self.verified + self.duplicates + self.rejected()
    }
}

/// Inbound sources and what reached them.
#[async_trait]
pub trait Inbound: Send + Sync + 'static {
    /// Fails with `Conflict` when the uid is taken, and `NotFound` when the application does not exist.
    async fn create_source(&self, source: &Source) -> StoreResult<()>;
    /// Finds a source by id or uid.
    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source>;
    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>>;
    /// Replaces the stored source with the same id. Fails with `Conflict` when the uid is taken.
    async fn update_source(&self, source: &Source) -> StoreResult<()>;
    /// Deletes the source and its inbound events (the messages they published stay with their application).
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()>;
    /// Records a verified request, in one durable transaction. When the event has a provider `event_id` that a
    /// verified event of the same source already has, it is recorded as a duplicate (with the original's message
    /// id) and nothing is published; otherwise it is recorded as verified and `message` (if any) is published as
    /// by `publish_message`. The event's `status` and `msg_id` are set by this method.
    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome>;
    /// Adds counts of rejected requests to the stored ones, one row per source, reason and minute: counts are
    /// summed, the first and last seen times widened, and the sample replaced by the newest one given. Counts
    /// for a source that no longer exists are dropped. Written without waiting for a flush to disk where the
    /// backend allows it: nothing was acknowledged for a rejected request, so losing the last few only loses
    /// statistics.
    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()>;
    /// The source's rejection counts by minute and reason, newest minute first by default. Cursors are the
    /// rows' `<minute>.<reason>`; another cursor fails with `Invalid`.
    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>>;
    /// The source's inbound events, newest first by default, optionally only those with `status`.
    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>>;
    /// Counts of the source's inbound events received at or after `since` (all of them when `None`). Rejections
    /// are counted by minute, so with a `since` a rejection row counts whole when its last request is at or after
    /// `since`.
    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts>;
}
