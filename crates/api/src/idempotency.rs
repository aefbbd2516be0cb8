//! `idempotency-key` handling for POST requests: the first 2xx response for a key is remembered (12 h) and
//! replayed for repeats, and a concurrent duplicate waits for the first instead of running twice.
//!
//! The Svix SDKs send `idempotency-key: auto_<uuid>` on every POST, so the common path is one indexed read.
//! A response that carries a token or secret ([`CarriesSecret`]) is remembered only where the store seals it.
//! The message handler commits its response together with the message (see [`IdempotencyScope`] and
//! [`AlreadyRemembered`]), so a crash can never leave a message published without its remembered response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookrelay_core::time::{UnixMillis, now_ms};
use hookrelay_store::{IdempotentResponse, Store};
use sha2::{Digest, Sha256};

use crate::auth::bearer_token;
use crate::error::ApiError;

/// How long a remembered response is replayed (Svix: 12 hours).
pub const REMEMBER_FOR_MS: i64 = 12 * 60 * 60 * 1000;

/// The request header clients send.
const HEADER: &str = "idempotency-key";

/// Request extension: the scope key of this request, for handlers that store their response themselves.
#[derive(Clone, Debug)]
pub struct IdempotencyScope(pub String);

impl IdempotencyScope {
    /// The record to store with `status` and `body`, expiring 12 hours after `now`.
    pub fn response(&self, status: StatusCode, body: Vec<u8>, now: UnixMillis) -> IdempotentResponse {
        IdempotentResponse { key: self.0.clone(), status: status.as_u16(), body, expires_at: now + REMEMBER_FOR_MS }
    }
}

/// Response extension: the handler already stored this response in the same transaction as its effect.
#[derive(Clone, Copy, Debug)]
pub struct AlreadyRemembered;

/// Response extension: the body holds a token or secret. It is remembered only by a store that seals it; without
/// an encryption key a repeat of the request gets a 409 that says why instead of the token in plaintext.
#[derive(Clone, Copy, Debug)]
pub struct CarriesSecret;

/// What a repeat gets when the first response carried a secret that could not be stored sealed.
const NOT_REPLAYABLE: &str = r#"{"code":"idempotency_not_replayable","detail":"a request with this idempotency key already succeeded, and its answer held a token or secret, which this server does not store without an encryption key (HOOKRELAY_ENCRYPTION_KEY); send the request again with a new idempotency key"}"#;

/// The middleware's state: the store and the in-process locks that serialise requests with the same key.
#[derive(Clone)]
pub struct Idempotency {
    store: Store,
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Idempotency {
    pub fn new(store: Store) -> Self {
        Self { store, in_flight: Arc::default() }
    }

    /// Takes the lock for `key`; the returned guard removes the map entry when the last holder is done, so
    /// the map only ever holds keys with a request in flight.
    async fn lock(&self, key: &str) -> KeyGuard {
        let lock = {
            let mut map = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyGuard { map: self.in_flight.clone(), key: key.to_owned(), lock, _guard: guard }
    }
}

struct KeyGuard {
    map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        // Runs even when the client disconnects and the handler future is dropped. Under the map lock nobody
        // can take a new reference, so "only the map and this guard (which holds `lock` and `_guard`) point at
        // the mutex" means no request is waiting for this key.
        let mut map = self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let unused = map
            .get(&self.key)
            .is_some_and(|entry| Arc::ptr_eq(entry, &self.lock) && Arc::strong_count(&self.lock) == 3);
        if unused {
            map.remove(&self.key);
        }
    }
}

/// The scope of a client's key: the same key from another token, or on another route, is a different key.
/// Hashed so stored keys never reveal the token.
pub fn scope_key(token: &str, method: &Method, path: &str, client_key: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [token, method.as_str(), path.trim_end_matches('/'), client_key] {
        // Length-prefixed so that no two different tuples hash the same bytes.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware: replays a remembered response, or runs the request (one per key at a time) and remembers its
/// 2xx response.
pub async fn remember_responses(State(idem): State<Idempotency>, mut request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(client_key) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::trim) else {
        return next.run(request).await;
    };
    if client_key.is_empty() {
        return next.run(request).await;
    }
    let token = bearer_token(request.headers()).unwrap_or_default();
    let key = scope_key(token, request.method(), request.uri().path(), client_key);

    // Lock before reading: a duplicate that raced past a read would otherwise run the handler a second time.
    // The lock is in-process and uncontended in the common case, so this stays one store read per POST.
    let _guard = idem.lock(&key).await;
    match idem.store.messages.get_idempotent(&key).await {
        Ok(Some(remembered)) => return replay(remembered),
        Ok(None) => {}
        Err(err) => return ApiError::from(err).into_response(),
    }

    request.extensions_mut().insert(IdempotencyScope(key.clone()));
    let response = next.run(request).await;
    if !response.status().is_success() || response.extensions().get::<AlreadyRemembered>().is_some() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => return ApiError::Internal(format!("buffering a response to remember it: {err}")).into_response(),
    };
    let remembered = if parts.extensions.get::<CarriesSecret>().is_some() && !idem.store.credentials.seals_secrets() {
        IdempotencyScope(key).response(StatusCode::CONFLICT, NOT_REPLAYABLE.as_bytes().to_vec(), now_ms())
    } else {
        IdempotencyScope(key).response(parts.status, bytes.to_vec(), now_ms())
    };
    if let Err(err) = idem.store.messages.put_idempotent(&remembered).await {
        // The request's effect is committed; failing it now would invite a retry that repeats it. Answer
        // normally and let a retry with this key (rare) run again.
        tracing::warn!(error = %err, "could not remember a response for its idempotency key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(remembered: IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(remembered.status).unwrap_or(StatusCode::OK);
    let mut response = (status, remembered.body).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_separates_tokens_paths_and_keys_but_not_trailing_slashes() {
        let base = scope_key("tok", &Method::POST, "/api/v1/app/a/msg", "k1");
        assert_eq!(base, scope_key("tok", &Method::POST, "/api/v1/app/a/msg/", "k1"));
        assert_ne!(base, scope_key("tok2", &Method::POST, "/api/v1/app/a/msg", "k1"));
        assert_ne!(base, scope_key("tok", &Method::POST, "/api/v1/app/b/msg", "k1"));
        assert_ne!(base, scope_key("tok", &Method::POST, "/api/v1/app/a/msg", "k2"));
        assert_ne!(scope_key("ab", &Method::POST, "c", "d"), scope_key("a", &Method::POST, "bc", "d"));
        assert_eq!(base.len(), 64);
        assert!(!base.contains("tok"));
    }
}
