//! Group commit for PostgreSQL publishes. A publish queues its message here; one drain task at a time (spawned by
//! whichever publish finds none running) takes everything queued and writes it in one transaction with
//! multi-row statements: a handful of round trips and one commit for the whole group instead of a transaction
//! each. Every publish is answered only after that commit, with its own outcome: an eventId or idempotency key
//! already taken, or an application or endpoint gone, fails that message alone. If the group's transaction fails
//! as a whole, each of its messages is written again in a transaction of its own, so one bad message never fails
//! the others. The rules are those of [`super::messages::insert_message`], which writes a single message.
//!
//! Fresh work needs no claim. When this process's dispatcher has room (see [`crate::Queue::hand_new_work_to`]),
//! the deliveries of a group that are due now go in already leased to this process, as a claim would have left
//! them, and are handed to the dispatcher once the group committed: the claim's statement, transaction and
//! commit, and its second write of every delivery row, are saved. Deliveries to FIFO or paused endpoints, those
//! scheduled for later and those past the dispatcher's room go in pending, for any process's claim. If this
//! process dies before sending them, their leases are taken back like those of any claim.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use deadpool_postgres::{GenericClient, Pool};
use hookrelay_core::EndpointId;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::Message;
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::{UnixMillis, now_ms};
use tokio::sync::oneshot;

use super::messages::{IDEMPOTENCY_KEY_TAKEN, publish_message};
use super::operations::{COUNT_ACTIVITY, COUNT_ENDPOINT_FAILURES, count_activity};
use super::queue::{ENDPOINT_FOR_DELIVERY, EndpointForDelivery, FIFO_COLUMN, Lease, MessageForDelivery};
use super::rows::*;
use super::{ANNOUNCE_NEW_WORK, INSTANCE_TTL_MS, announce_new_work, pg_error};
use crate::activity::ActivityTally;
use crate::{ClaimedDelivery, EVENT_ID_TAKEN, IdempotentResponse, Intake, PublishedMessage, StoreError, StoreResult};

/// Most messages written in one transaction: enough to share a commit among all the publishers a server has in
/// flight, small enough that a group's statements stay short.
const MAX_GROUP: usize = 512;

/// One queued publish and where its outcome goes.
struct Pending {
    message: Message,
    only: Option<EndpointId>,
    idempotent: Option<IdempotentResponse>,
    reply: oneshot::Sender<StoreResult<PublishedMessage>>,
}

/// The queue of publishes waiting for the next group, shared by a store's callers.
#[derive(Clone)]
pub(super) struct GroupCommit {
    pool: Pool,
    state: Arc<Mutex<Queue>>,
    /// The activity counter rows the groups add their messages to (one drain at a time writes them).
    counted_as: Arc<str>,
    /// This process's dispatcher, once it started, and what leasing to it needs.
    handover: Arc<RwLock<Option<Handover>>>,
}

/// Where the deliveries a group leases go, and under which name.
#[derive(Clone)]
pub(super) struct Handover {
    pub(super) intake: Arc<dyn Intake>,
    /// The store's instance id, as it is now (it changes after lost contact).
    pub(super) instance_id: Arc<Mutex<String>>,
    pub(super) cipher: SecretCipher,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A drain task is running: it will take what is queued now.
    draining: bool,
}

impl GroupCommit {
    pub(super) fn new(pool: Pool, counted_as: String) -> Self {
        Self { pool, state: Arc::default(), counted_as: counted_as.into(), handover: Arc::default() }
    }

