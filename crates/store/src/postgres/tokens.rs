//! SQL of API tokens (`api_tokens`), as in SQLite: stored by digest, looked up by digest, admin tokens listed
//! and revoked by id or name.

use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{ApiToken, TokenDigest};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::pg_error;
use super::rows::{execute, query, query_opt};
use crate::StoreError;
use crate::store::StoreResult;
use crate::tokens::{TOKEN_COLUMNS, TokenRow, name_taken};

fn token_from_row(row: &Row) -> StoreResult<ApiToken> {
    let read = |err: tokio_postgres::Error| StoreError::Internal(format!("reading a token row: {err}"));
    TokenRow {
        id: row.try_get(0).map_err(read)?,
        name: row.try_get(1).map_err(read)?,
        digest: row.try_get(2).map_err(read)?,
        app_id: row.try_get(3).map_err(read)?,
        read_only: row.try_get(4).map_err(read)?,
        created_at: row.try_get(5).map_err(read)?,
        expires_at: row.try_get(6).map_err(read)?,
    }
    .into_token()
}

pub async fn create_token(db: &mut Client, token: &ApiToken) -> StoreResult<()> {
    let tx = db.transaction().await.map_err(pg_error)?;
    // Expired portal tokens are of no use to anyone; creating a token is rare enough to pay for the sweep.
    execute(&tx, "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= $1", &[&now_ms()])
        .await
        .map_err(pg_error)?;
    let row = TokenRow::from_token(token);
    execute(
        &tx,
        "INSERT INTO api_tokens (id, name, digest, app_id, read_only, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&row.id, &row.name, &row.digest, &row.app_id, &row.read_only, &row.created_at, &row.expires_at],
    )
    .await
    .map_err(|err| match err.code() {
        Some(&SqlState::UNIQUE_VIOLATION) => name_taken(&token.name),
        _ => pg_error(err),
    })?;
    tx.commit().await.map_err(pg_error)
}

pub async fn find_token(db: &impl GenericClient, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
    let row = query_opt(db, &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = $1"), &[&&digest[..]])
        .await
        .map_err(pg_error)?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn list_admin_tokens(db: &impl GenericClient) -> StoreResult<Vec<ApiToken>> {
    let rows = query(db, &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE app_id IS NULL ORDER BY id"), &[])
        .await
        .map_err(pg_error)?;
    rows.iter().map(token_from_row).collect()
}

pub async fn revoke_admin_token(db: &impl GenericClient, id_or_name: &str) -> StoreResult<ApiToken> {
    let row = query_opt(
        db,
        &format!("DELETE FROM api_tokens WHERE app_id IS NULL AND (id = $1 OR name = $1) RETURNING {TOKEN_COLUMNS}"),
        &[&id_or_name],
    )
    .await
    .map_err(pg_error)?;
    token_from_row(&row.ok_or(StoreError::NotFound)?)
}
