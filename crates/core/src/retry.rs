//! The retry policy, in exactly one place: how long to wait after each failed attempt, and when to give up.

use std::time::Duration;

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
}
