//! The queue role on PostgreSQL: claiming due deliveries (`FOR UPDATE SKIP LOCKED`, leased to this instance),
//! recording outcomes, releasing, pausing endpoints for every process, heartbeats and the watch for new work.
//!
//! FIFO endpoints across processes. The claim query lets a delivery to a FIFO endpoint through only when no
//! delivery of the endpoint with a smaller message id is open and none is in flight under a live lease. That
//! reads the claiming statement's snapshot, which cannot see claims other processes have made but not yet
//! committed; and message ids from different processes need not commit in id order. So a claim that took FIFO
//! deliveries also takes a transaction-scoped advisory lock per FIFO endpoint and checks them again with a fresh
//! snapshot before committing, handing back any that lost. The first claimer to get the lock decides with every
//! committed claim in view; the next one sees its decision. At most one delivery per FIFO endpoint is ever in
//! flight, and each is the oldest open one when it is claimed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::{AppId, EndpointId, MessageId};

use super::PostgresStore;
use super::operations::count_activity;
use super::rows::*;
use super::{INSTANCE_TTL_MS, listen_for_work, pg_error};
use crate::activity::ActivityTally;
use crate::{AttemptOutcome, ClaimedDelivery, Liveness, Queue, Release, StoreError, StoreResult};
use hookrelay_core::retry::NextStep;

/// The first key of the advisory locks that serialise FIFO claims (the second is the endpoint id's hash). The
/// two-key form has its own key space, apart from the migration's single-key lock.
const FIFO_CLAIM_LOCK: i32 = 0x6669_666f; // "fifo"

/// How many due-index entries a claim reads per delivery it wants before it reads per endpoint instead.
const WINDOW_PER_WANTED: i64 = 4;

/// When a FIFO endpoint's delivery `d` must wait: an older delivery of the endpoint is still open (pending or
/// sending), or another one is being sent under a live lease (`$1` is now).
const FIFO_BLOCKED: &str = "EXISTS (SELECT 1 FROM deliveries other WHERE other.endpoint_id = d.endpoint_id \
     AND other.msg_id <> d.msg_id AND other.status IN (1, 3) \
     AND (other.msg_id < d.msg_id OR (other.status = 3 AND other.next_attempt_at > $1)))";

/// Whether delivery `d` of endpoint `e` can be claimed now, `status` and `due` being how the query reads
/// `d.status` and `d.next_attempt_at` (`$1` is now, `$2` the endpoints to skip).
fn claimable_when(status: &str, due: &str) -> String {
    format!(
        "{status} IN (1, 3) AND {due} <= $1 AND d.endpoint_id <> ALL($2::text[]) \
         AND (e.paused_until IS NULL OR e.paused_until <= $1) AND (e.fifo = 0 OR NOT {FIFO_BLOCKED})"
    )
}

/// The endpoint columns a claimed delivery carries, as `e` (see [`EndpointForDelivery::from_row`]).
pub(super) const ENDPOINT_FOR_DELIVERY: &str = "e.url, e.headers, e.secret, e.previous_secrets, e.rate_limit, \
     e.signature_schemes, e.fifo, e.retry_schedule, e.retry_client_errors, e.signature_headers, e.standard_headers, \
     CASE WHEN e.transformation_enabled = 1 THEN e.transformation_code END";

/// Where `fifo` is among [`ENDPOINT_FOR_DELIVERY`]'s columns.
pub(super) const FIFO_COLUMN: usize = 6;

/// An endpoint as its claimed deliveries carry it: read once per endpoint per claim (or publish group) and shared
/// by its deliveries there.
#[derive(Clone)]
pub(super) struct EndpointForDelivery {
    url: String,
    headers: Arc<BTreeMap<String, String>>,
    secrets: SecretSet,
    rate_limit: Option<u32>,
    signature_schemes: Vec<SignatureScheme>,
    pub(super) fifo: bool,
    options: DeliveryOptions,
}

/// What a claimed delivery carries of its message.
pub(super) struct MessageForDelivery {
    pub(super) app_id: AppId,
    pub(super) msg_id: MessageId,
    pub(super) event_type: String,
    pub(super) event_id: Option<String>,
    pub(super) payload: Arc<str>,
    pub(super) forwarded_headers: BTreeMap<String, String>,
    pub(super) created_at: UnixMillis,
    pub(super) content_type: Option<String>,
}

