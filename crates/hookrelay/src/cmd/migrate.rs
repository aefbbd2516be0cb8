//! `hookrelay migrate`: bring the database schema up to date and exit (for deploy pipelines; `serve` also
//! migrates at start), or, with `--from` and `--to`, copy an embedded SQLite database into an empty PostgreSQL
//! database to move a deployment onto the shared backend, or, with `--reencrypt`, seal every stored secret again
//! under the current encryption key (after turning encryption on or changing the key).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hookrelay_core::cipher::SecretCipher;
use hookrelay_store::Credentials;
use hookrelay_store::copy::{CopyReport, TABLES, sqlite_to_postgres_reporting};

use crate::cmd::{progress, serve::open_store};
use crate::config::{DATABASE_FILE, ServeArgs, redact_password};
use crate::{encryption_key, logging};

/// Settings of `hookrelay migrate`: the server's (which database to upgrade, how to log), plus the copy's source
/// and target. The copy's two flags are deliberately not read from the environment or the config file: a copy is
/// a one-off action, and a variable left set would turn every later `migrate` into one.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Copy this SQLite database (`sqlite://<path>`, a path, or a data directory) into the PostgreSQL database
    /// given with --to, instead of upgrading the configured database; stop the server first
    #[arg(long, value_name = "SQLITE", requires = "to")]
    pub from: Option<String>,

    /// The PostgreSQL database to copy into (`postgres://user[:password]@host[:port]/database`); it must hold no
    /// hookrelay data. Needs --from
    #[arg(long, value_name = "POSTGRES_URL", requires = "from")]
    pub to: Option<String>,

    /// After upgrading, encrypt every endpoint and source secret again with HOOKRELAY_ENCRYPTION_KEY (reading old
    /// ones with HOOKRELAY_ENCRYPTION_KEY_PREVIOUS), in batches; without a key, write them back in plaintext
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub reencrypt: bool,

    /// Which database to upgrade and how to log: the server's settings, listed after migrate's own in --help.
    #[command(flatten, next_help_heading = "Server settings")]
    pub serve: ServeArgs,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let mut config = args.serve.resolve()?;
    logging::init(&config.log, &config.log_format);
    let (Some(from), Some(to)) = (args.from, args.to) else {
        encryption_key::resolve(&mut config)?;
        let store = open_store(&config).await?;
        println!("database {} is up to date", config.database.describe());
        if args.reencrypt {
            reencrypt(store.credentials.as_ref(), &config.cipher).await?;
        }
        return Ok(());
    };
    let source = sqlite_path(&from)?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL: postgres://user[:password]@host[:port]/database");
    }
    let bar = progress::bar(TABLES.len() as u64, "[{bar:30}] {pos}/{len} tables  {msg} ({elapsed})");
    bar.set_message("opening the databases");
    let report = sqlite_to_postgres_reporting(&source, &to, &|table, rows| {
        bar.set_position(TABLES.iter().position(|t| *t == table).unwrap_or(0) as u64);
        bar.set_message(format!("{table}: {rows} rows"));
    })
    .await;
    bar.finish_and_clear();
    let report = report.with_context(|| format!("copying {} into PostgreSQL failed", source.display()))?;
    print!("{}", summary(&source, &report, &redact_password(&to)));
    Ok(())
}

/// Seals every stored secret under the cipher's current key, table by table, in batches.
async fn reencrypt(store: &dyn Credentials, cipher: &SecretCipher) -> anyhow::Result<()> {
    match cipher.current_key_id() {
        Some(id) => println!("encrypting stored secrets with the current key (key id {id})"),
        None => println!("HOOKRELAY_ENCRYPTION_KEY is not set: writing stored secrets back in plaintext"),
    }
    let spinner = progress::spinner("re-encrypting stored secrets");
    let counts = encryption_key::rewrite_secrets_reporting(store, &|table, rows| {
        spinner.set_message(format!("re-encrypting stored secrets: {table}, {rows} rewritten"));
    })
    .await;
    spinner.finish_and_clear();
    for (name, rewritten) in counts? {
        println!("  {name:<10}{rewritten:>10} rewritten");
    }
    println!("done: every stored secret now uses the current key; HOOKRELAY_ENCRYPTION_KEY_PREVIOUS can be removed");
    Ok(())
}

/// The database file `--from` names: `sqlite://<path>` or a plain path; a directory stands for the database a
/// server keeps in it (its data directory).
fn sqlite_path(from: &str) -> anyhow::Result<PathBuf> {
    let path = match from.split_once("://") {
        Some(("sqlite", rest)) => rest,
        Some((scheme, _)) => {
            bail!("--from must be a SQLite database (sqlite://<path> or a path), not a {scheme}:// URL")
        }
        None => from,
    };
    if path.is_empty() {
        bail!("--from needs a path: sqlite://<path>, or the path alone");
    }
    let path = PathBuf::from(path);
    Ok(if path.is_dir() { path.join(DATABASE_FILE) } else { path })
}

