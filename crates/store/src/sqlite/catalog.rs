//! The catalog role on SQLite: applications, event types and endpoints (with their secrets sealed by the
//! store's cipher). Writes go through the group-commit writer; reads use the pool.

use async_trait::async_trait;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::{Application, DeliveryOrder, Endpoint, EventType};
use hookrelay_core::{AppId, EndpointId};
use rusqlite::{Connection, params, params_from_iter};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::rows::*;
use crate::{Catalog, Page, PageRequest, StoreResult};

pub(super) fn write_app(conn: &Connection, app: &Application, insert: bool) -> StoreResult<()> {
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

pub(super) fn write_event_type(conn: &Connection, et: &EventType, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO event_types (name, description, archived, deprecated, schemas, feature_flag, created_at, \
         updated_at, group_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    } else {
        "UPDATE event_types SET description = ?2, archived = ?3, deprecated = ?4, schemas = ?5, \
         feature_flag = ?6, created_at = ?7, updated_at = ?8, group_name = ?9 WHERE name = ?1"
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
                et.updated_at,
                et.group_name
            ],
        )
        .map_err(|e| conflict_or_internal(e, "an event type with this name already exists"))?;
    expect_changed(changed)
}

pub(super) fn write_endpoint(conn: &Connection, ep: &Endpoint, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO endpoints (id, app_id, uid, url, description, filter_types, channels, rate_limit, disabled, \
         metadata, version, headers, secret, previous_secrets, created_at, updated_at, signature_schemes, fifo, \
         retry_schedule, retry_client_errors, signature_headers, standard_headers, transformation_code, \
         transformation_enabled) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    } else {
        "UPDATE endpoints SET uid = ?3, url = ?4, description = ?5, filter_types = ?6, channels = ?7, \
         rate_limit = ?8, disabled = ?9, metadata = ?10, version = ?11, headers = ?12, secret = ?13, \
         previous_secrets = ?14, created_at = ?15, updated_at = ?16, signature_schemes = ?17, fifo = ?18, \
         retry_schedule = ?19, retry_client_errors = ?20, \
         signature_headers = ?21, standard_headers = ?22, transformation_code = ?23, \
         transformation_enabled = ?24, \
         failing_since = CASE WHEN ?9 = 0 AND disabled = 1 THEN NULL ELSE failing_since END \
         WHERE id = ?1 AND app_id = ?2"
    };
    let (secret, previous_secrets) = endpoint_secret_columns(&ep.secrets, cipher);
    let (retry_schedule, retry_client_errors) = endpoint_retry_columns(&ep.retry);
    let (transformation_code, transformation_enabled) = transformation_columns(ep.transformation.as_ref());
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
                ep.ordering == DeliveryOrder::Fifo,
                retry_schedule,
                retry_client_errors,
                signature_headers_json(&ep.signature_headers),
                ep.standard_headers.name(),
                transformation_code,
                transformation_enabled
            ],
        )
        .map_err(|e| conflict_or_internal(e, "an endpoint with this uid already exists in this application"))?;
    expect_changed(changed)
}

#[async_trait]
impl Catalog for SqliteStore {
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
}