/// Where a claimed delivery stands in its queue.
pub(super) struct Lease {
    pub(super) attempts: u32,
    pub(super) manual: bool,
    pub(super) due_at: UnixMillis,
    pub(super) taken_over: bool,
}

impl EndpointForDelivery {
    /// Reads the columns of [`ENDPOINT_FOR_DELIVERY`], the first at `first`.
    pub(super) fn from_row(row: &tokio_postgres::Row, first: usize, cipher: &SecretCipher) -> ColumnResult<Self> {
        Ok(Self {
            url: row.text(first)?,
            headers: Arc::new(from_json(&row.text(first + 1)?)?),
            secrets: secrets_from_columns(&row.text(first + 2)?, &row.text(first + 3)?, cipher)?,
            rate_limit: row.opt_narrow(first + 4)?,
            signature_schemes: signature_schemes_from_json(&row.text(first + 5)?)?,
            fifo: row.flag(first + FIFO_COLUMN)?,
            options: delivery_options_from(row, first + 7, first + 9, first + 11)?,
        })
    }

    pub(super) fn delivery(
        &self,
        endpoint_id: EndpointId,
        message: MessageForDelivery,
        lease: Lease,
    ) -> ClaimedDelivery {
        let DeliveryOptions { retry, signature_headers, standard_headers, transformation } = self.options.clone();
        ClaimedDelivery {
            app_id: message.app_id,
            msg_id: message.msg_id,
            endpoint_id,
            event_type: message.event_type,
            event_id: message.event_id,
            payload: message.payload,
            content_type: message.content_type,
            url: self.url.clone(),
            headers: self.headers.clone(),
            forwarded_headers: message.forwarded_headers,
            secrets: self.secrets.clone(),
            rate_limit: self.rate_limit,
            signature_schemes: self.signature_schemes.clone(),
            signature_headers,
            standard_headers,
            transformation,
            msg_created_at: message.created_at,
            retry,
            attempts: lease.attempts,
            manual: lease.manual,
            due_at: lease.due_at,
            taken_over: lease.taken_over,
        }
    }
}