    /// From now on, leases the due deliveries of each group to `handover`'s dispatcher as far as it has room.
    pub(super) fn hand_over_to(&self, handover: Handover) {
        *self.handover.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handover);
    }

    /// Publishes `message` (to `only`, or to every accepting endpoint) with its idempotent response, in the next
    /// group; returns once that group has committed.
    pub(super) async fn publish(
        &self,
        message: &Message,
        only: Option<&EndpointId>,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { message: message.clone(), only: only.cloned(), idempotent: idempotent.cloned(), reply };
        let start_drain = {
            let mut queue = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.waiting.push(pending);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_drain {
            // A task of its own, so that a caller that goes away (a client hanging up) cannot stop a group that
            // others wait for half-way.
            tokio::spawn(self.clone().drain());
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Internal("the publish group was dropped".into())))
    }

    /// Writes groups until the queue is empty.
    async fn drain(self) {
        let _unwinding = ResetOnPanic(&self.state);
        loop {
            let group: Vec<Pending> = {
                let mut queue = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if queue.waiting.is_empty() {
                    queue.draining = false;
                    return;
                }
                let take = queue.waiting.len().min(MAX_GROUP);
                queue.waiting.drain(..take).collect()
            };
            self.write(group).await;
        }
    }

    /// Writes one group and answers each of its publishes.
    async fn write(&self, group: Vec<Pending>) {
        let handover = self.handover.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let outcomes = match self.pool.get().await {
            Ok(mut db) => match write_group(&mut db, &group, &self.counted_as, handover.as_ref()).await {
                Ok(outcomes) => outcomes,
                // One transaction each, so that what failed the group fails only its own message; a database
                // out of reach fails each of them again, quickly.
                Err(_) if group.len() > 1 => {
                    let mut outcomes = Vec::with_capacity(group.len());
                    for pending in &group {
                        outcomes.push(
                            publish_message(
                                &mut db,
                                &pending.message,
                                pending.only.as_ref(),
                                pending.idempotent.as_ref(),
                                &self.counted_as,
                            )
                            .await
                            .map(|published| (published.deliveries, published.to_claim)),
                        );
                    }
                    outcomes
                }
                Err(err) => vec![Err(err)],
            },
            Err(err) => {
                let err = StoreError::Unavailable(format!("no PostgreSQL connection: {err}"));
                group.iter().map(|_| Err(err.clone())).collect()
            }
        };
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            let published = outcome.map(|(deliveries, to_claim)| PublishedMessage {
                message: pending.message,
                deliveries,
                to_claim,
            });
            // The publisher may have gone away meanwhile; its message is stored all the same.
            let _ = pending.reply.send(published);
        }
    }
}

/// Lets the next publish start a drain if this one panicked (its group's publishers get an error: their
/// answers were dropped).
struct ResetOnPanic<'a>(&'a Mutex<Queue>);

impl Drop for ResetOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).draining = false;
        }
    }
}

