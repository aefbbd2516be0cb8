//! The key that seals secrets at rest when `HOOKRELAY_ENCRYPTION_KEY` is not set: on SQLite it is generated once
//! into the data directory (`encryption-key`, mode 0600, like the admin token), so a default install never keeps
//! endpoint secrets, source secrets or API tokens in plaintext. PostgreSQL gets no generated key: every process
//! sharing the database must seal with the same key, which one process's data directory cannot give the others.

use std::path::{Path, PathBuf};

use anyhow::Context;

use hookrelay_store::{Credentials, SecretTable, private_files};

use crate::config::{Database, ServeConfig};

/// The file in the data directory.
pub const KEY_FILE: &str = "encryption-key";

/// Where the key that seals new secrets came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `HOOKRELAY_ENCRYPTION_KEY`.
    Configured,
    /// The data directory's key file, from an earlier start.
    Stored(PathBuf),
    /// The data directory's key file, written just now.
    Generated(PathBuf),
    /// No key: PostgreSQL without `HOOKRELAY_ENCRYPTION_KEY`; secrets are stored in plaintext.
    None,
}

/// Gives `config` a sealing key when it has none: the data directory's key file on SQLite (written now if there is
/// none yet). Previous keys (`HOOKRELAY_ENCRYPTION_KEY_PREVIOUS`) stay usable.
pub fn resolve(config: &mut ServeConfig) -> anyhow::Result<KeySource> {
    if config.cipher.encrypts() {
        return Ok(KeySource::Configured);
    }
    if !matches!(config.database, Database::Sqlite(_)) {
        return Ok(KeySource::None);
    }
    let path = config.data_dir.join(KEY_FILE);
    let (key, source) = match read(&path)? {
        Some(key) => (key, KeySource::Stored(path.clone())),
        None => (generate(&config.data_dir, &path)?, KeySource::Generated(path.clone())),
    };
    config.cipher = std::mem::take(&mut config.cipher)
        .with_current(&key, "the key file")
        .with_context(|| format!("{} is damaged; restore it from your backup", path.display()))?;
    Ok(source)
}

/// Rows rewritten per transaction: small enough not to hold row locks for long beside running servers.
const REWRITE_BATCH: usize = 500;

/// Rewrites every stored endpoint and source secret under the store's current key (plaintext without one), in
/// batches; returns the rows rewritten per table. Rows already under the current key are skipped.
pub async fn rewrite_secrets(store: &dyn Credentials) -> anyhow::Result<Vec<(&'static str, u64)>> {
    rewrite_secrets_reporting(store, &|_, _| {}).await
}

/// [`rewrite_secrets`], calling `progress(table, rows)` after each batch with the rows rewritten in that table so
/// far (`migrate --reencrypt`'s progress).
pub async fn rewrite_secrets_reporting(
    store: &dyn Credentials,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    for (table, name) in [(SecretTable::Endpoints, "endpoints"), (SecretTable::Sources, "sources")] {
        let (mut after, mut rewritten) = (None::<String>, 0);
        loop {
            let batch = store
                .reencrypt_secrets(table, after.as_deref(), REWRITE_BATCH)
                .await
                .with_context(|| format!("re-encrypting the secrets of {name} failed"))?;
            rewritten += batch.rewritten;
            progress(name, rewritten);
            match batch.last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        counts.push((name, rewritten));
    }
    Ok(counts)
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            private_files::restrict(path).with_context(|| format!("cannot make {} private", path.display()))?;
            Ok(Some(text.trim().to_owned()))
        }
        Ok(_) => anyhow::bail!(
            "{} is empty; restore it from your backup (without it the stored secrets cannot be read), or delete it \
             if the database holds no secrets yet",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a new key, readable by the owner only; never replaces an existing file, so two processes starting at once
/// cannot each write their own (the loser reads the winner's).
fn generate(data_dir: &Path, path: &Path) -> anyhow::Result<String> {
    private_files::create_dir(data_dir).with_context(|| format!("cannot create directory {}", data_dir.display()))?;
    let key = hookrelay_core::cipher::generate_key();
    match private_files::create_new_with(path, format!("{key}\n").as_bytes()) {
        Ok(()) => Ok(key),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path)?.with_context(|| format!("{} appeared empty", path.display()))
        }
        Err(err) => Err(err).with_context(|| format!("cannot write {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeArgs;

    fn config_in(dir: &Path, key: Option<String>) -> ServeConfig {
        let args = ServeArgs { data_dir: Some(dir.to_owned()), encryption_key: key, ..Default::default() };
        args.resolve().expect("valid config")
    }

    #[test]
    fn sqlite_gets_a_private_key_file_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = config_in(dir.path(), None);
        assert!(matches!(resolve(&mut first).unwrap(), KeySource::Generated(_)));
        assert!(first.cipher.encrypts());
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let mut second = config_in(dir.path(), None);
        assert_eq!(resolve(&mut second).unwrap(), KeySource::Stored(path.clone()));
        assert_eq!(first.cipher.current_key_id(), second.cipher.current_key_id());
        let sealed = first.cipher.seal("whsec_abc");
        assert_eq!(second.cipher.open(&sealed).unwrap(), "whsec_abc");

        // A configured key wins and the file is left alone.
        let configured = hookrelay_core::cipher::generate_key();
        let mut third = config_in(dir.path(), Some(configured));
        assert_eq!(resolve(&mut third).unwrap(), KeySource::Configured);
        assert_ne!(third.cipher.current_key_id(), first.cipher.current_key_id());

        // A damaged file stops the start rather than sealing with something else.
        std::fs::write(&path, "not a key\n").unwrap();
        let err = resolve(&mut config_in(dir.path(), None)).unwrap_err();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    }

    #[test]
    fn postgres_gets_no_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let args = ServeArgs {
            data_dir: Some(dir.path().to_owned()),
            database_url: Some("postgres://postgres@127.0.0.1:5432/test".into()),
            ..Default::default()
        };
        let mut config = args.resolve().unwrap();
        assert_eq!(resolve(&mut config).unwrap(), KeySource::None);
        assert!(!config.cipher.encrypts());
        assert!(!dir.path().join(KEY_FILE).exists());
    }
}