pub async fn claim_due(
    db: &mut Client,
    now: UnixMillis,
    limit: usize,
    lease_until: UnixMillis,
    skip_endpoints: &[EndpointId],
    instance_id: &str,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let skip: Vec<&str> = skip_endpoints.iter().map(EndpointId::as_str).collect();
    let limit = sql_limit(limit);
    // Due: pending and due, or sending with an expired lease. A delivery whose endpoint was disabled after the
    // message was routed is taken too, and fails instead of being leased (it will not be attempted), as in
    // SQLite. `due_at` is read before the update, so a delivery handed back keeps its place in line.
    //
    // `registered` makes sure this instance has a row in `instances` before it holds any lease, so that if it dies
    // before its first `keep_alive` the others still find its leases and take them back; an existing row is left
    // to `keep_alive` to renew.
    //
    // Blocked endpoints (skipped, paused, FIFO-blocked) keep their backlog at the head of the due index. So the
    // candidates are the first `$6` entries of the due index (`due_window`) and, only when those are all due
    // and yield fewer than `$3` claimable deliveries, the oldest due deliveries of each endpoint with open
    // deliveries that is not blocked (`per_endpoint`, found one index seek per endpoint). A claim's cost is then
    // bounded by the window and the number of endpoints, never by a blocked endpoint's backlog.
    //
    // The plan must not depend on the table's statistics: a fresh table that fills fast, or a server with
    // autovacuum off, has none, and the planner then sorted every due row for the window and, for each candidate,
    // walked its endpoint's backlog through `deliveries_due_by_endpoint` (seconds per claim with 100,000 queued).
    // So the window reads the due index in order without a bound on the due time, carrying the columns the check
    // needs instead of joining them back; and `picked`, which locks the candidates and checks them again, reads
    // `d.status + 0` and `d.next_attempt_at + 0`, which match no partial index's predicate, leaving the primary
    // key as the one way to each row.
    let claimable = claimable_when("d.status", "d.next_attempt_at");
    let still_claimable = claimable_when("d.status + 0", "d.next_attempt_at + 0");
    let claim = format!(
        "WITH RECURSIVE registered AS ( \
             INSERT INTO instances (id, started_at, alive_until) VALUES ($5, $1::bigint, $1::bigint + {INSTANCE_TTL_MS}) \
             ON CONFLICT (id) DO NOTHING \
         ), due_window AS MATERIALIZED ( \
             SELECT msg_id, endpoint_id, status, next_attempt_at FROM deliveries WHERE status IN (1, 3) \
             ORDER BY next_attempt_at LIMIT $6 \
         ), window_claimable AS MATERIALIZED ( \
             SELECT d.msg_id, d.endpoint_id FROM due_window d JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE {claimable} \
         ), open_endpoints (endpoint_id, due_at) AS ( \
             (SELECT endpoint_id, next_attempt_at FROM deliveries WHERE status IN (1, 3) \
              AND (SELECT count(*) FROM due_window WHERE next_attempt_at <= $1) = $6 \
              AND (SELECT count(*) FROM window_claimable) < $3 \
              ORDER BY endpoint_id, next_attempt_at LIMIT 1) \
             UNION ALL \
             SELECT next.endpoint_id, next.next_attempt_at FROM open_endpoints o CROSS JOIN LATERAL ( \
                 SELECT endpoint_id, next_attempt_at FROM deliveries WHERE status IN (1, 3) \
                 AND endpoint_id > o.endpoint_id ORDER BY endpoint_id, next_attempt_at LIMIT 1) next \
         ), per_endpoint AS MATERIALIZED ( \
             SELECT x.msg_id, x.endpoint_id FROM open_endpoints o JOIN endpoints e ON e.id = o.endpoint_id \
             CROSS JOIN LATERAL ( \
                 (SELECT msg_id, endpoint_id FROM deliveries WHERE endpoint_id = o.endpoint_id AND e.fifo = 0 \
                  AND status IN (1, 3) AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
                 UNION ALL \
                 (SELECT msg_id, endpoint_id FROM deliveries WHERE endpoint_id = o.endpoint_id AND e.fifo = 1 \
                  AND status = 1 ORDER BY msg_id LIMIT 1) \
                 UNION ALL \
                 (SELECT msg_id, endpoint_id FROM deliveries WHERE endpoint_id = o.endpoint_id AND e.fifo = 1 \
                  AND status = 3 ORDER BY msg_id LIMIT 1) \
             ) x \
             WHERE o.due_at <= $1 AND e.id <> ALL($2::text[]) AND (e.paused_until IS NULL OR e.paused_until <= $1) \
         ), picked AS MATERIALIZED ( \
             SELECT d.msg_id, d.endpoint_id, d.next_attempt_at AS due_at, e.disabled, \
                 CASE WHEN d.status = 3 THEN 1::bigint ELSE 0::bigint END AS was_sending \
             FROM (SELECT * FROM window_claimable UNION SELECT * FROM per_endpoint) c \
             JOIN deliveries d USING (msg_id, endpoint_id) JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE {still_claimable} \
             ORDER BY d.next_attempt_at LIMIT $3 \
             FOR UPDATE OF d SKIP LOCKED \
         ), claimed AS ( \
             UPDATE deliveries d SET \
                 status = CASE WHEN p.disabled = 0 THEN 3 ELSE 2 END, \
                 next_attempt_at = CASE WHEN p.disabled = 0 THEN $4::bigint END, \
                 claimed_by = CASE WHEN p.disabled = 0 THEN $5::text END \
             FROM picked p WHERE d.msg_id = p.msg_id AND d.endpoint_id = p.endpoint_id \
             RETURNING d.msg_id, d.endpoint_id, d.attempts, d.manual, p.due_at, d.status, p.was_sending \
         ) \
         SELECT c.msg_id, c.endpoint_id, c.attempts, c.manual, c.due_at, c.was_sending, m.app_id, m.event_type, \
             m.payload, m.event_id, m.forwarded_headers, m.created_at, m.content_type, {ENDPOINT_FOR_DELIVERY} \
         FROM claimed c JOIN messages m ON m.id = c.msg_id JOIN endpoints e ON e.id = c.endpoint_id \
         WHERE c.status = 3"
    );
    let window = limit.saturating_mul(WINDOW_PER_WANTED);
    let tx = db.transaction().await.map_err(pg_error)?;
    let rows =
        query(&tx, &claim, &[&now, &skip, &limit, &lease_until, &instance_id, &window]).await.map_err(pg_error)?;

    let mut payloads: HashMap<String, Arc<str>> = HashMap::new();
    let mut endpoints: HashMap<String, EndpointForDelivery> = HashMap::new();
    let mut claimed = Vec::with_capacity(rows.len());
    let mut fifo = Vec::new();
    for row in &rows {
        let msg_id = row.text(0)?;
        let payload = shared(&mut payloads, &msg_id, || row.text(8).map(Arc::from))?;
        let endpoint_id = row.text(1)?;
        let endpoint = shared(&mut endpoints, &endpoint_id, || EndpointForDelivery::from_row(row, 13, cipher))?;
        if endpoint.fifo {
            fifo.push(claimed.len());
        }
        claimed.push(endpoint.delivery(
            EndpointId::from_trusted(endpoint_id),
            MessageForDelivery {
                app_id: AppId::from_trusted(row.text(6)?),
                msg_id: MessageId::from_trusted(msg_id),
                event_type: row.text(7)?,
                event_id: row.opt_text(9)?,
                payload,
                forwarded_headers: forwarded_headers_from(row, 10)?,
                created_at: row.int(11)?,
                content_type: row.opt_text(12)?,
            },
            Lease { attempts: row.narrow(2)?, manual: row.flag(3)?, due_at: row.int(4)?, taken_over: row.flag(5)? },
        ));
    }
    if !fifo.is_empty() {
        let lost = recheck_fifo(&tx, now, fifo.iter().map(|&index| &claimed[index])).await?;
        claimed.retain(|d| !lost.contains(&(d.msg_id.as_str().to_owned(), d.endpoint_id.as_str().to_owned())));
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(claimed)
}

