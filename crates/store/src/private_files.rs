//! Files and directories only their owner may read: the data directory (0700) and everything hookrelay keeps in
//! it (0600) — the SQLite database with its `-wal` and `-shm`, the lock file, the admin token, the encryption
//! key. The database holds endpoint secrets (in plaintext when no key is set), so the default must not let other
//! users of the machine read it.
//!
//! Modes are set per file, at creation, instead of through the process umask: the umask is process-wide and
//! would change what every other part of the process (and its children) creates. Files an older version made
//! with wider modes are narrowed when hookrelay opens them, with a warning in the log naming the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of private files: read and write for the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of private directories: the owner may list, enter and change them.
pub const DIR_MODE: u32 = 0o700;

/// Opens `path` with `options` (the caller picks create, create_new, truncate, read, write); a file it creates
/// gets mode 0600, and an existing one readable by others is narrowed to 0600. Returns the file and, if an
/// existing file's mode was narrowed, its previous mode.
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<(File, Option<u32>)> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, FILE_MODE);
    let file = options.open(path)?;
    let narrowed = restrict_open_file(&file)?;
    log_narrowed(path, narrowed);
    Ok((file, narrowed))
}

/// Creates `path` (which must not exist) with mode 0600 and writes `contents` to it, synced to disk: for a
/// generated token or key, which must never replace an existing one.
pub fn create_new_with(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let (mut file, _) = open(path, OpenOptions::new().write(true).create_new(true))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Narrows the mode of an existing file or directory to what its owner may do (0600 for a file, 0700 for a
/// directory: the group and other bits are cleared). Returns the previous mode if it changed, `None` if it was
/// already private or `path` does not exist.
pub fn restrict(path: &Path) -> io::Result<Option<u32>> {
    let narrowed = match std::fs::metadata(path) {
        Ok(metadata) => narrow(path, &metadata)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    log_narrowed(path, narrowed);
    Ok(narrowed)
}

/// Creates the directory `dir` and any missing parents with mode 0700. An existing directory is left as it is:
/// it may be shared (e.g. the parent of a database given by path); [`restrict`] narrows one that is
/// hookrelay's own.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// The permission bits of a mode, as `ls -l` readers know them (`0644`).
pub fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn log_narrowed(path: &Path, previous: Option<u32>) {
    if let Some(previous) = previous {
        tracing::warn!(
            "{} was open to other users (mode {}): removed their access (now {})",
            path.display(),
            octal(previous),
            octal(previous & 0o700)
        );
    }
}

#[cfg(unix)]
fn restrict_open_file(file: &File) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    Ok(Some(mode & 0o7777))
}

#[cfg(not(unix))]
fn restrict_open_file(_file: &File) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(unix)]
fn narrow(path: &Path, metadata: &std::fs::Metadata) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    Ok(Some(mode & 0o7777))
}

#[cfg(not(unix))]
fn narrow(_path: &Path, _metadata: &std::fs::Metadata) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_files_and_directories_are_private_and_old_ones_are_narrowed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));

        let token = dir.join("token");
        create_new_with(&token, b"secret\n").unwrap();
        assert_eq!(mode(&token), 0o600);
        assert_eq!(create_new_with(&token, b"other").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&token).unwrap(), b"secret\n");

        let old = dir.join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, narrowed) = open(&old, OpenOptions::new().write(true)).unwrap();
        assert_eq!((narrowed, mode(&old)), (Some(0o644), 0o600));
        let (_, again) = open(&old, OpenOptions::new().write(true)).unwrap();
        assert_eq!(again, None);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(restrict(&dir).unwrap(), Some(0o755));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(restrict(&dir.join("missing")).unwrap(), None);
        assert_eq!(octal(0o100644), "0644");
    }
}
