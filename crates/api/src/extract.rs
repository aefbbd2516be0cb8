//! Request extractors that fail with Svix-shaped errors instead of axum's plain-text rejections: a JSON body
//! (422 naming the field and what is wrong, 413 when too large), query parameters with typed accessors (422
//! naming the parameter), and path segments.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hookrelay_core::time::UnixMillis;
use hookrelay_core::validate::check_name;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON request body. Any content type is accepted: curl users often forget the header, and the body is
/// what matters.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::body(&[], "the request body is empty; send a JSON object"));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out entirely (e.g. secret rotation, where every field is optional).
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        parse_json(&bytes).map(|value| OptionalJson(Some(value)))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection: BytesRejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::body(&[], format!("could not read the request body: {}", rejection.body_text()))
        }
    })
}

/// Most levels of arrays and objects nested in a JSON body: the publish body (whose payload sits one level
/// inside it), every other API body, and inbound webhooks. Without it, a payload kept as raw JSON text is never
/// parsed into a tree here and could nest without limit, and the receivers parsing it would fail (Python's json
/// raises `RecursionError` near 1,000 levels); 128 is serde_json's own limit for a tree.
pub const MAX_JSON_DEPTH: usize = 128;

/// Whether `bytes` nest arrays and objects more than `max` levels deep, found by a scan of the raw bytes before
/// any parser sees them (one pass, no allocation, stopping at the first level too many). Brackets inside strings
/// do not count, escaped quotes included. The text need not be valid JSON: the parser that runs next says so.
pub fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // UTF-8 continuation bytes are all >= 0x80, so they are never mistaken for the ASCII bytes looked for.
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a JSON body into `T`, turning serde's error into a 422 that points at the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Before parsing: fields kept as raw JSON (a message's payload) are skipped by serde_json without any depth
    // limit, so a body nested 500,000 levels deep would otherwise be stored and delivered.
    if nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::body(
            &[],
            format!("the JSON nests arrays and objects more than {MAX_JSON_DEPTH} levels deep, which is the limit"),
        ));
    }
    // Every body is an object; serde would otherwise also fill a struct from an array, field by position.
    let starts_as_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::body(&[], "the body must be a JSON object, e.g. {\"name\": \"…\"}"));
    }
    serde_json::from_slice(bytes).map_err(|err| json_error(bytes, &err))
}

fn json_error(bytes: &[u8], err: &serde_json::Error) -> ApiError {
    let message = bare_message(err);
    if !err.is_data() {
        // Syntax errors and a truncated body: the position is the useful part.
        return ApiError::body(
            &[],
            format!("the body is not valid JSON: {message} (line {}, column {})", err.line(), err.column()),
        );
    }
    let offset = byte_offset(bytes, err.line(), err.column());
    let missing = message.strip_prefix("missing field `");
    let duplicate = message.strip_prefix("duplicate field `");
    // A missing field is reported once the object's `}` is consumed: step back inside the object. Either way
    // the innermost frame's key is a sibling (or none), so replace it with the field the message names.
    let offset = if missing.is_some() { offset.saturating_sub(1) } else { offset };
    let mut frames = json_path_at(bytes, offset);
    if let Some(field) = missing.or(duplicate).and_then(|rest| rest.split('`').next())
        && let Some(JsonFrame::Object(key)) = frames.last_mut()
    {
        *key = Some(field.to_owned());
    }
    let loc = std::iter::once("body".to_owned())
        .chain(frames.into_iter().filter_map(|frame| match frame {
            JsonFrame::Object(key) => key,
            JsonFrame::Array(index) => Some(index.to_string()),
        }))
        .collect();
    ApiError::Validation(vec![FieldError { loc, msg: friendly(&message), kind: "type_error" }])
}

/// serde_json's message without the ` at line L column C` suffix (the location goes into `loc`).
fn bare_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// Rewrites serde's Rust-flavoured wording (`expected struct AppIn`, `u32`) into JSON terms.
fn friendly(message: &str) -> String {
    let mut message = message.to_owned();
    if let Some(start) = message.find("expected struct ") {
        message.replace_range(start.., "expected a JSON object");
    }
    for (rust, json) in [
        ("expected u32", "expected a non-negative integer"),
        ("expected u16", "expected a non-negative integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected a JSON array"),
        ("expected a map", "expected a JSON object"),
    ] {
        message = message.replace(rust, json);
    }
    message
}

/// The byte offset of serde_json's 1-based line and 0-based column (bytes consumed on that line).
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(line - 2).map_or(bytes.len(), |(i, _)| i + 1)
    };
    (line_start + column).min(bytes.len())
}

/// One level of nesting while scanning JSON text.
#[derive(Debug, PartialEq)]
enum JsonFrame {
    /// Inside an object; the key whose value is being read, once seen.
    Object(Option<String>),
    /// Inside an array, at this element.
    Array(usize),
}

