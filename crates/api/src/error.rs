//! `ApiError`, the one error type of the API, and its mapping to an HTTP status and a Svix-shaped body:
//! `{"code", "detail"}` for most errors and `{"detail": [{"loc", "msg", "type"}]}` for validation (422).

use std::fmt::Display;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookrelay_store::StoreError;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// One problem with the input, in Svix's (FastAPI's) validation-error shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ValidationError)]
pub struct FieldError {
    /// Where the problem is: `["body", "url"]`, `["query", "limit"]`, `["path", "app_id"]`.
    pub loc: Vec<String>,
    /// What is wrong and how to fix it.
    pub msg: String,
    /// `value_error` (a rule of the field) or `type_error` (the JSON does not fit the field's type).
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The body of every error but validation: `HttpErrorOut`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HttpErrorOut)]
pub struct ErrorBody {
    /// Machine-readable: `authentication_failed`, `not_found`, `conflict`, `payload_too_large`, …
    pub code: String,
    /// What went wrong and what to do about it.
    pub detail: String,
}

/// The body of a 422: `HTTPValidationError`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

/// Everything a request can fail with. Each variant has one status and one body shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request is well-formed HTTP but its content is not acceptable.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// 401: no or a wrong bearer token.
    #[error("authentication failed")]
    Unauthorized,
    /// 403: the token is valid but may not do this (an application token on an admin route, a read-only token
    /// writing).
    #[error("{0}")]
    Forbidden(String),
    /// 429: the token sent more requests than its rate limit allows; retry after this many seconds.
    #[error("rate limited for {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 404: the resource (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: a uniqueness rule (uid, event type name, eventId) would be broken.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 503: the database cannot be reached; the text is logged, not sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or corrupt data; the text is logged, not sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for one field of the JSON body (`path` below `body`, e.g. `["url"]`).
    pub fn body(path: &[&str], msg: impl Display) -> Self {
        Self::invalid("body", path, msg)
    }

    /// A 422 for one query parameter.
    pub fn query(name: &str, msg: impl Display) -> Self {
        Self::invalid("query", &[name], msg)
    }

    /// A 422 for one path segment.
    pub fn path(name: &str, msg: impl Display) -> Self {
        Self::invalid("path", &[name], msg)
    }

    fn invalid(place: &str, path: &[&str], msg: impl Display) -> Self {
        let loc = std::iter::once(place).chain(path.iter().copied()).map(str::to_owned).collect();
        Self::Validation(vec![FieldError { loc, msg: msg.to_string(), kind: "value_error" }])
    }

    /// The same error with validation locations moved below `prefix` in the body, for input nested in another
    /// object (`["body", "name"]` becomes `["body", "application", "name"]`).
    pub fn under(self, prefix: &[&str]) -> Self {
        match self {
            Self::Validation(errors) => Self::Validation(
                errors
                    .into_iter()
                    .map(|mut error| {
                        if error.loc.first().map(String::as_str) == Some("body") {
                            let nested = prefix.iter().map(|p| p.to_string());
                            error.loc.splice(1..1, nested);
                        }
                        error
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// A 404 naming what was looked for, e.g. `application `app_x` not found`.
    pub fn not_found(what: &str, reference: &str) -> Self {
        Self::NotFound(format!("{what} `{reference}` not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body clients see. Causes of 500 and 503 stay in the log: they can name tables or paths.
    pub fn body_json(&self) -> serde_json::Value {
        let (code, detail) = match self {
            Self::Validation(errors) => return json!(ValidationErrorBody { detail: errors.clone() }),
            Self::Unauthorized => (
                "authentication_failed",
                "send a valid token as `Authorization: Bearer <token>` (an admin token, or an application token \
                 that has not expired)"
                    .to_owned(),
            ),
            Self::Forbidden(detail) => ("insufficient_access", detail.clone()),
            Self::RateLimited { retry_after_secs } => (
                "rate_limit_exceeded",
                format!("this token sent more requests than its rate limit allows; retry in {retry_after_secs} s"),
            ),
            Self::NotFound(detail) => ("not_found", detail.clone()),
            Self::MethodNotAllowed => ("method_not_allowed", "this route does not support this HTTP method".to_owned()),
            Self::Conflict(detail) => ("conflict", detail.clone()),
            Self::PayloadTooLarge => (
                "payload_too_large",
                "the request body is larger than this server accepts: send a smaller body, or have the operator raise \
                 HOOKRELAY_MAX_BODY_BYTES (default 1048576 bytes)"
                    .to_owned(),
            ),
            Self::Unavailable(_) => {
                ("service_unavailable", "the database is unavailable right now; retry later".to_owned())
            }
            Self::Internal(_) => ("internal_server_error", "an internal error occurred; see the server log".to_owned()),
        };
        json!(ErrorBody { code: code.to_owned(), detail })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed with an internal error"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "request failed: database unavailable"),
            _ => {}
        }
        let mut response = (self.status(), Json(self.body_json())).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("not found".to_owned()),
            StoreError::Conflict(detail) => Self::Conflict(detail),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Invalid(detail) => Self::body(&[], detail),
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// Turns the store's bare `NotFound` into a 404 that names what was missing.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str, reference: &str) -> Result<T, ApiError>;
}

impl<T> OrNotFound<T> for Result<T, StoreError> {
    fn or_not_found(self, what: &str, reference: &str) -> Result<T, ApiError> {
        self.map_err(|err| match err {
            StoreError::NotFound => ApiError::not_found(what, reference),
            other => other.into(),
        })
    }
}

/// Fallback for paths no route matches.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}

/// Fallback for a known path called with a method it does not support.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ApiError, status: u16, body: serde_json::Value) {
        assert_eq!(error.status().as_u16(), status, "{error:?}");
        assert_eq!(error.body_json(), body, "{error:?}");
    }

    #[test]
    fn errors_have_svix_shapes() {
        check(
            ApiError::body(&["url"], "must be an http or https URL"),
            422,
            json!({"detail": [{"loc": ["body", "url"], "msg": "must be an http or https URL", "type": "value_error"}]}),
        );
        check(
            ApiError::query("limit", "too big"),
            422,
            json!({"detail": [{"loc": ["query", "limit"], "msg": "too big", "type": "value_error"}]}),
        );
        check(
            ApiError::not_found("application", "app_x"),
            404,
            json!({"code": "not_found", "detail": "application `app_x` not found"}),
        );
        check(StoreError::Conflict("uid taken".into()).into(), 409, json!({"code": "conflict", "detail": "uid taken"}));
        check(
            ApiError::Forbidden("admin only".into()),
            403,
            json!({"code": "insufficient_access", "detail": "admin only"}),
        );
        let limited = ApiError::RateLimited { retry_after_secs: 2 };
        assert_eq!(limited.status().as_u16(), 429);
        assert_eq!(limited.body_json()["code"], "rate_limit_exceeded");
        assert_eq!(limited.into_response().headers()[axum::http::header::RETRY_AFTER], "2");
    }

    #[test]
    fn internal_causes_stay_out_of_the_body() {
        let error: ApiError = StoreError::Internal("table apps is corrupt at /secret/path".into()).into();
        assert_eq!(error.status().as_u16(), 500);
        assert!(!error.body_json().to_string().contains("/secret/path"));
        let error: ApiError = StoreError::Unavailable("disk I/O error on /var/x".into()).into();
        assert_eq!(error.status().as_u16(), 503);
        assert!(!error.body_json().to_string().contains("/var/x"));
    }
}
