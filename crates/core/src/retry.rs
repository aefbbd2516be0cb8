//! The retry policy, in exactly one place: what happens to a delivery after an attempt — delivered, retried
//! after the schedule's next wait (pushed back by a receiver's `Retry-After`, within the schedule's longest
//! step), given up (schedule exhausted, a final 4xx, a manual resend) or given up with its endpoint disabled
//! (410 Gone). The engine applies the decision; the store records it.

use std::borrow::Cow;
use std::time::Duration;

use crate::time::UnixMillis;

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered.
    Succeeded,
    /// Try again at this time.
    RetryAt(UnixMillis),
    /// No more tries: the schedule is exhausted, or it was a one-off manual resend.
    GiveUp,
}

impl NextStep {
    /// The step's name as logs spell it: `succeeded`, `retry` or `give_up`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::RetryAt(_) => "retry",
            Self::GiveUp => "give_up",
        }
    }

    /// When the next try is due, if there is one.
    pub fn retry_at(self) -> Option<UnixMillis> {
        match self {
            Self::RetryAt(at) => Some(at),
            Self::Succeeded | Self::GiveUp => None,
        }
    }
}

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
pub struct RetryPolicy {
    pub retry: RetrySchedule,
    /// Retry 4xx answers other than 408, 409, 425 and 429 (the default, as Svix and Stripe do); when false a
    /// receiver that answers such a 4xx has refused the message for good.
    pub retry_client_errors: bool,
}

impl RetryPolicy {
    /// The policy for an endpoint: the server's, with what the endpoint sets in its place.
    pub fn for_endpoint(&self, endpoint: &EndpointRetry) -> Cow<'_, RetryPolicy> {
        if endpoint.schedule.is_none() && endpoint.client_errors.is_none() {
            return Cow::Borrowed(self);
        }
        Cow::Owned(RetryPolicy {
            retry: endpoint.schedule.clone().unwrap_or_else(|| self.retry.clone()),
            retry_client_errors: endpoint.client_errors.unwrap_or(self.retry_client_errors),
        })
    }
}

/// An endpoint's own retry rules (hookrelay's `retrySchedule` and `retryClientErrors`); `None` keeps the
/// server's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointRetry {
    pub schedule: Option<RetrySchedule>,
    pub client_errors: Option<bool>,
}

/// The most waits an endpoint's schedule may have.
pub const MAX_ENDPOINT_RETRIES: usize = 50;
/// The longest wait an endpoint's schedule may have: 7 days.
pub const MAX_ENDPOINT_RETRY_WAIT_SECS: u64 = 7 * 24 * 3600;

