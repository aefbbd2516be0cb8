//! Input rules that only the HTTP API needs: endpoint URLs, custom header names and values, channel names and
//! metadata size. Each check returns a message that says what to fix; callers attach the field's location.
//! (Names, uids and event ids are checked by `hookrelay_core::validate`.)
//!
//! The limits below bound everything an application (portal) token can make the server keep: each is far
//! above what a real integration uses, and a request beyond one gets a 422 whose message names the limit.
//! The one limit an operator may change, endpoints per application, is a setting
//! (`HOOKRELAY_MAX_ENDPOINTS_PER_APP`, default [`DEFAULT_MAX_ENDPOINTS_PER_APP`]).

use std::collections::BTreeMap;

use std::net::IpAddr;

use hookrelay_core::model::Metadata;
use hookrelay_core::netpolicy::AddressPolicy;
use url::{Host, Url};

/// Most channels one endpoint or message may carry (Svix's limit).
pub const MAX_CHANNELS: usize = 10;
/// Longest channel name (Svix's limit).
const MAX_CHANNEL_LEN: usize = 128;
/// Most bytes of metadata, measured as JSON (Svix's limit for endpoints; applications share it).
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most custom headers one endpoint sends. Receivers use one for a credential and a few for routing; every
/// claimed delivery of the endpoint is sent with all of them.
pub const MAX_HEADERS: usize = 50;
/// Longest custom header name, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
/// Longest custom header value, in bytes: room for a long bearer token or a signed JWT.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Most bytes of one endpoint's custom headers, names and values together. Node.js refuses requests whose
/// headers pass 16 KiB by default, so larger sets would not reach many receivers anyway.
pub const MAX_HEADERS_BYTES: usize = 16 * 1024;
/// Most event types in one endpoint's filter (`filterTypes`/`eventTypes`).
pub const MAX_FILTER_TYPES: usize = 500;
/// Most bytes of an event type's `schemas`, as JSON.
pub const MAX_SCHEMAS_BYTES: usize = 64 * 1024;
/// Longest endpoint description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 8192;
/// Longest endpoint URL, in bytes: common web servers refuse request lines much longer than 8 KiB.
pub const MAX_URL_BYTES: usize = 8192;
/// Most endpoints one application may have unless the operator sets `HOOKRELAY_MAX_ENDPOINTS_PER_APP`.
pub const DEFAULT_MAX_ENDPOINTS_PER_APP: usize = 200;

const LISTEN_SCHEME: &str = hookrelay_live::listeners::SCHEME;

