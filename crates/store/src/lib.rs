//! Storage for hookrelay: the [`Store`] trait every backend implements, the embedded SQLite backend, and the
//! PostgreSQL backend for several processes sharing one database.
//!
//! The database is the queue. A message, its deliveries (one per matching endpoint) and their next-attempt
//! times are written in one transaction before the API answers, so a crash never loses accepted work; the
//! dispatcher claims due deliveries under a lease and records each attempt with the delivery's next step.

mod columns;
pub mod copy;
mod error;
mod page;
pub mod postgres;
pub mod private_files;
pub mod sqlite;
mod store;
mod tokens;
mod write_health;

pub use columns::{parse_rejection_cursor, rejection_cursor};
pub use error::StoreError;
pub use page::{Order, Page, PageRequest};
pub use store::*;
pub use write_health::Unwritable;
