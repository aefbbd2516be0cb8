//! One SQLite connection: how it is opened (hookrelay's pragmas) and what its errors mean. The writer and read
//! pool (`connections`) and the checkpointer (`checkpoint`) both build on it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Opens connections to one database file with hookrelay's settings.
pub(crate) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL lets readers run while the writer commits; FULL makes each commit survive power loss, which
    // group commit keeps cheap.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Maps a SQLite error: the database refusing to write or read (full disk, read-only or unopenable file, I/O
/// error) is `Unavailable`, since it passes once the operator fixes the disk; anything else is `Internal`.
pub(crate) fn sql_error(err: rusqlite::Error) -> StoreError {
    match storage_refusal(&err) {
        Some(reason) => StoreError::Unavailable(format!("{reason}: {err}")),
        None => StoreError::Internal(err.to_string()),
    }
}

/// The public reason (see [`crate::Unwritable`]) when `err` is the database's storage refusing the operation.
fn storage_refusal(err: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode::*;
    Some(match err.sqlite_error_code()? {
        DiskFull => "the disk is full",
        ReadOnly => "the database is read-only",
        SystemIoFailure => "disk I/O error",
        CannotOpen => "cannot open the database file",
        PermissionDenied => "permission denied",
        _ => return None,
    })
}

/// The public reason a write failed with `err`, whatever it is: a storage refusal's category, or SQLite's
/// generic description of its error code (never its message, which may name a path).
pub(crate) fn write_refusal(err: &rusqlite::Error) -> String {
    match (storage_refusal(err), err.sqlite_error()) {
        (Some(reason), _) => reason.to_owned(),
        (None, Some(code)) => format!("writes fail ({:?})", code.code),
        (None, None) => "writes fail".to_owned(),
    }
}
