//! The messages role on SQLite: publishing a message with one delivery per accepting endpoint (and its
//! idempotent response) in one durable transaction, resends, the message, delivery and attempt lists, and the
//! responses remembered for idempotency keys.

use async_trait::async_trait;
use hookrelay_core::model::{Attempt, Delivery, DeliveryStatus, Endpoint, Message};
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AppId, EndpointId, MessageId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::operations::count_activity;
use super::rows::*;
use crate::activity::ActivityTally;
use crate::{
    AttemptFilter, DeliveryCounts, EVENT_ID_TAKEN, IdempotentResponse, MessageFilter, Messages, Page, PageRequest,
    PublishedMessage, StoreError, StoreResult,
};

/// Inserts the message and its deliveries; the caller's transaction makes it atomic.
/// Inserts the message with its deliveries: to every enabled endpoint of its application that accepts it, or with
/// `only`, to that enabled endpoint alone.
pub(super) fn insert_message(
    conn: &Connection,
    msg: &Message,
    only: Option<&EndpointId>,
    idempotent: Option<&IdempotentResponse>,
) -> StoreResult<usize> {
    conn.prepare_cached(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, forwarded_headers, \
         tags, content_type, deliver_at, payload_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            msg.id.as_str(),
            msg.app_id.as_str(),
            msg.event_id,
            msg.event_type,
            msg.payload,
            opt_to_json(&msg.channels),
            msg.created_at,
            forwarded_headers_json(&msg.forwarded_headers),
            opt_to_json(&msg.tags),
            msg.content_type,
            msg.deliver_at,
            msg.payload_expires_at
        ])
    })
    .map_err(|e| conflict_or_internal(e, EVENT_ID_TAKEN))?;

    let mut routed = Vec::new();
    if let Some(endpoint_id) = only {
        let enabled = conn
            .prepare_cached("SELECT 1 FROM endpoints WHERE id = ?1 AND app_id = ?2 AND disabled = 0")
            .and_then(|mut stmt| stmt.exists([endpoint_id.as_str(), msg.app_id.as_str()]))
            .map_err(sql_error)?;
        if !enabled {
            return Err(StoreError::NotFound);
        }
        routed.push(endpoint_id.to_string());
    } else {
        let mut targets = conn
            .prepare_cached("SELECT id, filter_types, channels FROM endpoints WHERE app_id = ?1 AND disabled = 0")
            .map_err(sql_error)?;
        let endpoints = targets
            .query_map([msg.app_id.as_str()], |row| {
                let (filter, channels) = routing_from_row(row, 1)?;
                Ok((row.get::<_, String>(0)?, filter, channels))
            })
            .map_err(sql_error)?;
        for endpoint in endpoints {
            let (endpoint_id, filter, channels) = endpoint.map_err(sql_error)?;
            if endpoint_accepts(filter.as_deref(), channels.as_deref(), &msg.event_type, msg.channels.as_deref()) {
                routed.push(endpoint_id);
            }
        }
    }
    // One single-row statement per delivery: a statement writing several rows into a table with foreign keys
    // makes SQLite copy every page it touches into a statement journal first (the keys could fail half-way).
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             VALUES (?1, ?2, 1, 0, 0, ?3)",
        )
        .map_err(sql_error)?;
    for endpoint_id in &routed {
        insert.execute(params![msg.id.as_str(), endpoint_id, msg.first_due()]).map_err(sql_error)?;
    }
    if let Some(response) = idempotent {
        put_idempotent(conn, response)?;
    }
    let mut activity = ActivityTally::default();
    activity.message(msg.created_at);
    count_activity(conn, &activity)?;
    Ok(routed.len())
}

pub(super) fn put_idempotent(conn: &Connection, response: &IdempotentResponse) -> StoreResult<()> {
    // An expired record for the same key is replaced; a live one wins (the first response is the answer).
    conn.prepare_cached(
        "INSERT INTO idempotency (key, status, body, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key) DO UPDATE SET status = excluded.status, body = excluded.body, \
         expires_at = excluded.expires_at WHERE idempotency.expires_at < ?5",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![response.key, response.status, response.body, response.expires_at, now_ms()])
    })
    .map_err(sql_error)?;
    Ok(())
}