/// What the copy did and what to do next; the last line says how to start the server on the new database.
fn summary(source: &Path, report: &CopyReport, target: &str) -> String {
    let mut out = format!("copied {} into PostgreSQL:\n", source.display());
    let width = report.tables.iter().map(|t| t.table.len()).max().unwrap_or(0).max("total rows".len()) + 2;
    for table in &report.tables {
        out.push_str(&format!("  {:<width$}{:>10}\n", table.table, table.rows));
    }
    out.push_str(&format!("  {:<width$}{:>10}\n", "total rows", report.total_rows()));
    if report.requeued_deliveries > 0 {
        out.push_str(&format!(
            "{} deliveries that were being sent when the server stopped are due again: their endpoints may get them \
             twice\n",
            report.requeued_deliveries
        ));
    }
    for table in report.tables.iter().filter(|t| t.nul_replaced > 0) {
        out.push_str(&format!(
            "{} text values in {} held NUL characters, which PostgreSQL cannot store: each became U+FFFD\n",
            table.nul_replaced, table.table
        ));
    }
    out.push_str(&format!("{} is unchanged: keep it as a backup until the new setup runs well\n", source.display()));
    out.push_str(&format!("start the server with HOOKRELAY_DATABASE_URL={target}\n"));
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use hookrelay_store::copy::TableCopied;

    use super::*;
    use crate::cmd::{Cli, Command};

    #[test]
    fn from_takes_a_sqlite_url_a_path_or_a_data_directory() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/hookrelay/hookrelay.db").unwrap(),
            Path::new("/var/lib/hookrelay/hookrelay.db")
        );
        assert_eq!(sqlite_path("sqlite://data/hookrelay.db").unwrap(), Path::new("data/hookrelay.db"));
        assert_eq!(sqlite_path("old.db").unwrap(), Path::new("old.db"));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(sqlite_path(&dir.path().display().to_string()).unwrap(), dir.path().join(DATABASE_FILE));
        let err = sqlite_path("postgres://localhost/db").unwrap_err();
        assert!(err.to_string().contains("not a postgres:// URL"), "{err}");
        assert!(sqlite_path("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_masked_in_what_is_printed() {
        assert_eq!(redact_password("postgres://hr:s3cret@db:5432/hookrelay"), "postgres://hr:***@db:5432/hookrelay");
        assert_eq!(
            redact_password("postgres://hr@db/hookrelay?sslmode=disable"),
            "postgres://hr@db/hookrelay?sslmode=disable"
        );
        assert_eq!(
            redact_password("postgresql://db/hookrelay?user=hr&password=s3cret&options=-csearch_path%3Dx"),
            "postgresql://db/hookrelay?user=hr&password=***&options=-csearch_path%3Dx"
        );
        assert_eq!(redact_password("postgres://hr:p@ss@db"), "postgres://hr:***@db");
    }

    #[test]
    fn the_copy_flags_come_together_and_plain_migrate_still_parses() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["hookrelay", "migrate"], args].concat());
        match parse(&["--from", "a.db", "--to", "postgres://db/x"]).unwrap().command {
            Command::Migrate(args) => {
                assert_eq!((args.from.as_deref(), args.to.as_deref()), (Some("a.db"), Some("postgres://db/x")))
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&["--data-dir", "/tmp/x"]).unwrap().command {
            Command::Migrate(args) => {
                assert_eq!(args.serve.data_dir, Some(PathBuf::from("/tmp/x")));
                assert_eq!((args.from, args.to), (None, None));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(parse(&["--from", "a.db"]).is_err(), "--from without --to");
        assert!(parse(&["--to", "postgres://db/x"]).is_err(), "--to without --from");
    }

    #[test]
    fn the_summary_ends_with_how_to_start_the_server() {
        let report = CopyReport {
            tables: vec![
                TableCopied { table: "applications", rows: 2, nul_replaced: 0 },
                TableCopied { table: "attempts", rows: 7, nul_replaced: 1 },
                TableCopied { table: "endpoint_failure_minutes", rows: 0, nul_replaced: 0 },
            ],
            requeued_deliveries: 3,
        };
        let text = summary(Path::new("data/hookrelay.db"), &report, "postgres://hr:***@db/hookrelay");
        // Counts line up under the longest table name.
        assert!(text.contains("\n  applications                       2\n"), "{text}");
        assert!(text.contains("\n  endpoint_failure_minutes           0\n"), "{text}");
        assert!(text.contains("\n  total rows                         9\n"), "{text}");
        assert!(text.contains("3 deliveries that were being sent"), "{text}");
        assert!(text.contains("1 text values in attempts"), "{text}");
        assert_eq!(
            text.lines().last(),
            Some("start the server with HOOKRELAY_DATABASE_URL=postgres://hr:***@db/hookrelay")
        );
    }
}
