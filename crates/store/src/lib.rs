//! Storage for hookrelay: the storage contract split by role (one trait each: [`Catalog`], [`Messages`],
//! [`Queue`], [`Recovery`], [`Inbound`], [`Credentials`], [`Operations`]), the [`Store`] that hands a whole
//! backend around, the embedded SQLite backend, and the PostgreSQL backend for several processes sharing one
//! database. Each role has one file here and one file of the same name in `sqlite/` and `postgres/`.
//!
//! The database is the queue. A message, its deliveries (one per matching endpoint) and their next-attempt
//! times are written in one transaction before the API answers, so a crash never loses accepted work; the
//! dispatcher claims due deliveries under a lease and records each attempt with the delivery's next step.

mod activity;
mod catalog;
mod columns;
pub mod copy;
mod credentials;
mod error;
mod inbound;
mod messages;
mod operations;
mod page;
pub mod postgres;
pub mod private_files;
mod queue;
mod recovery;
pub mod sqlite;
mod store;
mod tokens;
mod write_health;

pub use activity::MAX_ACTIVITY_BUCKETS;
pub use catalog::*;
pub use columns::{parse_rejection_cursor, rejection_cursor};
pub use credentials::*;
pub use error::StoreError;
pub use inbound::*;
pub use messages::*;
pub use operations::*;
pub use page::{Order, Page, PageRequest};
pub use queue::*;
pub use recovery::*;
pub use store::{Backend, Store, StoreResult};
pub use write_health::Unwritable;
