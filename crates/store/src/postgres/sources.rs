//! SQL of inbound sources and the log of requests that reached them (deduplication by a unique index).

use deadpool_postgres::Client;
#[allow(unused_imports)]
use hookrelay_core::model::*;
#[allow(unused_imports)]
use hookrelay_core::time::UnixMillis;
#[allow(unused_imports)]
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};

#[allow(unused_imports)]
use super::pg_error;
#[allow(unused_imports)]
use crate::store::*;
#[allow(unused_imports)]
use crate::{Page, PageRequest, StoreError};

pub async fn create_source(db: &mut Client, source: &Source) -> StoreResult<()> {
    todo!("PostgreSQL create_source")
}

pub async fn get_source(db: &mut Client, id_or_uid: &str) -> StoreResult<Source> {
    todo!("PostgreSQL get_source")
}

pub async fn list_sources(db: &mut Client, page: &PageRequest) -> StoreResult<Page<Source>> {
    todo!("PostgreSQL list_sources")
}

pub async fn update_source(db: &mut Client, source: &Source) -> StoreResult<()> {
    todo!("PostgreSQL update_source")
}

pub async fn delete_source(db: &mut Client, id: &SourceId) -> StoreResult<()> {
    todo!("PostgreSQL delete_source")
}

pub async fn ingest(db: &mut Client, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
    todo!("PostgreSQL ingest")
}

pub async fn record_rejection(db: &mut Client, event: &InboundEvent) -> StoreResult<()> {
    todo!("PostgreSQL record_rejection")
}

pub async fn list_inbound_events(
    db: &mut Client,
    source_id: &SourceId,
    status: Option<InboundStatus>,
    page: &PageRequest,
) -> StoreResult<Page<InboundEvent>> {
    todo!("PostgreSQL list_inbound_events")
}

pub async fn inbound_counts(
    db: &mut Client,
    source_id: &SourceId,
    since: Option<UnixMillis>,
) -> StoreResult<InboundCounts> {
    todo!("PostgreSQL inbound_counts")
}

pub async fn purge_inbound_events(db: &mut Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    todo!("PostgreSQL purge_inbound_events")
}
