//! Copies a whole hookrelay database from the embedded SQLite file into PostgreSQL (`hookrelay migrate --from …
//! --to …`), so a deployment can move to the shared backend without losing its queue or its history.
//!
//! The copy is generic: both schemas have the same tables and columns (see `postgres::schema`), so every table is
//! copied by the column names PostgreSQL reports, each SQLite value mapped by its storage class (integer → BIGINT,
//! text → TEXT, blob → BYTEA, null → NULL). What it guarantees:
//!
//! - nobody writes the SQLite file meanwhile: it takes the file's lock like a server does, so a running server
//!   makes it fail (stop the server first), and a server started during the copy fails to open the file;
//! - it never merges: the target must hold no hookrelay rows, checked under table locks in the copy's transaction;
//! - all or nothing: one PostgreSQL transaction, committed after the last table;
//! - bounded memory: a reader thread streams SQLite rows in batches (at most [`BATCH_ROWS`] rows or
//!   [`BATCH_BYTES`] bytes) through a short channel, each batch written with one binary `COPY`;
//! - deliveries that were being sent (status 3) arrive pending and due at once, as `requeue_interrupted` would
//!   have made them at the next start: no process holds their lease any more.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use hookrelay_core::time::{UnixMillis, now_ms};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

use crate::StoreError;
use crate::postgres::schema;
use crate::sqlite::{SqliteStore, lock_path};

/// Every table copied, parents before children, so each row's foreign keys find their parent already there.
/// The activity and endpoint failure counters come along (SQLite's rows, writer `''`, sit beside the PostgreSQL
/// processes' own), so the charts and statistics keep their history across the move.
pub const TABLES: [&str; 14] = [
    "applications",
    "event_types",
    "endpoints",
    "messages",
    "deliveries",
    "attempts",
    "idempotency",
    "background_tasks",
    "sources",
    "inbound_events",
    "inbound_rejections",
    "api_tokens",
    "activity_minutes",
    "endpoint_failure_minutes",
];

/// Columns only PostgreSQL has, left to their default (NULL): who holds a delivery's lease. Nobody does after a
/// copy, since `sending` deliveries become pending.
const POSTGRES_ONLY: &[(&str, &str)] = &[("deliveries", "claimed_by")];

/// Most rows in one batch (one `COPY` statement). Per-statement batches also bound PostgreSQL's queue of pending
/// foreign-key checks, which grows with the rows of one statement.
const BATCH_ROWS: usize = 1_000;
/// Most bytes of values in one batch: payloads may be up to a megabyte each, so rows alone do not bound memory.
const BATCH_BYTES: usize = 8 << 20;
/// Batches the SQLite reader may get ahead of PostgreSQL: enough to overlap reading and writing, few enough to
/// keep memory small.
const BATCHES_AHEAD: usize = 2;
/// How long the copy waits for another session's locks on the target tables before giving up.
const LOCK_TIMEOUT: &str = "10s";
/// How long connecting to PostgreSQL may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivery status codes (`DeliveryStatus`): in flight, and waiting to be sent.
const STATUS_SENDING: i64 = 3;
const STATUS_PENDING: i64 = 1;

/// What a copy did, table by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// One entry per table, in copy order ([`TABLES`]).
    pub tables: Vec<TableCopied>,
    /// Deliveries that were being sent when the SQLite server stopped, copied as pending and due at once: their
    /// receivers may get them a second time (at-least-once, as after a restart).
    pub requeued_deliveries: u64,
}

/// What was copied of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopied {
    pub table: &'static str,
    pub rows: u64,
    /// Text values that held NUL characters, which PostgreSQL cannot store in `TEXT`: each NUL was replaced by
    /// U+FFFD. (Typically attempt response bodies a receiver answered with binary data.)
    pub nul_replaced: u64,
}

