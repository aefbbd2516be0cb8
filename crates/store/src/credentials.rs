//! The credentials role: API tokens (stored by digest) and the secrets kept at rest, sealed under the store's key.

use async_trait::async_trait;
use hookrelay_core::token::{ApiToken, TokenDigest};

use crate::StoreResult;

/// The tables whose secrets a re-encryption pass walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretTable {
    /// `endpoints.secret` and `endpoints.previous_secrets`.
    Endpoints,
    /// `sources.secrets`.
    Sources,
}

/// What one batch of a re-encryption pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReencryptBatch {
    /// The id of the last row looked at, where the next batch starts; `None` once the table is done.
    pub last: Option<String>,
    /// Rows whose secrets were sealed again (rows already under the current key are left alone).
    pub rewritten: u64,
}

/// API tokens and secrets at rest.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// Seals the secrets of up to `limit` rows of `table` with ids after `after` (from the start when `None`)
    /// under the store's current key (or writes them in plaintext when it has none), in one transaction that
    /// locks those rows. Rows already in that form are not written. Fails, naming the setting, on a secret
    /// sealed with a key the store does not have.
    async fn reencrypt_secrets(
        &self,
        table: SecretTable,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<ReencryptBatch>;
    /// Whether the store seals what it is given to keep secret (it has a current key): secrets, and remembered
    /// responses that carry a secret or token.
    fn seals_secrets(&self) -> bool;
    /// Stores a new token, deleting expired ones in the same transaction; an admin token whose name is taken is
    /// a `Conflict`, an app token of a missing application is `NotFound`.
    async fn create_token(&self, token: &ApiToken) -> StoreResult<()>;
    /// The token with this digest, expired or not (the caller decides).
    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>>;
    /// Every admin token, oldest first (app tokens are short-lived and not listed).
    async fn list_admin_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// Deletes the admin token with this id or name and returns it; `NotFound` if there is none.
    async fn revoke_admin_token(&self, id_or_name: &str) -> StoreResult<ApiToken>;
}
