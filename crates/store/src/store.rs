//! [`Store`]: a whole backend, handed around as one value with one field per role. Each consumer reads the
//! role it uses (`store.queue.claim_due(…)`), and a test double implements only the role it fakes and
//! replaces that one field of a real store.

use std::sync::Arc;

use crate::{Catalog, Credentials, Inbound, Messages, Operations, Queue, Recovery, StoreError};

pub type StoreResult<T> = Result<T, StoreError>;

/// Every role of one backend. Cloning is cheap (one `Arc` per role, all pointing at the same backend).
#[derive(Clone)]
pub struct Store {
    pub catalog: Arc<dyn Catalog>,
    pub messages: Arc<dyn Messages>,
    pub queue: Arc<dyn Queue>,
    pub recovery: Arc<dyn Recovery>,
    pub inbound: Arc<dyn Inbound>,
    pub credentials: Arc<dyn Credentials>,
    pub operations: Arc<dyn Operations>,
}

/// A backend: one type that plays every role (`SqliteStore`, `PostgresStore`).
pub trait Backend: Catalog + Messages + Queue + Recovery + Inbound + Credentials + Operations {}

impl<T: Catalog + Messages + Queue + Recovery + Inbound + Credentials + Operations> Backend for T {}

impl Store {
    /// Hands `backend` around as every role.
    pub fn new<B: Backend>(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// As [`new`](Self::new), for a backend already shared.
    pub fn from_arc<B: Backend>(backend: Arc<B>) -> Self {
        Self {
            catalog: backend.clone(),
            messages: backend.clone(),
            queue: backend.clone(),
            recovery: backend.clone(),
            inbound: backend.clone(),
            credentials: backend.clone(),
            operations: backend,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
