//! `hookrelay sign`: prints the headers a provider would send with a body, so a local hookrelay (or any
//! receiver) can be tried with requests that verify, the way `stripe trigger` helps with Stripe.
//!
//! ```text
//! echo '{"id":"evt_1","type":"invoice.paid"}' > body.json
//! hookrelay sign --provider stripe --secret whsec_… --body-file body.json > headers.txt
//! curl -H @headers.txt -H 'content-type: application/json' --data-binary @body.json http://127.0.0.1:8071/ingest/stripe
//! ```

use hookrelay_core::inbound::Verifier;
use hookrelay_core::time::now_ms;

use super::provider::ProviderArgs;

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// Unix seconds to sign at [default: now]
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// The delivery id the provider would send (svix-id, X-GitHub-Delivery, X-Shopify-Webhook-Id) [default: random]
    #[arg(long)]
    pub event_id: Option<String>,
}

pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let provider = args.provider.provider()?;
    let body = args.provider.body()?;
    let timestamp = args.timestamp.unwrap_or_else(|| now_ms() / 1000);
    let event_id = args.event_id.unwrap_or_else(|| format!("evt_{:016x}", rand::random::<u64>()));
    for (name, value) in provider.sign(&body, &args.provider.secret, timestamp, &event_id) {
        println!("{name}: {value}");
    }
    Ok(())
}
