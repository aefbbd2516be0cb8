//! The decision after an attempt: delivered, retry at a given time, give up, or disable the endpoint. The
//! waits come from the one retry policy in `hookrelay_core::retry`; this module adds what the receiver's
//! answer says about them (status class, `Retry-After`).

use std::time::{Duration, SystemTime};

use hookrelay_core::retry::RetrySchedule;
use hookrelay_core::time::UnixMillis;
use hookrelay_store::NextStep;

/// What one attempt produced, as far as the decision is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status, or 0 when no response arrived (timeout, connection error, refused address).
    pub status_code: u16,
    /// The receiver's `Retry-After`, already turned into a wait from now.
    pub retry_after: Option<Duration>,
}

/// The rules the decision follows; from configuration.
#[derive(Clone, Debug)]
pub struct Policy {
    pub retry: RetrySchedule,
    /// Retry 4xx answers other than 408, 409, 425 and 429 (the default, as Svix and Stripe do); when false a
    /// receiver that answers such a 4xx has refused the message for good.
    pub retry_client_errors: bool,
}

/// What to do with the delivery, and whether its endpoint must be disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub next: NextStep,
    /// The receiver answered 410 Gone: the endpoint no longer exists and must not get anything more.
    pub disable_endpoint: bool,
}

/// Whether an HTTP status counts as delivered: any 2xx. Redirects are not followed and count as failures.
pub fn is_success(status_code: u16) -> bool {
    (200..300).contains(&status_code)
}

/// 4xx statuses that mean "try again later" rather than "I refuse this message".
fn is_retryable_client_error(status_code: u16) -> bool {
    matches!(status_code, 408 | 409 | 425 | 429)
}

/// The decision for a delivery whose attempt number `attempts_before + 1` got `answer`.
pub fn decide(
    answer: Answer,
    manual: bool,
    attempts_before: u32,
    policy: &Policy,
    now: UnixMillis,
    unit_random: f64,
) -> Decision {
    let finish = |next| Decision { next, disable_endpoint: false };
    let code = answer.status_code;
    if is_success(code) {
        return finish(NextStep::Succeeded);
    }
    if code == 410 {
        return Decision { next: NextStep::GiveUp, disable_endpoint: true };
    }
    if manual {
        // A user's resend is a single try; the automatic schedule is not restarted by it.
        return finish(NextStep::GiveUp);
    }
    if (400..500).contains(&code) && !is_retryable_client_error(code) && !policy.retry_client_errors {
        return finish(NextStep::GiveUp);
    }
    let Some(mut wait) = policy.retry.next_wait(attempts_before + 1, unit_random) else {
        return finish(NextStep::GiveUp);
    };
    if matches!(code, 429 | 503)
        && let Some(asked) = answer.retry_after
    {
        // Honour the receiver's back-off, but never wait longer than the schedule's longest step.
        wait = wait.max(asked.min(policy.retry.max_wait()));
    }
    finish(NextStep::RetryAt(now + millis(wait)))
}

/// Reads a `Retry-After` value: delay seconds (`120`) or an HTTP date. Dates in the past mean "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn policy(retry_client_errors: bool) -> Policy {
        Policy { retry: RetrySchedule::from_secs(&[5, 60]), retry_client_errors }
    }

    fn check(code: u16, retry_after_secs: Option<u64>, manual: bool, attempts_before: u32, expected: NextStep) {
        let answer = Answer { status_code: code, retry_after: retry_after_secs.map(Duration::from_secs) };
        let decision = decide(answer, manual, attempts_before, &policy(true), NOW, 0.5);
        assert_eq!(
            decision.next, expected,
            "status {code}, retry-after {retry_after_secs:?}, attempt {attempts_before}"
        );
    }

    #[test]
    fn decisions() {
        check(200, None, false, 0, NextStep::Succeeded);
        check(204, None, true, 3, NextStep::Succeeded);
        check(500, None, false, 0, NextStep::RetryAt(NOW + 5_000));
        check(0, None, false, 1, NextStep::RetryAt(NOW + 60_000));
        check(500, None, false, 2, NextStep::GiveUp);
        check(500, None, true, 0, NextStep::GiveUp);
        check(301, None, false, 0, NextStep::RetryAt(NOW + 5_000));
    }

    #[test]
    fn retry_after_pushes_the_next_try_within_the_schedule() {
        check(429, Some(30), false, 0, NextStep::RetryAt(NOW + 30_000));
        check(503, Some(30), false, 0, NextStep::RetryAt(NOW + 30_000));
        check(429, Some(1), false, 0, NextStep::RetryAt(NOW + 5_000)); // never sooner than the schedule
        check(429, Some(3_600), false, 0, NextStep::RetryAt(NOW + 60_000)); // bounded by the longest step
        check(500, Some(30), false, 0, NextStep::RetryAt(NOW + 5_000)); // only 429 and 503 carry meaning
    }

    #[test]
    fn gone_disables_the_endpoint() {
        let answer = Answer { status_code: 410, retry_after: None };
        let decision = decide(answer, false, 0, &policy(true), NOW, 0.5);
        assert_eq!(decision, Decision { next: NextStep::GiveUp, disable_endpoint: true });
    }

    #[test]
    fn client_errors_stop_only_when_configured() {
        let stop_on_4xx = policy(false);
        let decide_code =
            |code| decide(Answer { status_code: code, retry_after: None }, false, 0, &stop_on_4xx, NOW, 0.5).next;
        assert_eq!(decide_code(400), NextStep::GiveUp);
        assert_eq!(decide_code(404), NextStep::GiveUp);
        for code in [408, 409, 425, 429, 500, 0] {
            assert_eq!(decide_code(code), NextStep::RetryAt(NOW + 5_000), "{code}");
        }
        check(404, None, false, 0, NextStep::RetryAt(NOW + 5_000));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
