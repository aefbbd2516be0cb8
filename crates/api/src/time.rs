//! Timestamps in API bodies: a serde wrapper that writes stored milliseconds as RFC 3339 (the format and
//! the parser live in `hookrelay_core::rfc3339`).

use hookrelay_core::time::UnixMillis;
use serde::{Serialize, Serializer};

pub use hookrelay_core::rfc3339::{format, parse};

/// A timestamp that serializes as RFC 3339 UTC with milliseconds, the form Svix answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub UnixMillis);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(self.0))
    }
}