/// Writes the group in one transaction, counting its messages into `counted_as`'s activity counters, and leasing
/// what it can to `handover`'s dispatcher: returns each message's outcome (how many deliveries it got, and how many
/// of those wait for a claim), or an error that failed the whole transaction (nothing of the group is then stored).
async fn write_group(
    db: &mut deadpool_postgres::Client,
    group: &[Pending],
    counted_as: &str,
    handover: Option<&Handover>,
) -> StoreResult<Vec<StoreResult<(usize, usize)>>> {
    let mut outcomes: Vec<Option<StoreResult<(usize, usize)>>> = (0..group.len()).map(|_| None).collect();
    // Repeats within the group: the first one wins, as it would had they come one after the other.
    let mut keys = HashSet::new();
    let mut event_ids = HashSet::new();
    for (index, pending) in group.iter().enumerate() {
        let msg = &pending.message;
        if let Some(response) = &pending.idempotent
            && !keys.insert(response.key.as_str())
        {
            outcomes[index] = Some(Err(StoreError::Conflict(IDEMPOTENCY_KEY_TAKEN.to_owned())));
        } else if let Some(event_id) = &msg.event_id
            && !event_ids.insert((msg.app_id.as_str(), event_id.as_str()))
        {
            outcomes[index] = Some(Err(StoreError::Conflict(EVENT_ID_TAKEN.to_owned())));
        }
    }

    let tx = db.transaction().await.map_err(pg_error)?;
    let apps: Vec<&str> = group.iter().map(|p| p.message.app_id.as_str()).collect::<HashSet<_>>().into_iter().collect();
    // An application deleted after this look fails the group at its insert (a foreign key), and the fallback then
    // answers each message on its own.
    // Statements that do not wait for each other's answers are sent together (tokio-postgres pipelines the
    // queries of one connection that are polled at once); the server still runs them in order.
    let select_endpoints = format!(
        "SELECT e.id, e.app_id, e.filter_types, e.channels, e.disabled, e.paused_until, {ENDPOINT_FOR_DELIVERY} \
         FROM endpoints e WHERE e.app_id = ANY($1)"
    );
    let select_apps = "SELECT id FROM applications WHERE id = ANY($1)";
    prepare_ahead(&tx, &[select_apps, &select_endpoints]).await.map_err(pg_error)?;
    let by_app: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&apps];
    let (found, rows) = tokio::try_join!(query(&tx, select_apps, &by_app), query(&tx, &select_endpoints, &by_app),)
        .map_err(pg_error)?;
    let found: HashSet<String> = found.iter().map(|row| row.text(0)).collect::<Result<_, _>>()?;
    let mut endpoints: HashMap<String, Vec<(String, Routing, bool)>> = HashMap::new();
    let mut endpoint_rows: HashMap<String, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let disabled = row.flag(4)?;
        endpoint_rows.insert(row.text(0)?, index);
        endpoints.entry(row.text(1)?).or_default().push((row.text(0)?, routing_from(row, 2)?, disabled));
    }

    // Where each message goes; a missing application or endpoint fails it alone.
    let mut targets: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (index, pending) in group.iter().enumerate() {
        if outcomes[index].is_some() {
            continue;
        }
        let msg = &pending.message;
        if !found.contains(msg.app_id.as_str()) {
            outcomes[index] = Some(Err(StoreError::NotFound));
            continue;
        }
        let of_app = endpoints.get(msg.app_id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let routed: Vec<String> = match &pending.only {
            Some(only) => match of_app.iter().find(|(id, _, disabled)| id == only.as_str() && !disabled) {
                Some((id, _, _)) => vec![id.clone()],
                None => {
                    outcomes[index] = Some(Err(StoreError::NotFound));
                    continue;
                }
            },
            None => of_app
                .iter()
                .filter(|(_, (filter, channels), disabled)| {
                    !disabled
                        && endpoint_accepts(
                            filter.as_deref(),
                            channels.as_deref(),
                            &msg.event_type,
                            msg.channels.as_deref(),
                        )
                })
                .map(|(id, _, _)| id.clone())
                .collect(),
        };
        targets.insert(index, routed);
    }

    // The messages. Without eventIds or idempotency keys nothing can be refused, and their insert goes with the
    // deliveries' below; otherwise it comes first, and what it refused is left out of the rest.
    let batch: Vec<&Message> = targets.keys().map(|&index| &group[index].message).collect();
    let responses: Vec<(usize, &IdempotentResponse)> =
        targets.keys().filter_map(|&index| group[index].idempotent.as_ref().map(|r| (index, r))).collect();
    let unconditional = responses.is_empty() && batch.iter().all(|msg| msg.event_id.is_none());
    if !unconditional {
        // One whose eventId an earlier message took is skipped by the conflict clause.
        let inserted = insert_messages(&tx, &batch).await?;
        for &index in targets.keys() {
            if !inserted.contains(group[index].message.id.as_str()) {
                outcomes[index] = Some(Err(StoreError::Conflict(EVENT_ID_TAKEN.to_owned())));
            }
        }
        targets.retain(|index, _| inserted.contains(group[*index].message.id.as_str()));
    }

    // Their remembered responses; a message whose key another process holds is taken back out.
    let responses: Vec<(usize, &IdempotentResponse)> =
        responses.into_iter().filter(|(index, _)| targets.contains_key(index)).collect();
    if !responses.is_empty() {
        let stored = remember(&tx, responses.iter().map(|(_, response)| *response)).await?;
        let lost: Vec<usize> =
            responses.iter().filter(|(_, response)| !stored.contains(&response.key)).map(|(index, _)| *index).collect();
        if !lost.is_empty() {
            let ids: Vec<&str> = lost.iter().map(|&index| group[index].message.id.as_str()).collect();
            execute(&tx, "DELETE FROM messages WHERE id = ANY($1)", &[&ids]).await.map_err(pg_error)?;
            for index in lost {
                targets.remove(&index);
                outcomes[index] = Some(Err(StoreError::Conflict(IDEMPOTENCY_KEY_TAKEN.to_owned())));
            }
        }
    }

    let (mut msg_ids, mut endpoint_ids, mut due) = (Vec::new(), Vec::new(), Vec::new());
    let mut deliveries = Vec::new();
    for (&index, routed) in &targets {
        let msg = &group[index].message;
        for endpoint_id in routed {
            msg_ids.push(msg.id.as_str());
            endpoint_ids.push(endpoint_id.as_str());
            due.push(msg.first_due());
            deliveries.push((index, endpoint_id.as_str()));
        }
    }
    // Which of them go in leased to this process's dispatcher (`leased[i]`), under which name.
    let now = now_ms();
    let mut reserved = handover.map(|handover| Reserved::new(handover.intake.as_ref()));
    let mut leased = vec![false; deliveries.len()];
    let mut lessee = None;
    if let (Some(handover), Some(reserved)) = (handover, reserved.as_mut()) {
        let leasable = |i: usize| -> StoreResult<bool> {
            let row = &rows[endpoint_rows[deliveries[i].1]];
            let paused = row.opt_int(5)?.is_some_and(|until| until > now);
            Ok(due[i] <= now && !paused && !row.flag(6 + FIFO_COLUMN)?)
        };
        let candidates: Vec<usize> = (0..deliveries.len())
            .filter_map(|i| leasable(i).map(|yes| yes.then_some(i)).transpose())
            .collect::<StoreResult<_>>()?;
        if !candidates.is_empty() {
            let reservation = reserved.take(candidates.len());
            let skip: HashSet<&str> = reservation.skip.iter().map(EndpointId::as_str).collect();
            let mut room = reservation.granted;
            for i in candidates {
                if room == 0 {
                    break;
                }
                if !skip.contains(deliveries[i].1) {
                    leased[i] = true;
                    due[i] = reservation.lease_until;
                    room -= 1;
                }
            }
            if room < reservation.granted {
                lessee = Some(handover.instance_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone());
            }
        }
    }
    // Only the messages stored: not those whose eventId or idempotency key was taken. One statement for the group.
    let mut activity = ActivityTally::default();
    for &index in targets.keys() {
        activity.message(group[index].message.created_at);
    }
    let messages = async {
        if unconditional {
            let inserted = insert_messages(&tx, &batch).await?;
            if inserted.len() != batch.len() {
                return Err(StoreError::Internal("a message without an eventId was not inserted".into()));
            }
        }
        Ok(())
    };
    let deliveries_stored = async {
        if !msg_ids.is_empty() {
            insert_deliveries(&tx, &msg_ids, &endpoint_ids, &due, &leased, lessee.as_deref(), now).await?;
        }
        Ok(())
    };
    // Other processes need to hear only of what is theirs to claim.
    let announced = async {
        if leased.iter().any(|leased| !leased) {
            announce_new_work(&tx).await?;
        }
        Ok::<_, StoreError>(())
    };
    let deliveries_sql = insert_deliveries_sql(lessee.is_some());
    prepare_ahead(&tx, &[INSERT_MESSAGES, &deliveries_sql, ANNOUNCE_NEW_WORK, COUNT_ACTIVITY, COUNT_ENDPOINT_FAILURES])
        .await
        .map_err(pg_error)?;
    tokio::try_join!(messages, deliveries_stored, announced, count_activity(&tx, counted_as, &activity))?;
    // What the dispatcher gets, made before the commit: a failure here (a secret that does not open) rolls the
    // group back, and its messages are written again one by one, unleased.
    let mut handed = Vec::new();
    if let Some(handover) = handover {
        let mut endpoint_parts: HashMap<String, EndpointForDelivery> = HashMap::new();
        let mut payloads: HashMap<usize, Arc<str>> = HashMap::new();
        for (i, &(index, endpoint_id)) in deliveries.iter().enumerate() {
            if !leased[i] {
                continue;
            }
            let endpoint = shared(&mut endpoint_parts, endpoint_id, || {
                EndpointForDelivery::from_row(&rows[endpoint_rows[endpoint_id]], 6, &handover.cipher)
            })?;
            let msg = &group[index].message;
            let payload = payloads.entry(index).or_insert_with(|| Arc::from(msg.payload.as_str())).clone();
            let message = MessageForDelivery {
                app_id: msg.app_id.clone(),
                msg_id: msg.id.clone(),
                event_type: msg.event_type.clone(),
                event_id: msg.event_id.clone(),
                payload,
                forwarded_headers: msg.forwarded_headers.clone(),
                created_at: msg.created_at,
                content_type: msg.content_type.clone(),
            };
            let lease = Lease { attempts: 0, manual: false, due_at: msg.first_due(), taken_over: false };
            handed.push(endpoint.delivery(EndpointId::from_trusted(endpoint_id.to_owned()), message, lease));
        }
    }
    tx.commit().await.map_err(pg_error)?;
    if let Some(reserved) = reserved.as_mut() {
        reserved.deliveries = handed;
    }
    drop(reserved);

    let mut handed_over: HashMap<usize, usize> = HashMap::new();
    for (i, &(index, _)) in deliveries.iter().enumerate() {
        if leased[i] {
            *handed_over.entry(index).or_default() += 1;
        }
    }
    for (index, routed) in targets {
        let leased = handed_over.get(&index).copied().unwrap_or(0);
        outcomes[index] = Some(Ok((routed.len(), routed.len() - leased)));
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(StoreError::Internal("a publish without an outcome".into()))))
        .collect())
}

