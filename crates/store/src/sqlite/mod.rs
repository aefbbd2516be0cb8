//! The embedded SQLite backend: one database file in WAL mode, written by a group-commit writer thread and
//! read through a small connection pool (see `connections`). Only one process may open a database file at a
//! time (a lock file enforces it), which is what lets `requeue_interrupted` take back every lease at start.

mod backup;
mod catalog;
mod checkpoint;
mod connection;
mod connections;
mod credentials;
pub(crate) mod files;
mod flush;
mod inbound;
mod messages;
mod operations;
mod queue;
mod recovery;
mod rows;
mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookrelay_core::cipher::SecretCipher;
use rusqlite::Connection;

pub use self::backup::{BackupReport, backup};
use self::connection::sql_error;
use self::connections::Connections;
use self::rows::*;
use crate::{StoreError, StoreResult};

/// The SQLite backend: plays every role of a [`Store`](crate::Store).
pub struct SqliteStore {
    db: Connections,
    path: PathBuf,
    /// Seals secrets on their way into the database and opens them on their way out.
    cipher: Arc<SecretCipher>,
    /// Held for the life of the store: the OS releases the lock when the process dies, even on SIGKILL.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date, storing secrets in
    /// plaintext. Fails if another process has it open.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_cipher(path, SecretCipher::plaintext())
    }

    /// Like [`open`](Self::open), with secrets sealed by `cipher`. Fails if the database holds secrets sealed
    /// with a key the cipher does not have.
    pub fn open_with_cipher(path: &Path, cipher: SecretCipher) -> StoreResult<Self> {
        let lock = files::open_lock_file(path)?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "another hookrelay process is using {}; stop it or choose another data directory",
                path.display()
            ))
        })?;
        files::make_private(path)?;
        let db = Connections::open(path, schema::migrate)?;
        check_sealed_keys(path, &cipher)?;
        Ok(Self { db, path: path.to_owned(), cipher: Arc::new(cipher), _lock: lock })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Fails, naming the setting to fix, when the (migrated) database at `path` holds secrets sealed with a key
/// `cipher` does not have.
fn check_sealed_keys(path: &Path, cipher: &SecretCipher) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(sql_error)?;
    let mut stmt = conn.prepare(SEALED_KEY_IDS_SQL).map_err(sql_error)?;
    let prefixes = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(sql_error)?;
    check_sealed_key_ids(&prefixes, cipher)
}

/// The lock file that keeps a second process away from the database at `path` (`copy` checks it too, to tell a
/// user who forgot to stop the server what to do).
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    path.with_extension("lock")
}
