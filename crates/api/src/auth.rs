//! Authentication and authorisation of the v1 API, decided here for every route at once: who the bearer token
//! is (the bootstrap admin token, a named admin token, or an application token), whether it may call this
//! route on this application, and whether its rate limit lets the request through. Health and `/ingest` are
//! mounted outside this middleware.
//!
//! The bootstrap admin token (`HOOKRELAY_ADMIN_TOKEN` or the generated file) is compared in memory, so the
//! publish path never waits for the database. Tokens kept in the database (`api_tokens`, by SHA-256 digest) are
//! looked up once and then cached for [`CACHE_TTL`]: a revoke takes effect at once in the process that revoked
//! it and within that time in every other process sharing the database. Expiry is checked on every request.
//!
//! What an application token may do is decided from the matched route and its `{app_id}` path parameter (id or
//! uid): routes under `/api/v1/app/{app_id}/…` of its own application (reading the application itself, managing
//! its endpoints, messages and attempts), and reading event types. Another application's path answers 404, as
//! if it did not exist (Svix does the same); any other route answers 403. A read-only token may only GET.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookrelay_core::token::{self, ApiToken, TokenDigest, TokenScope};
use hookrelay_core::{AppId, TokenId};
use hookrelay_store::{Store, StoreError};
use subtle::ConstantTimeEq;

use crate::app_cache::AppIds;
use crate::error::ApiError;
use crate::rate_limit::{RateLimiter, retry_after_secs};
use crate::ttl_cache::TtlCache;

/// How long a token read from the database is trusted without reading it again: the longest a revoke made in
/// another process (PostgreSQL) takes to reach this one.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most tokens cached at once; beyond it, stale entries are dropped, then all (bounded memory).
const CACHE_MAX: usize = 10_000;

/// Settings of token handling, from the server's configuration.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    /// Requests per second per token; 0 turns the limit off.
    pub rate_limit_per_sec: u32,
    /// Requests a token may send at once before the rate applies; 0 means one second's worth.
    pub rate_limit_burst: u32,
    /// Base of the `url` returned with an app portal token; `None` uses the request's `Host`.
    pub portal_url: Option<String>,
}

/// The token requests must present, kept as a digest so comparing never leaks its length or content through
/// timing.
#[derive(Clone)]
pub struct AdminToken {
    digest: Option<Arc<TokenDigest>>,
}

impl AdminToken {
    /// An empty token accepts nobody: `Bearer ` with nothing after it must not unlock the API.
    pub fn new(token: &str) -> Self {
        let digest = (!token.is_empty()).then(|| Arc::new(token::digest(token)));
        Self { digest }
    }

    pub fn accepts(&self, presented: &str) -> bool {
        self.accepts_digest(&token::digest(presented))
    }

    fn accepts_digest(&self, presented: &TokenDigest) -> bool {
        self.digest.as_ref().is_some_and(|expected| bool::from(presented.ct_eq(expected.as_ref())))
    }
}

/// Who is calling, as the middleware established it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    App { app_id: AppId, read_only: bool },
}

/// The token from `Authorization: Bearer <token>` (the scheme is case-insensitive), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Everything the middleware needs; shared with the token routes (through the request's extensions) so a
/// revoke can drop the token from the cache at once.
pub struct Authenticator {
    bootstrap: AdminToken,
    store: Store,
    /// Application ids by path reference (shared with publishing), so an application token naming its
    /// application by uid does not cost a database read per request.
    app_ids: Arc<AppIds>,
    cache: TtlCache<TokenDigest, ApiToken>,
    limiter: Option<RateLimiter>,
    pub settings: AuthSettings,
}

impl Authenticator {
    pub fn new(bootstrap_token: &str, store: Store, app_ids: Arc<AppIds>, settings: AuthSettings) -> Self {
        Self {
            bootstrap: AdminToken::new(bootstrap_token),
            store,
            app_ids,
            cache: TtlCache::new(CACHE_TTL, CACHE_MAX),
            limiter: RateLimiter::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
            settings,
        }
    }

