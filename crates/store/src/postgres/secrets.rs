//! Re-encryption of stored secrets under the current key, one batch of rows per transaction. The rows are
//! locked while they are rewritten, so a server changing an endpoint's secret at the same time waits instead of
//! losing its change.

use deadpool_postgres::Client;
use hookrelay_core::cipher::SecretCipher;
use tokio_postgres::types::ToSql;

use super::pg_error;
use super::rows::*;
use crate::store::{ReencryptBatch, SecretTable, StoreResult};

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
