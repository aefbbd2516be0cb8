//! What hookrelay's tests share, in one place:
//! - [`postgres::ScratchSchema`]: a PostgreSQL schema of its own for one test or one benchmark scenario
//!   (create, a URL that selects it, drop). `hookrelay bench` uses it too, which is why this crate is also a
//!   normal dependency of the binary; everything else is behind the `harness` feature, which only tests enable;
//! - [`wait::wait_for`]: polling until a condition holds, failing with what was awaited;
//! - [`proxy::CuttableProxy`]: a loopback TCP proxy a test cuts to take a server (the database) away;
//! - [`http::client`] for loopback, and [`http::publish_until_accepted`], the publisher of the chaos,
//!   multi-instance and database-restart tests that retries with one idempotency key until a server
//!   acknowledges.

#[cfg(feature = "harness")]
pub mod http;
pub mod postgres;
#[cfg(feature = "harness")]
pub mod proxy;
#[cfg(feature = "harness")]
pub mod wait;
