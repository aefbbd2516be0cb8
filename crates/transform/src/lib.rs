//! Transformations: an endpoint's JavaScript `function handler(webhook) { …; return webhook; }`, run on every
//! delivery before it is signed, to reshape what its receivers get (Svix's transformations, open and embedded).
//!
//! The code runs in QuickJS ([`Sandbox`]) on threads of its own, never on the API's or the dispatcher's: no I/O,
//! no timers, no modules exist there, each call is stopped after [`TIME_LIMIT`] by an interrupt on the clock, and
//! each worker's heap is capped at [`MEMORY_LIMIT_BYTES`]. Code is limited to [`MAX_CODE_BYTES`] and compiled
//! once per worker (contexts are cached by code), so a call costs the handler's own work.

mod sandbox;
mod webhook;

pub use sandbox::Sandbox;
pub use webhook::{Method, Transformed, Webhook};

use std::time::Duration;

/// The largest handler accepted, in bytes.
pub const MAX_CODE_BYTES: usize = 64 * 1024;
/// How long one call (or compiling a handler, top-level code included) may run.
pub const TIME_LIMIT: Duration = Duration::from_millis(100);
/// The heap of one sandbox worker, shared by the handlers it has compiled.
pub const MEMORY_LIMIT_BYTES: usize = 32 << 20;

/// Why a transformation did not produce a webhook to send. Each message names the transformation, since it ends
/// up in an attempt's `response` where receivers' answers usually are.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("the transformation is {bytes} bytes; at most {MAX_CODE_BYTES} are allowed")]
    TooLarge { bytes: usize },
    #[error("the transformation does not compile{}: {message}", at_line(*line))]
    Syntax { message: String, line: Option<u32> },
    #[error("the transformation must declare `function handler(webhook) {{ …; return webhook; }}`")]
    NoHandler,
    #[error("the transformation threw{}: {message}", at_line(*line))]
    Threw { message: String, line: Option<u32> },
    #[error("the transformation ran for more than {} ms and was stopped", TIME_LIMIT.as_millis())]
    TimedOut,
    #[error("the transformation used more than {} MiB of memory and was stopped", MEMORY_LIMIT_BYTES >> 20)]
    OutOfMemory,
    #[error("the transformation returned an unusable webhook: {0}")]
    BadResult(String),
    #[error("the transformation sandbox is not running")]
    Unavailable,
}

impl TransformError {
    /// The line of the code the error points at, when known.
    pub fn line(&self) -> Option<u32> {
        match self {
            Self::Syntax { line, .. } | Self::Threw { line, .. } => *line,
            _ => None,
        }
    }
}

fn at_line(line: Option<u32>) -> String {
    line.map(|line| format!(" (line {line})")).unwrap_or_default()
}
