//! One delivery attempt: a signed POST of the stored payload bytes, with the Standard Webhooks headers (and
//! the same values as `svix-*` headers), a timeout, and a bounded capture of the response body.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use hookrelay_core::model::SignatureScheme;
use hookrelay_core::signature_headers::StandardHeaders;
use hookrelay_core::signing::{EndpointSecret, hmac_hex_signature, signature_header};
use hookrelay_core::text;
use hookrelay_core::time::now_ms;
use hookrelay_live::listeners::{self, Forward, Listeners};
use hookrelay_store::ClaimedDelivery;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::egress;

/// Most response-body bytes kept on an attempt (Svix keeps 20,000).
pub const MAX_RESPONSE_BYTES: usize = 20_000;

const USER_AGENT: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

/// What came back from one attempt.
#[derive(Debug)]
pub struct SendResult {
    /// HTTP status, or 0 when no response arrived.
    pub status_code: u16,
    /// The (truncated) response body, or what went wrong.
    pub response: String,
    pub duration_ms: i64,
    /// The receiver's `Retry-After`, as a wait from now.
    pub retry_after: Option<Duration>,
}

struct Response {
    status_code: u16,
    body: String,
    retry_after: Option<Duration>,
}

/// What is sent: the stored delivery as it is, or what the endpoint's transformation made of it.
pub struct Request<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// The exact bytes delivered, and signed.
    pub body: &'a [u8],
    /// Headers the transformation added; every header hookrelay sets wins over them.
    pub extra_headers: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Request<'a> {
    /// The delivery as stored: a POST of the payload to the endpoint's URL.
    pub fn stored(delivery: &'a ClaimedDelivery) -> Self {
        Self {
            method: reqwest::Method::POST,
            url: &delivery.url,
            body: delivery.payload.as_bytes(),
            extra_headers: None,
        }
    }
}

impl SendResult {
    /// An attempt that never reached the receiver, for `reason`.
    pub fn not_sent(reason: String) -> Self {
        Self { status_code: 0, response: reason, duration_ms: 0, retry_after: None }
    }
}

/// Where deliveries go: over HTTP, or to the `hookrelay listen` session of a `listen://` endpoint.
pub struct Transport<'a> {
    pub client: &'a reqwest::Client,
    pub listeners: &'a Listeners,
    /// How long a listener has to answer (an HTTP request's limit is the client's).
    pub timeout: Duration,
}

/// Sends one delivery and reports what happened; never fails, since every failure is an attempt result.
pub async fn send(
    transport: &Transport<'_>,
    delivery: &ClaimedDelivery,
    request: &Request<'_>,
    rules: &egress::UrlRules,
) -> SendResult {
    let started = Instant::now();
    let answer = attempt(transport, delivery, request, rules).await.unwrap_or_else(|reason| Response {
        status_code: 0,
        body: reason,
        retry_after: None,
    });
    SendResult {
        status_code: answer.status_code,
        response: answer.body,
        duration_ms: started.elapsed().as_millis() as i64,
        retry_after: answer.retry_after,
    }
}

async fn attempt(
    transport: &Transport<'_>,
    delivery: &ClaimedDelivery,
    request: &Request<'_>,
    rules: &egress::UrlRules,
) -> Result<Response, String> {
    let url = reqwest::Url::parse(request.url).map_err(|e| format!("invalid endpoint URL: {e}"))?;
    // No address is reached: the listener's own connection to the API carries the delivery.
    if url.scheme() == listeners::SCHEME {
        return to_listener(transport, delivery, request).await;
    }
    rules.check(&url).map_err(|e| e.to_string())?;
    let headers = delivery_headers(delivery, request, now_ms() / 1000);
    let mut response = transport
        .client
        .request(request.method.clone(), url)
        .headers(headers)
        .body(request.body.to_vec())
        .send()
        .await
        .map_err(|e| describe_error(&e))?;
    let status_code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status already arrived; a body cut short does not change the outcome.
            Err(_) => break,
        }
    }
    body.truncate(MAX_RESPONSE_BYTES);
    Ok(Response { status_code, body: body_text(body), retry_after })
}

