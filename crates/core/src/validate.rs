//! Input rules shared by every entry point: names, uids and event ids.

use crate::id::ALL_PREFIXES;

/// Longest allowed name, uid or event id.
pub const MAX_NAME_LEN: usize = 256;

/// Why a name, uid or event id was refused; the message says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("may only contain letters, digits, `-`, `_` and `.`")]
    BadCharacter,
    #[error("must not start with `{0}`, which is reserved for ids")]
    ReservedPrefix(&'static str),
}

/// Event type names and event ids: `^[a-zA-Z0-9\-_.]+$`, at most 256 characters.
pub fn check_name(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    if value.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

/// A user-chosen uid: a valid name that cannot be mistaken for an id.
pub fn check_uid(value: &str) -> Result<(), NameError> {
    check_name(value)?;
    match ALL_PREFIXES.iter().find(|prefix| value.starts_with(**prefix)) {
        Some(prefix) => Err(NameError::ReservedPrefix(prefix)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids() {
        assert_eq!(check_name("invoice.paid-v2_x"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("a b"), Err(NameError::BadCharacter));
        assert_eq!(check_name(&"a".repeat(257)), Err(NameError::TooLong));
        assert_eq!(check_uid("customer-42"), Ok(()));
        assert_eq!(check_uid("app_123"), Err(NameError::ReservedPrefix("app_")));
        assert_eq!(check_uid("msg_1"), Err(NameError::ReservedPrefix("msg_")));
    }
}
