//! The rules of hookrelay, free of I/O: prefixed time-sortable ids, the domain model, Standard Webhooks
//! signing, inbound provider verification, routing (which endpoint gets which message), the retry policy, the
//! recovery window rules and input validation.
//!
//! Nothing here touches the network, the clock's async runtime or the database, so every rule is tested
//! fast and in isolation; the `store`, `engine` and `api` crates call into it.

pub mod cipher;
pub mod id;
pub mod inbound;
pub mod model;
pub mod netpolicy;
pub mod operational;
pub mod recovery;
pub mod retry;
pub mod rfc3339;
pub mod routing;
pub mod signature_headers;
pub mod signing;
pub mod text;
pub mod time;
pub mod token;
pub mod validate;

pub use id::{AppId, AttemptId, EndpointId, EventTypeId, InboundEventId, MessageId, SourceId, TaskId, TokenId};
