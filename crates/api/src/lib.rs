//! hookrelay's HTTP API: the Svix-compatible v1 routes and health checks (being built up; this commit brings
//! the wire-level foundations the handlers share, and the auth and idempotency middleware).

pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod pagination;
pub mod patch;
pub mod time;
pub mod validate;

pub use error::ApiError;