    /// Who the presented token is: 401 when it is unknown, revoked or expired.
    async fn authenticate(&self, digest: &TokenDigest) -> Result<Caller, ApiError> {
        if self.bootstrap.accepts_digest(digest) {
            return Ok(Caller::Admin);
        }
        let token = match self.cache.get(digest) {
            Some(token) => token,
            None => {
                let found = self.store.credentials.find_token(digest).await?.ok_or(ApiError::Unauthorized)?;
                // The store found it by digest; comparing again in constant time keeps the final decision free
                // of the database's (index lookup) timing.
                if !bool::from(found.digest.ct_eq(digest)) {
                    return Err(ApiError::Unauthorized);
                }
                self.cache.put(found.digest, found.clone());
                found
            }
        };
        if token.is_expired(hookrelay_core::time::now_ms()) {
            return Err(ApiError::Unauthorized);
        }
        Ok(match token.scope {
            TokenScope::Admin => Caller::Admin,
            TokenScope::App { app_id, read_only } => Caller::App { app_id, read_only },
        })
    }

    /// Drops a revoked token from this process's cache, so the revoke holds here at once.
    pub fn forget(&self, id: &TokenId) {
        self.cache.forget_where(|token| &token.id == id);
    }

    /// 429 when the token's bucket is empty.
    fn check_rate(&self, digest: &TokenDigest) -> Result<(), ApiError> {
        match &self.limiter {
            Some(limiter) => limiter
                .check(digest, Instant::now())
                .map_err(|wait| ApiError::RateLimited { retry_after_secs: retry_after_secs(wait) }),
            None => Ok(()),
        }
    }

