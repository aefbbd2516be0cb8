//! SQL of applications, event types, endpoints, messages, deliveries and attempts as the API reads them,
//! idempotency records and background tasks.

use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AppId, EndpointId, MessageId};

use super::rows::*;
use super::{announce_new_work, pg_error};
use crate::store::*;
use crate::{Page, PageRequest, StoreError};

/// The Conflict texts the API passes on to its clients, worded as the SQLite backend words them.
const APP_UID_TAKEN: &str = "an application with this uid already exists";
const EVENT_TYPE_TAKEN: &str = "an event type with this name already exists";
const ENDPOINT_UID_TAKEN: &str = "an endpoint with this uid already exists in this application";
const TASK_ID_TAKEN: &str = "a background task with this id already exists";
/// Only another process can get there first: within one process the API serialises requests with the same key.
const IDEMPOTENCY_KEY_TAKEN: &str =
    "a request with this idempotency-key was being processed at the same time; repeat it to get that response";

async fn write_app(db: &Client, app: &Application, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO applications (id, uid, name, rate_limit, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    } else {
        "UPDATE applications SET uid = $2, name = $3, rate_limit = $4, metadata = $5, created_at = $6, \
         updated_at = $7 WHERE id = $1"
    };
    let changed = execute(
        db,
        sql,
        &[
            &app.id.as_str(),
            &app.uid,
            &app.name,
            &app.rate_limit.map(i64::from),
            &to_json(&app.metadata),
            &app.created_at,
            &app.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, APP_UID_TAKEN))?;
    expect_changed(changed)
}

pub async fn create_app(db: &mut Client, app: &Application) -> StoreResult<()> {
    write_app(db, app, true).await
}

pub async fn get_app(db: &mut Client, id_or_uid: &str) -> StoreResult<Application> {
    let column = if AppId::parse(id_or_uid).is_some() { "id" } else { "uid" };
    let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE {column} = $1");
    query_found(&*db, &sql, &[&id_or_uid], app_from).await
}

pub async fn list_apps(db: &mut Client, page: &PageRequest) -> StoreResult<Page<Application>> {
    let select = format!("SELECT {APP_COLUMNS} FROM applications");
    query_page(&*db, &select, Filters::default(), "id", page, app_from).await
}

pub async fn update_app(db: &mut Client, app: &Application) -> StoreResult<()> {
    write_app(db, app, false).await
}

pub async fn delete_app(db: &mut Client, id: &AppId) -> StoreResult<()> {
    // Endpoints, messages, sources and everything below them go with it: their foreign keys cascade.
    let changed = execute(&*db, "DELETE FROM applications WHERE id = $1", &[&id.as_str()]).await.map_err(pg_error)?;
    expect_changed(changed)
}

async fn write_event_type(db: &Client, et: &EventType, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO event_types (name, description, archived, deprecated, schemas, feature_flag, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    } else {
        "UPDATE event_types SET description = $2, archived = $3, deprecated = $4, schemas = $5, \
         feature_flag = $6, created_at = $7, updated_at = $8 WHERE name = $1"
    };
    let changed = execute(
        db,
        sql,
        &[
            &et.name,
            &et.description,
            &flag(et.archived),
            &flag(et.deprecated),
            &opt_to_json(&et.schemas),
            &et.feature_flag,
            &et.created_at,
            &et.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, EVENT_TYPE_TAKEN))?;
    expect_changed(changed)
}

pub async fn create_event_type(db: &mut Client, event_type: &EventType) -> StoreResult<()> {
    write_event_type(db, event_type, true).await
}

pub async fn get_event_type(db: &mut Client, name: &str) -> StoreResult<EventType> {
    let sql = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = $1");
    query_found(&*db, &sql, &[&name], event_type_from).await
}

pub async fn list_event_types(
    db: &mut Client,
    page: &PageRequest,
    include_archived: bool,
) -> StoreResult<Page<EventType>> {
    let mut filters = Filters::default();
    if !include_archived {
        filters.add("archived = 0");
    }
    let select = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types");
    query_page(&*db, &select, filters, "name", page, event_type_from).await
}

pub async fn update_event_type(db: &mut Client, event_type: &EventType) -> StoreResult<()> {
    write_event_type(db, event_type, false).await
}

