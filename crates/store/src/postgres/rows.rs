//! What the PostgreSQL queries share: reading tokio-postgres rows into the model (through the backend-neutral
//! `crate::columns`), running cached statements, mapping errors, and building the WHERE clauses of the lists.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

use super::pg_error;
pub use crate::columns::*;
use crate::store::StoreResult;
use crate::{Page, PageRequest, StoreError};

fn read<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> ColumnResult<T> {
    row.try_get(index).map_err(|err| ColumnError::new(format!("column {index}: {err}")))
}

impl ColumnRead for Row {
    fn text(&self, index: usize) -> ColumnResult<String> {
        read(self, index)
    }
    fn opt_text(&self, index: usize) -> ColumnResult<Option<String>> {
        read(self, index)
    }
    fn int(&self, index: usize) -> ColumnResult<i64> {
        read(self, index)
    }
    fn opt_int(&self, index: usize) -> ColumnResult<Option<i64>> {
        read(self, index)
    }
}

/// A 0/1 flag column's value, as both schemas store booleans.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Maps a failed write to `Conflict(what)` when it broke a uniqueness rule (the text the API shows its
/// clients, worded as the SQLite backend words it), to `NotFound` when the row it refers to is gone; anything
/// else as [`pg_error`] does.
pub fn conflict_as(err: tokio_postgres::Error, what: &str) -> StoreError {
    match err.code() {
        Some(&SqlState::UNIQUE_VIOLATION) => StoreError::Conflict(what.to_owned()),
        // The row it belongs to (e.g. a message's application) was deleted meanwhile.
        Some(&SqlState::FOREIGN_KEY_VIOLATION) => StoreError::NotFound,
        _ => pg_error(err),
    }
}

/// Turns "0 rows changed" into `NotFound`.
pub fn expect_changed(changed: u64) -> StoreResult<()> {
    if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// Runs `sql` as a statement prepared once per connection.
pub async fn query(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = db.prepare_cached(sql).await?;
    db.query(&statement, params).await
}

/// Like [`query`], for at most one row.
pub async fn query_opt(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = db.prepare_cached(sql).await?;
    db.query_opt(&statement, params).await
}

/// Prepares `statements` (those not prepared on this connection yet, one round trip each) before they are sent
/// together: tokio-postgres pipelines the queries of one connection that are polled at once, in the order they are
/// sent, and a statement still being prepared would be sent after those behind it.
pub async fn prepare_ahead(db: &impl GenericClient, statements: &[&str]) -> Result<(), tokio_postgres::Error> {
    for sql in statements {
        db.prepare_cached(sql).await?;
    }
    Ok(())
}

/// Like [`query`], returning how many rows changed.
pub async fn execute(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = db.prepare_cached(sql).await?;
    db.execute(&statement, params).await
}

/// Reads one row that must exist: `NotFound` otherwise.
pub async fn query_found<T>(
    db: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    map: impl FnOnce(&Row) -> ColumnResult<T>,
) -> StoreResult<T> {
    let row = query_opt(db, sql, params).await.map_err(pg_error)?.ok_or(StoreError::NotFound)?;
    Ok(map(&row)?)
}

/// Reads a `COUNT(*)`-like value in the first column of the one row.
pub async fn query_count(db: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
    let row = query_opt(db, sql, params).await.map_err(pg_error)?;
    match row {
        Some(row) => Ok(count(row.int(0)?)?),
        None => Err(StoreError::Internal("a count returned no row".into())),
    }
}

/// A row count as a SQL `LIMIT` (`BIGINT`); a limit beyond `i64::MAX` is no limit at all.
pub fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A parameter of a statement built at run time.
type Param = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause built from optional filters, with its parameters in `$n` order. Lists use it; everything else
/// is a fixed statement.
#[derive(Default)]
pub struct Filters {
    conditions: Vec<String>,
    params: Vec<Param>,
}

impl Filters {
    /// Adds a parameter and returns its placeholder (`$n`) for a condition to use.
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    pub fn add(&mut self, condition: impl Into<String>) {
        self.conditions.push(condition.into());
    }

    /// Adds `column = value`.
    pub fn add_equal(&mut self, column: &str, value: impl ToSql + Sync + Send + 'static) {
        let placeholder = self.bind(value);
        self.add(format!("{column} = {placeholder}"));
    }

    /// Adds the message filters shared by message and attempt lists (`m` is the messages table): any of the
    /// event types, a channel and a tag.
    pub fn add_message_filters(&mut self, event_types: Option<&[String]>, channel: Option<&str>, tag: Option<&str>) {
        if let Some(types) = event_types.filter(|t| !t.is_empty()) {
            let placeholder = self.bind(types.to_vec());
            self.add(format!("m.event_type = ANY({placeholder})"));
        }
        if let Some(channel) = channel {
            // `channels` is a JSON array in a TEXT column, as in SQLite.
            let placeholder = self.bind(channel.to_owned());
            self.add(format!("m.channels::jsonb @> jsonb_build_array({placeholder}::text)"));
        }
        if let Some(tag) = tag {
            let placeholder = self.bind(tag.to_owned());
            self.add(format!("m.tags::jsonb @> jsonb_build_array({placeholder}::text)"));
        }
    }

    /// Adds `column < before` and `column > after` when given.
    pub fn add_time_range(&mut self, column: &str, before: Option<i64>, after: Option<i64>) {
        if let Some(before) = before {
            let placeholder = self.bind(before);
            self.add(format!("{column} < {placeholder}"));
        }
        if let Some(after) = after {
            let placeholder = self.bind(after);
            self.add(format!("{column} > {placeholder}"));
        }
    }

    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!(" WHERE {}", self.conditions.join(" AND ")) }
    }

    /// The parameters, as tokio-postgres takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|param| &**param as &(dyn ToSql + Sync)).collect()
    }

    /// Adds the cursor condition, ORDER BY and LIMIT (one extra row, see `Page::from_scan`) for `column`, and
    /// returns the tail of the statement.
    fn finish_page(&mut self, column: &str, page: &PageRequest) -> String {
        let (direction, limit) = self.add_page_cursor(column, page);
        format!("{} ORDER BY {column} {direction} LIMIT {limit}", self.where_clause())
    }

    /// Adds the cursor condition for `column`, and binds the page's SQL limit (one extra row, see
    /// `Page::from_scan`): returns the scan direction (`ASC` or `DESC`) and the limit's placeholder, for a
    /// statement that orders and limits by itself.
    pub fn add_page_cursor(&mut self, column: &str, page: &PageRequest) -> (&'static str, String) {
        let descending = page.scan_descending();
        if let Some(cursor) = &page.cursor {
            let placeholder = self.bind(cursor.clone());
            let op = if descending { "<" } else { ">" };
            self.add(format!("{column} {op} {placeholder}"));
        }
        let limit = self.bind(sql_limit(page.limit).saturating_add(1));
        (if descending { "DESC" } else { "ASC" }, limit)
    }
}

/// One page of `select` (everything up to the WHERE clause) filtered by `filters`, paged by `cursor_column`.
pub async fn query_page<T>(
    db: &impl GenericClient,
    select: &str,
    mut filters: Filters,
    cursor_column: &str,
    page: &PageRequest,
    map: impl Fn(&Row) -> ColumnResult<T>,
) -> StoreResult<Page<T>> {
    let tail = filters.finish_page(cursor_column, page);
    let rows = query(db, &format!("{select}{tail}"), &filters.params()).await.map_err(pg_error)?;
    let items = rows.iter().map(map).collect::<ColumnResult<Vec<_>>>()?;
    Ok(Page::from_scan(items, page))
}
