//! The queue role on SQLite: claiming due deliveries, oldest first, past the endpoints that cannot take more
//! right now; recording outcomes; releasing; the single-process liveness answers.
//!
//! An endpoint can be blocked: its lanes are full, its circuit breaker paused it, or (FIFO) an earlier delivery
//! is still open. Its deliveries stay due, at the head of the due index when it has a backlog, and a claim that
//! walked the due index past all of them would cost time in proportion to the backlog, on the writer thread,
//! in front of every publish. So a claim reads the due index for a bounded window only; when blocked endpoints
//! fill that window, it reads per endpoint instead, one seek per endpoint with open deliveries, and takes the
//! oldest due deliveries of the endpoints that are not blocked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::{DeliveryStatus, SecretSet};
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::{AppId, EndpointId, MessageId};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::operations::count_activity;
use super::rows::*;
use crate::activity::ActivityTally;
use crate::{AttemptOutcome, ClaimedDelivery, Liveness, Queue, Release, StoreResult};
use hookrelay_core::retry::NextStep;

/// How many due-index entries a claim reads per delivery it wants before it reads per endpoint instead.
const WINDOW_PER_WANTED: usize = 4;

/// A due delivery's key and due time.
struct Due {
    msg_id: String,
    endpoint_id: String,
    due_at: UnixMillis,
}

/// What a claim needs to know about an endpoint to decide whether its deliveries can be taken now.
#[derive(Clone, Copy)]
struct EndpointState {
    /// Paused by a circuit breaker (of any process sharing the database).
    paused: bool,
    fifo: bool,
}

/// Claims up to `limit` deliveries due at `now`, oldest first, skipping the endpoints in `skip` and paused ones,
/// and leases them until `lease_until`. Deliveries of a disabled endpoint are failed instead of claimed.
pub fn claim_due(
    conn: &Connection,
    now: UnixMillis,
    limit: usize,
    lease_until: UnixMillis,
    skip: &[EndpointId],
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut picker = Picker { conn, now, skip: skip.iter().map(EndpointId::as_str).collect(), states: HashMap::new() };
    let picked = picker.pick(limit)?;
    take(conn, picked, lease_until, cipher)
}

/// Picks the deliveries of one claim, remembering each endpoint's state for the claim's duration.
struct Picker<'a> {
    conn: &'a Connection,
    now: UnixMillis,
    skip: HashSet<&'a str>,
    states: HashMap<String, Option<EndpointState>>,
}

