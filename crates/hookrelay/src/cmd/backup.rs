//! `hookrelay backup <file>`: a consistent copy of the embedded SQLite database, taken while the server runs
//! (SQLite's online backup API; what the write-ahead log holds is included). PostgreSQL is backed up with its
//! own tools; docs/deploy.md gives both procedures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hookrelay_store::sqlite::{BackupReport, backup};

use crate::cmd::progress;
use crate::config::{Database, ServeArgs};

/// Settings of `hookrelay backup`: where to write, and the server's settings to find its database.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The file to write the copy to (created with mode 0600)
    pub file: PathBuf,

    /// Replace the file if it exists
    #[arg(long)]
    pub force: bool,

    /// Where the database is: the server's settings, listed after backup's own in --help.
    #[command(flatten, next_help_heading = "Server settings")]
    pub serve: ServeArgs,
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.serve.resolve()?;
    let database = match config.database {
        Database::Sqlite(path) => path,
        Database::Postgres { .. } => bail!(
            "hookrelay backup copies the embedded SQLite database; back up PostgreSQL with pg_dump (e.g. `pg_dump \
             --format=custom --file=hookrelay.dump \"$HOOKRELAY_DATABASE_URL\"`) or your provider's snapshots \
             (docs/deploy.md, \"Backup and restore\")"
        ),
    };
    let (file, force) = (args.file, args.force);
    let started = Instant::now();
    // SQLite copies every page in one step (see the store's backup module), so there is no fraction to show.
    let spinner = progress::spinner(format!("backing up {} to {}", database.display(), file.display()));
    let report = {
        let (database, file) = (database.clone(), file.clone());
        tokio::task::spawn_blocking(move || backup(&database, &file, force)).await
    };
    spinner.finish_and_clear();
    let report = report
        .context("the backup stopped")?
        .with_context(|| format!("cannot back up {} to {}", database.display(), file.display()))?;
    print!("{}", summary(&database, &file, &report, started.elapsed().as_secs_f64()));
    if config.cipher.encrypts() {
        println!(
            "Secrets in the copy are sealed with HOOKRELAY_ENCRYPTION_KEY: keep the key too (not beside the copy); \
             the copy's secrets cannot be read without it."
        );
    }
    let key_file = config.data_dir.join("encryption-key");
    if key_file.is_file() {
        println!(
            "Secrets in the copy are sealed with the key in {}: back that file up too (separately); the copy's \
             secrets cannot be read without it.",
            key_file.display()
        );
    }
    Ok(())
}

/// What was copied and how to restore it.
fn summary(database: &Path, file: &Path, report: &BackupReport, seconds: f64) -> String {
    format!(
        "backed up {} to {} in {seconds:.1} s: {} messages, {:.1} MiB (mode 0600)\n\
         To restore: stop the server, replace the database file with this copy, delete any {}-wal and {}-shm \
         beside it, and start the server.\n",
        database.display(),
        file.display(),
        report.messages,
        report.bytes as f64 / (1024.0 * 1024.0),
        database.display(),
        database.display(),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cmd::{Cli, Command};

    #[test]
    fn the_file_is_required_and_the_server_settings_are_accepted() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["hookrelay", "backup"], args].concat());
        match parse(&["copy.db", "--data-dir", "/srv/hookrelay", "--force"]).unwrap().command {
            Command::Backup(args) => {
                assert_eq!(args.file, PathBuf::from("copy.db"));
                assert!(args.force);
                assert_eq!(args.serve.data_dir, Some(PathBuf::from("/srv/hookrelay")));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(parse(&[]).is_err(), "a backup needs a file");
    }

    #[tokio::test]
    async fn postgres_is_pointed_at_pg_dump() {
        let args = BackupArgs {
            file: PathBuf::from("copy.db"),
            force: false,
            serve: ServeArgs {
                database_url: Some("postgres://hr:s3cret@127.0.0.1:5432/hookrelay".into()),
                ..Default::default()
            },
        };
        let err = run(args).await.unwrap_err();
        assert!(err.to_string().contains("pg_dump"), "{err}");
        assert!(!format!("{err:#}").contains("s3cret"), "{err:#}");
        assert!(!Path::new("copy.db").exists());
    }

    #[test]
    fn the_summary_says_how_to_restore() {
        let report = BackupReport { pages: 300, bytes: 3 * 1024 * 1024, messages: 42 };
        let text = summary(Path::new("data/hookrelay.db"), Path::new("/backups/h.db"), &report, 0.31);
        assert!(
            text.starts_with("backed up data/hookrelay.db to /backups/h.db in 0.3 s: 42 messages, 3.0 MiB"),
            "{text}"
        );
        assert!(text.contains("delete any data/hookrelay.db-wal and data/hookrelay.db-shm"), "{text}");
    }
}