/// The `<name>` of a `listen://<name>` URL: what `hookrelay listen` calls the session (letters, digits, `-`, `_`,
/// `.`), nothing more.
fn check_listen_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err("a listen URL is `listen://<name>`, the name of letters, digits, `-`, `_` and `.` (at most 256): \
                    `hookrelay listen` creates such endpoints"
            .into());
    }
    Ok(())
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host and a port from 1 to 65535, read by
/// the parser the dispatcher reads it with (the `url` crate, which reqwest uses), so that a URL accepted here is
/// one a delivery can be sent to; and that a host written as an IP address is one the address `policy` allows.
/// Hostnames are judged at delivery time, on the addresses they resolve to (they may change).
///
/// The URL is stored as the user sent it, not in the parser's normal form: the API then returns what the user
/// sent (as Svix's SDKs and infrastructure-as-code tools comparing their input expect), and since the dispatcher
/// parses the stored text with this same parser, the host, port and path it sends to are the ones checked here.
/// The spellings the parser would rewrite (`:443` on https, uppercase, IDN names, `2130706433` for 127.0.0.1) are
/// therefore harmless, and the ones it would silently repair into something else are refused below.
///
/// `listen://<name>` is the one other URL: deliveries go to the `hookrelay listen` connected for the endpoint.
pub fn check_url(url: &str, policy: &AddressPolicy) -> Result<(), String> {
    // The parser would drop tabs and newlines anywhere and spaces at either end without a word.
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not contain spaces or control characters".into());
    }
    // In http(s) URLs the parser reads `\` as `/`, so the URL shown would not be the URL sent to.
    if url.contains('\\') {
        return Err("the URL must not contain `\\`: use `/`, or `%5C` for a backslash in the path".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("must be an absolute URL starting with `https://` or `http://`".into());
    };
    if scheme == LISTEN_SCHEME {
        return check_listen_name(rest);
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("the scheme must be `https` or `http`, not `{scheme}`"));
    }
    // Two typos the parser would repair: extra slashes (`https:///path` would make `path` the host) and a `:`
    // without a port (dropped).
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL (`user:pass@host`) are allowed: some receivers use basic auth.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host_port.is_empty() {
        return Err(NO_HOST.into());
    }
    if host_port.ends_with(':') {
        return Err(BAD_PORT.into());
    }
    let parsed = Url::parse(url).map_err(|err| match err {
        url::ParseError::EmptyHost => NO_HOST.to_owned(),
        url::ParseError::InvalidPort => BAD_PORT.to_owned(),
        url::ParseError::InvalidIpv6Address => {
            "the host is not a valid IPv6 address (written in brackets, e.g. `https://[2001:db8::1]/`)".to_owned()
        }
        url::ParseError::InvalidIpv4Address => "the host is not a valid IPv4 address".to_owned(),
        url::ParseError::InvalidDomainCharacter => {
            "the host contains a character host names cannot have, such as `%`, `<` or `|`".to_owned()
        }
        url::ParseError::IdnaError => "the host is not a valid domain name".to_owned(),
        other => format!("not a valid URL: {other}"),
    })?;
    // The parser takes port 0, which nothing can connect to.
    if parsed.port() == Some(0) {
        return Err(BAD_PORT.into());
    }
    let literal = match parsed.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
        None => return Err(NO_HOST.into()),
    };
    match literal {
        Some(ip) if !policy.allows(ip) => Err(format!(
            "the host {ip} is a private, loopback, link-local or reserved address, which this server does not \
             deliver to: use a public address or a host name, or have the operator add its range to \
             HOOKRELAY_WHITELIST_SUBNETS (or set HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS=true, for local development)"
        )),
        _ => Ok(()),
    }
}

const NO_HOST: &str = "the URL must include a host, e.g. `https://example.com/webhook`";
const BAD_PORT: &str = "the port must be a number from 1 to 65535 (or left out, with its `:`)";

/// Checks that `url` is `https://`, for servers run with `HOOKRELAY_HTTPS_ONLY` (the dispatcher checks again).
pub fn check_https(url: &str) -> Result<(), String> {
    match url.split_once("://") {
        // Delivered over the listener's own connection to this API, not to an address.
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") || scheme == LISTEN_SCHEME => Ok(()),
        _ => Err("this server only delivers to https:// URLs (HOOKRELAY_HTTPS_ONLY is on): use an https:// URL, \
                  or have the operator set HOOKRELAY_HTTPS_ONLY=false to allow http://"
            .into()),
    }
}

/// Checks a custom header name an endpoint sends with each delivery. Headers that hookrelay sets itself
/// (signatures, content type, user agent) or that control the connection cannot be overridden.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header names must not be empty".into());
    }
    if name.len() > MAX_HEADER_NAME_BYTES {
        // Not echoed: it is long by definition.
        return Err(format!("header names may be at most {MAX_HEADER_NAME_BYTES} bytes long, got {}", name.len()));
    }
    // RFC 9110 `token` characters.
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))) {
        return Err(format!("header name `{name}` contains `{bad}`, which is not allowed in header names"));
    }
    let lower = name.to_ascii_lowercase();
    const RESERVED: &[&str] = &[
        "user-agent",
        "content-type",
        "content-length",
        "content-encoding",
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ];
    if RESERVED.contains(&lower.as_str()) || lower.starts_with("svix-") || lower.starts_with("webhook-") {
        return Err(format!("header `{name}` is set by hookrelay and cannot be overridden"));
    }
    Ok(())
}

/// Checks a custom header value. The value itself is never echoed: it may be a credential.
pub fn check_header_value(name: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(format!(
            "the value of header `{name}` may be at most {MAX_HEADER_VALUE_BYTES} bytes long, got {}",
            value.len()
        ));
    }
    if axum::http::HeaderValue::from_str(value).is_err() {
        return Err(format!("the value of header `{name}` may only contain visible ASCII characters, spaces and tabs"));
    }
    Ok(())
}

/// Checks that a request sets at most [`MAX_HEADERS`] headers, before they are merged one by one.
pub fn check_header_count(count: usize) -> Result<(), String> {
    if count > MAX_HEADERS {
        return Err(format!("an endpoint may have at most {MAX_HEADERS} custom headers, got {count}"));
    }
    Ok(())
}

