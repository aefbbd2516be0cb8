//! `hookrelay token create|list|revoke`: named admin tokens, managed through a running server's admin API
//! (`/api/v1/auth/token`) with the bootstrap admin token, so it works while the server holds the database (a
//! SQLite server locks its file) and, with PostgreSQL, from any machine that reaches one of the processes.
//! A new token is printed once, on stdout, and never again: the database keeps only its SHA-256 digest.

use anyhow::anyhow;
use serde_json::{Value, json};

use super::client::ClientArgs;

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenAction {
    /// Create a named admin token and print it (only this once)
    Create {
        /// A name to find it by later (letters, digits, `-`, `_`, `.`), e.g. `ci` or `billing-service`
        #[arg(long)]
        name: String,
    },
    /// List the named admin tokens (ids, names, creation times; never the tokens)
    List,
    /// Revoke a named admin token by its name or id; every process refuses it within seconds
    Revoke {
        /// The token's name or id (`tok_…`)
        name_or_id: String,
    },
}

/// `hookrelay token`.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
    match args.action {
        TokenAction::Create { name } => {
            let created = api.post(&["api", "v1", "auth", "token"], &json!({ "name": name })).await?;
            let secret = field(&created, "token")?;
            eprintln!(
                "created admin token `{}` ({}); it is shown only now, store it safely:",
                field(&created, "name")?,
                field(&created, "id")?
            );
            println!("{secret}");
        }
        TokenAction::List => {
            let listed = api.get(&["api", "v1", "auth", "token"]).await?;
            let tokens = listed["data"].as_array().ok_or_else(|| anyhow!("unexpected answer: {listed}"))?;
            if tokens.is_empty() {
                eprintln!("no named admin tokens (the bootstrap token from the configuration is not listed)");
            }
            for token in tokens {
                println!("{}\t{}\t{}", field(token, "id")?, field(token, "name")?, field(token, "createdAt")?);
            }
        }
        TokenAction::Revoke { name_or_id } => {
            api.delete(&["api", "v1", "auth", "token", &name_or_id]).await?;
            eprintln!("revoked admin token `{name_or_id}`");
        }
    }
    Ok(())
}

fn field<'a>(value: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    value[name].as_str().ok_or_else(|| anyhow!("the server's answer has no `{name}`: {value}"))
}
