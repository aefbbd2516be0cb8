//! How an API token is spread over the columns of `api_tokens`, shared by both backends: the scope becomes a
//! nullable `app_id` plus a `read_only` flag, the digest a 32-byte blob.

use hookrelay_core::time::UnixMillis;
use hookrelay_core::token::{ApiToken, TokenDigest, TokenScope};
use hookrelay_core::{AppId, TokenId};

use crate::StoreError;

/// The columns every token query selects, in the order [`TokenRow`] expects.
pub const TOKEN_COLUMNS: &str = "id, name, digest, app_id, read_only, created_at, expires_at";

/// The error both backends give for an admin token name that is taken.
pub fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("an admin token named `{name}` already exists; pick another name or revoke it"))
}

/// One row of `api_tokens` as plain values.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub digest: Vec<u8>,
    pub app_id: Option<String>,
    pub read_only: i64,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
}

impl TokenRow {
    pub fn from_token(token: &ApiToken) -> Self {
        let (app_id, read_only) = match &token.scope {
            TokenScope::Admin => (None, false),
            TokenScope::App { app_id, read_only } => (Some(app_id.as_str().to_owned()), *read_only),
        };
        Self {
            id: token.id.as_str().to_owned(),
            name: token.name.clone(),
            digest: token.digest.to_vec(),
            app_id,
            read_only: i64::from(read_only),
            created_at: token.created_at,
            expires_at: token.expires_at,
        }
    }

    pub fn into_token(self) -> Result<ApiToken, StoreError> {
        let digest: TokenDigest = self
            .digest
            .try_into()
            .map_err(|_| StoreError::Internal(format!("token {} has a digest that is not 32 bytes", self.id)))?;
        let scope = match self.app_id {
            None => TokenScope::Admin,
            Some(app_id) => TokenScope::App { app_id: AppId::from_trusted(app_id), read_only: self.read_only != 0 },
        };
        Ok(ApiToken {
            id: TokenId::from_trusted(self.id),
            name: self.name,
            scope,
            digest,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}