/// The nesting (object keys, array indices) at `offset` in `bytes`, found by scanning the JSON text up to
/// that point. Used only for error messages, on text serde_json already tokenised up to the error.
fn json_path_at(bytes: &[u8], offset: usize) -> Vec<JsonFrame> {
    let mut stack: Vec<JsonFrame> = Vec::new();
    // Whether the innermost object expects a key next (after `{` or `,`) rather than a value.
    let mut awaiting_key: Vec<bool> = Vec::new();
    let end = offset.min(bytes.len());
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let text = &bytes[start..i.min(bytes.len())];
                if let (Some(JsonFrame::Object(key)), Some(expecting @ true)) =
                    (stack.last_mut(), awaiting_key.last_mut())
                {
                    *key = Some(
                        serde_json::from_slice::<String>(&[b"\"", text, b"\""].concat())
                            .unwrap_or_else(|_| String::from_utf8_lossy(text).into_owned()),
                    );
                    *expecting = false;
                }
            }
            b'{' => {
                stack.push(JsonFrame::Object(None));
                awaiting_key.push(true);
            }
            b'[' => {
                stack.push(JsonFrame::Array(0));
                awaiting_key.push(false);
            }
            b'}' | b']' => {
                stack.pop();
                awaiting_key.pop();
            }
            b',' => match (stack.last_mut(), awaiting_key.last_mut()) {
                (Some(JsonFrame::Object(key)), Some(expecting)) => {
                    *key = None;
                    *expecting = true;
                }
                (Some(JsonFrame::Array(index)), _) => *index += 1,
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    stack
}

/// The query string as decoded name/value pairs, in order, repeats kept (`event_types=a&event_types=b`).
/// Typed accessors turn bad values into a 422 naming the parameter. Unknown parameters are ignored, as the
/// SDKs send some hookrelay does not use (`tag`, `with_msg`, …).
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        QueryParams::from_uri(&parts.uri)
    }
}

impl QueryParams {
    pub fn from_uri(uri: &axum::http::Uri) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| QueryParams(pairs))
            .map_err(|rejection| ApiError::query("", format!("malformed query string: {}", rejection.body_text())))
    }

    /// The first value of `name`, if given and not empty (`?iterator=` means no iterator).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
    }

    /// `true`/`false` (any case; `1`/`0` too).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|value| match value.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::query(name, format!("must be `true` or `false`, not `{value}`"))),
            })
            .transpose()
    }

    /// A 422 for a Svix parameter hookrelay cannot honour, when it asks for something: `false` (or no value) is
    /// what hookrelay does anyway, so only another value is refused.
    pub fn refuse_unsupported(&self, names: &[&str], why: &str) -> Result<(), ApiError> {
        for name in names {
            if let Some(value) = self.get(name)
                && !value.eq_ignore_ascii_case("false")
                && value != "0"
            {
                return Err(ApiError::query(name, format!("not supported by hookrelay: {why}")));
            }
        }
        Ok(())
    }

    /// An unsigned integer.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|value| {
                value
                    .parse::<u64>()
                    .map_err(|_| ApiError::query(name, format!("must be a whole number, not `{value}`")))
            })
            .transpose()
    }

    /// An RFC 3339 timestamp such as `2026-11-22T13:04:29Z`.
    pub fn time(&self, name: &str) -> Result<Option<UnixMillis>, ApiError> {
        self.get(name)
            .map(|value| {
                // An unencoded `+` in an offset arrives as a space; a space after the date part means that.
                let repaired = match value.get(10..) {
                    Some(tail) if tail.contains(' ') => format!("{}{}", &value[..10], tail.replace(' ', "+")),
                    _ => value.to_owned(),
                };
                crate::time::parse(&repaired)
                    .map_err(|msg| ApiError::query(name, format!("not an RFC 3339 timestamp: {msg}")))
            })
            .transpose()
    }

    /// A list of event type names, comma-separated and/or repeated (`a,b` or `name=a&name=b`).
    pub fn names(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let mut names = Vec::new();
        let values = self.0.iter().filter(|(key, _)| key == name || key.strip_suffix("[]") == Some(name));
        for (_, value) in values {
            for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                check_name(item).map_err(|err| ApiError::query(name, format!("`{item}` {err}")))?;
                names.push(item.to_owned());
            }
        }
        Ok((!names.is_empty()).then_some(names))
    }
}

