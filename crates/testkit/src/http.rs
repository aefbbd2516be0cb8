//! HTTP helpers for black-box tests: a loopback client, and the publisher that retries until acknowledged.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// An HTTP client for servers and receivers on loopback (no proxy, whatever the environment says).
pub fn client() -> reqwest::Client {
    // reqwest is built without a bundled TLS provider; hookrelay's engine installs ring, and so do the tests.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("HTTP client")
}

/// One message to publish until some server acknowledges it.
pub struct Publication<'a> {
    pub token: &'a str,
    pub app: &'a str,
    /// The `eventType`/`payload` body.
    pub body: &'a Value,
    /// Sent with every try, so a try whose answer was lost (the server died after committing) is not
    /// published twice.
    pub idempotency_key: &'a str,
}

/// Publishes `publication` until a server answers 202 with a message, and returns its id. `base` gives the
/// server for each try (`http://127.0.0.1:port`; `None` skips the try, for a server known to be down). A try
/// that gets no answer, a 5xx, a 409 (the same key in flight on another server) or a 202 whose body was cut
/// short is retried after 20 ms, after `on_retry` is told its status (`None`: no answer); any other answer
/// fails the test.
pub async fn publish_until_accepted(
    http: &reqwest::Client,
    publication: &Publication<'_>,
    mut base: impl FnMut(usize) -> Option<String>,
    mut on_retry: impl FnMut(Option<StatusCode>),
) -> String {
    for attempt in 0.. {
        let Some(base) = base(attempt) else { continue };
        let response = http
            .post(format!("{base}/api/v1/app/{}/msg/", publication.app))
            .bearer_auth(publication.token)
            .header("idempotency-key", publication.idempotency_key)
            .json(publication.body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let status = match response {
            Ok(response) if response.status() == StatusCode::ACCEPTED => {
                // A body cut short by a kill counts as no answer.
                if let Ok(msg) = response.json::<Value>().await {
                    return msg["id"].as_str().expect("a 202 carries the message id").to_owned();
                }
                Some(StatusCode::ACCEPTED)
            }
            Ok(response) if response.status().is_server_error() || response.status() == StatusCode::CONFLICT => {
                Some(response.status())
            }
            Ok(response) => panic!(
                "publish {} refused: {} {}",
                publication.idempotency_key,
                response.status(),
                response.text().await.unwrap_or_default()
            ),
            // The server is down, being restarted, or died mid-request.
            Err(_) => None,
        };
        on_retry(status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!("the loop above only ends by returning")
}
