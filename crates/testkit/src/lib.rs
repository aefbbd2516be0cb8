//! What hookrelay's tests share, in one place:
//! - [`postgres::ScratchSchema`]: a PostgreSQL schema of its own for one test or one benchmark scenario
//!   (create, a URL that selects it, drop); `hookrelay bench` uses it too, which is why this crate is also a
//!   normal dependency of the binary, with the test-only parts behind the `http` feature;
//! - [`wait::wait_for`]: polling until a condition holds, failing with what was awaited;
//! - with the `http` feature, [`http::client`] for loopback and [`http::publish_until_accepted`], the publisher
//!   of the crash, chaos and multi-instance tests that retries with one idempotency key until a server
//!   acknowledges.

#[cfg(feature = "http")]
pub mod http;
pub mod postgres;
pub mod wait;
