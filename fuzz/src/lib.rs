//! The one fuzz body every target shares: the input is split into header values and a body, given to a
//! provider's verifier under every header name it reads, and the verifier must answer (never panic, never
//! accept a signature made with another secret).

use hookrelay_core::inbound::{Headers, InboundRequest, Provider, Verifier};

/// Header names any provider reads; each gets a piece of the input.
const HEADER_NAMES: [&str; 16] = [
    "Stripe-Signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-Hub-Signature-256",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Topic",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Webhook-Signature",
    "X-Webhook-Timestamp",
];

pub fn check(provider: &str, data: &[u8]) {
    let mut options = serde_json::Map::new();
    if provider == "hmac-sha256" {
        // Exercise the timestamped variant too: its parser reads one more header.
        options.insert("timestampHeader".into(), "X-Webhook-Timestamp".into());
    }
    let provider = Provider::from_options(provider, &options).expect("known provider");
    // Input layout: header values separated by 0xFF bytes, then the body after the last one.
    let mut parts = data.split(|&b| b == 0xFF);
    let values: Vec<String> = parts.by_ref().take(3).map(|part| String::from_utf8_lossy(part).into_owned()).collect();
    let body: Vec<u8> = parts.flat_map(|part| part.iter().copied()).collect();
    let headers = Headers::from_pairs(
        HEADER_NAMES.iter().enumerate().map(|(i, name)| (*name, values.get(i % 3).cloned().unwrap_or_default())),
    );
    let request = InboundRequest { headers: &headers, body: &body };
    // A secret the input cannot know: any input that verifies against it would be a forgery.
    let secret = "whsec_ZnV6ei1zZWNyZXQtdGhhdC1pbnB1dHMtY2Fubm90LWtub3c=";
    let verdict = provider.verify(&request, &[secret], 1_700_000_000, 300);
    assert!(verdict.is_err(), "a fuzzed request verified: {verdict:?}");
    let _ = provider.event_id(&request);
    let _ = provider.event_type(&request);
}