/// Adds the message/attempt filters shared by the attempt lists.
pub(super) fn attempt_filters(base: (&str, &str), filter: &AttemptFilter) -> Filters {
    let mut filters = Filters::default();
    filters.add(format!("{} = ?", base.0), [text(base.1)]);
    if let Some(status) = filter.status {
        filters.add("a.status = ?", [Value::Integer(i64::from(status.code()))]);
    }
    if let Some(class) = filter.status_code_class {
        if class == 0 {
            filters.add("a.response_status_code = 0", []);
        } else {
            let low = i64::from(class / 100 * 100);
            filters.add("a.response_status_code BETWEEN ? AND ?", [Value::Integer(low), Value::Integer(low + 99)]);
        }
    }
    if let Some(endpoint_id) = &filter.endpoint_id {
        filters.add("a.endpoint_id = ?", [text(endpoint_id.as_str())]);
    }
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    filters.add_time_range("a.created_at", filter.before, filter.after);
    filters
}

pub(super) fn list_attempts(conn: &Connection, filters: Filters, page: &PageRequest) -> StoreResult<Page<Attempt>> {
    let select = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN messages m ON m.id = a.msg_id");
    query_page(conn, &select, filters, "a.id", page, attempt_from_row)
}

/// See `Messages::list_endpoint_messages`. One branch per status wanted, each an ordered range of
/// `deliveries_by_endpoint` (endpoint, status, message id) cut at `limit + 1` rows; the branches are merged in
/// message id order, and only the page's rows are joined to their messages. `CROSS JOIN` keeps SQLite from
/// turning a join around: the deliveries always lead.
fn list_endpoint_messages(
    conn: &Connection,
    endpoint_id: &EndpointId,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> StoreResult<Page<(Message, Delivery)>> {
    let statuses = status.map_or(DeliveryStatus::ALL.to_vec(), |status| vec![status]);
    let from = if filter.narrows() { "deliveries d CROSS JOIN messages m ON m.id = d.msg_id" } else { "deliveries d" };
    let (mut branches, mut params) = (Vec::new(), Vec::new());
    for status in statuses {
        let mut filters = Filters::default();
        filters.add("d.endpoint_id = ?", [text(endpoint_id.as_str())]);
        filters.add("d.status = ?", [Value::Integer(i64::from(status.code()))]);
        filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
        filters.add_time_range("m.created_at", filter.before, filter.after);
        let (tail, branch_params) = filters.finish_page("d.msg_id", page);
        // A branch's own ORDER BY and LIMIT need a subquery: SQLite takes them only at the end of a compound.
        branches.push(format!("SELECT * FROM (SELECT {DELIVERY_COLUMNS} FROM {from}{tail})"));
        params.extend(branch_params);
    }
    let direction = if page.scan_descending() { "DESC" } else { "ASC" };
    params.push(Value::Integer(i64::try_from(page.limit).unwrap_or(i64::MAX - 1) + 1));
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, {DELIVERY_COLUMNS} FROM ({} ORDER BY msg_id {direction} LIMIT ?) d \
         CROSS JOIN messages m ON m.id = d.msg_id ORDER BY d.msg_id {direction}",
        branches.join(" UNION ALL ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |row| {
            Ok((message_from_row(row)?, delivery_from_row(row, MESSAGE_COLUMN_COUNT)?))
        })
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    Ok(Page::from_scan(rows, page))
}