impl CopyReport {
    /// Rows copied into `table` (0 for a table the copy does not know).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.iter().find(|t| t.table == table).map_or(0, |t| t.rows)
    }

    /// Rows copied, all tables together.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Copies the hookrelay database at `sqlite_path` into the (empty) PostgreSQL database at `postgres_url`,
/// creating the PostgreSQL schema if needed. The SQLite file is brought to the newest schema first and otherwise
/// left unchanged. Fails, changing nothing in PostgreSQL, when a server has the SQLite file open, when the target
/// already holds hookrelay data, or when anything goes wrong half-way.
pub async fn sqlite_to_postgres(sqlite_path: &Path, postgres_url: &str) -> Result<CopyReport, StoreError> {
    sqlite_to_postgres_reporting(sqlite_path, postgres_url, &|_, _| {}).await
}

/// [`sqlite_to_postgres`], calling `progress(table, rows)` after each batch written with the rows copied into that
/// table so far (tables come in [`TABLES`] order; an empty one is not reported), for a progress bar.
pub async fn sqlite_to_postgres_reporting(
    sqlite_path: &Path,
    postgres_url: &str,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<CopyReport, StoreError> {
    let path = sqlite_path.to_owned();
    let source = tokio::task::spawn_blocking(move || Source::open(&path))
        .await
        .map_err(|err| StoreError::Internal(format!("opening the SQLite database failed: {err}")))??;

    let mut client = connect(postgres_url).await?;
    schema::migrate(&mut client)
        .await
        .map_err(|err| prefixed(err, "cannot create or upgrade the hookrelay schema in PostgreSQL"))?;
    let tx = client.transaction().await.map_err(|err| pg_failure("cannot start a PostgreSQL transaction", err))?;
    lock_and_check_empty(&tx).await?;
    let plans = plan_tables(&tx, &source.columns).await?;

    // Every delivery that was in flight becomes due at this one instant.
    let now = now_ms();
    let (batches, mut incoming) = mpsc::channel(BATCHES_AHEAD);
    let reader_plans = plans.clone();
    let Source { store: lock_holder, conn, .. } = source;
    let reader = tokio::task::spawn_blocking(move || read_tables(conn, &reader_plans, now, &batches));

    let mut report = CopyReport::default();
    for plan in &plans {
        let mut rows = 0;
        let done = loop {
            match incoming.recv().await {
                Some(Chunk::Rows(batch)) => {
                    rows += write_batch(&tx, plan, &batch).await?;
                    progress(plan.table, rows);
                }
                Some(Chunk::End(done)) => break done,
                Some(Chunk::Failed(err)) => return Err(err),
                // The reader only stops early after sending `Failed`, or by panicking.
                None => return Err(StoreError::Internal(format!("reading table {} from SQLite stopped", plan.table))),
            }
        };
        report.requeued_deliveries += done.requeued;
        report.tables.push(TableCopied { table: plan.table, rows, nul_replaced: done.nul_replaced });
    }
    reader.await.map_err(|err| StoreError::Internal(format!("the SQLite reader failed: {err}")))?;
    tx.commit().await.map_err(|err| pg_failure("committing the copy failed; PostgreSQL was left unchanged", err))?;
    // Released only now, so no server could start on the SQLite file and accept work the copy would miss.
    drop(lock_holder);
    Ok(report)
}

/// The SQLite side: the store (held for its lock), a read-only connection, and each table's columns.
struct Source {
    store: SqliteStore,
    conn: Connection,
    /// Column names per table, in [`TABLES`] order.
    columns: Vec<Vec<String>>,
}

impl Source {
    fn open(path: &Path) -> Result<Self, StoreError> {
        if path.is_dir() {
            return Err(StoreError::Unavailable(format!(
                "{} is a directory: give the database file (hookrelay.db in the server's data directory)",
                path.display()
            )));
        }
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "no SQLite database at {}: check the path (a server keeps it as hookrelay.db in its data directory)",
                path.display()
            )));
        }
        // Before `SqliteStore::open`, which would create the hookrelay tables in any SQLite file it is given.
        let version = read_only(path)?
            .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            .map_err(|err| not_a_database(path, err))?;
        if version == 0 {
            return Err(StoreError::Unavailable(format!(
                "{} is not a hookrelay database (no hookrelay schema in it): check the path",
                path.display()
            )));
        }
        ensure_not_in_use(path)?;
        // Brings an older file to the newest schema, whose columns are the ones PostgreSQL has, and holds the lock
        // from here on.
        let store = SqliteStore::open(path).map_err(|err| prefixed(err, &format!("cannot open {}", path.display())))?;
        let conn = read_only(path)?;
        let columns = TABLES
            .iter()
            .map(|table| sqlite_columns(&conn, table))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Internal(format!("cannot read the SQLite schema: {err}")))?;
        Ok(Self { store, conn, columns })
    }
}

