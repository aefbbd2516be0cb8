//! Timestamps in API bodies: a serde wrapper that writes stored milliseconds as RFC 3339 (the format and
//! the parser live in `hookrelay_core::rfc3339`).

use hookrelay_core::time::UnixMillis;
use serde::{Serialize, Serializer};

pub use hookrelay_core::rfc3339::{format, parse};

/// A timestamp that serializes as RFC 3339 UTC with milliseconds, the form Svix answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub UnixMillis);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(self.0))
    }
}

/// Documented as an RFC 3339 `date-time` string.
impl utoipa::PartialSchema for Rfc3339 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .examples(["2026-11-22T13:04:29.000Z"])
            .into()
    }
}

impl utoipa::ToSchema for Rfc3339 {}
