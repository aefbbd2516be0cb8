//! The credentials role on PostgreSQL, as on SQLite: API tokens (`api_tokens`: stored by digest, looked up by
//! digest, admin tokens listed and revoked by id or name) and the re-encryption of secrets at rest.

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{ApiToken, TokenDigest};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::pg_error;
use super::rows::{execute, query, query_opt, *};
use crate::tokens::{TOKEN_COLUMNS, TokenRow, name_taken};
use crate::{Credentials, ReencryptBatch, SecretTable, StoreError, StoreResult};

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

pub async fn reencrypt(
    db: &mut Client,
    table: SecretTable,
    after: Option<&str>,
    limit: usize,
    cipher: &SecretCipher,
) -> StoreResult<ReencryptBatch> {
    let (name, columns) = secret_table(table);
    let select = format!("SELECT id, {} FROM {name} WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE", columns.join(", "));
    let sets: Vec<String> = columns.iter().enumerate().map(|(i, column)| format!("{column} = ${}", i + 2)).collect();
    let update = format!("UPDATE {name} SET {} WHERE id = $1", sets.join(", "));
    let tx = db.transaction().await.map_err(pg_error)?;
    let rows = query(&tx, &select, &[&after.unwrap_or(""), &sql_limit(limit)]).await.map_err(pg_error)?;
    let mut rewritten = 0;
    let mut last = None;
    for row in &rows {
        let id = row.text(0)?;
        let values = (1..=columns.len()).map(|i| row.text(i)).collect::<ColumnResult<Vec<_>>>()?;
        if let Some(resealed) = reseal_row(table, &values, cipher)? {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
            params.extend(resealed.iter().map(|value| value as &(dyn ToSql + Sync)));
            execute(&tx, &update, &params).await.map_err(pg_error)?;
            rewritten += 1;
        }
        last = Some(id);
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(ReencryptBatch { last: if rows.len() < limit { None } else { last }, rewritten })
}

#[async_trait]
impl Credentials for PostgresStore {
    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch> {
        let mut db = self.client().await?;
        reencrypt(&mut db, table, after, limit, &self.cipher).await
    }

    fn seals_secrets(&self) -> bool {
        self.cipher.encrypts()
    }

    async fn create_token(&self, token: &ApiToken) -> StoreResult<()> {
        let mut db = self.client().await?;
        create_token(&mut db, token).await
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        let db = self.client().await?;
        find_token(&db, digest).await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let db = self.client().await?;
        list_admin_tokens(&db).await
    }

    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
        let db = self.client().await?;
        revoke_admin_token(&db, id_or_name).await
    }
}
