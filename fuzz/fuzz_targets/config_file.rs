//! Fuzzes the TOML config file (`HOOKRELAY_CONFIG`) through the same parse and checks `hookrelay serve` applies:
//! never a panic, whatever the file holds; a resolved config has every count and duration at least 1; and a
//! refusal never repeats a secret the file set (admin token, encryption keys, operational webhook secret, the
//! database password), since the message is printed at start-up.
#![no_main]

use hookrelay::config::parse_file;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(args) = parse_file(text) else { return };
    let secrets: Vec<String> = [
        args.admin_token.clone(),
        args.encryption_key.clone(),
        args.encryption_key_previous.clone(),
        args.operational_webhook_secret.clone(),
        args.metrics_token.clone(),
        args.database_url.as_deref().and_then(password).map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    // Short values occur in any message by chance.
    .filter(|secret| secret.trim().len() >= 8)
    .collect();
    match args.resolve() {
        Ok(config) => {
            assert!(config.delivery_timeout.as_secs() >= 1);
            assert!(config.breaker_threshold >= 1 && config.breaker_pause.as_secs() >= 1);
            assert!(config.max_in_flight >= 1 && config.endpoint_concurrency >= 1);
            assert!(config.max_body_bytes >= 1 && config.ingest_max_body_bytes >= 1);
        }
        Err(err) => {
            let message = format!("{err:#}");
            for secret in &secrets {
                assert!(!message.contains(secret.trim()), "the refusal repeats a secret: {message}");
            }
        }
    }
});

/// The password of a `scheme://user:password@host` URL.
fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    userinfo.split_once(':').map(|(_, password)| password).filter(|p| !p.is_empty())
}