fn read_only(path: &Path) -> Result<Connection, StoreError> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|err| not_a_database(path, err))
}

fn not_a_database(path: &Path, err: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot read {} as a SQLite database: {err}", path.display()))
}

/// Fails with what to do when a server holds the database's lock. `SqliteStore::open` would refuse too, but its
/// advice (choose another data directory) is not what someone migrating needs to hear.
fn ensure_not_in_use(path: &Path) -> Result<(), StoreError> {
    let lock_path = lock_path(path);
    let lock = crate::sqlite::files::open_lock_file(path)?;
    match lock.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by a running hookrelay server: stop the server, then run the migration again (the copy \
             needs a database nobody is writing to)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(err)) => {
            Err(StoreError::Unavailable(format!("cannot lock {}: {err}", lock_path.display())))
        }
    }
    // The lock is released here; `SqliteStore::open` takes it again at once.
}

fn sqlite_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    stmt.query_map([table], |row| row.get(0))?.collect()
}

/// Connects one plain session: the copy needs a single connection for its single transaction, not a pool.
async fn connect(url: &str) -> Result<Client, StoreError> {
    // The URL's own text is never echoed: it may carry a password.
    let (url, tls_options) = crate::postgres::tls::split_url(url)?;
    let tls = crate::postgres::tls::MakeRustlsConnect::new(&tls_options)?;
    let mut config: tokio_postgres::Config = url.parse().map_err(|err| {
        StoreError::Unavailable(format!(
            "invalid PostgreSQL URL ({}): expected postgres://user[:password]@host[:port]/database",
            crate::postgres::error_text(&err)
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = config.connect(tls).await.map_err(|err| {
        StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL ({}): check the URL and that the server is running and reachable",
            crate::postgres::error_text(&err)
        ))
    })?;
    // The connection object does the I/O; the client only talks to it.
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(%err, "the PostgreSQL connection of the copy failed");
        }
    });
    Ok(client)
}

/// Locks every target table against writers (readers may go on) until the copy commits or rolls back, then
/// refuses a target that holds any row: merging two databases silently would mix up two deployments' data.
async fn lock_and_check_empty(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let tables = TABLES.iter().map(|t| quoted(t)).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; LOCK TABLE {tables} IN EXCLUSIVE MODE"))
        .await
        .map_err(|err| pg_failure("cannot lock the PostgreSQL tables", err))?;
    let mut non_empty = Vec::new();
    for table in TABLES {
        let query = format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table));
        let row = tx
            .query_one(query.as_str(), &[])
            .await
            .map_err(|err| pg_failure(&format!("cannot read table {table} in PostgreSQL"), err))?;
        if row.try_get::<_, bool>(0).map_err(|err| pg_failure("unexpected answer from PostgreSQL", err))? {
            non_empty.push(table);
        }
    }
    if non_empty.is_empty() {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "the PostgreSQL database already holds hookrelay data (in {}); the copy only fills an empty database and \
         never merges: point the target at a new database or schema, or empty this one first",
        non_empty.join(", ")
    )))
}

