//! Online backup of a SQLite database (`hookrelay backup`): a consistent copy taken with SQLite's backup API
//! while a server keeps writing.
//!
//! The copy reads the database through an ordinary connection, so it sees what the write-ahead log holds as well
//! as the database file: every transaction committed before it started, none after. It copies all pages in one
//! step, inside one read transaction: a copy made in several steps starts over whenever another connection
//! writes, which under steady publishing may be forever. In WAL mode that read transaction does not block the
//! server's writer; it only keeps the log from restarting until the copy is done, so the log file grows by what
//! is written meanwhile. The server's lock file is not touched (the server holds it).
//!
//! The copy is written 0600 and left in rollback-journal mode: one self-contained file, with no `-wal` that
//! could be forgotten beside it. A server opening it switches it back to WAL.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::files::companions;
use crate::StoreError;
use crate::StoreResult;
use crate::private_files;

/// How long the copy waits, in total, while the database is locked (a schema migration at a server's start).
const BUSY_FOR_AT_MOST: Duration = Duration::from_secs(30);

/// What a finished backup copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// Database pages copied (4 KiB each by default).
    pub pages: u64,
    /// Size of the copy, in bytes.
    pub bytes: u64,
    /// Messages in the copy.
    pub messages: u64,
}

/// Copies the database at `database` (which a server may be using) to `target`, a new file with mode 0600.
/// An existing `target` is refused unless `overwrite`; the database itself is always refused as a target.
pub fn backup(database: &Path, target: &Path, overwrite: bool) -> StoreResult<BackupReport> {
    if !database.is_file() {
        return Err(StoreError::Unavailable(format!(
            "there is no database at {}: give the same --data-dir or --database-url as the server",
            database.display()
        )));
    }
    prepare_target(database, target, overwrite)?;
    let result = copy(database, target);
    if result.is_err() {
        // A partial copy must not be mistaken for a backup.
        let _ = std::fs::remove_file(target);
        for companion in companions(target) {
            let _ = std::fs::remove_file(companion);
        }
    }
    result
}

/// Creates `target` empty with mode 0600 (SQLite then writes into that file, keeping its mode), after checking
/// it may be written.
fn prepare_target(database: &Path, target: &Path, overwrite: bool) -> StoreResult<()> {
    let exists = target.symlink_metadata().is_ok();
    if exists && same_file(database, target) {
        return Err(StoreError::Invalid(format!(
            "{} is the database itself: give the backup another file name",
            target.display()
        )));
    }
    let leftovers: Vec<_> = companions(target).into_iter().filter(|path| path.symlink_metadata().is_ok()).collect();
    if (exists || !leftovers.is_empty()) && !overwrite {
        let what = if exists { target.display().to_string() } else { leftovers[0].display().to_string() };
        return Err(StoreError::Conflict(format!(
            "{what} already exists: choose another file, or pass --force to replace it"
        )));
    }
    // A `-wal` left beside the target would be replayed into the copy the first time it is opened.
    for leftover in leftovers {
        std::fs::remove_file(&leftover)
            .map_err(|e| StoreError::Unavailable(format!("cannot remove {}: {e}", leftover.display())))?;
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    private_files::open(target, &mut options)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", target.display())))?;
    Ok(())
}

fn copy(database: &Path, target: &Path) -> StoreResult<BackupReport> {
    let failed = |what: &str, e: rusqlite::Error| StoreError::Unavailable(format!("{what}: {e}"));
    // Read-write without create: a read-only connection cannot open a WAL database whose `-shm` is missing
    // (a stopped server), and no database is created at a mistyped path. Nothing is written through it.
    let source =
        Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| failed(&format!("cannot open {}", database.display()), e))?;
    source.busy_timeout(Duration::from_secs(5)).map_err(|e| failed("cannot set a busy timeout", e))?;
    let mut copy = Connection::open(target).map_err(|e| failed(&format!("cannot open {}", target.display()), e))?;
    let pages = {
        let backup = Backup::new(&source, &mut copy).map_err(|e| failed("cannot start the backup", e))?;
        let started = Instant::now();
        loop {
            match backup.step(-1).map_err(|e| failed("the backup failed", e))? {
                StepResult::Done => break,
                StepResult::More => {}
                // Busy or locked (the enum is non-exhaustive): wait a little and try again.
                _ if started.elapsed() < BUSY_FOR_AT_MOST => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "{} stayed locked for {} s; try again",
                        database.display(),
                        BUSY_FOR_AT_MOST.as_secs()
                    )));
                }
            }
        }
        u64::try_from(backup.progress().pagecount).unwrap_or(0)
    };
    drop(source);
    copy.pragma_update(None, "journal_mode", "DELETE").map_err(|e| failed("cannot finish the copy", e))?;
    let messages: i64 = copy
        .query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0))
        .map_err(|e| failed("the copy cannot be read back", e))?;
    copy.close().map_err(|(_, e)| failed("cannot close the copy", e))?;
    let file = std::fs::File::open(target)
        .and_then(|file| file.sync_all().map(|()| file))
        .map_err(|e| StoreError::Unavailable(format!("cannot sync {}: {e}", target.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport { pages, bytes, messages: u64::try_from(messages).unwrap_or(0) })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;

    #[test]
    fn the_copy_is_private_refuses_to_overwrite_and_never_targets_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("hookrelay.db");
        let store = SqliteStore::open(&database).unwrap();
        let target = dir.path().join("copy.db");
        let report = backup(&database, &target, false).unwrap();
        assert!(report.pages > 0 && report.bytes > 0, "{report:?}");
        assert_eq!(report.messages, 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let err = backup(&database, &target, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        backup(&database, &target, true).unwrap();
        let err = backup(&database, &database, true).unwrap_err();
        assert!(err.to_string().contains("the database itself"), "{err}");
        let err = backup(&dir.path().join("missing.db"), &dir.path().join("other.db"), false).unwrap_err();
        assert!(err.to_string().contains("no database"), "{err}");
        assert!(!dir.path().join("other.db").exists());
        drop(store);
    }
}
