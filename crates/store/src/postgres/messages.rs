//! The messages role on PostgreSQL: publishing a message with one delivery per accepting endpoint (and its
//! idempotent response) in one transaction that also announces the new work, resends, the message, delivery
//! and attempt lists, and the responses remembered for idempotency keys.

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AppId, EndpointId, MessageId};

use super::PostgresStore;
use super::operations::count_activity;
use super::rows::*;
use super::{announce_new_work, pg_error};
use crate::activity::ActivityTally;
use crate::{
    AttemptFilter, DeliveryCounts, EVENT_ID_TAKEN, IdempotentResponse, MessageFilter, Messages, Page, PageRequest,
    PublishedMessage, StoreError, StoreResult,
};

/// Only another process can get there first: within one process the API serialises requests with the same key.
pub(super) const IDEMPOTENCY_KEY_TAKEN: &str =
    "a request with this idempotency-key was being processed at the same time; repeat it to get that response";

pub async fn endpoint_delivery_counts(db: &mut Client, id: &EndpointId) -> StoreResult<DeliveryCounts> {
    let rows =
        query(&*db, "SELECT status, COUNT(*) FROM deliveries WHERE endpoint_id = $1 GROUP BY status", &[&id.as_str()])
            .await
            .map_err(pg_error)?;
    let mut counts = DeliveryCounts::default();
    for row in &rows {
        let number = count(row.int(1)?)?;
        match DeliveryStatus::from_code(row.int(0)?) {
            Some(DeliveryStatus::Success) => counts.success = number,
            Some(DeliveryStatus::Pending) => counts.pending = number,
            Some(DeliveryStatus::Fail) => counts.fail = number,
            Some(DeliveryStatus::Sending) => counts.sending = number,
            None => return Err(StoreError::Internal(format!("unknown delivery status {}", row.int(0)?))),
        }
    }
    Ok(counts)
}

pub async fn oldest_open_delivery(db: &mut Client, id: &EndpointId) -> StoreResult<Option<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.endpoint_id = $1 AND d.status IN (1, 3) \
         ORDER BY d.msg_id LIMIT 1"
    );
    let row = query_opt(&*db, &sql, &[&id.as_str()]).await.map_err(pg_error)?;
    Ok(row.map(|row| delivery_from(&row, 0)).transpose()?)
}

/// Inserts the message, one pending delivery due now for each enabled endpoint of its application that accepts
/// it, and the idempotent response if given; returns how many deliveries. The caller's transaction makes it
/// atomic, and announces the new work when there is any.
/// Inserts the message with its deliveries: to every enabled endpoint of its application that accepts it, or with
/// `only`, to that enabled endpoint alone. Counts it into `counted_as`'s activity counters, as the last statement
/// (see `operations.rs`).
pub(super) async fn insert_message(
    tx: &impl GenericClient,
    msg: &Message,
    only: Option<&EndpointId>,
    idempotent: Option<&IdempotentResponse>,
    counted_as: &str,
) -> StoreResult<usize> {
    execute(
        tx,
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, forwarded_headers, \
         tags, content_type, deliver_at, payload_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &msg.id.as_str(),
            &msg.app_id.as_str(),
            &msg.event_id,
            &msg.event_type,
            &msg.payload,
            &opt_to_json(&msg.channels),
            &msg.created_at,
            &forwarded_headers_json(&msg.forwarded_headers),
            &opt_to_json(&msg.tags),
            &msg.content_type,
            &msg.deliver_at,
            &msg.payload_expires_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, EVENT_ID_TAKEN))?;

    let mut targets = Vec::new();
    if let Some(endpoint_id) = only {
        let enabled = query(
            tx,
            "SELECT 1 FROM endpoints WHERE id = $1 AND app_id = $2 AND disabled = 0",
            &[&endpoint_id.as_str(), &msg.app_id.as_str()],
        )
        .await
        .map_err(pg_error)?;
        if enabled.is_empty() {
            return Err(StoreError::NotFound);
        }
        targets.push(endpoint_id.to_string());
    } else {
        // Routing is the core's rule (`endpoint_accepts`), applied here rather than rewritten in SQL.
        let endpoints = query(
            tx,
            "SELECT id, filter_types, channels FROM endpoints WHERE app_id = $1 AND disabled = 0",
            &[&msg.app_id.as_str()],
        )
        .await
        .map_err(pg_error)?;
        for row in &endpoints {
            let (filter, channels) = routing_from(row, 1)?;
            if endpoint_accepts(filter.as_deref(), channels.as_deref(), &msg.event_type, msg.channels.as_deref()) {
                targets.push(row.text(0)?);
            }
        }
    }
    if !targets.is_empty() {
        execute(
            tx,
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             SELECT $1, endpoint_id, 1, 0, 0, $3 FROM unnest($2::text[]) AS endpoint_id",
            &[&msg.id.as_str(), &targets, &msg.first_due()],
        )
        .await
        .map_err(pg_error)?;
    }
    if let Some(response) = idempotent {
        // The API remembers the first response for a key; getting here with a live one for the same key means
        // another process answered it meanwhile, and publishing again would answer twice.
        if !put_idempotent_in(tx, response).await? {
            return Err(StoreError::Conflict(IDEMPOTENCY_KEY_TAKEN.to_owned()));
        }
    }
    let mut activity = ActivityTally::default();
    activity.message(msg.created_at);
    count_activity(tx, counted_as, &activity).await?;
    Ok(targets.len())
}