/// Checks FIFO claims again under their endpoints' advisory locks, with a snapshot that includes every claim
/// committed before (see the module doc); hands back those that must wait, at their due time, and returns them.
async fn recheck_fifo<'a>(
    tx: &impl GenericClient,
    now: UnixMillis,
    deliveries: impl Iterator<Item = &'a ClaimedDelivery>,
) -> StoreResult<HashSet<(String, String)>> {
    let (mut msg_ids, mut endpoint_ids, mut due_ats) = (Vec::new(), Vec::new(), Vec::new());
    for delivery in deliveries {
        msg_ids.push(delivery.msg_id.as_str());
        endpoint_ids.push(delivery.endpoint_id.as_str());
        due_ats.push(delivery.due_at);
    }
    // Always in the same order (by key), so two claimers never wait for each other in a cycle.
    query(
        tx,
        "SELECT pg_advisory_xact_lock($1, key) FROM \
         (SELECT DISTINCT hashtext(endpoint_id) AS key FROM unnest($2::text[]) AS endpoint_id ORDER BY key) AS keys",
        &[&FIFO_CLAIM_LOCK, &endpoint_ids],
    )
    .await
    .map_err(pg_error)?;
    // A new statement takes a new snapshot: it sees whatever the previous holder of the lock committed.
    let lost = query(
        tx,
        &format!(
            "UPDATE deliveries d SET status = 1, next_attempt_at = r.due_at, claimed_by = NULL \
             FROM unnest($2::text[], $3::text[], $4::bigint[]) AS r(msg_id, endpoint_id, due_at) \
             WHERE d.msg_id = r.msg_id AND d.endpoint_id = r.endpoint_id AND {FIFO_BLOCKED} \
             RETURNING d.msg_id, d.endpoint_id"
        ),
        &[&now, &msg_ids, &endpoint_ids, &due_ats],
    )
    .await
    .map_err(pg_error)?;
    lost.iter().map(|row| Ok((row.text(0)?, row.text(1)?))).collect()
}

/// What a batch of outcomes does to one delivery: its attempts so far plus `tries`, then the last step.
struct DeliveryChange<'a> {
    msg_id: &'a str,
    endpoint_id: &'a str,
    tries: i64,
    status: i64,
    next_attempt_at: Option<UnixMillis>,
}