/// Checks an endpoint's `retrySchedule`, saying what to fix.
pub fn check_endpoint_schedule(secs: &[u64]) -> Result<RetrySchedule, String> {
    if secs.len() > MAX_ENDPOINT_RETRIES {
        return Err(format!(
            "retrySchedule has {} waits; at most {MAX_ENDPOINT_RETRIES} are allowed (each wait is one more attempt)",
            secs.len()
        ));
    }
    if let Some(wait) = secs.iter().find(|wait| **wait > MAX_ENDPOINT_RETRY_WAIT_SECS) {
        return Err(format!(
            "retrySchedule waits are seconds between attempts, at most {MAX_ENDPOINT_RETRY_WAIT_SECS} (7 days); \
             {wait} is longer"
        ));
    }
    Ok(RetrySchedule::from_secs(secs))
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
    policy: &RetryPolicy,
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

fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Waits after each failed attempt; the first attempt is immediate, so a schedule of `n` waits allows
/// `n + 1` attempts in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

/// Relative jitter applied to every wait (±20%, as Svix does), so retries of many messages that failed
/// together don't hit the endpoint together again.
const JITTER: f64 = 0.2;

impl Default for RetrySchedule {
    /// Svix's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts over ~27.6 h).
    fn default() -> Self {
        Self::from_secs(&[5, 300, 1800, 7200, 18000, 36000, 36000])
    }
}

/// Why a `HOOKRELAY_RETRY_SCHEDULE` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("retry schedule must be comma-separated whole seconds such as `5,300,1800`; `{0}` is not")]
pub struct ScheduleParseError(String);

impl RetrySchedule {
    pub fn from_secs(secs: &[u64]) -> Self {
        Self { waits: secs.iter().map(|&s| Duration::from_secs(s)).collect() }
    }

    /// Parses the `HOOKRELAY_RETRY_SCHEDULE` form: comma-separated seconds (`0` retries at once). An empty
    /// string means "never retry".
    pub fn parse(text: &str) -> Result<Self, ScheduleParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self { waits: Vec::new() });
        }
        let secs = text
            .split(',')
            .map(|part| part.trim().parse::<u64>().map_err(|_| ScheduleParseError(part.trim().to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_secs(&secs))
    }

    /// The waits in whole seconds, as the schedule was given.
    pub fn secs(&self) -> Vec<u64> {
        self.waits.iter().map(Duration::as_secs).collect()
    }

    /// The `HOOKRELAY_RETRY_SCHEDULE` form (`5,300,1800`), which [`parse`](Self::parse) reads back.
    pub fn to_text(&self) -> String {
        self.secs().iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }

    /// The longest wait in the schedule: the upper bound for a receiver's `Retry-After`.
    pub fn max_wait(&self) -> Duration {
        self.waits.iter().max().copied().unwrap_or_default()
    }

    /// The wait before the next attempt after `failed_attempts` failures (1 = the first attempt failed), or
    /// `None` when the schedule is exhausted. `unit_random` is a number in [0, 1) that sets the jitter.
    pub fn next_wait(&self, failed_attempts: u32, unit_random: f64) -> Option<Duration> {
        let index = usize::try_from(failed_attempts.checked_sub(1)?).ok()?;
        let base = *self.waits.get(index)?;
        let factor = 1.0 + JITTER * (2.0 * unit_random.clamp(0.0, 1.0) - 1.0);
        // `mul_f64` panics when the product exceeds `Duration::MAX`; a schedule of huge waits (any u64 parses)
        // must saturate instead of taking the delivery engine down.
        Some(Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn policy(retry_client_errors: bool) -> RetryPolicy {
        RetryPolicy { retry: RetrySchedule::from_secs(&[5, 60]), retry_client_errors }
    }

    fn check_decision(
        code: u16,
        retry_after_secs: Option<u64>,
        manual: bool,
        attempts_before: u32,
        expected: NextStep,
    ) {
        let answer = Answer { status_code: code, retry_after: retry_after_secs.map(Duration::from_secs) };
        let decision = decide(answer, manual, attempts_before, &policy(true), NOW, 0.5);
        assert_eq!(
            decision.next, expected,
            "status {code}, retry-after {retry_after_secs:?}, attempt {attempts_before}"
        );
    }

    #[test]
    fn decisions() {
        check_decision(200, None, false, 0, NextStep::Succeeded);
        check_decision(204, None, true, 3, NextStep::Succeeded);
        check_decision(500, None, false, 0, NextStep::RetryAt(NOW + 5_000));
        check_decision(0, None, false, 1, NextStep::RetryAt(NOW + 60_000));
        check_decision(500, None, false, 2, NextStep::GiveUp);
        check_decision(500, None, true, 0, NextStep::GiveUp);
        check_decision(301, None, false, 0, NextStep::RetryAt(NOW + 5_000));
    }

    #[test]
    fn an_endpoint_s_rules_replace_the_server_s_where_it_sets_them() {
        let server = policy(true);
        assert!(matches!(server.for_endpoint(&EndpointRetry::default()), Cow::Borrowed(_)));
        let own = EndpointRetry { schedule: Some(RetrySchedule::from_secs(&[0, 300])), client_errors: Some(false) };
        let policy = server.for_endpoint(&own);
        assert_eq!((policy.retry.secs(), policy.retry_client_errors), (vec![0, 300], false));
        let answer = |status_code| Answer { status_code, retry_after: None };
        assert_eq!(decide(answer(400), false, 0, &policy, NOW, 0.5).next, NextStep::GiveUp);
        assert_eq!(decide(answer(429), false, 0, &policy, NOW, 0.5).next, NextStep::RetryAt(NOW));
        assert_eq!(decide(answer(500), false, 1, &policy, NOW, 0.5).next, NextStep::RetryAt(NOW + 300_000));
        assert_eq!(decide(answer(500), false, 2, &policy, NOW, 0.5).next, NextStep::GiveUp);
        let only_errors = EndpointRetry { schedule: None, client_errors: Some(false) };
        assert_eq!(server.for_endpoint(&only_errors).retry, server.retry);
    }

    #[test]
    fn endpoint_schedules_are_bounded_and_round_trip() {
        let schedule = check_endpoint_schedule(&[0, 300, 1800, 7200, 43200, 86400]).expect("valid");
        assert_eq!(RetrySchedule::parse(&schedule.to_text()), Ok(schedule));
        assert_eq!(check_endpoint_schedule(&[]).map(|s| s.to_text()), Ok(String::new()));
        assert!(check_endpoint_schedule(&[1; 51]).unwrap_err().contains("at most 50"));
        assert!(check_endpoint_schedule(&[604_801]).unwrap_err().contains("7 days"));
    }

    #[test]
    fn retry_after_pushes_the_next_try_within_the_schedule() {
        check_decision(429, Some(30), false, 0, NextStep::RetryAt(NOW + 30_000));
        check_decision(503, Some(30), false, 0, NextStep::RetryAt(NOW + 30_000));
        check_decision(429, Some(1), false, 0, NextStep::RetryAt(NOW + 5_000)); // never sooner than the schedule
        check_decision(429, Some(3_600), false, 0, NextStep::RetryAt(NOW + 60_000)); // bounded by the longest step
        check_decision(500, Some(30), false, 0, NextStep::RetryAt(NOW + 5_000)); // only 429 and 503 carry meaning
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
        check_decision(404, None, false, 0, NextStep::RetryAt(NOW + 5_000));
    }

    fn check(schedule: &str, failed: u32, random: f64, expected: Option<u64>) {
        let schedule = RetrySchedule::parse(schedule).unwrap();
        assert_eq!(
            schedule.next_wait(failed, random).map(|d| d.as_millis() as u64),
            expected,
            "schedule {schedule:?} after {failed} failures"
        );
    }

    #[test]
    fn waits_follow_the_schedule_with_jitter() {
        check("5,300", 1, 0.5, Some(5_000));
        check("5,300", 1, 0.0, Some(4_000));
        check("5,300", 1, 1.0, Some(6_000));
        check("5,300", 2, 0.5, Some(300_000));
        check("5,300", 3, 0.5, None);
        check("0,0", 1, 0.9, Some(0));
        check("", 1, 0.5, None);
    }

    #[test]
    fn default_is_svix_schedule() {
        let schedule = RetrySchedule::default();
        // 7 waits: 8 attempts in all.
        assert_eq!(schedule, RetrySchedule::parse("5,300,1800,7200,18000,36000,36000").unwrap());
    }

    #[test]
    fn huge_waits_saturate_instead_of_panicking() {
        // Found while writing the retry_schedule fuzz target: u64::MAX seconds times the upper jitter overflowed Duration.
        let schedule = RetrySchedule::parse(&u64::MAX.to_string()).unwrap();
        assert_eq!(schedule.next_wait(1, 1.0), Some(Duration::MAX));
        assert!(schedule.next_wait(1, 0.0).is_some_and(|wait| wait >= Duration::from_secs(u64::MAX / 10 * 8)));
    }

    #[test]
    fn bad_schedules_are_refused_with_the_culprit() {
        assert_eq!(RetrySchedule::parse("5, soon"), Err(ScheduleParseError("soon".into())));
        assert_eq!(RetrySchedule::parse("-1"), Err(ScheduleParseError("-1".into())));
    }

    #[test]
    fn a_next_step_is_logged_as_a_name_and_a_time() {
        for (step, name, at) in [
            (NextStep::Succeeded, "succeeded", None),
            (NextStep::RetryAt(1_700_000_000_000), "retry", Some(1_700_000_000_000)),
            (NextStep::GiveUp, "give_up", None),
        ] {
            assert_eq!((step.name(), step.retry_at()), (name, at), "{step:?}");
        }
    }
}
