//! The SQLite backend's files on disk — the database, its `-wal` and `-shm`, and the lock file — are private
//! (0600). SQLite gives the `-wal` and `-shm` files the database file's mode, so the database file is created
//! 0600 before SQLite first opens it (an empty file is a valid empty database), and files an older version
//! created 0644 are narrowed at open (`private_files` logs each).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::StoreResult;
use crate::private_files;

/// Opens (creating if needed, mode 0600) the lock file that keeps a second process away from `database`.
pub(crate) fn open_lock_file(database: &Path) -> StoreResult<File> {
    let path = super::lock_path(database);
    let (file, _) = private_files::open(&path, OpenOptions::new().create(true).truncate(false).write(true))
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    Ok(file)
}

/// Before SQLite opens `database`: creates it empty with mode 0600 if it does not exist, and narrows it and the
/// `-wal` and `-shm` files left beside it to 0600 if others could read them. Call it holding the lock file.
pub(crate) fn make_private(database: &Path) -> StoreResult<()> {
    let unavailable = |path: &Path, e: std::io::Error| {
        StoreError::Unavailable(format!("cannot make {} private (mode 0600): {e}", path.display()))
    };
    private_files::open(database, OpenOptions::new().create(true).truncate(false).write(true))
        .map_err(|e| unavailable(database, e))?;
    for companion in companions(database) {
        private_files::restrict(&companion).map_err(|e| unavailable(&companion, e))?;
    }
    Ok(())
}

/// The files SQLite keeps beside a database in WAL mode.
pub(crate) fn companions(database: &Path) -> [PathBuf; 2] {
    let with_suffix = |suffix: &str| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with_suffix("-wal"), with_suffix("-shm")]
}
