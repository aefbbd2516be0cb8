//! The catalog role on PostgreSQL: applications, event types and endpoints (with their secrets sealed by the
//! store's cipher), uniqueness enforced by constraints.

use async_trait::async_trait;
use deadpool_postgres::Client;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::model::*;
use hookrelay_core::{AppId, EndpointId};

use super::PostgresStore;
use super::pg_error;
use super::rows::*;
use crate::{Catalog, Page, PageRequest, StoreResult};

/// The Conflict texts the API passes on to its clients, worded as the SQLite backend words them.
pub(super) const APP_UID_TAKEN: &str = "an application with this uid already exists";

pub(super) const EVENT_TYPE_TAKEN: &str = "an event type with this name already exists";

pub(super) const ENDPOINT_UID_TAKEN: &str = "an endpoint with this uid already exists in this application";

pub(super) async fn write_app(db: &Client, app: &Application, insert: bool) -> StoreResult<()> {
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

pub(super) async fn write_event_type(db: &Client, et: &EventType, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO event_types (name, description, archived, deprecated, schemas, feature_flag, created_at, \
         updated_at, group_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    } else {
        "UPDATE event_types SET description = $2, archived = $3, deprecated = $4, schemas = $5, \
         feature_flag = $6, created_at = $7, updated_at = $8, group_name = $9 WHERE name = $1"
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
            &et.group_name,
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

pub(super) async fn write_endpoint(db: &Client, ep: &Endpoint, insert: bool, cipher: &SecretCipher) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO endpoints (id, app_id, uid, url, description, filter_types, channels, rate_limit, disabled, \
         metadata, version, headers, secret, previous_secrets, created_at, updated_at, signature_schemes, fifo, \
         retry_schedule, retry_client_errors, signature_headers, standard_headers, transformation_code, \
         transformation_enabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    } else {
        // Re-enabling an endpoint forgets its failing streak, so it is not disabled again at once.
        "UPDATE endpoints SET uid = $3, url = $4, description = $5, filter_types = $6, channels = $7, \
         rate_limit = $8, disabled = $9, metadata = $10, version = $11, headers = $12, secret = $13, \
         previous_secrets = $14, created_at = $15, updated_at = $16, signature_schemes = $17, fifo = $18, \
         retry_schedule = $19, retry_client_errors = $20, \
         signature_headers = $21, standard_headers = $22, transformation_code = $23, \
         transformation_enabled = $24, \
         failing_since = CASE WHEN $9::bigint = 0 AND disabled = 1 THEN NULL ELSE failing_since END \
         WHERE id = $1 AND app_id = $2"
    };
    let (secret, previous_secrets) = endpoint_secret_columns(&ep.secrets, cipher);
    let (retry_schedule, retry_client_errors) = endpoint_retry_columns(&ep.retry);
    let (transformation_code, transformation_enabled) = transformation_columns(ep.transformation.as_ref());
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
            &retry_schedule,
            &retry_client_errors,
            &signature_headers_json(&ep.signature_headers),
            &ep.standard_headers.name(),
            &transformation_code,
            &transformation_enabled,
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

#[async_trait]
impl Catalog for PostgresStore {
    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_app(&mut db, app).await
    }

    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        let mut db = self.client().await?;
        get_app(&mut db, id_or_uid).await
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        let mut db = self.client().await?;
        list_apps(&mut db, page).await
    }

    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_app(&mut db, app).await
    }

    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        let mut db = self.client().await?;
        delete_app(&mut db, id).await
    }

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_event_type(&mut db, event_type).await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let mut db = self.client().await?;
        get_event_type(&mut db, name).await
    }

    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>> {
        let mut db = self.client().await?;
        list_event_types(&mut db, page, include_archived).await
    }

    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_event_type(&mut db, event_type).await
    }

    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        let mut db = self.client().await?;
        expunge_event_type(&mut db, name).await
    }

    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>> {
        let mut db = self.client().await?;
        unknown_event_types(&mut db, names).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_endpoint(&mut db, endpoint, &self.cipher).await
    }

    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint> {
        let mut db = self.client().await?;
        get_endpoint(&mut db, app_id, id_or_uid, &self.cipher).await
    }

    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let mut db = self.client().await?;
        list_endpoints(&mut db, app_id, page, &self.cipher).await
    }

    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64> {
        let mut db = self.client().await?;
        count_endpoints(&mut db, app_id).await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let mut db = self.client().await?;
        update_endpoint(&mut db, endpoint, &self.cipher).await
    }

    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
        let mut db = self.client().await?;
        delete_endpoint(&mut db, app_id, id).await
    }
}
