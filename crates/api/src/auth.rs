//! Bearer-token authentication for the v1 API: `Authorization: Bearer <admin token>`, compared in constant
//! time. Health routes are mounted outside this middleware.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The token requests must present, kept as a digest so comparing never leaks its length or content through
/// timing.
#[derive(Clone)]
pub struct AdminToken {
    digest: Option<Arc<[u8; 32]>>,
}

impl AdminToken {
    /// An empty token accepts nobody: `Bearer ` with nothing after it must not unlock the API.
    pub fn new(token: &str) -> Self {
        let digest = (!token.is_empty()).then(|| Arc::new(Sha256::digest(token.as_bytes()).into()));
        Self { digest }
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let Some(expected) = &self.digest else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(expected.as_ref()).into()
    }
}

/// The token from `Authorization: Bearer <token>` (the scheme is case-insensitive), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware: lets the request through only with the admin token.
pub async fn require_token(State(admin): State<AdminToken>, request: Request, next: Next) -> Response {
    match bearer_token(request.headers()) {
        Some(token) if admin.accepts(token) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
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
}
