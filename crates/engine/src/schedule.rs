//! The decision after an attempt: delivered, retry at a given time, or give up. The waits themselves come
//! from the one retry policy in `hookrelay_core::retry`.

use std::time::Duration;

use hookrelay_core::retry::RetrySchedule;
use hookrelay_core::time::UnixMillis;
use hookrelay_store::NextStep;

/// Whether an HTTP status counts as delivered: any 2xx. Redirects are not followed and count as failures.
pub fn is_success(status_code: u16) -> bool {
    (200..300).contains(&status_code)
}

/// The next step for a delivery whose attempt number `attempts_before + 1` just finished.
pub fn next_step(
    delivered: bool,
    manual: bool,
    attempts_before: u32,
    retry: &RetrySchedule,
    now: UnixMillis,
    unit_random: f64,
) -> NextStep {
    if delivered {
        return NextStep::Succeeded;
    }
    if manual {
        // A user's resend is a single try; the automatic schedule is not restarted by it.
        return NextStep::GiveUp;
    }
    match retry.next_wait(attempts_before + 1, unit_random) {
        Some(wait) => NextStep::RetryAt(now + millis(wait)),
        None => NextStep::GiveUp,
    }
}

fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(delivered: bool, manual: bool, attempts_before: u32, expected: NextStep) {
        let retry = RetrySchedule::from_secs(&[5, 60]);
        assert_eq!(next_step(delivered, manual, attempts_before, &retry, 1_000, 0.5), expected);
    }

    #[test]
    fn decisions() {
        check(true, false, 0, NextStep::Succeeded);
        check(true, true, 3, NextStep::Succeeded);
        check(false, false, 0, NextStep::RetryAt(6_000));
        check(false, false, 1, NextStep::RetryAt(61_000));
        check(false, false, 2, NextStep::GiveUp);
        check(false, true, 0, NextStep::GiveUp);
    }

    #[test]
    fn only_2xx_is_success() {
        for (code, expected) in [(200, true), (204, true), (299, true), (301, false), (404, false), (0, false)] {
            assert_eq!(is_success(code), expected, "{code}");
        }
    }
}