/// How one table is copied: the columns (PostgreSQL's, minus its own), how each SQLite value is converted, and
/// where the delivery status columns are for the `sending` → pending rewrite.
#[derive(Clone, Debug)]
struct TablePlan {
    table: &'static str,
    columns: Vec<String>,
    kinds: Vec<Kind>,
    types: Vec<Type>,
    /// `(status, next_attempt_at)` column positions in `deliveries`.
    delivery_status: Option<(usize, usize)>,
}

/// The PostgreSQL column types the copy knows how to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
}

/// Reads each target table's columns as PostgreSQL resolves them (through the session's `search_path`, as the
/// copy's statements will) and checks that the SQLite table has the same ones.
async fn plan_tables(tx: &Transaction<'_>, sqlite: &[Vec<String>]) -> Result<Vec<TablePlan>, StoreError> {
    let mut plans = Vec::with_capacity(TABLES.len());
    for (table, sqlite_columns) in TABLES.into_iter().zip(sqlite) {
        let stmt = tx
            .prepare(&format!("SELECT * FROM {} LIMIT 0", quoted(table)))
            .await
            .map_err(|err| pg_failure(&format!("cannot read the columns of table {table} in PostgreSQL"), err))?;
        let pg_columns: Vec<_> = stmt
            .columns()
            .iter()
            .filter(|column| !POSTGRES_ONLY.contains(&(table, column.name())))
            .map(|column| (column.name().to_owned(), column.type_().clone()))
            .collect();

        let in_pg: BTreeSet<&str> = pg_columns.iter().map(|(name, _)| name.as_str()).collect();
        let in_sqlite: BTreeSet<&str> = sqlite_columns.iter().map(String::as_str).collect();
        if in_pg != in_sqlite {
            let only = |a: &BTreeSet<&str>, b: &BTreeSet<&str>| a.difference(b).copied().collect::<Vec<_>>().join(", ");
            return Err(StoreError::Internal(format!(
                "table {table} has different columns in SQLite and PostgreSQL (only in SQLite: [{}]; only in \
                 PostgreSQL: [{}]): this hookrelay version cannot copy this database; use the version that last \
                 ran on it, and report the problem if it persists",
                only(&in_sqlite, &in_pg),
                only(&in_pg, &in_sqlite)
            )));
        }

        let mut kinds = Vec::with_capacity(pg_columns.len());
        for (name, ty) in &pg_columns {
            kinds.push(match *ty {
                Type::INT8 => Kind::Int,
                Type::TEXT => Kind::Text,
                Type::BYTEA => Kind::Bytes,
                _ => {
                    return Err(StoreError::Internal(format!(
                        "column {table}.{name} has type {ty} in PostgreSQL, which the copy does not handle (it \
                         expects BIGINT, TEXT or BYTEA): report this as a bug"
                    )));
                }
            });
        }
        let position = |name: &str| pg_columns.iter().position(|(column, _)| column == name);
        let delivery_status = match table {
            "deliveries" => match (position("status"), position("next_attempt_at")) {
                (Some(status), Some(due)) if kinds[status] == Kind::Int && kinds[due] == Kind::Int => {
                    Some((status, due))
                }
                _ => {
                    return Err(StoreError::Internal(
                        "table deliveries lacks an integer status or next_attempt_at column: report this as a bug"
                            .into(),
                    ));
                }
            },
            _ => None,
        };
        let (columns, types) = pg_columns.into_iter().unzip();
        plans.push(TablePlan { table, columns, kinds, types, delivery_status });
    }
    Ok(plans)
}

/// One value on its way to PostgreSQL, typed as its column.
#[derive(Debug)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(value) => value,
            Cell::Text(value) => value,
            Cell::Bytes(value) => value,
        }
    }

    /// Roughly the memory it holds, for the batch size limit.
    fn size(&self) -> usize {
        match self {
            Cell::Int(_) => 8,
            Cell::Text(value) => value.as_ref().map_or(0, String::len),
            Cell::Bytes(value) => value.as_ref().map_or(0, Vec::len),
        }
    }
}