/// Hands the delivery to the endpoint's `hookrelay listen` session and takes what its local URL answered.
async fn to_listener(
    transport: &Transport<'_>,
    delivery: &ClaimedDelivery,
    request: &Request<'_>,
) -> Result<Response, String> {
    let headers = delivery_headers(delivery, request, now_ms() / 1000);
    let forward = Forward {
        id: 0,
        msg_id: delivery.msg_id.to_string(),
        event_type: delivery.event_type.clone(),
        method: request.method.to_string(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: String::from_utf8_lossy(request.body).into_owned(),
    };
    let mut answer = transport.listeners.forward(delivery.endpoint_id.as_str(), forward, transport.timeout).await?;
    answer.body.truncate(text::prefix(&answer.body, MAX_RESPONSE_BYTES).len());
    Ok(Response { status_code: answer.status_code, body: answer.body, retry_after: None })
}

fn delivery_headers(delivery: &ClaimedDelivery, request: &Request<'_>, timestamp_secs: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // Custom, forwarded and transformation headers first, so ours win if a name collides with one we set.
    let added = request.extra_headers.into_iter().flatten();
    for (name, value) in delivery.headers.iter().chain(&delivery.forwarded_headers).chain(added) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            headers.insert(name, value);
        }
    }
    let body = request.body;
    insert_signed_headers(
        &mut headers,
        delivery.msg_id.as_str(),
        timestamp_secs,
        body,
        delivery.secrets.signing_secrets(timestamp_secs * 1000),
        delivery.standard_headers,
    );
    // A raw payload goes out with the content type its publisher gave (checked when it was published).
    if let Some(content_type) = delivery.content_type.as_deref()
        && let Ok(value) = HeaderValue::try_from(content_type)
    {
        headers.insert(reqwest::header::CONTENT_TYPE, value);
    }
    if delivery.signature_schemes.contains(&SignatureScheme::HmacHex)
        && let Ok(value) = HeaderValue::try_from(hmac_hex_signature(&delivery.secrets.current, body))
    {
        headers.insert(HeaderName::from_static("x-webhook-signature"), value);
    }
    // The endpoint's own signature headers carry the current secret's signature only: one value is what such
    // receivers parse.
    for signature in &delivery.signature_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(signature.header.as_str()),
            HeaderValue::try_from(signature.value(&delivery.secrets.current, body)),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Sets the JSON content type, our user agent and the Standard Webhooks headers of `families` (`webhook-*`,
/// and the same values as `svix-*`) for one signed POST of `body`.
pub fn insert_signed_headers<'a>(
    headers: &mut HeaderMap,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a EndpointSecret>,
    families: StandardHeaders,
) {
    for (name, value) in [("content-type", "application/json"), ("user-agent", USER_AGENT)] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    if families == StandardHeaders::None {
        return;
    }
    let signature = signature_header(secrets, msg_id, timestamp_secs, body);
    let timestamp = timestamp_secs.to_string();
    let standard = [
        (families.webhook(), "webhook-id", msg_id),
        (families.webhook(), "webhook-timestamp", &timestamp),
        (families.webhook(), "webhook-signature", &signature),
        (families.svix(), "svix-id", msg_id),
        (families.svix(), "svix-timestamp", &timestamp),
        (families.svix(), "svix-signature", &signature),
    ];
    for (_, name, value) in standard.into_iter().filter(|(sent, _, _)| *sent) {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Keeps UTF-8 bodies as text (cut at a character boundary); anything else is stored base64-encoded. So is text
/// with NUL characters: it is binary in practice, and PostgreSQL's text type cannot hold them.
fn body_text(body: Vec<u8>) -> String {
    match String::from_utf8(body) {
        Ok(text) if text.contains('\0') => base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
        Ok(text) => text,
        Err(err) => {
            let valid_up_to = err.utf8_error().valid_up_to();
            let bytes = err.into_bytes();
            // A multi-byte character cut by the size limit is not binary data.
            if bytes.len() >= MAX_RESPONSE_BYTES && bytes.len() - valid_up_to < 4 {
                String::from_utf8_lossy(&bytes[..valid_up_to]).into_owned()
            } else {
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            }
        }
    }
}

/// A one-line description of a request failure, with its causes (reqwest's own message is terse).
fn describe_error(err: &reqwest::Error) -> String {
    with_causes(if err.is_timeout() { "timed out".to_owned() } else { "request failed".to_owned() }, err)
}

/// `text`, then each cause of `err` that it does not already say: `request failed: connection refused`.
pub(crate) fn with_causes(mut text: String, err: &dyn std::error::Error) -> String {
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads a `Retry-After` value: delay seconds (`120`) or an HTTP date. Dates in the past mean "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_kept_as_text_or_base64() {
        assert_eq!(body_text(b"ok".to_vec()), "ok");
        assert_eq!(body_text(vec![0xff, 0x00]), "/wA=");
        assert_eq!(body_text(b"a\0b".to_vec()), "YQBi", "NUL is binary");
        let mut cut = vec![b'a'; MAX_RESPONSE_BYTES - 1];
        cut.push(0xc3); // first byte of a two-byte character, cut by the limit
        assert_eq!(body_text(cut), "a".repeat(MAX_RESPONSE_BYTES - 1));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
