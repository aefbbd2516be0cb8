//! SQL of the dispatcher's queue: claiming due deliveries (FOR UPDATE SKIP LOCKED, leased to this instance), recording outcomes, releasing, and the maintenance sweeps.

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

pub async fn claim_due(
    db: &mut Client,
    now: UnixMillis,
    limit: usize,
    lease_until: UnixMillis,
    skip_endpoints: &[EndpointId],
    instance_id: &str,
) -> StoreResult<Vec<ClaimedDelivery>> {
    todo!("PostgreSQL claim_due")
}

pub async fn record_outcomes(db: &mut Client, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
    todo!("PostgreSQL record_outcomes")
}

pub async fn release(db: &mut Client, deliveries: &[Release]) -> StoreResult<()> {
    todo!("PostgreSQL release")
}

pub async fn next_due_at(db: &mut Client) -> StoreResult<Option<UnixMillis>> {
    todo!("PostgreSQL next_due_at")
}

pub async fn disable_failing_endpoints(
    db: &mut Client,
    failing_since_before: UnixMillis,
) -> StoreResult<Vec<DisabledEndpoint>> {
    todo!("PostgreSQL disable_failing_endpoints")
}

pub async fn purge_payloads(db: &mut Client, before: UnixMillis, limit: usize) -> StoreResult<u64> {
    todo!("PostgreSQL purge_payloads")
}
