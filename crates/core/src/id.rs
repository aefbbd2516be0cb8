//! Prefixed, time-sortable identifiers (`app_…`, `ep_…`, `msg_…`, …) in Svix's format: the prefix followed by a
//! 27-character base62 KSUID-like body (6 bytes of millisecond time, 14 random bytes). Ids sort by creation
//! time as plain strings, so they double as pagination cursors. Within one process they are also strictly
//! increasing: two ids made in the same millisecond differ by one in their random part, so messages published
//! one after the other sort in publish order (which FIFO endpoints rely on).

use std::fmt;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 27;
const RAW_LEN: usize = 20;

/// Every prefix hookrelay hands out; a user-chosen `uid` may not start with one of them, so ids and uids
/// never collide when a path segment accepts either.
pub const ALL_PREFIXES: &[&str] = &["app_", "ep_", "msg_", "atmpt_", "evtype_", "qtask_", "src_", "ievt_"];

/// Builds a new id body for the given millisecond timestamp with fresh random bytes.
pub fn new_body(unix_ms: i64) -> String {
    let mut raw = [0u8; RAW_LEN];
    raw[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..8]);
    raw[6..].copy_from_slice(&random_part(unix_ms).to_be_bytes()[16 - RANDOM_LEN..]);
    encode_base62(&raw)
}

const RANDOM_LEN: usize = RAW_LEN - 6;
const RANDOM_MASK: u128 = (1 << (8 * RANDOM_LEN)) - 1;

/// The last id's time and random part, to keep ids made in the same millisecond increasing.
static LAST: std::sync::Mutex<(i64, u128)> = std::sync::Mutex::new((i64::MIN, 0));

/// Fresh random bits for a new millisecond; the previous id's plus one within the same millisecond. (An id
/// stamped earlier than the last one, e.g. after the clock stepped back, just gets fresh random bits.)
fn random_part(unix_ms: i64) -> u128 {
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let random = if unix_ms == last.0 {
        (last.1 + 1) & RANDOM_MASK
    } else {
        // Leave headroom so that increments within a millisecond never wrap around.
        rand::random::<u128>() & (RANDOM_MASK >> 1)
    };
    if unix_ms >= last.0 {
        *last = (unix_ms, random);
    }
    random
}

/// The smallest id body whose time part is `unix_ms`: every id created at or after `unix_ms` sorts at or
/// after it, which turns a time filter (`before`/`after`) into an id range.
pub fn min_body_at(unix_ms: i64) -> String {
    let mut raw = [0u8; RAW_LEN];
    raw[..6].copy_from_slice(&unix_ms.max(0).to_be_bytes()[2..8]);
    encode_base62(&raw)
}

fn encode_base62(raw: &[u8; RAW_LEN]) -> String {
    // Big-endian long division of the 160-bit number by 62, least significant digit first.
    let mut num = *raw;
    let mut out = [b'0'; BODY_LEN];
    for slot in out.iter_mut().rev() {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    out.iter().map(|&b| b as char).collect()
}

fn decode_base62(body: &str) -> Option<[u8; RAW_LEN]> {
    if body.len() != BODY_LEN {
        return None;
    }
    let mut num = [0u8; RAW_LEN];
    for ch in body.bytes() {
        let digit = ALPHABET.iter().position(|&a| a == ch)? as u32;
        let mut carry = digit;
        for byte in num.iter_mut().rev() {
            let acc = u32::from(*byte) * 62 + carry;
            *byte = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(num)
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id stamped with the current time.
            pub fn new() -> Self {
                Self::at(crate::time::now_ms())
            }

            /// A new id stamped with the given time (ms since the epoch).
            pub fn at(unix_ms: i64) -> Self {
                Self(format!("{}{}", $prefix, new_body(unix_ms)))
            }

            /// Accepts `s` if it has this type's prefix and a well-formed body.
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix($prefix)?;
                decode_base62(body).map(|_| Self(s.to_owned()))
            }

            /// Wraps a value read back from our own storage without re-validating it.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An application: one customer of the SaaS, owning endpoints and messages.
    AppId, "app_"
);
prefixed_id!(
    /// An endpoint: a URL that receives an application's messages.
    EndpointId, "ep_"
);
prefixed_id!(
    /// A message: one published event.
    MessageId, "msg_"
);
prefixed_id!(
    /// One try at delivering a message to an endpoint.
    AttemptId, "atmpt_"
);
prefixed_id!(
    /// An event type's internal id.
    EventTypeId, "evtype_"
);
prefixed_id!(
    /// A background task (recover, replay-missing), Svix's `QueueBackgroundTask`.
    TaskId, "qtask_"
);
prefixed_id!(
    /// A source: a public ingest URL that verifies one provider's webhooks.
    SourceId, "src_"
);
prefixed_id!(
    /// One request that reached a source, verified or not.
    InboundEventId, "ievt_"
);
prefixed_id!(
    /// An API token kept in the database (a named admin token or an application's portal token); the id names
    /// it in lists and revocations, never the secret.
    TokenId, "tok_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_fixed_length() {
        let id = MessageId::new();
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(id.as_str().len(), 4 + BODY_LEN);
        assert_eq!(MessageId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(AppId::parse(id.as_str()), None);
        assert_eq!(MessageId::parse("msg_short"), None);
    }

    #[test]
    fn ids_sort_by_time() {
        let earlier = AppId::at(1_700_000_000_000);
        let later = AppId::at(1_700_000_000_001);
        assert!(earlier < later);
        assert!(AppId::at(0) < AppId::at(i64::from(u32::MAX) * 1000));
        assert!(min_body_at(1_700_000_000_001).as_str() <= &later.as_str()[4..]);
        assert!(min_body_at(1_700_000_000_001).as_str() > &earlier.as_str()[4..]);
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        // Later than any other test's ids, so tests running in parallel do not interleave with this one.
        let ms = (1 << 47) + 1;
        let ids: Vec<MessageId> = (0..1_000).map(|_| MessageId::at(ms)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids must be strictly increasing");
    }

    #[test]
    fn bodies_are_validated_on_parse() {
        let id = EndpointId::at(1_614_265_330_123);
        assert_eq!(EndpointId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(EndpointId::parse("ep_not-base62-at-all-but-27chr"), None);
        assert_eq!(EndpointId::parse(&format!("ep_{}", "z".repeat(27))), None, "overflows 160 bits");
    }
}