pub async fn publish_message(
    db: &mut Client,
    message: &Message,
    only: Option<&EndpointId>,
    idempotent: Option<&IdempotentResponse>,
    counted_as: &str,
) -> StoreResult<PublishedMessage> {
    let tx = db.transaction().await.map_err(pg_error)?;
    let deliveries = insert_message(&tx, message, only, idempotent, counted_as).await?;
    if deliveries > 0 {
        announce_new_work(&tx).await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(PublishedMessage { message: message.clone(), deliveries, to_claim: deliveries })
}

pub async fn get_message(db: &mut Client, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
    let column = if MessageId::parse(id_or_event_id).is_some() { "m.id" } else { "m.event_id" };
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = $1 AND {column} = $2");
    query_found(&*db, &sql, &[&app_id.as_str(), &id_or_event_id], message_from).await
}

pub async fn list_messages(
    db: &mut Client,
    app_id: &AppId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> StoreResult<Page<Message>> {
    let mut filters = Filters::default();
    filters.add_equal("m.app_id", app_id.to_string());
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    filters.add_time_range("m.created_at", filter.before, filter.after);
    let select = format!("SELECT {MESSAGE_COLUMNS} FROM messages m");
    query_page(&*db, &select, filters, "m.id", page, message_from).await
}

pub async fn list_message_deliveries(
    db: &mut Client,
    msg_id: &MessageId,
    page: &PageRequest,
    cipher: &SecretCipher,
) -> StoreResult<Page<(Endpoint, Delivery)>> {
    let mut filters = Filters::default();
    filters.add_equal("d.msg_id", msg_id.to_string());
    let select = format!(
        "SELECT {ENDPOINT_COLUMNS}, {DELIVERY_COLUMNS} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
    );
    query_page(&*db, &select, filters, "e.id", page, |row| {
        Ok((endpoint_from(row, cipher)?, delivery_from(row, ENDPOINT_COLUMN_COUNT)?))
    })
    .await
}

/// See `Messages::list_endpoint_messages`. One branch per status wanted, each an ordered range of
/// `deliveries_by_endpoint` (endpoint, status, message id) cut at `limit + 1` rows; the branches are merged in
/// message id order (a `Merge Append`, which reads each branch only as far as the page needs), and only the
/// page's rows are joined to their messages. The status is written into each branch, not bound, so even a
/// generic plan knows which range of the index each branch reads.
pub async fn list_endpoint_messages(
    db: &mut Client,
    endpoint_id: &EndpointId,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> StoreResult<Page<(Message, Delivery)>> {
    let mut filters = Filters::default();
    filters.add_equal("d.endpoint_id", endpoint_id.to_string());
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    filters.add_time_range("m.created_at", filter.before, filter.after);
    let (direction, limit) = filters.add_page_cursor("d.msg_id", page);
    let (from, conditions) = (
        if filter.narrows() { "deliveries d JOIN messages m ON m.id = d.msg_id" } else { "deliveries d" },
        filters.where_clause(),
    );
    let branches = status
        .map_or(DeliveryStatus::ALL.to_vec(), |status| vec![status])
        .into_iter()
        .map(|status| {
            format!(
                "(SELECT {DELIVERY_COLUMNS} FROM {from}{conditions} AND d.status = {} \
                 ORDER BY d.msg_id {direction} LIMIT {limit})",
                status.code()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    // The branches sit in a subquery of their own: a lone parenthesized branch takes no second ORDER BY.
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, {DELIVERY_COLUMNS} FROM \
         (SELECT * FROM ({branches}) branches ORDER BY msg_id {direction} LIMIT {limit}) d \
         JOIN messages m ON m.id = d.msg_id ORDER BY d.msg_id {direction}"
    );
    let rows = query(&*db, &sql, &filters.params()).await.map_err(pg_error)?;
    let items = rows
        .iter()
        .map(|row| Ok((message_from(row)?, delivery_from(row, MESSAGE_COLUMN_COUNT)?)))
        .collect::<ColumnResult<Vec<_>>>()?;
    Ok(Page::from_scan(items, page))
}

pub async fn resend(db: &mut Client, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
    let tx = db.transaction().await.map_err(pg_error)?;
    // A missing message or endpoint breaks a foreign key, which `pg_error` reports as `NotFound`. A delivery in
    // flight stops being this process's lease: it is pending again, for the manual attempt.
    execute(
        &tx,
        "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
         VALUES ($1, $2, 1, 0, 1, $3) ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, \
         manual = 1, next_attempt_at = EXCLUDED.next_attempt_at, claimed_by = NULL",
        &[&msg_id.as_str(), &endpoint_id.as_str(), &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    announce_new_work(&tx).await?;
    tx.commit().await.map_err(pg_error)
}

/// Executes `sql`, which changes at most one row, and answers `NotFound` when it changed none.
async fn update_one(
    db: &mut Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<()> {
    match execute(&*db, sql, params).await.map_err(pg_error)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// The filters shared by the attempt lists, `base` being the list's own condition (column, value).
pub(super) fn attempt_filters(base: (&str, &str), filter: &AttemptFilter) -> Filters {
    let mut filters = Filters::default();
    filters.add_equal(base.0, base.1.to_owned());
    if let Some(status) = filter.status {
        filters.add_equal("a.status", i64::from(status.code()));
    }
    if let Some(class) = filter.status_code_class {
        if class == 0 {
            filters.add("a.response_status_code = 0");
        } else {
            let low = i64::from(class / 100 * 100);
            let (from, to) = (filters.bind(low), filters.bind(low + 99));
            filters.add(format!("a.response_status_code BETWEEN {from} AND {to}"));
        }
    }
    if let Some(endpoint_id) = &filter.endpoint_id {
        filters.add_equal("a.endpoint_id", endpoint_id.to_string());
    }
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    filters.add_time_range("a.created_at", filter.before, filter.after);
    filters
}

pub(super) async fn list_attempts(db: &Client, filters: Filters, page: &PageRequest) -> StoreResult<Page<Attempt>> {
    let select = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN messages m ON m.id = a.msg_id");
    query_page(db, &select, filters, "a.id", page, attempt_from).await
}

pub async fn list_attempts_for_endpoint(
    db: &mut Client,
    endpoint_id: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(db, attempt_filters(("a.endpoint_id", endpoint_id.as_str()), filter), page).await
}

pub async fn list_attempts_for_message(
    db: &mut Client,
    msg_id: &MessageId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(db, attempt_filters(("a.msg_id", msg_id.as_str()), filter), page).await
}

pub async fn list_attempts_for_app(
    db: &mut Client,
    app_id: &AppId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(db, attempt_filters(("a.app_id", app_id.as_str()), filter), page).await
}

pub async fn get_attempt(db: &mut Client, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.id = $1 AND a.msg_id = $2");
    query_found(&*db, &sql, &[&attempt_id, &msg_id.as_str()], attempt_from).await
}

pub async fn get_idempotent(
    db: &mut Client,
    key: &str,
    cipher: &SecretCipher,
) -> StoreResult<Option<IdempotentResponse>> {
    let row = query_opt(
        &*db,
        "SELECT key, status, body, expires_at FROM idempotency WHERE key = $1 AND expires_at >= $2",
        &[&key, &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    let Some(row) = row else { return Ok(None) };
    let body: Vec<u8> = row.try_get(2).map_err(|err| StoreError::Internal(format!("idempotency body: {err}")))?;
    let Some(body) = idempotent_body_from(body, cipher) else { return Ok(None) };
    Ok(Some(IdempotentResponse { key: row.text(0)?, status: row.narrow(1)?, body, expires_at: row.int(3)? }))
}

/// Stores a response unless a live one exists for the key (the first response is the answer; an expired record
/// is replaced). Returns whether it was stored.
pub(super) async fn put_idempotent_in(db: &impl GenericClient, response: &IdempotentResponse) -> StoreResult<bool> {
    let stored = execute(
        db,
        "INSERT INTO idempotency (key, status, body, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, \
         expires_at = EXCLUDED.expires_at WHERE idempotency.expires_at < $5",
        &[&response.key, &i64::from(response.status), &response.body, &response.expires_at, &now_ms()],
    )
    .await
    .map_err(pg_error)?;
    Ok(stored > 0)
}

pub async fn put_idempotent(db: &mut Client, response: &IdempotentResponse, cipher: &SecretCipher) -> StoreResult<()> {
    let sealed = IdempotentResponse { body: cipher.seal_bytes(response.body.clone()), ..response.clone() };
    put_idempotent_in(&*db, &sealed).await?;
    Ok(())
}

#[async_trait]
impl Messages for PostgresStore {
    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts> {
        let mut db = self.client().await?;
        endpoint_delivery_counts(&mut db, id).await
    }

    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>> {
        let mut db = self.client().await?;
        oldest_open_delivery(&mut db, id).await
    }

    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        self.publishes.publish(message, None, idempotent).await
    }

    async fn publish_to_endpoint(
        &self,
        message: &Message,
        endpoint_id: &EndpointId,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        self.publishes.publish(message, Some(endpoint_id), idempotent).await
    }

    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
        let mut db = self.client().await?;
        get_message(&mut db, app_id, id_or_event_id).await
    }

    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let mut db = self.client().await?;
        list_messages(&mut db, app_id, filter, page).await
    }

    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>> {
        let mut db = self.client().await?;
        list_message_deliveries(&mut db, msg_id, page, &self.cipher).await
    }

    async fn list_endpoint_messages(
        &self,
        endpoint_id: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<(Message, Delivery)>> {
        let mut db = self.client().await?;
        list_endpoint_messages(&mut db, endpoint_id, filter, status, page).await
    }

    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
        let mut db = self.client().await?;
        resend(&mut db, msg_id, endpoint_id).await
    }

    async fn expunge_message_content(&self, msg_id: &MessageId) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_one(&mut db, "UPDATE messages SET payload = '' WHERE id = $1", &[&msg_id.as_str()]).await
    }

    async fn expunge_attempt_content(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_one(
            &mut db,
            "UPDATE attempts SET response = 'EXPUNGED' WHERE id = $1 AND msg_id = $2",
            &[&attempt_id, &msg_id.as_str()],
        )
        .await
    }

    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        list_attempts_for_endpoint(&mut db, endpoint_id, filter, page).await
    }

    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        list_attempts_for_message(&mut db, msg_id, filter, page).await
    }

    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let mut db = self.client().await?;
        list_attempts_for_app(&mut db, app_id, filter, page).await
    }

    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
        let mut db = self.client().await?;
        get_attempt(&mut db, msg_id, attempt_id).await
    }

    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        let mut db = self.client().await?;
        get_idempotent(&mut db, key, &self.cipher).await
    }

    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()> {
        let mut db = self.client().await?;
        put_idempotent(&mut db, response, &self.cipher).await
    }
}
