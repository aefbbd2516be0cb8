//! The credentials role on SQLite: API tokens (`api_tokens`: stored by digest, looked up by digest, admin
//! tokens listed and revoked by id or name) and the re-encryption of secrets at rest.

use async_trait::async_trait;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{ApiToken, TokenDigest};
use rusqlite::{Connection, OptionalExtension, Row, ffi, params, params_from_iter};

use super::SqliteStore;
use super::connection::sql_error;
use super::connections::Durability;
use super::rows::*;
use crate::tokens::{TOKEN_COLUMNS, TokenRow, name_taken};
use crate::{Credentials, ReencryptBatch, SecretTable, StoreError, StoreResult};

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

pub fn reencrypt(
    conn: &Connection,
    table: SecretTable,
    after: Option<&str>,
    limit: usize,
    cipher: &SecretCipher,
) -> StoreResult<ReencryptBatch> {
    let (name, columns) = secret_table(table);
    let select = format!("SELECT id, {} FROM {name} WHERE id > ?1 ORDER BY id LIMIT ?2", columns.join(", "));
    let rows = conn
        .prepare_cached(&select)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params![after.unwrap_or(""), limit as i64], |row| {
                let values = (1..=columns.len()).map(|i| row.get::<_, String>(i)).collect::<rusqlite::Result<_>>()?;
                Ok((row.get::<_, String>(0)?, values))
            })?
            .collect::<rusqlite::Result<Vec<(String, Vec<String>)>>>()
        })
        .map_err(sql_error)?;
    let sets: Vec<String> = columns.iter().enumerate().map(|(i, column)| format!("{column} = ?{}", i + 2)).collect();
    let update = format!("UPDATE {name} SET {} WHERE id = ?1", sets.join(", "));
    let mut rewritten = 0;
    for (id, values) in &rows {
        if let Some(resealed) = reseal_row(table, values, cipher)? {
            let params = std::iter::once(id.as_str()).chain(resealed.iter().map(String::as_str));
            conn.prepare_cached(&update)
                .and_then(|mut stmt| stmt.execute(params_from_iter(params)))
                .map_err(sql_error)?;
            rewritten += 1;
        }
    }
    let last = if rows.len() < limit { None } else { rows.last().map(|(id, _)| id.clone()) };
    Ok(ReencryptBatch { last, rewritten })
}

#[async_trait]
impl Credentials for SqliteStore {
    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch> {
        let (after, cipher) = (after.map(str::to_owned), self.cipher.clone());
        self.db.write(Durability::PowerLoss, move |conn| reencrypt(conn, table, after.as_deref(), limit, &cipher)).await
    }

    fn seals_secrets(&self) -> bool {
        self.cipher.encrypts()
    }

    async fn create_token(&self, token: &ApiToken) -> StoreResult<()> {
        let token = token.clone();
        self.db.write(Durability::PowerLoss, move |conn| create_token(conn, &token)).await
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        let digest = *digest;
        self.db.read(move |conn| find_token(conn, &digest)).await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.db.read(list_admin_tokens).await
    }

    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
        let key = id_or_name.to_owned();
        self.db.write(Durability::PowerLoss, move |conn| revoke_admin_token(conn, &key)).await
    }
}
