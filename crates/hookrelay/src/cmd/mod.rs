//! The command line: one module per subcommand.

pub mod backup;
pub mod bench;
pub mod client;
pub mod completions;
pub mod listen;
pub mod migrate;
pub mod progress;
pub mod provider;
pub mod recover;
pub mod serve;
pub mod sign;
pub mod stream;
pub mod tail;
pub mod token;
pub mod trigger;
pub mod verify;

use clap::{Parser, Subcommand};

/// The version `--version` prints: the crate's version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("HOOKRELAY_COMMIT"), ")");

/// Self-hosted webhook gateway: durable, signed, retried outbound webhooks with a Svix-compatible API, and
/// verified, deduplicated inbound webhooks.
#[derive(Parser, Debug)]
#[command(name = "hookrelay", version = VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API server and the delivery dispatcher.
    Serve(crate::config::ServeArgs),
    /// Create or upgrade the database schema, then exit (serve also does this at start); with --from and --to, copy
    /// a SQLite database into an empty PostgreSQL one instead.
    Migrate(migrate::MigrateArgs),
    /// Copy the embedded SQLite database to a file while the server runs (a consistent online backup, mode
    /// 0600); PostgreSQL is backed up with pg_dump.
    Backup(backup::BackupArgs),
    /// Receive an application's deliveries (or a source's inbound events) here, with no public address: forward
    /// each to a local URL (--forward-to) and record its answer, or print it with its signature checked.
    Listen(listen::ListenArgs),
    /// Follow the attempts a running server makes, live: coloured lines on a terminal, JSON lines otherwise.
    Tail(tail::TailArgs),
    /// Re-send an endpoint's failed deliveries of a time window (or, with --missing, the messages it never
    /// got) through a running server, with a progress bar.
    Recover(recover::RecoverArgs),
    /// Check an inbound webhook's signature (Stripe, Svix, GitHub, Shopify, Slack, generic HMAC) and print ok or
    /// why it fails; exits 1 when it fails.
    Verify(verify::VerifyArgs),
    /// Measure hookrelay on loopback (publish throughput, delivery latency, fan-out, backlog) and print a table.
    Bench(bench::BenchArgs),
    /// The benchmark's no-storage reference server (spawned by `bench --reference`).
    #[command(hide = true)]
    BenchReference(bench::reference::ReferenceArgs),
    /// Print the headers a provider would send with a body, to try an ingest URL locally.
    Sign(sign::SignArgs),
    /// Create, list or revoke named admin tokens through a running server.
    Token(token::TokenArgs),
    /// Send one event through a running server: publish an event type's example to an application, or with
    /// --source a provider's event, signed with the source's secret, to its ingest URL.
    Trigger(trigger::TriggerArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one page per command with --out-dir.
    Man(completions::ManArgs),
}