    /// Whether an application token may call this route: 403 for routes outside its application, 404 for another
    /// application's paths, 403 for a read-only token's writes.
    async fn authorize_app(
        &self,
        app_id: &AppId,
        read_only: bool,
        method: &Method,
        route: &str,
        app_param: Option<&str>,
    ) -> Result<(), ApiError> {
        if app_route(route, method)? {
            let reference = app_param.unwrap_or_default();
            if reference != app_id.as_str() {
                let named = match self.app_ids.get(reference) {
                    Some(id) => id,
                    None => match self.store.catalog.get_app(reference).await {
                        Ok(app) => {
                            self.app_ids.put(reference, &app.id);
                            app.id
                        }
                        Err(StoreError::NotFound) => return Err(ApiError::not_found("application", reference)),
                        Err(other) => return Err(other.into()),
                    },
                };
                if &named != app_id {
                    return Err(ApiError::not_found("application", reference));
                }
            }
        }
        if read_only && !is_read(method) {
            return Err(ApiError::Forbidden("this token is read-only: it may only read (GET)".to_owned()));
        }
        // A GET that changes something: connecting takes the endpoint's deliveries over (and away from a session
        // already connected).
        if read_only && route.trim_end_matches('/').ends_with("/endpoint/{endpoint_id}/listen") {
            return Err(ApiError::Forbidden(
                "a read-only token cannot receive an endpoint's deliveries: use a token that may write".to_owned(),
            ));
        }
        Ok(())
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// The rule for application tokens, by route template: `Ok(true)` for a route of one application (whose
/// `{app_id}` must then be the token's), `Ok(false)` for a route any application token may call, `Err` (403)
/// for everything else. New routes are admin-only unless listed here.
fn app_route(route: &str, method: &Method) -> Result<bool, ApiError> {
    const APP: &str = "/api/v1/app/{app_id}";
    let route = route.trim_end_matches('/');
    if route == APP && !is_read(method) {
        return Err(ApiError::Forbidden(
            "an application token may read its application but not change or delete it; use an admin token".into(),
        ));
    }
    if route == APP || route.starts_with("/api/v1/app/{app_id}/") {
        return Ok(true);
    }
    if (route == "/api/v1/event-type" || route.starts_with("/api/v1/event-type/")) && is_read(method) {
        return Ok(false);
    }
    // Every token may ask what it is (the app portal learns its application this way).
    if route == "/api/v1/auth/whoami" {
        return Ok(false);
    }
    Err(ApiError::Forbidden(format!(
        "an application token may only use its own application's routes; `{method} {route}` needs an admin token"
    )))
}

/// Middleware: authenticates the token, applies its rate limit, and checks an application token's scope; puts
/// the [`Authenticator`] into the request's extensions (the token routes use it).
pub async fn require_token(State(auth): State<Arc<Authenticator>>, request: Request, next: Next) -> Response {
    let Some(presented) = bearer_token(request.headers()) else {
        return ApiError::Unauthorized.into_response();
    };
    let digest = token::digest(presented);
    let caller = match auth.authenticate(&digest).await {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    if let Err(err) = auth.check_rate(&digest) {
        return err.into_response();
    }
    let (mut parts, body) = request.into_parts();
    if let Caller::App { app_id, read_only } = &caller {
        let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
        let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
        let app_param = params.as_ref().and_then(|p| p.iter().find(|(name, _)| *name == "app_id").map(|(_, v)| v));
        if let Err(err) = auth.authorize_app(app_id, *read_only, &parts.method, &route, app_param).await {
            return err.into_response();
        }
    }
    parts.extensions.insert(auth);
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, expected_token: &str, accepted: bool) {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert(AUTHORIZATION, value.parse().expect("test header"));
        }
        let admin = AdminToken::new(expected_token);
        let got = bearer_token(&headers).is_some_and(|token| admin.accepts(token));
        assert_eq!(got, accepted, "{header:?} against {expected_token:?}");
    }

    #[test]
    fn bearer_tokens() {
        check(Some("Bearer sk_test"), "sk_test", true);
        check(Some("bearer sk_test"), "sk_test", true);
        check(Some("Bearer  sk_test "), "sk_test", true);
        check(Some("Bearer sk_tes"), "sk_test", false);
        check(Some("Bearer sk_test2"), "sk_test", false);
        check(Some("Basic sk_test"), "sk_test", false);
        check(Some("sk_test"), "sk_test", false);
        check(None, "sk_test", false);
        check(Some("Bearer "), "", false);
        check(Some("Bearer x"), "", false);
    }

    /// `Some(true)`: a route of the token's application; `Some(false)`: open to every application token;
    /// `None`: 403.
    fn scope(method: Method, route: &str, expected: Option<bool>) {
        let got = app_route(route, &method).ok();
        assert_eq!(got, expected, "{method} {route}");
    }

    #[test]
    fn application_token_scope() {
        scope(Method::GET, "/api/v1/app/{app_id}", Some(true));
        scope(Method::GET, "/api/v1/app/{app_id}/", Some(true));
        scope(Method::PUT, "/api/v1/app/{app_id}", None);
        scope(Method::DELETE, "/api/v1/app/{app_id}/", None);
        scope(Method::POST, "/api/v1/app/{app_id}/endpoint/", Some(true));
        scope(Method::DELETE, "/api/v1/app/{app_id}/endpoint/{endpoint_id}", Some(true));
        scope(Method::POST, "/api/v1/app/{app_id}/msg", Some(true));
        scope(Method::GET, "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", Some(true));
        scope(Method::GET, "/api/v1/app", None);
        scope(Method::POST, "/api/v1/app/", None);
        scope(Method::GET, "/api/v1/event-type/", Some(false));
        scope(Method::GET, "/api/v1/event-type/{name}", Some(false));
        scope(Method::POST, "/api/v1/event-type", None);
        scope(Method::PATCH, "/api/v1/event-type/{name}", None);
        scope(Method::GET, "/api/v1/source", None);
        scope(Method::GET, "/api/v1/background-task/{task_id}", None);
        scope(Method::GET, "/api/v1/stats/", None);
        scope(Method::GET, "/api/v1/stats/activity", None);
        scope(Method::POST, "/api/v1/auth/app-portal-access/{app_id}", None);
        scope(Method::GET, "/api/v1/auth/token", None);
        scope(Method::GET, "/api/v1/auth/whoami", Some(false));
        scope(Method::GET, "/api/v1/auth/whoami/", Some(false));
        // A look-alike prefix is not the application's subtree.
        scope(Method::GET, "/api/v1/application/{app_id}", None);
    }
}