/// Checks an endpoint's whole set of custom headers, as it would be stored: at most [`MAX_HEADERS`] of them,
/// together at most [`MAX_HEADERS_BYTES`] (names and values).
pub fn check_header_set(headers: &BTreeMap<String, String>) -> Result<(), String> {
    check_header_count(headers.len())?;
    let bytes: usize = headers.iter().map(|(name, value)| name.len() + value.len()).sum();
    if bytes > MAX_HEADERS_BYTES {
        return Err(format!(
            "an endpoint's custom headers may total at most {MAX_HEADERS_BYTES} bytes (names and values), got {bytes}"
        ));
    }
    Ok(())
}

/// Checks the size of an endpoint's event-type filter.
pub fn check_filter_type_count(count: usize) -> Result<(), String> {
    if count > MAX_FILTER_TYPES {
        return Err(format!("an endpoint may filter on at most {MAX_FILTER_TYPES} event types, got {count}"));
    }
    Ok(())
}

/// Checks the size of an event type's schemas, measured as compact JSON.
pub fn check_schemas_size(schemas: &serde_json::Value) -> Result<(), String> {
    let bytes = serde_json::to_string(schemas).map_or(usize::MAX, |text| text.len());
    if bytes > MAX_SCHEMAS_BYTES {
        return Err(format!("schemas may be at most {MAX_SCHEMAS_BYTES} bytes as JSON, got {bytes}"));
    }
    Ok(())
}

/// Checks the length of an endpoint's description.
pub fn check_description(description: &str) -> Result<(), String> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(format!(
            "the description may be at most {MAX_DESCRIPTION_BYTES} bytes long, got {}",
            description.len()
        ));
    }
    Ok(())
}

/// Checks the length of an endpoint URL (its form is [`check_url`]'s job).
pub fn check_url_length(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("the URL may be at most {MAX_URL_BYTES} bytes long, got {}", url.len()));
    }
    Ok(())
}

/// Checks that an application with `existing` endpoints may have one more under a limit of `max`.
pub fn check_endpoint_count(existing: u64, max: usize) -> Result<(), String> {
    if existing >= max as u64 {
        return Err(format!(
            "an application may have at most {max} endpoints (HOOKRELAY_MAX_ENDPOINTS_PER_APP) and this one has \
             {existing}; delete one first"
        ));
    }
    Ok(())
}

/// Checks a list of channels: 1 to 10 names of `[a-zA-Z0-9-_.:]`, each at most 128 characters.
pub fn check_channels(channels: &[String]) -> Result<(), String> {
    if channels.is_empty() {
        return Err("give at least one channel, or leave the field out".into());
    }
    if channels.len() > MAX_CHANNELS {
        return Err(format!("at most {MAX_CHANNELS} channels are allowed, got {}", channels.len()));
    }
    for channel in channels {
        if channel.is_empty() || channel.len() > MAX_CHANNEL_LEN {
            return Err(format!("channel names must be 1 to {MAX_CHANNEL_LEN} characters long"));
        }
        if !channel.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
            return Err(format!("channel `{channel}` may only contain letters, digits, `-`, `_`, `.` and `:`"));
        }
    }
    Ok(())
}

/// Checks metadata stays within the size Svix allows.
pub fn check_metadata(metadata: &Metadata) -> Result<(), String> {
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 2;
    if size > MAX_METADATA_BYTES {
        return Err(format!("metadata must be at most {MAX_METADATA_BYTES} bytes as JSON, got about {size}"));
    }
    Ok(())
}

