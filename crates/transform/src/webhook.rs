//! The `webhook` object a handler gets, and what is read back from the one it returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::TransformError;

/// The largest payload a handler may return, in bytes.
const MAX_PAYLOAD_BYTES: usize = 4 << 20;
/// The most headers a handler may add, and the longest value of one.
const MAX_HEADERS: usize = 50;
const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// What the handler gets, as Svix's transformations define it plus hookrelay's `headers`. `msgId`, `eventId` and
/// `timestamp` (the message's, RFC 3339) are read-only: changing them changes nothing.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook<'a> {
    pub method: Method,
    pub url: &'a str,
    /// The message's payload, as JSON text.
    pub payload: &'a RawValue,
    pub event_type: &'a str,
    pub msg_id: &'a str,
    pub event_id: Option<&'a str>,
    pub timestamp: &'a str,
}

/// The HTTP method of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
}

/// What the handler made of the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transformed {
    pub method: Method,
    pub url: String,
    /// The payload to deliver, as the JSON text the handler's object serializes to; signatures are computed over
    /// exactly these bytes.
    pub payload: String,
    /// Extra headers; hookrelay's own (signatures, `webhook-*`, content type) are set after them and win.
    pub headers: BTreeMap<String, String>,
    /// The handler chose not to send this delivery.
    pub cancel: bool,
}

/// The webhook object the handler returned (or changed in place), as JSON.
#[derive(Deserialize)]
struct Returned {
    method: Option<String>,
    url: Option<String>,
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    cancel: Option<bool>,
}

/// The handler's `webhook` argument: the webhook with `cancel: false` and no extra headers yet.
#[derive(Serialize)]
struct Argument<'a, 'w> {
    #[serde(flatten)]
    webhook: &'a Webhook<'w>,
    cancel: bool,
    headers: BTreeMap<String, String>,
}

impl Webhook<'_> {
    /// The JSON the handler's `webhook` argument is parsed from.
    pub(crate) fn to_json(&self) -> String {
        let argument = Argument { webhook: self, cancel: false, headers: BTreeMap::new() };
        serde_json::to_string(&argument).expect("a webhook serializes")
    }
}

/// Reads the returned webhook back, checking what will be sent.
pub(crate) fn read_result(json: &str) -> Result<Transformed, TransformError> {
    let bad = |msg: &str| TransformError::BadResult(msg.to_owned());
    let returned: Returned = serde_json::from_str(json)
        .map_err(|_| bad("return the webhook object (or nothing, to keep the one passed in)"))?;
    let method = match returned.method.as_deref() {
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        _ => return Err(bad("`method` must be \"POST\" or \"PUT\"")),
    };
    let url = returned.url.filter(|url| !url.is_empty()).ok_or_else(|| bad("`url` must be a string"))?;
    let payload = returned.payload.ok_or_else(|| bad("`payload` is missing"))?.get().to_owned();
    if !payload.starts_with('{') {
        return Err(bad("`payload` must be a JSON object, as a published payload is"));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(TransformError::BadResult(format!(
            "`payload` is {} bytes; at most {MAX_PAYLOAD_BYTES} are allowed",
            payload.len()
        )));
    }
    let mut headers = BTreeMap::new();
    for (name, value) in returned.headers.unwrap_or_default() {
        let serde_json::Value::String(value) = value else {
            return Err(TransformError::BadResult(format!("header `{name}` must be a string")));
        };
        // What an HTTP header can carry: a token for the name, no control characters in the value.
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(TransformError::BadResult(format!("`{name}` is not a valid header name")));
        }
        if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
            return Err(TransformError::BadResult(format!("header `{name}` has a control character in its value")));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(TransformError::BadResult(format!(
                "header `{name}` is {} bytes; at most {MAX_HEADER_VALUE_BYTES} are allowed",
                value.len()
            )));
        }
        headers.insert(name, value);
    }
    if headers.len() > MAX_HEADERS {
        return Err(TransformError::BadResult(format!("{} headers; at most {MAX_HEADERS} are allowed", headers.len())));
    }
    Ok(Transformed { method, url, payload, headers, cancel: returned.cancel.unwrap_or(false) })
}
