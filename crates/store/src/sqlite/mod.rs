//! The embedded SQLite backend: one database file in WAL mode, written by a group-commit writer thread and
//! read through a small connection pool (see `connections`). Only one process may open a database file at a
//! time (a lock file enforces it), which is what lets `requeue_interrupted` take back every lease at start.

mod backup;
mod checkpoint;
mod claim;
mod connections;
pub(crate) mod files;
mod flush;
mod recovery;
mod rows;
mod schema;
mod secrets;
mod sources;
mod stats;
mod tokens;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryOrder, DeliveryStatus, Endpoint, EventType, InboundEvent,
    InboundRejections, InboundStatus, Message, Source, TimeWindow,
};
use hookrelay_core::routing::endpoint_accepts;
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_core::token::{ApiToken, TokenDigest};
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

pub use self::backup::{BackupReport, backup};
use self::connections::{Connections, Durability, sql_error};
use self::rows::*;
use crate::store::*;
use crate::{Page, PageRequest, StoreError};

/// The SQLite-backed [`Store`].
pub struct SqliteStore {
    db: Connections,
    path: PathBuf,
    /// Seals secrets on their way into the database and opens them on their way out.
    cipher: Arc<SecretCipher>,
    /// Held for the life of the store: the OS releases the lock when the process dies, even on SIGKILL.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date, storing secrets in
    /// plaintext. Fails if another process has it open.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_cipher(path, SecretCipher::plaintext())
    }

    /// Like [`open`](Self::open), with secrets sealed by `cipher`. Fails if the database holds secrets sealed
    /// with a key the cipher does not have.
    pub fn open_with_cipher(path: &Path, cipher: SecretCipher) -> StoreResult<Self> {
        let lock = files::open_lock_file(path)?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "another hookrelay process is using {}; stop it or choose another data directory",
                path.display()
            ))
        })?;
        files::make_private(path)?;
        let db = Connections::open(path, schema::migrate)?;
        check_sealed_keys(path, &cipher)?;
        Ok(Self { db, path: path.to_owned(), cipher: Arc::new(cipher), _lock: lock })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Fails, naming the setting to fix, when the (migrated) database at `path` holds secrets sealed with a key
/// `cipher` does not have.
fn check_sealed_keys(path: &Path, cipher: &SecretCipher) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(sql_error)?;
    let mut stmt = conn.prepare(SEALED_KEY_IDS_SQL).map_err(sql_error)?;
    let prefixes = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(sql_error)?;
    check_sealed_key_ids(&prefixes, cipher)
}

/// The lock file that keeps a second process away from the database at `path` (`copy` checks it too, to tell a
/// user who forgot to stop the server what to do).
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    path.with_extension("lock")
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn query_page<T>(
    conn: &Connection,
    select: &str,
    filters: Filters,
    cursor_column: &str,
    page: &PageRequest,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Page<T>> {
    let (tail, params) = filters.finish_page(cursor_column, page);
    let mut stmt = conn.prepare_cached(&format!("{select}{tail}")).map_err(sql_error)?;
    let rows = stmt
        .query_map(params_from_iter(params), map)
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    Ok(Page::from_scan(rows, page))
}

fn write_app(conn: &Connection, app: &Application, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO applications (id, uid, name, rate_limit, metadata, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    } else {
        "UPDATE applications SET uid = ?2, name = ?3, rate_limit = ?4, metadata = ?5, created_at = ?6, \
         updated_at = ?7 WHERE id = ?1"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                app.id.as_str(),
                app.uid,
                app.name,
                app.rate_limit,
                to_json(&app.metadata),
                app.created_at,
                app.updated_at
            ])
        })
        .map_err(|e| conflict_or_internal(e, "an application with this uid already exists"))?;
    expect_changed(changed)
}

fn write_event_type(conn: &Connection, et: &EventType, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO event_types (name, description, archived, deprecated, schemas, feature_flag, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    } else {
        "UPDATE event_types SET description = ?2, archived = ?3, deprecated = ?4, schemas = ?5, \
         feature_flag = ?6, created_at = ?7, updated_at = ?8 WHERE name = ?1"
    };
    let changed = conn
        .execute(
            sql,
            params![
                et.name,
                et.description,
                et.archived,
                et.deprecated,
                opt_to_json(&et.schemas),
                et.feature_flag,
                et.created_at,
                et.updated_at
            ],
        )
        .map_err(|e| conflict_or_internal(e, "an event type with this name already exists"))?;
    expect_changed(changed)
}