impl Picker<'_> {
    /// The keys of up to `limit` claimable deliveries, oldest first.
    fn pick(&mut self, limit: usize) -> StoreResult<Vec<Due>> {
        let window = limit.saturating_mul(WINDOW_PER_WANTED);
        let conn = self.conn;
        let mut scan = conn
            .prepare_cached(
                "SELECT msg_id, endpoint_id, next_attempt_at FROM deliveries INDEXED BY deliveries_due \
                 WHERE status IN (1, 3) AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
            )
            .map_err(sql_error)?;
        let mut rows = scan.query(params![self.now, window as i64]).map_err(sql_error)?;
        let mut read = 0;
        let mut picked = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            read += 1;
            // Most rows passed over belong to a skipped endpoint: tell without copying the row.
            let endpoint_id = row.get_ref(1).and_then(|value| Ok(value.as_str()?)).map_err(sql_error)?;
            if self.skip.contains(endpoint_id) {
                continue;
            }
            let delivery = Due {
                msg_id: row.get(0).map_err(sql_error)?,
                endpoint_id: row.get(1).map_err(sql_error)?,
                due_at: row.get(2).map_err(sql_error)?,
            };
            if self.claimable(&delivery)? {
                picked.push(delivery);
                if picked.len() == limit {
                    return Ok(picked);
                }
            }
        }
        if read < window {
            // Every due delivery was read.
            return Ok(picked);
        }
        // Blocked endpoints filled the window: read endpoint by endpoint.
        drop(rows);
        self.pick_per_endpoint(limit)
    }

    /// The oldest due deliveries of each endpoint with open deliveries that is not blocked, merged by due time.
    fn pick_per_endpoint(&mut self, limit: usize) -> StoreResult<Vec<Due>> {
        let conn = self.conn;
        // A loose index scan: one seek per endpoint with open deliveries, giving its earliest due time.
        let mut next_endpoint = conn
            .prepare_cached(
                "SELECT endpoint_id, next_attempt_at FROM deliveries INDEXED BY deliveries_due_by_endpoint \
                 WHERE status IN (1, 3) AND endpoint_id > ?1 ORDER BY endpoint_id, next_attempt_at LIMIT 1",
            )
            .map_err(sql_error)?;
        let mut endpoint_due = conn
            .prepare_cached(
                "SELECT msg_id, next_attempt_at FROM deliveries INDEXED BY deliveries_due_by_endpoint \
                 WHERE status IN (1, 3) AND endpoint_id = ?1 AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at LIMIT ?3",
            )
            .map_err(sql_error)?;
        let mut candidates = Vec::new();
        let mut after = String::new();
        while let Some((endpoint_id, earliest)) = next_endpoint
            .query_row([&after], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<UnixMillis>>(1)?)))
            .optional()
            .map_err(sql_error)?
        {
            after.clone_from(&endpoint_id);
            if earliest.is_none_or(|due| due > self.now) || self.skip.contains(endpoint_id.as_str()) {
                continue;
            }
            match self.state(&endpoint_id)? {
                None | Some(EndpointState { paused: true, .. }) => {}
                Some(EndpointState { fifo: true, .. }) => candidates.extend(self.fifo_head(&endpoint_id)?),
                Some(_) => {
                    let rows = endpoint_due
                        .query_map(params![endpoint_id, self.now, limit as i64], |row| {
                            Ok(Due { msg_id: row.get(0)?, endpoint_id: endpoint_id.clone(), due_at: row.get(1)? })
                        })
                        .map_err(sql_error)?;
                    for row in rows {
                        candidates.push(row.map_err(sql_error)?);
                    }
                }
            }
        }
        candidates.sort_by_key(|delivery| delivery.due_at);
        candidates.truncate(limit);
        Ok(candidates)
    }

    /// Whether the delivery of an endpoint that is not skipped can be taken now: the endpoint is not paused and,
    /// if FIFO, the delivery is its head (until the claim commits, a head taken in this claim is still open, so no
    /// later delivery of that endpoint qualifies).
    fn claimable(&mut self, delivery: &Due) -> StoreResult<bool> {
        Ok(match self.state(&delivery.endpoint_id)? {
            // Deleted meanwhile; its deliveries go with it.
            None | Some(EndpointState { paused: true, .. }) => false,
            Some(EndpointState { fifo: true, .. }) => !self.has_earlier_open(delivery)?,
            Some(_) => true,
        })
    }

    fn state(&mut self, endpoint_id: &str) -> StoreResult<Option<EndpointState>> {
        if let Some(known) = self.states.get(endpoint_id) {
            return Ok(*known);
        }
        let now = self.now;
        let state = self
            .conn
            .prepare_cached("SELECT paused_until, fifo FROM endpoints WHERE id = ?1")
            .map_err(sql_error)?
            .query_row([endpoint_id], |row| {
                let paused_until: Option<UnixMillis> = row.get(0)?;
                Ok(EndpointState { paused: paused_until.is_some_and(|until| until > now), fifo: row.get(1)? })
            })
            .optional()
            .map_err(sql_error)?;
        self.states.insert(endpoint_id.to_owned(), state);
        Ok(state)
    }

    /// An earlier delivery of the endpoint is still open.
    fn has_earlier_open(&self, delivery: &Due) -> StoreResult<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = ?1 AND status IN (1, 3) AND msg_id < ?2)",
            )
            .map_err(sql_error)?
            .query_row([&delivery.endpoint_id, &delivery.msg_id], |row| row.get(0))
            .map_err(sql_error)
    }

    /// A FIFO endpoint's oldest open delivery, if it is due: one seek per open status.
    fn fifo_head(&self, endpoint_id: &str) -> StoreResult<Option<Due>> {
        let mut first = self
            .conn
            .prepare_cached(
                "SELECT msg_id, next_attempt_at FROM deliveries WHERE endpoint_id = ?1 AND status = ?2 \
                 ORDER BY msg_id LIMIT 1",
            )
            .map_err(sql_error)?;
        let mut head: Option<Due> = None;
        for status in [1, 3] {
            let found = first
                .query_row(params![endpoint_id, status], |row| {
                    Ok(Due { msg_id: row.get(0)?, endpoint_id: endpoint_id.to_owned(), due_at: row.get(1)? })
                })
                .optional()
                .map_err(sql_error)?;
            if let Some(found) = found
                && head.as_ref().is_none_or(|head| found.msg_id < head.msg_id)
            {
                head = Some(found);
            }
        }
        Ok(head.filter(|head| head.due_at <= self.now))
    }
}