#[async_trait]
impl Messages for SqliteStore {
    async fn endpoint_delivery_counts(&self, id: &EndpointId) -> StoreResult<DeliveryCounts> {
        let id = id.clone();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT status, COUNT(*) FROM deliveries WHERE endpoint_id = ?1 GROUP BY status")
                    .map_err(sql_error)?;
                let mut counts = DeliveryCounts::default();
                let rows = stmt
                    .query_map([id.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                    .map_err(sql_error)?;
                for row in rows {
                    let (status, count) = row.map_err(sql_error)?;
                    let count = count.max(0) as u64;
                    match status {
                        0 => counts.success = count,
                        1 => counts.pending = count,
                        2 => counts.fail = count,
                        _ => counts.sending = count,
                    }
                }
                Ok(counts)
            })
            .await
    }

    async fn oldest_open_delivery(&self, id: &EndpointId) -> StoreResult<Option<Delivery>> {
        let id = id.clone();
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d \
                     WHERE d.endpoint_id = ?1 AND d.status IN (1, 3) ORDER BY d.msg_id LIMIT 1"
                ))
                .and_then(|mut stmt| stmt.query_row([id.as_str()], |row| delivery_from_row(row, 0)).optional())
                .map_err(sql_error)
            })
            .await
    }

    async fn publish_message(
        &self,
        message: &Message,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        let (msg, idempotent) = (message.clone(), idempotent.cloned());
        let deliveries = self
            .db
            .write(Durability::PowerLoss, move |conn| insert_message(conn, &msg, None, idempotent.as_ref()))
            .await?;
        Ok(PublishedMessage { message: message.clone(), deliveries, to_claim: deliveries })
    }

    async fn publish_to_endpoint(
        &self,
        message: &Message,
        endpoint_id: &EndpointId,
        idempotent: Option<&IdempotentResponse>,
    ) -> StoreResult<PublishedMessage> {
        let (msg, endpoint_id, idempotent) = (message.clone(), endpoint_id.clone(), idempotent.cloned());
        let deliveries = self
            .db
            .write(Durability::PowerLoss, move |conn| {
                insert_message(conn, &msg, Some(&endpoint_id), idempotent.as_ref())
            })
            .await?;
        Ok(PublishedMessage { message: message.clone(), deliveries, to_claim: deliveries })
    }

    async fn get_message(&self, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
        let column = if MessageId::parse(id_or_event_id).is_some() { "m.id" } else { "m.event_id" };
        let (app_id, key) = (app_id.clone(), id_or_event_id.to_owned());
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = ?1 AND {column} = ?2"
                ))
                .and_then(|mut stmt| stmt.query_row([app_id.as_str(), &key], message_from_row))
                .map_err(not_found_or_internal)
            })
            .await
    }

    async fn list_messages(
        &self,
        app_id: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let (app_id, filter, page) = (app_id.clone(), filter.clone(), page.clone());
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                filters.add("m.app_id = ?", [text(app_id.as_str())]);
                filters.add_message_filters(
                    filter.event_types.as_deref(),
                    filter.channel.as_deref(),
                    filter.tag.as_deref(),
                );
                filters.add_time_range("m.created_at", filter.before, filter.after);
                let select = format!("SELECT {MESSAGE_COLUMNS} FROM messages m");
                query_page(conn, &select, filters, "m.id", &page, message_from_row)
            })
            .await
    }

    async fn list_message_deliveries(
        &self,
        msg_id: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Page<(Endpoint, Delivery)>> {
        let (msg_id, page, cipher) = (msg_id.clone(), page.clone(), self.cipher.clone());
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                filters.add("d.msg_id = ?", [text(msg_id.as_str())]);
                let select = format!(
                    "SELECT {ENDPOINT_COLUMNS}, {DELIVERY_COLUMNS} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
                );
                query_page(conn, &select, filters, "e.id", &page, |row| {
                    Ok((endpoint_from_row(row, &cipher)?, delivery_from_row(row, ENDPOINT_COLUMN_COUNT)?))
                })
            })
            .await
    }

    async fn list_endpoint_messages(
        &self,
        endpoint_id: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<(Message, Delivery)>> {
        let (endpoint_id, filter, page) = (endpoint_id.clone(), filter.clone(), page.clone());
        self.db.read(move |conn| list_endpoint_messages(conn, &endpoint_id, &filter, status, &page)).await
    }

    async fn resend(&self, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
        let (msg_id, endpoint_id) = (msg_id.clone(), endpoint_id.clone());
        self.db
            .write(Durability::PowerLoss, move |conn| {
                conn.execute(
                    "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
                     VALUES (?1, ?2, 1, 0, 1, ?3) ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, \
                     manual = 1, next_attempt_at = excluded.next_attempt_at",
                    params![msg_id.as_str(), endpoint_id.as_str(), now_ms()],
                )
                .map_err(|e| match conflict_or_internal(e, "") {
                    // A foreign-key failure: the message or the endpoint is gone.
                    StoreError::Conflict(_) => StoreError::NotFound,
                    other => other,
                })?;
                Ok(())
            })
            .await
    }

    async fn expunge_message_content(&self, msg_id: &MessageId) -> StoreResult<()> {
        let msg_id = msg_id.clone();
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let found = conn
                    .prepare_cached("UPDATE messages SET payload = '' WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute([msg_id.as_str()]))
                    .map_err(sql_error)?;
                if found == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }

    async fn expunge_attempt_content(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<()> {
        let (msg_id, attempt_id) = (msg_id.clone(), attempt_id.to_owned());
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let found = conn
                    .prepare_cached("UPDATE attempts SET response = 'EXPUNGED' WHERE id = ?1 AND msg_id = ?2")
                    .and_then(|mut stmt| stmt.execute([attempt_id.as_str(), msg_id.as_str()]))
                    .map_err(sql_error)?;
                if found == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }

    async fn list_attempts_for_endpoint(
        &self,
        endpoint_id: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let (endpoint_id, filter, page) = (endpoint_id.clone(), filter.clone(), page.clone());
        self.db
            .read(move |conn| {
                list_attempts(conn, attempt_filters(("a.endpoint_id", endpoint_id.as_str()), &filter), &page)
            })
            .await
    }

    async fn list_attempts_for_message(
        &self,
        msg_id: &MessageId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let (msg_id, filter, page) = (msg_id.clone(), filter.clone(), page.clone());
        self.db
            .read(move |conn| list_attempts(conn, attempt_filters(("a.msg_id", msg_id.as_str()), &filter), &page))
            .await
    }

    async fn list_attempts_for_app(
        &self,
        app_id: &AppId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let (app_id, filter, page) = (app_id.clone(), filter.clone(), page.clone());
        self.db
            .read(move |conn| list_attempts(conn, attempt_filters(("a.app_id", app_id.as_str()), &filter), &page))
            .await
    }

    async fn get_attempt(&self, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
        let (msg_id, attempt_id) = (msg_id.clone(), attempt_id.to_owned());
        self.db
            .read(move |conn| {
                conn.query_row(
                    &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.id = ?1 AND a.msg_id = ?2"),
                    [attempt_id.as_str(), msg_id.as_str()],
                    attempt_from_row,
                )
                .map_err(not_found_or_internal)
            })
            .await
    }

    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        let key = key.to_owned();
        let stored = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT key, status, body, expires_at FROM idempotency WHERE key = ?1 AND expires_at >= ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![key, now_ms()], |row| {
                        Ok(IdempotentResponse {
                            key: row.get(0)?,
                            status: row.get(1)?,
                            body: row.get(2)?,
                            expires_at: row.get(3)?,
                        })
                    })
                    .optional()
                })
                .map_err(sql_error)
            })
            .await?;
        Ok(stored.and_then(|response| {
            let body = idempotent_body_from(response.body, &self.cipher)?;
            Some(IdempotentResponse { body, ..response })
        }))
    }

    async fn put_idempotent(&self, response: &IdempotentResponse) -> StoreResult<()> {
        let response = IdempotentResponse { body: self.cipher.seal_bytes(response.body.clone()), ..response.clone() };
        self.db.write(Durability::PowerLoss, move |conn| put_idempotent(conn, &response)).await
    }
}