/// Checks a throttle rate (deliveries per second): zero would stop delivery altogether.
pub fn check_rate(rate: u32) -> Result<(), String> {
    if rate == 0 {
        return Err("the rate must be at least 1 per second; leave it out for no limit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(result: Result<(), String>, expected_ok: bool, input: &str) {
        assert_eq!(result.is_ok(), expected_ok, "{input:?}: {result:?}");
    }

    #[test]
    fn urls() {
        // Syntax only: every address allowed.
        let anywhere = AddressPolicy::new(true, Vec::new());
        for (url, ok) in [
            ("https://example.com/webhook", true),
            ("http://127.0.0.1:8080/hook?x=1#frag", true),
            ("HTTPS://EXAMPLE.COM", true),
            ("https://user:pass@example.com/", true),
            ("http://[::1]:3000/in", true),
            ("http://[::1]", true),
            ("https://bücher.example/", true),
            ("https://xn--bcher-kva.example/", true),
            ("https://例え.テスト/hook", true),
            ("https://my_host.internal", true),
            ("https://example.com:443/", true),
            ("https://example.com:65535/", true),
            ("http://example.com/a%20b?c=%zz", true),
            ("example.com/webhook", false),
            ("ftp://example.com/", false),
            ("listen://alice-laptop.dev_1", true),
            ("listen://", false),
            ("listen://alice/laptop", false),
            ("listen://alice@10.0.0.1", false),
            ("LISTEN://alice", false),
            ("https:example.com/", false),
            ("https://", false),
            ("https:///path", false),
            ("https:////example.com/", false),
            ("https://user@/", false),
            ("https://:8080/", false),
            ("https://example.com:0/", false),
            ("https://example.com:99999/", false),
            ("https://example.com:/", false),
            ("https://example.com:8a/", false),
            ("https://example.com:-1/", false),
            ("https://exa mple.com/", false),
            (" https://example.com/", false),
            ("https://example.com/\n", false),
            ("https://example.com/\t", false),
            ("http://[::1/", false),
            ("http://[zz]/", false),
            ("http://[::1]x/", false),
            ("https://exa<mple.com/", false),
            ("https://example.com\\@evil.example/", false),
            ("http://256.0.0.1/", false),
            ("https://xn--/", false),
            // Finding 12 of issue 15: accepted once, then every delivery failed.
            ("http://ex%zzample.com/", false),
            ("http://%/", false),
            ("http://[1:2]/", false),
            ("", false),
        ] {
            check(check_url(url, &anywhere), ok, url);
        }
    }

    /// Hosts written as IP addresses are judged by the address policy; names are left to delivery time.
    #[test]
    fn url_ip_literals_follow_the_address_policy() {
        let strict = AddressPolicy::default();
        for (url, ok) in [
            ("https://93.184.216.34/hook", true),
            ("https://[2606:4700::1111]/hook", true),
            ("http://localhost:8080/", true),
            ("https://internal.example/", true),
            ("http://127.0.0.1:8080/", false),
            ("http://2130706433/", false),
            ("http://0x7f.1/", false),
            ("http://169.254.169.254/latest/meta-data/", false),
            ("http://10.0.0.1/", false),
            ("http://[::1]/", false),
            ("http://[::127.0.0.1]/", false),
            ("http://[::ffff:127.0.0.1]/", false),
            ("http://[::ffff:0:127.0.0.1]/", false),
            ("http://[64:ff9b::a9fe:a9fe]/", false),
            ("http://[2002:a00:1::1]/", false),
            ("http://[fd00::1]/", false),
            ("http://[fe80::1]/", false),
            ("http://192.88.99.1/", false),
            ("http://198.18.0.1/", false),
        ] {
            check(check_url(url, &strict), ok, url);
        }
        let message = check_url("http://[::ffff:0:127.0.0.1]/", &strict).unwrap_err();
        assert!(message.contains("HOOKRELAY_WHITELIST_SUBNETS"), "{message}");
        let whitelisted = AddressPolicy::new(false, vec!["127.0.0.1/32".parse().expect("range")]);
        check(check_url("http://127.0.0.1:8080/", &whitelisted), true, "whitelisted");
        check(check_url("http://127.0.0.2:8080/", &whitelisted), false, "outside the whitelist");
        check(check_url("http://[::1]/", &AddressPolicy::new(true, Vec::new())), true, "private allowed");
    }

    #[test]
    fn header_names() {
        for (name, ok) in [
            ("X-Api-Key", true),
            ("authorization", true),
            ("x_custom.v2", true),
            ("", false),
            ("X Api", false),
            ("X-Api:", false),
            ("User-Agent", false),
            ("content-type", false),
            ("Content-Length", false),
            ("HOST", false),
            ("connection", false),
            ("Transfer-Encoding", false),
            ("svix-signature", false),
            ("Svix-Anything", false),
            ("webhook-id", false),
            ("Webhook-Signature", false),
            ("webhooks", true),
        ] {
            check(check_header_name(name), ok, name);
        }
    }

    #[test]
    fn header_values_are_checked_but_never_echoed() {
        check(check_header_value("x", "Bearer abc"), true, "Bearer abc");
        check(check_header_value("x", "a\r\nInjected: 1"), false, "CRLF");
        let message = check_header_value("x-secret", "hunter2\n").unwrap_err();
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn channels() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check(check_channels(&list(&["project_1", "org:42", "a.b-c"])), true, "valid");
        check(check_channels(&list(&[])), false, "empty");
        check(check_channels(&list(&["a"; 11])), false, "eleven");
        check(check_channels(&list(&["a"; 10])), true, "ten");
        check(check_channels(&list(&["has space"])), false, "space");
        check(check_channels(&list(&[""])), false, "empty name");
        check(check_channels(&["x".repeat(129)]), false, "too long");
    }

    /// Every limit: a request exactly at it passes, one unit past it fails with a message naming the limit.
    #[test]
    fn limits_pass_at_the_limit_and_are_named_one_past_it() {
        // Eight headers whose names and values total `bytes`.
        let headers_totalling = |bytes: usize| -> BTreeMap<String, String> {
            let rest = bytes - 8 * "x-h0".len();
            (0..8).map(|i| (format!("x-h{i}"), "v".repeat(rest / 8 + usize::from(i < rest % 8)))).collect()
        };
        let many_headers = |count: usize| -> BTreeMap<String, String> {
            (0..count).map(|i| (format!("x-h{i}"), "v".into())).collect()
        };
        type Check = Box<dyn Fn(usize) -> Result<(), String>>;
        let cases: Vec<(&str, usize, Check)> = vec![
            ("headers per endpoint", MAX_HEADERS, Box::new(move |n| check_header_set(&many_headers(n)))),
            ("headers per request", MAX_HEADERS, Box::new(check_header_count)),
            ("header bytes", MAX_HEADERS_BYTES, Box::new(move |n| check_header_set(&headers_totalling(n)))),
            ("header name", MAX_HEADER_NAME_BYTES, Box::new(|n| check_header_name(&"x".repeat(n)))),
            ("header value", MAX_HEADER_VALUE_BYTES, Box::new(|n| check_header_value("x-a", &"v".repeat(n)))),
            ("filter types", MAX_FILTER_TYPES, Box::new(check_filter_type_count)),
            (
                "schemas",
                MAX_SCHEMAS_BYTES,
                // `{"1":"…"}` is 8 bytes around the string.
                Box::new(|n| check_schemas_size(&serde_json::json!({ "1": "s".repeat(n - 8) }))),
            ),
            ("description", MAX_DESCRIPTION_BYTES, Box::new(|n| check_description(&"d".repeat(n)))),
            ("url", MAX_URL_BYTES, Box::new(|n| check_url_length(&format!("https://e.com/{}", "p".repeat(n - 14))))),
            (
                "metadata",
                MAX_METADATA_BYTES,
                // Counted as key + value + 6 per entry, + 2.
                Box::new(|n| check_metadata(&Metadata::from([("k".to_owned(), "v".repeat(n - 9))]))),
            ),
            ("channels", MAX_CHANNELS, Box::new(|n| check_channels(&vec!["c".to_owned(); n]))),
            ("channel name", MAX_CHANNEL_LEN, Box::new(|n| check_channels(&["c".repeat(n)]))),
            (
                "endpoints per app",
                DEFAULT_MAX_ENDPOINTS_PER_APP,
                // The n-th endpoint is created while n - 1 exist.
                Box::new(|n| check_endpoint_count(n as u64 - 1, DEFAULT_MAX_ENDPOINTS_PER_APP)),
            ),
        ];
        for (what, limit, check) in cases {
            assert_eq!(check(limit), Ok(()), "{what}: exactly at the limit of {limit}");
            match check(limit + 1) {
                Ok(()) => panic!("{what}: {} passed a limit of {limit}", limit + 1),
                Err(message) => assert!(message.contains(&limit.to_string()), "{what}: {message:?} names no limit"),
            }
        }
    }

    #[test]
    fn metadata_size() {
        let mut metadata = Metadata::new();
        metadata.insert("team".into(), "billing".into());
        check(check_metadata(&metadata), true, "small");
        metadata.insert("blob".into(), "x".repeat(MAX_METADATA_BYTES));
        check(check_metadata(&metadata), false, "large");
    }
}
