//! Re-encryption of stored secrets under the current key, one batch of rows per writer job.

use hookrelay_core::cipher::SecretCipher;
use rusqlite::{Connection, params_from_iter};

use super::connections::sql_error;
use super::rows::*;
use crate::store::{ReencryptBatch, SecretTable, StoreResult};

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