pub async fn expunge_event_type(db: &mut Client, name: &str) -> StoreResult<()> {
    let changed = execute(&*db, "DELETE FROM event_types WHERE name = $1", &[&name]).await.map_err(pg_error)?;
    expect_changed(changed)
}

pub async fn unknown_event_types(db: &mut Client, names: &[String]) -> StoreResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(&*db, "SELECT name FROM event_types WHERE name = ANY($1)", &[&names]).await.map_err(pg_error)?;
    let known = rows.iter().map(|row| row.text(0)).collect::<ColumnResult<std::collections::HashSet<_>>>()?;
    Ok(names.iter().filter(|name| !known.contains(*name)).cloned().collect())
}

async fn write_endpoint(db: &Client, ep: &Endpoint, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO endpoints (id, app_id, uid, url, description, filter_types, channels, rate_limit, disabled, \
         metadata, version, headers, secret, previous_secrets, created_at, updated_at, signature_schemes, fifo) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    } else {
        // Re-enabling an endpoint forgets its failing streak, so it is not disabled again at once.
        "UPDATE endpoints SET uid = $3, url = $4, description = $5, filter_types = $6, channels = $7, \
         rate_limit = $8, disabled = $9, metadata = $10, version = $11, headers = $12, secret = $13, \
         previous_secrets = $14, created_at = $15, updated_at = $16, signature_schemes = $17, fifo = $18, \
         failing_since = CASE WHEN $9::bigint = 0 AND disabled = 1 THEN NULL ELSE failing_since END \
         WHERE id = $1 AND app_id = $2"
    };
    let (secret, previous_secrets) = endpoint_secret_columns(&ep.secrets, cipher);
    let changed = execute(
        db,
        sql,
        &[
            &ep.id.as_str(),
            &ep.app_id.as_str(),
            &ep.uid,
            &ep.url,
            &ep.description,
            &opt_to_json(&ep.filter_types),
            &opt_to_json(&ep.channels),
            &ep.rate_limit.map(i64::from),
            &flag(ep.disabled),
            &to_json(&ep.metadata),
            &i64::from(ep.version),
            &to_json(&ep.headers),
            &secret,
            &previous_secrets,
            &ep.created_at,
            &ep.updated_at,
            &signature_schemes_json(&ep.signature_schemes),
            &flag(ep.ordering == DeliveryOrder::Fifo),
        ],
    )
    .await
    .map_err(|err| conflict_as(err, ENDPOINT_UID_TAKEN))?;
    expect_changed(changed)
}

pub async fn create_endpoint(db: &mut Client, endpoint: &Endpoint, cipher: &SecretCipher) -> StoreResult<()> {
    write_endpoint(db, endpoint, true, cipher).await
}

pub async fn get_endpoint(
    db: &mut Client,
    app_id: &AppId,
    id_or_uid: &str,
    cipher: &SecretCipher,
) -> StoreResult<Endpoint> {
    let column = if EndpointId::parse(id_or_uid).is_some() { "e.id" } else { "e.uid" };
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e WHERE e.app_id = $1 AND {column} = $2");
    query_found(&*db, &sql, &[&app_id.as_str(), &id_or_uid], |row| endpoint_from(row, cipher)).await
}

pub async fn list_endpoints(
    db: &mut Client,
    app_id: &AppId,
    page: &PageRequest,
    cipher: &SecretCipher,
) -> StoreResult<Page<Endpoint>> {
    let mut filters = Filters::default();
    filters.add_equal("e.app_id", app_id.to_string());
    let select = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e");
    query_page(&*db, &select, filters, "e.id", page, |row| endpoint_from(row, cipher)).await
}

pub async fn count_endpoints(db: &mut Client, app_id: &AppId) -> StoreResult<u64> {
    query_count(&*db, "SELECT COUNT(*) FROM endpoints WHERE app_id = $1", &[&app_id.as_str()]).await
}

pub async fn update_endpoint(db: &mut Client, endpoint: &Endpoint, cipher: &SecretCipher) -> StoreResult<()> {
    write_endpoint(db, endpoint, false, cipher).await
}