/// What a batch of outcomes does to one endpoint's failing streak (`failing_since`), replaying the outcomes in
/// order as SQLite records them one by one: a success ends the streak, a failure starts one if none is running.
#[derive(Clone, Copy)]
enum Streak {
    /// The last outcome succeeded: no streak.
    Ended,
    /// A success, then failures from this time: a new streak, whatever was stored.
    Restarted(UnixMillis),
    /// Only failures, the first at this time: the stored streak goes on, or one starts then.
    Continued(UnixMillis),
}

impl Streak {
    fn after(previous: Option<Streak>, success: bool, at: UnixMillis) -> Streak {
        match (previous, success) {
            (_, true) => Streak::Ended,
            (None, false) => Streak::Continued(at),
            (Some(Streak::Ended), false) => Streak::Restarted(at),
            (Some(running), false) => running,
        }
    }
}

/// Records the outcomes in one transaction, counting the attempts stored into `counted_as`'s activity counters.
pub async fn record_outcomes(db: &mut Client, outcomes: &[AttemptOutcome], counted_as: &str) -> StoreResult<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut attempts = AttemptColumns::default();
    let mut changes: Vec<DeliveryChange<'_>> = Vec::new();
    let mut change_of: HashMap<(&str, &str), usize> = HashMap::new();
    // Endpoints in id order, and deliveries sorted below: two processes recording at once then lock the rows
    // they share in the same order, and cannot deadlock on them.
    let mut streaks: BTreeMap<&str, Streak> = BTreeMap::new();
    let mut disabled: BTreeMap<&str, UnixMillis> = BTreeMap::new();
    for outcome in outcomes {
        let a = &outcome.attempt;
        attempts.push(a);
        let (status, next_attempt_at) = match outcome.next {
            NextStep::Succeeded => (DeliveryStatus::Success, None),
            NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            NextStep::GiveUp => (DeliveryStatus::Fail, None),
        };
        let key = (a.msg_id.as_str(), a.endpoint_id.as_str());
        match change_of.get(&key) {
            // The same delivery twice in a batch (its lease ran out and it was claimed again): both attempts
            // count, the last one decides.
            Some(&index) => {
                let change = &mut changes[index];
                change.tries += 1;
                change.status = i64::from(status.code());
                change.next_attempt_at = next_attempt_at;
            }
            None => {
                change_of.insert(key, changes.len());
                changes.push(DeliveryChange {
                    msg_id: key.0,
                    endpoint_id: key.1,
                    tries: 1,
                    status: i64::from(status.code()),
                    next_attempt_at,
                });
            }
        }
        let previous = streaks.get(key.1).copied();
        streaks.insert(key.1, Streak::after(previous, a.status == DeliveryStatus::Success, a.created_at));
        if outcome.disable_endpoint {
            disabled.insert(key.1, a.created_at);
        }
    }

    changes.sort_by_key(|change| (change.msg_id, change.endpoint_id));

    let (msg_ids, endpoint_ids): (Vec<&str>, Vec<&str>) = changes.iter().map(|c| (c.msg_id, c.endpoint_id)).unzip();
    let tries: Vec<i64> = changes.iter().map(|c| c.tries).collect();
    let statuses: Vec<i64> = changes.iter().map(|c| c.status).collect();
    let next_attempts: Vec<Option<i64>> = changes.iter().map(|c| c.next_attempt_at).collect();
    // The endpoints' failing streaks, for auto-disable. `replaces`: the batch's value replaces the stored one
    // (a success was among the outcomes); otherwise a stored streak goes on.
    let streak_ids: Vec<&str> = streaks.keys().copied().collect();
    let replaces: Vec<bool> = streaks.values().map(|s| !matches!(s, Streak::Continued(_))).collect();
    let first_failures: Vec<Option<i64>> = streaks
        .values()
        .map(|s| match s {
            Streak::Ended => None,
            Streak::Restarted(at) | Streak::Continued(at) => Some(*at),
        })
        .collect();
    let (disabled_ids, disabled_at): (Vec<&str>, Vec<i64>) = disabled.into_iter().unzip();

    let tx = db.transaction().await.map_err(pg_error)?;
    // The statements are sent together (tokio-postgres pipelines queries polled at once) and run in this order.
    // Attempts first: their foreign keys lock the message and endpoint rows before the delivery rows, the order
    // in which deleting an endpoint or application takes them. The endpoint or message may have been deleted
    // while the attempt was in flight; then there is nothing to record, and the EXISTS guard skips it. What was
    // stored comes back for the activity counters.
    const RECORD_ATTEMPTS: &str = "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, response, \
         response_status_code, response_duration_ms, status, trigger_type, created_at) \
         SELECT a.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[]) \
             AS a(id, app_id, msg_id, endpoint_id, url, response, response_status_code, response_duration_ms, \
                  status, trigger_type, created_at) \
         WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = a.msg_id AND d.endpoint_id = a.endpoint_id) \
         RETURNING created_at, status, endpoint_id";
    const RECORD_DELIVERIES: &str = "UPDATE deliveries d SET status = u.status, attempts = d.attempts + u.tries, \
         manual = 0, next_attempt_at = u.next_attempt_at, claimed_by = NULL \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
             AS u(msg_id, endpoint_id, tries, status, next_attempt_at) \
         WHERE d.msg_id = u.msg_id AND d.endpoint_id = u.endpoint_id";
    const RECORD_STREAKS: &str = "UPDATE endpoints e SET failing_since = \
             CASE WHEN u.replaces THEN u.first_failure ELSE COALESCE(e.failing_since, u.first_failure) END \
         FROM unnest($1::text[], $2::bool[], $3::bigint[]) AS u(id, replaces, first_failure) \
         WHERE e.id = u.id AND e.failing_since IS DISTINCT FROM \
             (CASE WHEN u.replaces THEN u.first_failure ELSE COALESCE(e.failing_since, u.first_failure) END)";
    const RECORD_DISABLED: &str = "UPDATE endpoints e SET disabled = 1, updated_at = u.at \
             FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE e.id = u.id";
    prepare_ahead(&tx, &[RECORD_ATTEMPTS, RECORD_DELIVERIES, RECORD_STREAKS, RECORD_DISABLED])
        .await
        .map_err(pg_error)?;
    let stored = async {
        query(
            &tx,
            RECORD_ATTEMPTS,
            &[
                &attempts.id,
                &attempts.app_id,
                &attempts.msg_id,
                &attempts.endpoint_id,
                &attempts.url,
                &attempts.response,
                &attempts.response_status_code,
                &attempts.response_duration_ms,
                &attempts.status,
                &attempts.trigger_type,
                &attempts.created_at,
            ],
        )
        .await
    };
    // The delivery leaves `sending`, so nobody holds its lease any more.
    let deliveries_changed =
        async { execute(&tx, RECORD_DELIVERIES, &[&msg_ids, &endpoint_ids, &tries, &statuses, &next_attempts]).await };
    // The last condition makes the common case (no change) a read, not a write.
    let streaks_changed = async { execute(&tx, RECORD_STREAKS, &[&streak_ids, &replaces, &first_failures]).await };
    // Deliveries still queued for a disabled endpoint fail when claimed (see `claim_due`).
    let disabled_changed = async {
        if disabled_ids.is_empty() {
            return Ok(0);
        }
        execute(&tx, RECORD_DISABLED, &[&disabled_ids, &disabled_at]).await
    };
    let (stored, _, _, _) =
        tokio::try_join!(stored, deliveries_changed, streaks_changed, disabled_changed).map_err(pg_error)?;
    let mut activity = ActivityTally::default();
    for row in &stored {
        activity.attempt(row.int(0)?, row.int(1)? == i64::from(DeliveryStatus::Success.code()), &row.text(2)?);
    }
    count_activity(&tx, counted_as, &activity).await?;
    tx.commit().await.map_err(pg_error)
}

