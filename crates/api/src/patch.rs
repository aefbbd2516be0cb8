//! PATCH fields that tell "absent" (keep the stored value) from an explicit `null` (clear it), which a plain
//! `Option` cannot: the Svix SDKs send only the fields the caller set, and `null` for ones set to `None`.

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// One field of a PATCH body. Declare it with `#[serde(default)]` so a missing key becomes `Absent`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// The key was not in the body: keep the stored value.
    #[default]
    Absent,
    /// The key was `null`: clear the stored value.
    Null,
    /// The key had a value: store it.
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only called when the key is present, so `None` can only mean an explicit `null`.
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Self::Set(value),
            None => Self::Null,
        })
    }
}

impl<T> Patch<T> {
    /// The new value when one was given, for validating it before applying.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Self::Set(value) => Some(value),
            _ => None,
        }
    }

    /// Applies the patch to a nullable field: `null` clears it.
    pub fn apply_to_option(self, field: &mut Option<T>) {
        match self {
            Self::Absent => {}
            Self::Null => *field = None,
            Self::Set(value) => *field = Some(value),
        }
    }

    /// Applies the patch to a field that always has a value: `null` resets it to `cleared`
    /// (an empty description, an empty metadata map, `false`).
    pub fn apply_or(self, field: &mut T, cleared: T) {
        match self {
            Self::Absent => {}
            Self::Null => *field = cleared,
            Self::Set(value) => *field = value,
        }
    }

    /// Applies the patch to a field that cannot be cleared; `null` is a 422 naming `name`.
    pub fn apply_required(self, field: &mut T, name: &str) -> Result<(), ApiError> {
        match self {
            Self::Absent => Ok(()),
            Self::Null => Err(ApiError::body(&[name], format!("`{name}` cannot be null; leave it out to keep it"))),
            Self::Set(value) => {
                *field = value;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default)]
        uid: Patch<String>,
    }

    fn check(json: &str, stored: Option<&str>, expected: Option<&str>) {
        let body: Body = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let mut field = stored.map(str::to_owned);
        body.uid.apply_to_option(&mut field);
        assert_eq!(field.as_deref(), expected, "{json} applied to {stored:?}");
    }

    #[test]
    fn absent_keeps_null_clears_value_sets() {
        check("{}", Some("old"), Some("old"));
        check("{}", None, None);
        check(r#"{"uid": null}"#, Some("old"), None);
        check(r#"{"uid": "new"}"#, Some("old"), Some("new"));
        check(r#"{"uid": "new"}"#, None, Some("new"));
    }

    #[test]
    fn required_fields_refuse_null() {
        let mut name = "kept".to_owned();
        assert!(Patch::<String>::Null.apply_required(&mut name, "name").is_err());
        assert_eq!(name, "kept");
        assert!(Patch::Set("new".to_owned()).apply_required(&mut name, "name").is_ok());
        assert_eq!(name, "new");
        Patch::Absent.apply_required(&mut name, "name").expect("absent is fine");
        assert_eq!(name, "new");
    }

    #[test]
    fn null_resets_to_the_cleared_value() {
        let mut disabled = true;
        Patch::Null.apply_or(&mut disabled, false);
        assert!(!disabled);
    }
}
