//! Wall-clock timestamps as milliseconds since the Unix epoch, the one time unit stored and compared.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> UnixMillis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