/// Reads what sending the picked deliveries needs and leases them; fails those whose endpoint was disabled after
/// the message was routed (they will not be attempted).
fn take(
    conn: &Connection,
    picked: Vec<Due>,
    lease_until: UnixMillis,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut read = conn
        .prepare_cached(
            "SELECT d.attempts, d.manual, m.app_id, m.event_type, m.payload, m.event_id, e.url, e.headers, \
             e.secret, e.previous_secrets, e.disabled, e.rate_limit, e.signature_schemes, e.retry_schedule, \
             e.retry_client_errors, e.signature_headers, e.standard_headers, m.forwarded_headers, \
             CASE WHEN e.transformation_enabled = 1 THEN e.transformation_code END, m.created_at, m.content_type, \
             d.status FROM deliveries d JOIN messages m ON m.id = d.msg_id JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE d.msg_id = ?1 AND d.endpoint_id = ?2",
        )
        .map_err(sql_error)?;
    let mut lease = conn
        .prepare_cached("UPDATE deliveries SET status = 3, next_attempt_at = ?3 WHERE msg_id = ?1 AND endpoint_id = ?2")
        .map_err(sql_error)?;
    let mut fail = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 2, next_attempt_at = NULL WHERE msg_id = ?1 AND endpoint_id = ?2",
        )
        .map_err(sql_error)?;
    let mut payloads: HashMap<String, Arc<str>> = HashMap::new();
    let mut secrets: HashMap<String, SecretSet> = HashMap::new();
    let mut headers: HashMap<String, Arc<BTreeMap<String, String>>> = HashMap::new();
    let mut options: HashMap<String, DeliveryOptions> = HashMap::new();
    let mut claimed = Vec::with_capacity(picked.len());
    for Due { msg_id, endpoint_id, due_at } in picked {
        let mut rows = read.query(params![msg_id, endpoint_id]).map_err(sql_error)?;
        let Some(row) = rows.next().map_err(sql_error)? else { continue };
        if row.get::<_, bool>(10).map_err(sql_error)? {
            drop(rows);
            fail.execute(params![msg_id, endpoint_id]).map_err(sql_error)?;
            continue;
        }
        let payload = shared(&mut payloads, &msg_id, || -> StoreResult<Arc<str>> {
            Ok(Arc::from(row.get::<_, String>(4).map_err(sql_error)?))
        })?;
        let endpoint_secrets = shared(&mut secrets, &endpoint_id, || -> StoreResult<SecretSet> {
            let current = row.get::<_, String>(8).map_err(sql_error)?;
            Ok(secrets_from_columns(&current, &row.get::<_, String>(9).map_err(sql_error)?, cipher)?)
        })?;
        let endpoint_headers = shared(&mut headers, &endpoint_id, || -> StoreResult<Arc<BTreeMap<String, String>>> {
            Ok(Arc::new(from_json(row.get_ref(7).and_then(|value| Ok(value.as_str()?)).map_err(sql_error)?)?))
        })?;
        let DeliveryOptions { retry, signature_headers, standard_headers, transformation } =
            shared(&mut options, &endpoint_id, || delivery_options_from(row, 13, 15, 18))?;
        let delivery = ClaimedDelivery {
            app_id: AppId::from_trusted(row.get(2).map_err(sql_error)?),
            msg_id: MessageId::from_trusted(msg_id),
            endpoint_id: EndpointId::from_trusted(endpoint_id),
            event_type: row.get(3).map_err(sql_error)?,
            event_id: row.get(5).map_err(sql_error)?,
            payload,
            url: row.get(6).map_err(sql_error)?,
            headers: endpoint_headers,
            forwarded_headers: forwarded_headers_from(row, 17)?,
            transformation,
            msg_created_at: row.int(19)?,
            content_type: row.get(20).map_err(sql_error)?,
            secrets: endpoint_secrets,
            rate_limit: row.get(11).map_err(sql_error)?,
            signature_schemes: signature_schemes_from_json(&row.get::<_, String>(12).map_err(sql_error)?)?,
            retry,
            signature_headers,
            standard_headers,
            attempts: row.get(0).map_err(sql_error)?,
            manual: row.get(1).map_err(sql_error)?,
            due_at,
            taken_over: row.int(21)? == i64::from(DeliveryStatus::Sending.code()),
        };
        drop(rows);
        lease
            .execute(params![delivery.msg_id.as_str(), delivery.endpoint_id.as_str(), lease_until])
            .map_err(sql_error)?;
        claimed.push(delivery);
    }
    Ok(claimed)
}