/// The attempts of a batch, column by column, to insert with one `unnest`.
#[derive(Default)]
struct AttemptColumns<'a> {
    id: Vec<&'a str>,
    app_id: Vec<&'a str>,
    msg_id: Vec<&'a str>,
    endpoint_id: Vec<&'a str>,
    url: Vec<&'a str>,
    response: Vec<&'a str>,
    response_status_code: Vec<i64>,
    response_duration_ms: Vec<i64>,
    status: Vec<i64>,
    trigger_type: Vec<i64>,
    created_at: Vec<i64>,
}

impl<'a> AttemptColumns<'a> {
    fn push(&mut self, attempt: &'a Attempt) {
        self.id.push(attempt.id.as_str());
        self.app_id.push(attempt.app_id.as_str());
        self.msg_id.push(attempt.msg_id.as_str());
        self.endpoint_id.push(attempt.endpoint_id.as_str());
        self.url.push(&attempt.url);
        self.response.push(&attempt.response);
        self.response_status_code.push(i64::from(attempt.response_status_code));
        self.response_duration_ms.push(attempt.response_duration_ms);
        self.status.push(i64::from(attempt.status.code()));
        self.trigger_type.push(attempt.trigger_type as i64);
        self.created_at.push(attempt.created_at);
    }
}