/// Path parameters; a segment that cannot be decoded is a 422 rather than axum's plain-text 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| ApiError::path("", rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Input {
        url: String,
        #[serde(default, alias = "rateLimit")]
        throttle_rate: Option<u32>,
        #[serde(default)]
        event_types: Option<Vec<String>>,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    struct Nested {
        count: u32,
    }

    fn check(body: &str, loc: &[&str], msg_contains: &str) {
        let Err(ApiError::Validation(errors)) = parse_json::<Input>(body.as_bytes()) else {
            panic!("{body} should fail validation");
        };
        assert_eq!(errors[0].loc, loc, "{body}: {errors:?}");
        assert!(errors[0].msg.contains(msg_contains), "{body}: {:?} lacks {msg_contains:?}", errors[0].msg);
    }

    #[test]
    fn json_errors_point_at_the_field() {
        check(r#"{"url": 5}"#, &["body", "url"], "expected a string");
        check(r#"{"throttleRate": "fast", "url": "x"}"#, &["body", "throttleRate"], "non-negative integer");
        check(r#"{"url": "x", "throttleRate": -1}"#, &["body", "throttleRate"], "non-negative integer");
        check(r#"{"url": "x", "eventTypes": ["a", 7]}"#, &["body", "eventTypes", "1"], "expected a string");
        check("{\n  \"url\": \"x\",\n  \"nested\": {\"count\": true}\n}", &["body", "nested", "count"], "boolean");
        check(r#"{"throttleRate": 1}"#, &["body", "url"], "missing field `url`");
        check(r#"{"url": "x", "nested": {}}"#, &["body", "nested", "count"], "missing field `count`");
        check(r#"{"url": "x", "throttleRate": 1, "rateLimit": 2}"#, &["body", "throttleRate"], "duplicate field");
        check(r#"{"a\"b": 1, "url": false}"#, &["body", "url"], "expected a string");
        check("[1, 2]", &["body"], "must be a JSON object");
        check("\"text\"", &["body"], "must be a JSON object");
        check(r#"{"url": "x""#, &["body"], "not valid JSON");
        check("not json", &["body"], "not valid JSON");
    }

    /// `levels` arrays nested around an object with a string full of brackets, quotes and backslashes, which must
    /// not count.
    fn nested(levels: usize) -> String {
        let inner = r#"{"s": "[[{{ \\\" ]] \\\\", "t": "\\\\"}"#;
        format!("{{\"a\": {}{inner}{}}}", "[".repeat(levels - 2), "]".repeat(levels - 2))
    }

    #[test]
    fn json_nested_up_to_the_limit_is_accepted_and_deeper_is_refused() {
        assert!(!nests_deeper_than(nested(MAX_JSON_DEPTH).as_bytes(), MAX_JSON_DEPTH));
        assert!(nests_deeper_than(nested(MAX_JSON_DEPTH + 1).as_bytes(), MAX_JSON_DEPTH));
        assert!(serde_json::from_str::<serde_json::Value>(&nested(10)).is_ok(), "the test text is JSON");
        for (text, depth) in [
            ("{}", 1),
            ("[]", 1),
            ("[[], [], {}]", 2),
            (r#"{"a": [1, {"b": []}]}"#, 4),
            (r#"{"a": "[[[[[["}"#, 1),
            (r#"{"a": "\"[[["}"#, 1),
            (r#"{"a": "\\\\", "b": [[]]}"#, 3),
            ("\"unterminated [[[", 0),
            ("]]]]{", 1),
            ("{\"é\": [\"ü[\"]}", 2),
        ] {
            assert!(!nests_deeper_than(text.as_bytes(), depth), "{text} nests {depth}");
            assert!(depth == 0 || nests_deeper_than(text.as_bytes(), depth - 1), "{text} nests {depth}");
        }

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Any {
            a: Box<serde_json::value::RawValue>,
        }
        assert!(parse_json::<Any>(nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
        let Err(ApiError::Validation(errors)) = parse_json::<Any>(nested(MAX_JSON_DEPTH + 1).as_bytes()) else {
            panic!("a body nested {} levels deep was accepted", MAX_JSON_DEPTH + 1);
        };
        assert_eq!(errors[0].loc, ["body"]);
        assert!(errors[0].msg.contains("128 levels"), "{}", errors[0].msg);
    }

    fn query(q: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/x?{q}").parse().expect("test uri")).expect("parses")
    }

    #[test]
    fn query_accessors() {
        assert_eq!(query("a=true").bool("a").ok(), Some(Some(true)));
        assert_eq!(query("a=FALSE").bool("a").ok(), Some(Some(false)));
        assert_eq!(query("").bool("a").ok(), Some(None));
        assert!(query("a=yes").bool("a").is_err());
        assert_eq!(query("n=42").number("n").ok(), Some(Some(42)));
        assert!(query("n=-1").number("n").is_err());
        assert_eq!(query("iterator=").get("iterator"), None);
        assert_eq!(
            query("event_types=a,b&event_types=c&event_types[]=d").names("event_types").ok(),
            Some(Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]))
        );
        assert!(query("event_types=a%20b").names("event_types").is_err());
        assert_eq!(query("after=2026-11-22T13:04:29%2B00:00").time("after").ok(), Some(Some(1_795_352_669_000)));
        assert_eq!(query("after=2026-11-22T13:04:29+00:00").time("after").ok(), Some(Some(1_795_352_669_000)));
        assert!(query("after=tomorrow").time("after").is_err());
    }
}