pub async fn delete_endpoint(db: &mut Client, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
    let changed =
        execute(&*db, "DELETE FROM endpoints WHERE id = $1 AND app_id = $2", &[&id.as_str(), &app_id.as_str()])
            .await
            .map_err(pg_error)?;
    expect_changed(changed)
}

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
pub(super) async fn insert_message(
    tx: &impl GenericClient,
    msg: &Message,
    idempotent: Option<&IdempotentResponse>,
) -> StoreResult<usize> {
    execute(
        tx,
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &msg.id.as_str(),
            &msg.app_id.as_str(),
            &msg.event_id,
            &msg.event_type,
            &msg.payload,
            &opt_to_json(&msg.channels),
            &msg.created_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, EVENT_ID_TAKEN))?;

    // Routing is the core's rule (`endpoint_accepts`), applied here rather than rewritten in SQL.
    let endpoints = query(
        tx,
        "SELECT id, filter_types, channels FROM endpoints WHERE app_id = $1 AND disabled = 0",
        &[&msg.app_id.as_str()],
    )
    .await
    .map_err(pg_error)?;
    let mut targets = Vec::new();
    for row in &endpoints {
        let (filter, channels) = routing_from(row, 1)?;
        if endpoint_accepts(filter.as_deref(), channels.as_deref(), &msg.event_type, msg.channels.as_deref()) {
            targets.push(row.text(0)?);
        }
    }
    if !targets.is_empty() {
        execute(
            tx,
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
             SELECT $1, endpoint_id, 1, 0, 0, $3 FROM unnest($2::text[]) AS endpoint_id",
            &[&msg.id.as_str(), &targets, &msg.created_at],
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
    Ok(targets.len())
}

pub async fn publish_message(
    db: &mut Client,
    message: &Message,
    idempotent: Option<&IdempotentResponse>,
) -> StoreResult<PublishedMessage> {
    let tx = db.transaction().await.map_err(pg_error)?;
    let deliveries = insert_message(&tx, message, idempotent).await?;
    if deliveries > 0 {
        announce_new_work(&tx).await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(PublishedMessage { message: message.clone(), deliveries })
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
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref());
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

/// The filters shared by the attempt lists, `base` being the list's own condition (column, value).
fn attempt_filters(base: (&str, &str), filter: &AttemptFilter) -> Filters {
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
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref());
    filters.add_time_range("a.created_at", filter.before, filter.after);
    filters
}

async fn list_attempts(db: &Client, filters: Filters, page: &PageRequest) -> StoreResult<Page<Attempt>> {
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
async fn put_idempotent_in(db: &impl GenericClient, response: &IdempotentResponse) -> StoreResult<bool> {
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

pub async fn create_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    let changed = execute(
        &*db,
        "INSERT INTO background_tasks (id, kind, app_id, endpoint_id, status, since, until, cursor, data, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &task.id.as_str(),
            &task.kind.name(),
            &task.app_id.as_str(),
            &task.endpoint_id.as_str(),
            &task.status.name(),
            &task.window.since,
            &task.window.until,
            &task.cursor.as_ref().map(MessageId::as_str),
            &progress_json(&task.progress),
            &task.created_at,
            &task.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_as(err, TASK_ID_TAKEN))?;
    expect_changed(changed)
}

pub async fn get_background_task(db: &mut Client, id: &str) -> StoreResult<BackgroundTask> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = $1");
    query_found(&*db, &sql, &[&id], task_from).await
}

pub async fn list_background_tasks(
    db: &mut Client,
    filter: &TaskFilter,
    page: &PageRequest,
) -> StoreResult<Page<BackgroundTask>> {
    let mut filters = Filters::default();
    if let Some(status) = filter.status {
        filters.add_equal("status", status.name().to_owned());
    }
    if let Some(kind) = filter.kind {
        filters.add_equal("kind", kind.name().to_owned());
    }
    let select = format!("SELECT {TASK_COLUMNS} FROM background_tasks");
    query_page(&*db, &select, filters, "id", page, task_from).await
}

/// Saves what changes while a task runs; the kind, window and owners are fixed when it is created.
pub async fn update_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    let changed = execute(
        &*db,
        "UPDATE background_tasks SET status = $2, cursor = $3, data = $4, updated_at = $5 WHERE id = $1",
        &[
            &task.id.as_str(),
            &task.status.name(),
            &task.cursor.as_ref().map(MessageId::as_str),
            &progress_json(&task.progress),
            &task.updated_at,
        ],
    )
    .await
    .map_err(pg_error)?;
    expect_changed(changed)
}