fn write_endpoint(conn: &Connection, ep: &Endpoint, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO endpoints (id, app_id, uid, url, description, filter_types, channels, rate_limit, disabled, \
         metadata, version, headers, secret, previous_secrets, created_at, updated_at, signature_schemes, fifo) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    } else {
        "UPDATE endpoints SET uid = ?3, url = ?4, description = ?5, filter_types = ?6, channels = ?7, \
         rate_limit = ?8, disabled = ?9, metadata = ?10, version = ?11, headers = ?12, secret = ?13, \
         previous_secrets = ?14, created_at = ?15, updated_at = ?16, signature_schemes = ?17, fifo = ?18, \
         failing_since = CASE WHEN ?9 = 0 AND disabled = 1 THEN NULL ELSE failing_since END \
         WHERE id = ?1 AND app_id = ?2"
    };
    let (secret, previous_secrets) = endpoint_secret_columns(&ep.secrets, cipher);
    let changed = conn
        .execute(
            sql,
            params![
                ep.id.as_str(),
                ep.app_id.as_str(),
                ep.uid,
                ep.url,
                ep.description,
                opt_to_json(&ep.filter_types),
                opt_to_json(&ep.channels),
                ep.rate_limit,
                ep.disabled,
                to_json(&ep.metadata),
                ep.version,
                to_json(&ep.headers),
                secret,
                previous_secrets,
                ep.created_at,
                ep.updated_at,
                signature_schemes_json(&ep.signature_schemes),
                ep.ordering == DeliveryOrder::Fifo
            ],
        )
        .map_err(|e| conflict_or_internal(e, "an endpoint with this uid already exists in this application"))?;
    expect_changed(changed)
}

/// Inserts the message and its deliveries; the caller's transaction makes it atomic.
fn insert_message(conn: &Connection, msg: &Message, idempotent: Option<&IdempotentResponse>) -> StoreResult<usize> {
    conn.prepare_cached(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            msg.id.as_str(),
            msg.app_id.as_str(),
            msg.event_id,
            msg.event_type,
            msg.payload,
            opt_to_json(&msg.channels),
            msg.created_at
        ])
    })
    .map_err(|e| conflict_or_internal(e, EVENT_ID_TAKEN))?;

    let mut targets = conn
        .prepare_cached("SELECT id, filter_types, channels FROM endpoints WHERE app_id = ?1 AND disabled = 0")
        .map_err(sql_error)?;
    let endpoints = targets
        .query_map([msg.app_id.as_str()], |row| {
            let (filter, channels) = routing_from_row(row, 1)?;
            Ok((row.get::<_, String>(0)?, filter, channels))
        })
        .map_err(sql_error)?;
    let mut routed = Vec::new();
    for endpoint in endpoints {
        let (endpoint_id, filter, channels) = endpoint.map_err(sql_error)?;
        if endpoint_accepts(filter.as_deref(), channels.as_deref(), &msg.event_type, msg.channels.as_deref()) {
            routed.push(endpoint_id);
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
        insert.execute(params![msg.id.as_str(), endpoint_id, msg.created_at]).map_err(sql_error)?;
    }
    if let Some(response) = idempotent {
        put_idempotent(conn, response)?;
    }
    Ok(routed.len())
}

fn put_idempotent(conn: &Connection, response: &IdempotentResponse) -> StoreResult<()> {
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
fn attempt_filters(base: (&str, &str), filter: &AttemptFilter) -> Filters {
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
    filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref());
    filters.add_time_range("a.created_at", filter.before, filter.after);
    filters
}

