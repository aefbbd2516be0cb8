//! `hookrelay verify`: checks a webhook's signature the way `/ingest/…` does and prints `ok` or the precise
//! reason it fails, for debugging a provider's setup without a server.
//!
//! ```text
//! hookrelay verify --provider stripe --secret whsec_… --header 'Stripe-Signature: t=…,v1=…' < body.json
//! ```

use anyhow::Context;
use hookrelay_core::inbound::{Headers, InboundRequest, Verifier};
use hookrelay_core::time::now_ms;

use super::provider::ProviderArgs;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// A request header as `Name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// How far a signed timestamp may be from now, in seconds
    #[arg(long, default_value_t = 300)]
    pub tolerance_secs: i64,
    /// Check as if it were this unix time [default: now] (to check a captured request later)
    #[arg(long)]
    pub now: Option<i64>,
}

/// Verifies, prints the outcome, and returns whether the signature is valid.
pub fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let provider = args.provider.provider()?;
    let body = args.provider.body()?;
    let pairs = args
        .headers
        .iter()
        .map(|header| {
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("`--header {header}`: write headers as `Name: value`"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let headers = Headers::from_pairs(pairs);
    let request = InboundRequest { headers: &headers, body: &body };
    let now = args.now.unwrap_or_else(|| now_ms() / 1000);
    match provider.verify(&request, &[args.provider.secret.as_str()], now, args.tolerance_secs) {
        Ok(()) => {
            let id = provider.event_id(&request).unwrap_or_else(|| "-".into());
            let kind = provider.event_type(&request).unwrap_or_else(|| "-".into());
            println!("ok: signature valid (event id {id}, type {kind})");
            Ok(true)
        }
        Err(rejection) => {
            println!("rejected ({}): {rejection}", rejection.reason());
            Ok(false)
        }
    }
}