/// Room taken in the dispatcher for a group's leased deliveries; dropped, it hands over what `deliveries` holds
/// and frees the rest, so a group that fails on the way gives all its room back.
struct Reserved<'a> {
    intake: &'a dyn Intake,
    places: usize,
    deliveries: Vec<ClaimedDelivery>,
}

impl<'a> Reserved<'a> {
    fn new(intake: &'a dyn Intake) -> Self {
        Self { intake, places: 0, deliveries: Vec::new() }
    }

    fn take(&mut self, wanted: usize) -> crate::Reservation {
        let reservation = self.intake.reserve(wanted);
        self.places += reservation.granted;
        reservation
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if self.places > 0 {
            self.intake.hand_over(self.places, std::mem::take(&mut self.deliveries));
        }
    }
}

/// Inserts the group's deliveries: pending and due at `due`, or where `leased`, sending under `lessee`'s lease
/// until `due`. A lessee gets its row in `instances` first (as a claim does), so that others find its leases
/// should it die before its first heartbeat.
async fn insert_deliveries(
    tx: &impl GenericClient,
    msg_ids: &[&str],
    endpoint_ids: &[&str],
    due: &[UnixMillis],
    leased: &[bool],
    lessee: Option<&str>,
    now: UnixMillis,
) -> StoreResult<()> {
    let sql = insert_deliveries_sql(lessee.is_some());
    match lessee {
        None => execute(tx, &sql, &[&msg_ids, &endpoint_ids, &due, &leased, &None::<&str>]).await,
        Some(lessee) => execute(tx, &sql, &[&msg_ids, &endpoint_ids, &due, &leased, &lessee, &now]).await,
    }
    .map_err(pg_error)?;
    Ok(())
}

