//! The one error type every store operation returns; no database-library type leaks past it.

/// What went wrong in the store, in terms the API and engine can act on.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the text names it (e.g. "an application with this uid already exists").
    #[error("{0}")]
    Conflict(String),
    /// The input cannot be stored as given; the text says why (e.g. a NUL character, which PostgreSQL's text type
    /// cannot hold).
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached or is shutting down; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupt data. The text is for logs, not for API clients.
    #[error("database error: {0}")]
    Internal(String),
}