/// What the reader sends, in table order: batches of a table's rows, then the table's end (or a failure).
enum Chunk {
    Rows(Vec<Vec<Cell>>),
    End(TableDone),
    Failed(StoreError),
}

#[derive(Default)]
struct TableDone {
    requeued: u64,
    nul_replaced: u64,
}

/// The reader thread: every table in plan order, in one read transaction (one consistent snapshot, although the
/// lock already keeps writers away). Stops quietly when the receiver is gone (the copy failed on the other side).
fn read_tables(mut conn: Connection, plans: &[TablePlan], now: UnixMillis, out: &mpsc::Sender<Chunk>) {
    let outcome = conn
        .transaction()
        .map_err(|err| StoreError::Internal(format!("cannot start reading the SQLite database: {err}")))
        .and_then(|snapshot| {
            for plan in plans {
                let Some(done) = read_table(&snapshot, plan, now, out)? else { return Ok(()) };
                if out.blocking_send(Chunk::End(done)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
    if let Err(err) = outcome {
        let _ = out.blocking_send(Chunk::Failed(err));
    }
}

/// Streams one table's rows in batches; `None` when the receiver is gone.
fn read_table(
    conn: &Connection,
    plan: &TablePlan,
    now: UnixMillis,
    out: &mpsc::Sender<Chunk>,
) -> Result<Option<TableDone>, StoreError> {
    let table = plan.table;
    let failed =
        |err: rusqlite::Error| StoreError::Internal(format!("reading table {table} from SQLite failed: {err}"));
    let columns = plan.columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let mut stmt = conn.prepare(&format!("SELECT {columns} FROM {}", quoted(table))).map_err(failed)?;
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut done = TableDone::default();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut batch_bytes = 0;
    while let Some(row) = rows.next().map_err(failed)? {
        let mut cells = Vec::with_capacity(plan.columns.len());
        for (index, kind) in plan.kinds.iter().enumerate() {
            let value = row.get_ref(index).map_err(failed)?;
            let cell = convert(value, *kind, &mut done.nul_replaced).map_err(|problem| {
                StoreError::Internal(format!(
                    "table {table}, column {}, row {}: {problem}; fix or delete that row in the SQLite file, then run \
                     the migration again",
                    plan.columns[index],
                    describe_row(row, &plan.columns)
                ))
            })?;
            batch_bytes += cell.size();
            cells.push(cell);
        }
        if let Some((status, due)) = plan.delivery_status
            && matches!(cells[status], Cell::Int(Some(STATUS_SENDING)))
        {
            cells[status] = Cell::Int(Some(STATUS_PENDING));
            cells[due] = Cell::Int(Some(now));
            done.requeued += 1;
        }
        batch.push(cells);
        if batch.len() >= BATCH_ROWS || batch_bytes >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            batch_bytes = 0;
            if out.blocking_send(Chunk::Rows(full)).is_err() {
                return Ok(None);
            }
        }
    }
    if !batch.is_empty() && out.blocking_send(Chunk::Rows(batch)).is_err() {
        return Ok(None);
    }
    Ok(Some(done))
}

/// Maps a SQLite value to its PostgreSQL column's type: integer → BIGINT, text → TEXT, blob → BYTEA, null → NULL;
/// anything else is a value hookrelay never writes, reported rather than guessed at.
fn convert(value: ValueRef<'_>, kind: Kind, nul_replaced: &mut u64) -> Result<Cell, String> {
    Ok(match (kind, value) {
        (Kind::Int, ValueRef::Null) => Cell::Int(None),
        (Kind::Text, ValueRef::Null) => Cell::Text(None),
        (Kind::Bytes, ValueRef::Null) => Cell::Bytes(None),
        (Kind::Int, ValueRef::Integer(number)) => Cell::Int(Some(number)),
        (Kind::Text, ValueRef::Text(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|err| format!("the text is not valid UTF-8 ({err})"))?;
            // PostgreSQL refuses NUL in text values; a receiver's binary answer can put some in a response body.
            if text.contains('\0') {
                *nul_replaced += 1;
                Cell::Text(Some(text.replace('\0', "\u{FFFD}")))
            } else {
                Cell::Text(Some(text.to_owned()))
            }
        }
        (Kind::Bytes, ValueRef::Blob(bytes)) => Cell::Bytes(Some(bytes.to_vec())),
        (kind, other) => {
            let expected = match kind {
                Kind::Int => "an integer",
                Kind::Text => "text",
                Kind::Bytes => "a blob",
            };
            return Err(format!("expected {expected} but found {}", other.data_type()));
        }
    })
}

/// Names a row in an error by its first column (the primary key, or its first part), when that is readable.
fn describe_row(row: &rusqlite::Row<'_>, columns: &[String]) -> String {
    match (columns.first(), row.get_ref(0)) {
        (Some(name), Ok(ValueRef::Text(bytes))) => format!("{name} = {}", String::from_utf8_lossy(bytes)),
        (Some(name), Ok(ValueRef::Integer(number))) => format!("{name} = {number}"),
        _ => "(unnamed)".to_owned(),
    }
}

/// Writes one batch with a binary `COPY`: the fastest way into PostgreSQL, and every constraint still applies.
async fn write_batch(tx: &Transaction<'_>, plan: &TablePlan, rows: &[Vec<Cell>]) -> Result<u64, StoreError> {
    let failed = |err| pg_failure(&format!("copying into table {} failed", plan.table), err);
    let columns = plan.columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let statement = format!("COPY {} ({columns}) FROM STDIN (FORMAT binary)", quoted(plan.table));
    let sink = tx.copy_in(statement.as_str()).await.map_err(failed)?;
    let writer = BinaryCopyInWriter::new(sink, &plan.types);
    let mut writer = std::pin::pin!(writer);
    for row in rows {
        let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(Cell::as_sql).collect();
        writer.as_mut().write(&values).await.map_err(failed)?;
    }
    writer.finish().await.map_err(failed)
}

/// A PostgreSQL identifier, quoted (the names come from the schema, but quoting costs nothing).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Keeps the error's kind and puts what was being done in front of its text.
fn prefixed(err: StoreError, what: &str) -> StoreError {
    match err {
        StoreError::NotFound => StoreError::Internal(format!("{what}: not found")),
        StoreError::Conflict(text) => StoreError::Conflict(format!("{what}: {text}")),
        StoreError::Invalid(text) => StoreError::Invalid(format!("{what}: {text}")),
        StoreError::Unavailable(text) => StoreError::Unavailable(format!("{what}: {text}")),
        StoreError::Internal(text) => StoreError::Internal(format!("{what}: {text}")),
    }
}

/// Describes a PostgreSQL failure with the server's message and detail (which name the offending row), and what
/// to do for the failures a user can fix.
fn pg_failure(what: &str, err: tokio_postgres::Error) -> StoreError {
    let Some(db) = err.as_db_error() else {
        return StoreError::Unavailable(format!("{what}: {}", crate::postgres::error_text(&err)));
    };
    let mut text = format!("{what}: {}", db.message());
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    let advice = match *db.code() {
        SqlState::LOCK_NOT_AVAILABLE => {
            "; another session is using these tables: stop every hookrelay server using this PostgreSQL database, \
             then run the migration again"
        }
        SqlState::FOREIGN_KEY_VIOLATION => {
            "; the SQLite file has a row whose parent row is missing: delete that row from the SQLite file (or \
             restore a backup), then run the migration again"
        }
        _ => "",
    };
    text.push_str(advice);
    StoreError::Internal(text)
}