/// What [`insert_deliveries`] sends, with a lessee or without.
fn insert_deliveries_sql(leases: bool) -> String {
    let insert = "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at, claimed_by) \
         SELECT msg_id, endpoint_id, CASE WHEN leased THEN 3 ELSE 1 END, 0, 0, due, CASE WHEN leased THEN $5 END \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[]) AS d(msg_id, endpoint_id, due, leased)";
    if !leases {
        return insert.to_owned();
    }
    format!(
        "WITH registered AS (INSERT INTO instances (id, started_at, alive_until) \
         VALUES ($5, $6::bigint, $6::bigint + {INSTANCE_TTL_MS}) ON CONFLICT (id) DO NOTHING) {insert}"
    )
}

/// What [`insert_messages`] sends.
const INSERT_MESSAGES: &str = "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, \
     forwarded_headers, tags, content_type, deliver_at, payload_expires_at) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], \
     $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[]) \
     ON CONFLICT (app_id, event_id) DO NOTHING RETURNING id";

/// Inserts the messages in one statement; returns the ids inserted (not those whose eventId was taken).
async fn insert_messages(tx: &impl GenericClient, messages: &[&Message]) -> StoreResult<HashSet<String>> {
    if messages.is_empty() {
        return Ok(HashSet::new());
    }
    // Text columns borrow from the messages (the payloads are not copied again); JSON columns are encoded here.
    let text = |f: for<'m> fn(&'m Message) -> Option<&'m str>| messages.iter().map(|m| f(m)).collect::<Vec<_>>();
    let json = |f: fn(&Message) -> Option<String>| messages.iter().map(|m| f(m)).collect::<Vec<_>>();
    let number = |f: fn(&Message) -> Option<i64>| messages.iter().map(|m| f(m)).collect::<Vec<_>>();
    let rows = query(
        tx,
        INSERT_MESSAGES,
        &[
            &text(|m| Some(m.id.as_str())),
            &text(|m| Some(m.app_id.as_str())),
            &text(|m| m.event_id.as_deref()),
            &text(|m| Some(&m.event_type)),
            &text(|m| Some(&m.payload)),
            &json(|m| opt_to_json(&m.channels)),
            &number(|m| Some(m.created_at)),
            &json(|m| crate::columns::forwarded_headers_json(&m.forwarded_headers)),
            &json(|m| opt_to_json(&m.tags)),
            &text(|m| m.content_type.as_deref()),
            &number(|m| m.deliver_at),
            &number(|m| m.payload_expires_at),
        ],
    )
    .await
    .map_err(pg_error)?;
    rows.iter().map(|row| row.text(0).map_err(StoreError::from)).collect()
}

/// Stores the responses (replacing expired ones under the same keys); returns the keys stored, so a key whose
/// live response another process holds is missing.
async fn remember<'a>(
    tx: &impl GenericClient,
    responses: impl Iterator<Item = &'a IdempotentResponse>,
) -> StoreResult<HashSet<String>> {
    let (mut keys, mut statuses, mut bodies, mut expiries) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for response in responses {
        keys.push(response.key.as_str());
        statuses.push(i64::from(response.status));
        bodies.push(response.body.as_slice());
        expiries.push(response.expires_at);
    }
    let rows = query(
        tx,
        "INSERT INTO idempotency (key, status, body, expires_at) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) \
         ON CONFLICT (key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, \
         expires_at = EXCLUDED.expires_at WHERE idempotency.expires_at < $5 RETURNING key",
        &[&keys, &statuses, &bodies, &expiries, &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    rows.iter().map(|row| row.text(0).map_err(StoreError::from)).collect()
}
