//! Where an event's id and type are found in a request: a body field (a dot path into the JSON body, such as
//! `event.type`) or a header. Providers with fixed places use [`body_field`]; Slack and the generic scheme take
//! an [`EventFields`] from the source's options.

use super::InboundRequest;

/// Configurable places of the event type and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFields {
    /// Dot path of the body field holding the event type.
    pub event_type_field: String,
    /// Header holding the event id; takes precedence over `event_id_field`.
    pub event_id_header: Option<String>,
    /// Dot path of the body field holding the event id.
    pub event_id_field: Option<String>,
}

impl EventFields {
    /// The event type: the body field, when it is a string or a number.
    pub fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        body_field(request.body, &self.event_type_field)
    }

    /// The event id: the header if configured and present, else the body field if configured.
    pub fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        if let Some(header) = &self.event_id_header
            && let Some(value) = request.headers.get(header).map(str::trim).filter(|value| !value.is_empty())
        {
            return Some(value.to_owned());
        }
        self.event_id_field.as_deref().and_then(|path| body_field(request.body, path))
    }
}

/// A string or number at `path` (`a.b.c`) in a JSON object body; `None` when the body is not JSON, the path is
/// absent, or the value is empty or of another kind.
pub fn body_field(body: &[u8], path: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let value = path.split('.').try_fold(&json, |value, key| value.get(key))?;
    match value {
        // A NUL cannot be stored as text (PostgreSQL refuses it) and is no sensible id or type.
        serde_json::Value::String(text) if !text.is_empty() && !text.contains('\0') => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Headers;

    #[test]
    fn fields_are_found_by_dot_path() {
        let body = br#"{"type": "event_callback", "event": {"type": "app_mention", "n": 7}, "empty": ""}"#;
        assert_eq!(body_field(body, "type").as_deref(), Some("event_callback"));
        assert_eq!(body_field(body, "event.type").as_deref(), Some("app_mention"));
        assert_eq!(body_field(body, "event.n").as_deref(), Some("7"));
        assert_eq!(body_field(body, "event"), None);
        assert_eq!(body_field(body, "empty"), None);
        assert_eq!(body_field(body, "missing.x"), None);
        assert_eq!(body_field(b"not json", "type"), None);
        assert_eq!(body_field(br#"{"id": "a\u0000b"}"#, "id"), None);
    }

    #[test]
    fn a_header_id_wins_over_a_body_id() {
        let fields = EventFields {
            event_type_field: "type".into(),
            event_id_header: Some("X-Event-Id".into()),
            event_id_field: Some("id".into()),
        };
        let body = br#"{"id": "from-body"}"#;
        let with_header = Headers::from_pairs([("x-event-id", "from-header")]);
        let without = Headers::default();
        assert_eq!(fields.event_id(&InboundRequest { headers: &with_header, body }).as_deref(), Some("from-header"));
        assert_eq!(fields.event_id(&InboundRequest { headers: &without, body }).as_deref(), Some("from-body"));
    }
}
