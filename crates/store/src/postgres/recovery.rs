//! SQL of recover and replay-missing: counting and batch-walking a window in message-id order.

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

pub async fn count_failed_deliveries(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
) -> StoreResult<u64> {
    todo!("PostgreSQL count_failed_deliveries")
}

pub async fn count_messages(db: &mut Client, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
    todo!("PostgreSQL count_messages")
}

pub async fn requeue_failed(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    todo!("PostgreSQL requeue_failed")
}

pub async fn insert_missing_deliveries(
    db: &mut Client,
    endpoint_id: &EndpointId,
    window: TimeWindow,
    limit: usize,
    after: Option<&MessageId>,
) -> StoreResult<BatchDone> {
    todo!("PostgreSQL insert_missing_deliveries")
}