/// Puts this instance's claims back, unattempted, at their original due time. A delivery whose lease another
/// instance took over in the meantime (this one was presumed dead) is theirs now and stays as it is.
pub async fn release(db: &mut Client, deliveries: &[Release], instance_id: &str) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let msg_ids: Vec<&str> = deliveries.iter().map(|d| d.msg_id.as_str()).collect();
    let endpoint_ids: Vec<&str> = deliveries.iter().map(|d| d.endpoint_id.as_str()).collect();
    let due_ats: Vec<i64> = deliveries.iter().map(|d| d.due_at).collect();
    execute(
        &*db,
        "UPDATE deliveries d SET status = 1, next_attempt_at = r.due_at, claimed_by = NULL \
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(msg_id, endpoint_id, due_at) \
         WHERE d.msg_id = r.msg_id AND d.endpoint_id = r.endpoint_id AND d.status = 3 AND d.claimed_by = $4",
        &[&msg_ids, &endpoint_ids, &due_ats, &instance_id],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub async fn next_due_at(db: &mut Client) -> StoreResult<Option<UnixMillis>> {
    let row = query_opt(&*db, "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)", &[])
        .await
        .map_err(pg_error)?;
    match row {
        Some(row) => Ok(row.opt_int(0)?),
        None => Err(StoreError::Internal("MIN returned no row".into())),
    }
}

#[async_trait]
impl Queue for PostgresStore {
    async fn requeue_interrupted(&self) -> StoreResult<u64> {
        // Other processes may be running and holding leases; `keep_alive` takes back those of dead ones.
        Ok(0)
    }

    async fn keep_alive(&self, now: UnixMillis) -> StoreResult<Liveness> {
        let beat = self.beat(now).await;
        self.note(beat)
    }

    async fn pause_endpoint(&self, endpoint_id: &EndpointId, until: UnixMillis) -> StoreResult<()> {
        let db = self.client().await?;
        db.execute("UPDATE endpoints SET paused_until = $2 WHERE id = $1", &[&endpoint_id.as_str(), &until])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    fn hand_new_work_to(&self, intake: Arc<dyn crate::Intake>) {
        self.publishes.hand_over_to(super::group_commit::Handover {
            intake,
            instance_id: self.instance_id.clone(),
            cipher: self.cipher.clone(),
        });
    }

    async fn watch_new_work(&self, wake: Arc<tokio::sync::Notify>) -> StoreResult<()> {
        tokio::spawn(listen_for_work(self.config.clone(), self.tls.clone(), wake));
        Ok(())
    }

    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        skip_endpoints: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let claimed = async {
            let mut db = self.client().await?;
            claim_due(&mut db, now, limit, lease_until, skip_endpoints, &self.instance_id(), &self.cipher).await
        };
        self.note(claimed.await)
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
        let recorded = async {
            let mut db = self.client().await?;
            record_outcomes(&mut db, outcomes, self.activity.attempts()).await
        };
        self.note(recorded.await)
    }

    async fn release(&self, deliveries: &[Release]) -> StoreResult<()> {
        let released = async {
            let mut db = self.client().await?;
            release(&mut db, deliveries, &self.instance_id()).await
        };
        self.note(released.await)
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        let mut db = self.client().await?;
        next_due_at(&mut db).await
    }
}
