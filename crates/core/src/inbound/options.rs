//! A provider's options as a JSON object with camelCase keys: the shape the API accepts beside `provider` and
//! the store keeps. Only Slack and the generic scheme have options; the others take none.

use serde_json::{Map, Value};

use super::{EventFields, GenericHmac, Provider, SignatureEncoding, Slack};

/// An option that is unknown for the provider or has a bad value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    /// The option's key, e.g. `signatureEncoding`.
    pub field: String,
    pub message: String,
}

const EVENT_FIELD_KEYS: [&str; 3] = ["eventTypeField", "eventIdHeader", "eventIdField"];
const GENERIC_KEYS: [&str; 4] = ["signatureHeader", "signatureEncoding", "signaturePrefix", "timestampHeader"];

impl Provider {
    /// The provider `name` configured with `options` (absent or `null` options keep their defaults).
    pub fn from_options(name: &str, options: &Map<String, Value>) -> Result<Self, OptionError> {
        let mut provider = Self::from_name(name).ok_or_else(|| OptionError {
            field: "provider".to_owned(),
            message: format!("unknown provider `{name}`; use one of: {}", Self::NAMES.join(", ")),
        })?;
        let reader = Options { provider: name, options };
        match &mut provider {
            Self::Slack(slack) => {
                reader.allow(&EVENT_FIELD_KEYS)?;
                reader.event_fields(&mut slack.fields)?;
            }
            Self::HmacSha256(generic) => {
                reader.allow(&[&GENERIC_KEYS[..], &EVENT_FIELD_KEYS[..]].concat())?;
                reader.generic(generic)?;
                reader.event_fields(&mut generic.fields)?;
            }
            Self::Stripe | Self::Svix | Self::Github | Self::Shopify => reader.allow(&[])?,
        }
        Ok(provider)
    }

    /// The provider's options in effect, every one spelled out.
    pub fn options(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let fields = match self {
            Self::Slack(Slack { fields }) => fields,
            Self::HmacSha256(generic) => {
                out.insert("signatureHeader".into(), generic.signature_header.clone().into());
                out.insert("signatureEncoding".into(), generic.encoding.name().into());
                out.insert("signaturePrefix".into(), generic.prefix.clone().into());
                out.insert("timestampHeader".into(), generic.timestamp_header.clone().into());
                &generic.fields
            }
            Self::Stripe | Self::Svix | Self::Github | Self::Shopify => return out,
        };
        out.insert("eventTypeField".into(), fields.event_type_field.clone().into());
        out.insert("eventIdHeader".into(), fields.event_id_header.clone().into());
        out.insert("eventIdField".into(), fields.event_id_field.clone().into());
        out
    }
}

struct Options<'a> {
    provider: &'a str,
    options: &'a Map<String, Value>,
}

impl Options<'_> {
    fn allow(&self, keys: &[&str]) -> Result<(), OptionError> {
        match self.options.keys().find(|key| !keys.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) => Err(OptionError {
                field: key.clone(),
                message: if keys.is_empty() {
                    format!("provider `{}` takes no options", self.provider)
                } else {
                    format!("`{key}` is not an option of provider `{}`; it takes: {}", self.provider, keys.join(", "))
                },
            }),
        }
    }

    /// The string value of `key`, `None` when absent or null.
    fn string(&self, key: &str) -> Result<Option<&str>, OptionError> {
        match self.options.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(error(key, "must be a string")),
        }
    }

    fn header(&self, key: &str) -> Result<Option<String>, OptionError> {
        match self.string(key)? {
            None => Ok(None),
            Some(name) if is_header_name(name) => Ok(Some(name.to_owned())),
            Some(_) => Err(error(key, "must be an HTTP header name, such as `X-Webhook-Signature`")),
        }
    }

    fn field_path(&self, key: &str) -> Result<Option<String>, OptionError> {
        match self.string(key)? {
            None => Ok(None),
            Some(path) if !path.is_empty() && path.split('.').all(|part| !part.is_empty()) => Ok(Some(path.to_owned())),
            Some(_) => Err(error(key, "must be a JSON field name or a dot path such as `event.type`")),
        }
    }

    fn event_fields(&self, fields: &mut EventFields) -> Result<(), OptionError> {
        if let Some(path) = self.field_path("eventTypeField")? {
            fields.event_type_field = path;
        }
        if let Some(header) = self.header("eventIdHeader")? {
            fields.event_id_header = Some(header);
        }
        if let Some(path) = self.field_path("eventIdField")? {
            fields.event_id_field = Some(path);
        }
        Ok(())
    }

    fn generic(&self, generic: &mut GenericHmac) -> Result<(), OptionError> {
        if let Some(header) = self.header("signatureHeader")? {
            generic.signature_header = header;
        }
        if let Some(name) = self.string("signatureEncoding")? {
            generic.encoding = SignatureEncoding::from_name(name)
                .ok_or_else(|| error("signatureEncoding", "must be `hex` or `base64`"))?;
        }
        if let Some(prefix) = self.string("signaturePrefix")? {
            if prefix.len() > 64 || prefix.chars().any(char::is_control) {
                return Err(error("signaturePrefix", "must be at most 64 printable characters"));
            }
            generic.prefix = prefix.to_owned();
        }
        generic.timestamp_header = self.header("timestampHeader")?;
        Ok(())
    }
}

fn error(field: &str, message: &str) -> OptionError {
    OptionError { field: field.to_owned(), message: format!("`{field}` {message}") }
}

/// An HTTP header name (RFC 9110 token characters), at most 128 long.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(name: &str, options: Value, expected: Result<Value, &str>) {
        let options = options.as_object().cloned().unwrap_or_default();
        let got = Provider::from_options(name, &options).map(|provider| Value::Object(provider.options()));
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{name} {options:?}"),
            (Err(err), Err(field)) => assert_eq!(err.field, field, "{name} {options:?}: {err}"),
            (got, expected) => panic!("{name} {options:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn options_are_checked_and_round_trip() {
        check("stripe", json!({}), Ok(json!({})));
        check("stripe", json!({"signatureHeader": "X"}), Err("signatureHeader"));
        check("paypal", json!({}), Err("provider"));
        check(
            "slack",
            json!({"eventTypeField": "event.type"}),
            Ok(json!({"eventTypeField": "event.type", "eventIdHeader": null, "eventIdField": "event_id"})),
        );
        check("slack", json!({"signatureEncoding": "hex"}), Err("signatureEncoding"));
        check(
            "hmac-sha256",
            json!({}),
            Ok(json!({
                "signatureHeader": "X-Webhook-Signature", "signatureEncoding": "hex", "signaturePrefix": "sha256=",
                "timestampHeader": null, "eventTypeField": "type", "eventIdHeader": null, "eventIdField": null
            })),
        );
        let custom = json!({
            "signatureHeader": "X-Corp-Signature", "signatureEncoding": "base64", "signaturePrefix": "",
            "timestampHeader": "X-Corp-Timestamp", "eventTypeField": "event", "eventIdHeader": "X-Corp-Id",
            "eventIdField": "data.id"
        });
        check("hmac-sha256", custom.clone(), Ok(custom));
        check("hmac-sha256", json!({"signatureEncoding": "binary"}), Err("signatureEncoding"));
        check("hmac-sha256", json!({"signatureHeader": "X Bad"}), Err("signatureHeader"));
        check("hmac-sha256", json!({"eventTypeField": "a..b"}), Err("eventTypeField"));
        check("hmac-sha256", json!({"timestampHeader": 5}), Err("timestampHeader"));
    }
}
