//! The rules of recover and replay-missing windows: which `since`/`until` a request may ask for.

use crate::model::TimeWindow;
use crate::time::UnixMillis;

/// Longest window a recover or replay may cover (Svix: 14 days).
pub const MAX_WINDOW_MS: i64 = 14 * 24 * 60 * 60 * 1000;

/// Why a requested window is refused; each says which field to fix and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("`since` is in the future; give a time in the past")]
    SinceInFuture,
    #[error("`until` is before `since`; give an `until` after `since`, or leave it out to mean now")]
    UntilBeforeSince,
    #[error("the window from `since` to `until` (or now) is longer than 14 days; split it into shorter windows")]
    TooLong,
}

impl WindowError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::SinceInFuture | Self::TooLong => "since",
            Self::UntilBeforeSince => "until",
        }
    }
}

/// The window `[since, until)` a request asks for, with `until` defaulting to `now`. Fixing `until` when the
/// task is created keeps a task resumed after a restart to the same messages.
pub fn recovery_window(
    since: UnixMillis,
    until: Option<UnixMillis>,
    now: UnixMillis,
) -> Result<TimeWindow, WindowError> {
    if since > now {
        return Err(WindowError::SinceInFuture);
    }
    let until = until.unwrap_or(now);
    if until < since {
        return Err(WindowError::UntilBeforeSince);
    }
    if until - since > MAX_WINDOW_MS {
        return Err(WindowError::TooLong);
    }
    Ok(TimeWindow { since, until })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_800_000_000_000;
    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn check(since: UnixMillis, until: Option<UnixMillis>, expected: Result<(UnixMillis, UnixMillis), WindowError>) {
        let got = recovery_window(since, until, NOW).map(|w| (w.since, w.until));
        assert_eq!(got, expected, "since {since}, until {until:?}");
    }

    #[test]
    fn windows() {
        check(NOW - DAY, None, Ok((NOW - DAY, NOW)));
        check(NOW - DAY, Some(NOW - 1), Ok((NOW - DAY, NOW - 1)));
        check(NOW, None, Ok((NOW, NOW)));
        check(NOW - 14 * DAY, None, Ok((NOW - 14 * DAY, NOW)));
        check(NOW - 14 * DAY - 1, None, Err(WindowError::TooLong));
        check(NOW - 30 * DAY, Some(NOW - 20 * DAY), Ok((NOW - 30 * DAY, NOW - 20 * DAY)));
        check(NOW - 30 * DAY, Some(NOW), Err(WindowError::TooLong));
        check(NOW + 1, None, Err(WindowError::SinceInFuture));
        check(NOW - DAY, Some(NOW - 2 * DAY), Err(WindowError::UntilBeforeSince));
        // An `until` in the future is allowed: it covers messages published while the task runs.
        check(NOW - DAY, Some(NOW + DAY), Ok((NOW - DAY, NOW + DAY)));
    }

    #[test]
    fn window_is_half_open() {
        let window = TimeWindow { since: 10, until: 20 };
        assert!(window.contains(10) && window.contains(19));
        assert!(!window.contains(20) && !window.contains(9));
    }
}
