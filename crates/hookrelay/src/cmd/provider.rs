//! What `hookrelay sign` and `hookrelay verify` share: the provider, its secret and its options from the
//! command line, and the body from standard input.

use std::io::Read;

use anyhow::Context;
use hookrelay_core::inbound::{Provider, Verifier};
use serde_json::{Map, Value};

#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    /// Provider: stripe, svix, github, shopify, slack or hmac-sha256
    #[arg(long)]
    pub provider: String,
    /// The provider's signing secret, exactly as its dashboard shows it
    #[arg(long, env = "HOOKRELAY_PROVIDER_SECRET", hide_env_values = true)]
    pub secret: String,
    /// A provider option as key=value, e.g. `signatureHeader=X-Corp-Signature` (repeatable; slack and
    /// hmac-sha256 only)
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Read the body from this file instead of standard input
    #[arg(long)]
    pub body_file: Option<std::path::PathBuf>,
}

impl ProviderArgs {
    pub fn provider(&self) -> anyhow::Result<Provider> {
        let mut options = Map::new();
        for option in &self.options {
            let (key, value) =
                option.split_once('=').with_context(|| format!("`--option {option}`: write options as key=value"))?;
            options.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        let provider = Provider::from_options(&self.provider, &options)?;
        provider.check_secret(&self.secret).map_err(|err| anyhow::anyhow!("--secret: {err}"))?;
        Ok(provider)
    }

    /// The raw body bytes, unchanged (no trailing newline is added or removed).
    pub fn body(&self) -> anyhow::Result<Vec<u8>> {
        match &self.body_file {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display())),
            None => {
                let mut body = Vec::new();
                std::io::stdin().read_to_end(&mut body).context("cannot read the body from standard input")?;
                Ok(body)
            }
        }
    }
}
