//! SQL of API tokens (`api_tokens`): stored by digest, looked up by digest, admin tokens listed and revoked by
//! id or name.

use hookrelay_core::time::now_ms;
use hookrelay_core::token::{ApiToken, TokenDigest};
use rusqlite::{Connection, OptionalExtension, Row, ffi, params};

use super::connections::sql_error;
use crate::StoreError;
use crate::store::StoreResult;
use crate::tokens::{TOKEN_COLUMNS, TokenRow, name_taken};

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        name: row.get(1)?,
        digest: row.get(2)?,
        app_id: row.get(3)?,
        read_only: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

pub fn create_token(conn: &Connection, token: &ApiToken) -> StoreResult<()> {
    // Expired portal tokens are of no use to anyone; creating a token is rare enough to pay for the sweep.
    conn.prepare_cached("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1")
        .and_then(|mut stmt| stmt.execute([now_ms()]))
        .map_err(sql_error)?;
    let row = TokenRow::from_token(token);
    conn.prepare_cached(
        "INSERT INTO api_tokens (id, name, digest, app_id, read_only, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![row.id, row.name, row.digest, row.app_id, row.read_only, row.created_at, row.expires_at])
    })
    .map_err(|err| match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            name_taken(&token.name)
        }
        _ => sql_error(err),
    })?;
    Ok(())
}

pub fn find_token(conn: &Connection, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
    conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = ?1"))
        .and_then(|mut stmt| stmt.query_row([&digest[..]], token_from_row).optional())
        .map_err(sql_error)?
        .map(TokenRow::into_token)
        .transpose()
}

pub fn list_admin_tokens(conn: &Connection) -> StoreResult<Vec<ApiToken>> {
    let rows = conn
        .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE app_id IS NULL ORDER BY id"))
        .and_then(|mut stmt| stmt.query_map([], token_from_row)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(sql_error)?;
    rows.into_iter().map(TokenRow::into_token).collect()
}

pub fn revoke_admin_token(conn: &Connection, id_or_name: &str) -> StoreResult<ApiToken> {
    let row = conn
        .prepare_cached(&format!(
            "DELETE FROM api_tokens WHERE app_id IS NULL AND (id = ?1 OR name = ?1) RETURNING {TOKEN_COLUMNS}"
        ))
        .and_then(|mut stmt| stmt.query_row([id_or_name], token_from_row).optional())
        .map_err(sql_error)?;
    row.ok_or(StoreError::NotFound)?.into_token()
}