fn list_attempts(conn: &Connection, filters: Filters, page: &PageRequest) -> StoreResult<Page<Attempt>> {
    let select = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN messages m ON m.id = a.msg_id");
    query_page(conn, &select, filters, "a.id", page, attempt_from_row)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        let app = app.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_app(conn, &app, true)).await
    }

    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        let column = if AppId::parse(id_or_uid).is_some() { "id" } else { "uid" };
        let key = id_or_uid.to_owned();
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM applications WHERE {column} = ?1"))
                    .and_then(|mut stmt| stmt.query_row([key], app_from_row))
                    .map_err(not_found_or_internal)
            })
            .await
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        let page = page.clone();
        self.db
            .read(move |conn| {
                let select = format!("SELECT {APP_COLUMNS} FROM applications");
                query_page(conn, &select, Filters::default(), "id", &page, app_from_row)
            })
            .await
    }

    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        let app = app.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_app(conn, &app, false)).await
    }

    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        let id = id.clone();
        self.db
            .write(Durability::PowerLoss, move |conn| {
                // Endpoints, messages, sources and everything below them go with it: every connection turns
                // `foreign_keys` on, and their foreign keys cascade.
                expect_changed(
                    conn.execute("DELETE FROM applications WHERE id = ?1", [id.as_str()]).map_err(sql_error)?,
                )
            })
            .await
    }

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let et = event_type.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_event_type(conn, &et, true)).await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let name = name.to_owned();
        self.db
            .read(move |conn| {
                conn.query_row(
                    &format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = ?1"),
                    [name],
                    event_type_from_row,
                )
                .map_err(not_found_or_internal)
            })
            .await
    }

    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>> {
        let page = page.clone();
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                if !include_archived {
                    filters.add("archived = 0", []);
                }
                let select = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types");
                query_page(conn, &select, filters, "name", &page, event_type_from_row)
            })
            .await
    }

    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let et = event_type.clone();
        self.db.write(Durability::PowerLoss, move |conn| write_event_type(conn, &et, false)).await
    }

    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.db
            .write(Durability::PowerLoss, move |conn| {
                expect_changed(conn.execute("DELETE FROM event_types WHERE name = ?1", [&name]).map_err(sql_error)?)
            })
            .await
    }

    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let names = names.to_vec();
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                filters.add_in("name", &names);
                let mut stmt = conn
                    .prepare(&format!("SELECT name FROM event_types{}", filters.where_clause()))
                    .map_err(sql_error)?;
                let known = stmt
                    .query_map(params_from_iter(filters.params), |row| row.get::<_, String>(0))
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<std::collections::HashSet<_>>>()
                    .map_err(sql_error)?;
                Ok(names.into_iter().filter(|name| !known.contains(name)).collect())
            })
            .await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let (ep, cipher) = (endpoint.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| write_endpoint(conn, &ep, true, &cipher)).await
    }

    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint> {
        let column = if EndpointId::parse(id_or_uid).is_some() { "e.id" } else { "e.uid" };
        let (app_id, key, cipher) = (app_id.clone(), id_or_uid.to_owned(), self.cipher.clone());
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints e WHERE e.app_id = ?1 AND {column} = ?2"
                ))
                .and_then(|mut stmt| stmt.query_row([app_id.as_str(), &key], |row| endpoint_from_row(row, &cipher)))
                .map_err(not_found_or_internal)
            })
            .await
    }

    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let (app_id, page, cipher) = (app_id.clone(), page.clone(), self.cipher.clone());
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                filters.add("e.app_id = ?", [text(app_id.as_str())]);
                let select = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e");
                query_page(conn, &select, filters, "e.id", &page, |row| endpoint_from_row(row, &cipher))
            })
            .await
    }

    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64> {
        let app_id = app_id.clone();
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = ?1")
                    .and_then(|mut stmt| stmt.query_row([app_id.as_str()], |row| row.get::<_, i64>(0)))
                    .map(|count| count.max(0) as u64)
                    .map_err(sql_error)
            })
            .await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let (ep, cipher) = (endpoint.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| write_endpoint(conn, &ep, false, &cipher)).await
    }

    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
        let (app_id, id) = (app_id.clone(), id.clone());
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let changed = conn
                    .execute("DELETE FROM endpoints WHERE id = ?1 AND app_id = ?2", [id.as_str(), app_id.as_str()])
                    .map_err(sql_error)?;
                expect_changed(changed)
            })
            .await
    }

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
        let deliveries =
            self.db.write(Durability::PowerLoss, move |conn| insert_message(conn, &msg, idempotent.as_ref())).await?;
        Ok(PublishedMessage { message: message.clone(), deliveries })
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
                filters.add_message_filters(filter.event_types.as_deref(), filter.channel.as_deref());
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
            .write(Durability::ProcessCrash, move |conn| {
                claim::claim_due(conn, now, limit, lease_until, &skip, &cipher)
            })
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

    async fn disable_failing_endpoints(&self, failing_since_before: UnixMillis) -> StoreResult<Vec<DisabledEndpoint>> {
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE endpoints SET disabled = 1, updated_at = ?2 \
                         WHERE disabled = 0 AND failing_since < ?1 RETURNING app_id, id, failing_since",
                    )
                    .map_err(sql_error)?;
                let disabled = stmt
                    .query_map(params![failing_since_before, now_ms()], |row| {
                        Ok(DisabledEndpoint {
                            app_id: AppId::from_trusted(row.get(0)?),
                            endpoint_id: EndpointId::from_trusted(row.get(1)?),
                            failing_since: row.get(2)?,
                        })
                    })
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql_error)?;
                Ok(disabled)
            })
            .await
    }

    async fn create_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let task = task.clone();
        self.db.write(Durability::PowerLoss, move |conn| recovery::write_task(conn, &task, true)).await
    }

    async fn get_background_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = ?1"))
                    .and_then(|mut stmt| stmt.query_row([id], task_from_row))
                    .map_err(not_found_or_internal)
            })
            .await
    }

    async fn purge_payloads(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        // Ids start with their creation time, so the primary key finds old messages without another index.
        let below = format!("{}{}", MessageId::PREFIX, hookrelay_core::id::min_body_at(before));
        self.db
            .write(Durability::PowerLoss, move |conn| {
                let purged = conn
                    .prepare_cached(
                        "UPDATE messages SET payload = '{}' WHERE id IN (SELECT m.id FROM messages m \
                         WHERE m.id < ?1 AND m.payload != '{}' AND NOT EXISTS (SELECT 1 FROM deliveries d \
                         WHERE d.msg_id = m.id AND d.status IN (1, 3)) LIMIT ?2)",
                    )
                    .and_then(|mut stmt| stmt.execute(params![below, limit as i64]))
                    .map_err(sql_error)?;
                Ok(purged as u64)
            })
            .await
    }

    async fn list_background_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackgroundTask>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.db
            .read(move |conn| {
                let mut filters = Filters::default();
                if let Some(status) = filter.status {
                    filters.add("status = ?", [text(status.name())]);
                }
                if let Some(kind) = filter.kind {
                    filters.add("kind = ?", [text(kind.name())]);
                }
                let select = format!("SELECT {TASK_COLUMNS} FROM background_tasks");
                query_page(conn, &select, filters, "id", &page, task_from_row)
            })
            .await
    }

    async fn update_background_task(&self, task: &BackgroundTask) -> StoreResult<()> {
        let task = task.clone();
        self.db.write(Durability::PowerLoss, move |conn| recovery::write_task(conn, &task, false)).await
    }

    async fn count_failed_deliveries(&self, endpoint_id: &EndpointId, window: TimeWindow) -> StoreResult<u64> {
        let endpoint_id = endpoint_id.clone();
        self.db.read(move |conn| recovery::count_failed(conn, &endpoint_id, window)).await
    }

    async fn count_messages(&self, app_id: &AppId, window: TimeWindow) -> StoreResult<u64> {
        let app_id = app_id.clone();
        self.db.read(move |conn| recovery::count_messages(conn, app_id.as_str(), window)).await
    }

    // Both batches are fsynced: they run after the API answered 202, and each one's effect must not be
    // undone by a power cut once the task's saved cursor has moved past it.
    async fn requeue_failed(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let (endpoint_id, after) = (endpoint_id.clone(), after.cloned());
        self.db
            .write(Durability::PowerLoss, move |conn| {
                recovery::requeue_failed(conn, &endpoint_id, window, limit, after.as_ref())
            })
            .await
    }

    async fn insert_missing_deliveries(
        &self,
        endpoint_id: &EndpointId,
        window: TimeWindow,
        limit: usize,
        after: Option<&MessageId>,
    ) -> StoreResult<BatchDone> {
        let (endpoint_id, after) = (endpoint_id.clone(), after.cloned());
        self.db
            .write(Durability::PowerLoss, move |conn| {
                recovery::insert_missing(conn, &endpoint_id, window, limit, after.as_ref())
            })
            .await
    }

    async fn create_source(&self, source: &Source) -> StoreResult<()> {
        let (source, cipher) = (source.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| sources::write_source(conn, &source, true, &cipher)).await
    }

    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        let (key, cipher) = (id_or_uid.to_owned(), self.cipher.clone());
        self.db.read(move |conn| sources::get_source(conn, &key, &cipher)).await
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        let (page, cipher) = (page.clone(), self.cipher.clone());
        self.db.read(move |conn| sources::list_sources(conn, &page, &cipher)).await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        let (source, cipher) = (source.clone(), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| sources::write_source(conn, &source, false, &cipher)).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let id = id.clone();
        self.db.write(Durability::PowerLoss, move |conn| sources::delete_source(conn, &id)).await
    }

    async fn ingest(&self, event: &InboundEvent, message: Option<&Message>) -> StoreResult<IngestOutcome> {
        let (event, message) = (event.clone(), message.cloned());
        self.db.write(Durability::PowerLoss, move |conn| sources::ingest(conn, &event, message.as_ref())).await
    }

    async fn record_rejections(&self, rejections: &[InboundRejections]) -> StoreResult<()> {
        let rejections = rejections.to_vec();
        // Nothing is acknowledged on a rejection, and losing the last few to a power cut only loses statistics:
        // no fsync of its own.
        self.db.write(Durability::ProcessCrash, move |conn| sources::record_rejections(conn, &rejections)).await
    }

    async fn list_inbound_rejections(
        &self,
        source_id: &SourceId,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundRejections>> {
        let (source_id, page) = (source_id.clone(), page.clone());
        self.db.read(move |conn| sources::list_inbound_rejections(conn, &source_id, &page)).await
    }

    async fn list_inbound_events(
        &self,
        source_id: &SourceId,
        status: Option<InboundStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboundEvent>> {
        let (source_id, page) = (source_id.clone(), page.clone());
        self.db.read(move |conn| sources::list_inbound_events(conn, &source_id, status, &page)).await
    }

    async fn inbound_counts(&self, source_id: &SourceId, since: Option<UnixMillis>) -> StoreResult<InboundCounts> {
        let source_id = source_id.clone();
        self.db.read(move |conn| sources::inbound_counts(conn, &source_id, since)).await
    }

    async fn purge_inbound_events(&self, before: UnixMillis, limit: usize) -> StoreResult<u64> {
        self.db.write(Durability::PowerLoss, move |conn| sources::purge_inbound_events(conn, before, limit)).await
    }

    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch> {
        let (after, cipher) = (after.map(str::to_owned), self.cipher.clone());
        self.db
            .write(Durability::PowerLoss, move |conn| secrets::reencrypt(conn, table, after.as_deref(), limit, &cipher))
            .await
    }

    fn seals_secrets(&self) -> bool {
        self.cipher.encrypts()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_error)).await
    }

    fn unwritable(&self) -> Option<crate::Unwritable> {
        self.db.write_health().current()
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let (now, health) = (now_ms(), self.db.write_health().clone());
        let job_health = health.clone();
        let probed = self.db.write(Durability::PowerLoss, move |conn| stats::probe_write(conn, now, &job_health)).await;
        match &probed {
            Ok(()) => health.succeeded(),
            // The writer, the flush thread or the job itself recorded why; this covers a writer that stopped.
            Err(err) if health.current().is_none() => health.failed("writes fail".to_owned(), err),
            Err(_) => {}
        }
        probed
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.db.read(stats::queue_stats).await
    }

    async fn activity_stats(&self, since: UnixMillis, top: usize) -> StoreResult<ActivityStats> {
        self.db.read(move |conn| stats::activity_stats(conn, since, top)).await
    }

    async fn create_token(&self, token: &ApiToken) -> StoreResult<()> {
        let token = token.clone();
        self.db.write(Durability::PowerLoss, move |conn| tokens::create_token(conn, &token)).await
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        let digest = *digest;
        self.db.read(move |conn| tokens::find_token(conn, &digest)).await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.db.read(tokens::list_admin_tokens).await
    }

    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
        let key = id_or_name.to_owned();
        self.db.write(Durability::PowerLoss, move |conn| tokens::revoke_admin_token(conn, &key)).await
    }
}

fn record_outcomes(conn: &Connection, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
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
    Ok(())
}