pub(super) fn record_outcomes(conn: &Connection, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
    // Single-row statements only (see `insert_message`).
    let mut update = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?3, attempts = attempts + 1, manual = 0, next_attempt_at = ?4 \
             WHERE msg_id = ?1 AND endpoint_id = ?2",
        )
        .map_err(sql_error)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, response, response_status_code, \
             response_duration_ms, status, trigger_type, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(sql_error)?;
    let mut activity = ActivityTally::default();
    for outcome in outcomes {
        let a = &outcome.attempt;
        let (status, next_attempt_at) = match outcome.next {
            NextStep::Succeeded => (0, None),
            NextStep::RetryAt(at) => (1, Some(at)),
            NextStep::GiveUp => (2, None),
        };
        let updated = update
            .execute(params![a.msg_id.as_str(), a.endpoint_id.as_str(), status, next_attempt_at])
            .map_err(sql_error)?;
        // No delivery: its endpoint or message was deleted while the attempt was in flight, and the attempt has
        // nothing left to belong to (its foreign keys would fail).
        if updated > 0 {
            insert
                .execute(params![
                    a.id.as_str(),
                    a.app_id.as_str(),
                    a.msg_id.as_str(),
                    a.endpoint_id.as_str(),
                    a.url,
                    a.response,
                    a.response_status_code,
                    a.response_duration_ms,
                    a.status.code(),
                    a.trigger_type as u8,
                    a.created_at
                ])
                .map_err(sql_error)?;
            activity.attempt(a.created_at, a.status == DeliveryStatus::Success, a.endpoint_id.as_str());
        }
        // The endpoint's failing streak, for auto-disable. The WHERE clauses make the common case (no change)
        // a read, not a write.
        let streak = if a.status == DeliveryStatus::Success {
            conn.prepare_cached("UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL")
                .and_then(|mut stmt| stmt.execute(params![a.endpoint_id.as_str()]))
        } else {
            conn.prepare_cached("UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL")
                .and_then(|mut stmt| stmt.execute(params![a.endpoint_id.as_str(), a.created_at]))
        };
        streak.map_err(sql_error)?;
        if outcome.disable_endpoint {
            // Deliveries still queued for it fail when claimed (see `claim_due`).
            conn.prepare_cached("UPDATE endpoints SET disabled = 1, updated_at = ?2 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![a.endpoint_id.as_str(), a.created_at]))
                .map_err(sql_error)?;
        }
    }
    count_activity(conn, &activity)
}

#[async_trait]
impl Queue for SqliteStore {
    async fn claim_due(
        &self,
        now: UnixMillis,
        limit: usize,
        lease_until: UnixMillis,
        skip_endpoints: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let skip = skip_endpoints.to_vec();
        let cipher = self.cipher.clone();
        self.db
            .write(Durability::ProcessCrash, move |conn| claim_due(conn, now, limit, lease_until, &skip, &cipher))
            .await
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
        let outcomes = outcomes.to_vec();
        self.db.write(Durability::ProcessCrash, move |conn| record_outcomes(conn, &outcomes)).await
    }

    async fn release(&self, deliveries: &[Release]) -> StoreResult<()> {
        let deliveries = deliveries.to_vec();
        self.db
            .write(Durability::ProcessCrash, move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE deliveries SET status = 1, next_attempt_at = ?3 \
                         WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 3",
                    )
                    .map_err(sql_error)?;
                for d in &deliveries {
                    stmt.execute(params![d.msg_id.as_str(), d.endpoint_id.as_str(), d.due_at]).map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        self.db
            .read(|conn| {
                conn.query_row("SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)", [], |row| {
                    row.get(0)
                })
                .map_err(sql_error)
            })
            .await
    }

    async fn requeue_interrupted(&self) -> StoreResult<u64> {
        self.db
            .write(Durability::ProcessCrash, |conn| {
                let changed = conn
                    .execute("UPDATE deliveries SET status = 1, next_attempt_at = ?1 WHERE status = 3", [now_ms()])
                    .map_err(sql_error)?;
                Ok(changed as u64)
            })
            .await
    }

    /// One process per database file: nobody else can hold a lease, and `requeue_interrupted` took back ours.
    async fn keep_alive(&self, _now: UnixMillis) -> StoreResult<Liveness> {
        Ok(Liveness { requeued: 0, live_processes: 1 })
    }

    async fn pause_endpoint(&self, endpoint_id: &EndpointId, until: UnixMillis) -> StoreResult<()> {
        let id = endpoint_id.as_str().to_owned();
        self.db
            .write(Durability::ProcessCrash, move |conn| {
                // A deleted endpoint has nothing left to pause.
                conn.execute("UPDATE endpoints SET paused_until = ?2 WHERE id = ?1", params![id, until])
                    .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    /// One process per database file: all new work is this process's own, and its API wakes its dispatcher.
    async fn watch_new_work(&self, _wake: Arc<tokio::sync::Notify>) -> StoreResult<()> {
        Ok(())
    }
}
