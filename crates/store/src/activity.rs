//! The per-minute activity counters behind the dashboard's charts and statistics (tables `activity_minutes` and
//! `endpoint_failure_minutes`): what one transaction adds to them, tallied by minute ([`ActivityTally`]), how the
//! stored minutes become a chart's buckets ([`BucketPlan`]), and the duration percentiles of the statistics
//! ([`duration_percentiles`]). Both backends use these; each writes and reads the tables in its own SQL.
//!
//! The counters are written where the messages and attempts are, in the same transaction, so they count exactly
//! what was stored (a duplicate publish that stored nothing adds nothing, a rolled-back group adds nothing), and
//! reading a range costs one row per minute and writer (and, for failures, endpoint) instead of a scan of the
//! messages or attempts.

use std::collections::BTreeMap;

use hookrelay_core::model::minute_of;
use hookrelay_core::time::UnixMillis;

use crate::columns::{count, percentile_offset};
use crate::{ActivityBucket, AttemptCounts, StoreError, StoreResult};

const MINUTE_MS: i64 = 60_000;

/// Most buckets one `activity_series` call returns: bounds what a caller can make the store allocate (the API
/// asks for at most 2,000).
pub const MAX_ACTIVITY_BUCKETS: usize = 10_000;

/// What one transaction adds to one minute's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MinuteCounts {
    pub messages: i64,
    pub attempts_success: i64,
    pub attempts_fail: i64,
}

/// What one transaction adds to the counters, by minute, and to the failure counters, by minute and endpoint.
///
/// Minutes (and endpoints within a minute) come out in ascending order: a transaction upserts its rows in that
/// order, so two transactions that count into the same rows of one writer lock them in the same order and cannot
/// deadlock on them.
#[derive(Debug, Default)]
pub(crate) struct ActivityTally {
    minutes: BTreeMap<UnixMillis, MinuteCounts>,
    failures: BTreeMap<(UnixMillis, String), i64>,
}

impl ActivityTally {
    /// Counts a message stored with this creation time.
    pub fn message(&mut self, created_at: UnixMillis) {
        self.minutes.entry(minute_of(created_at)).or_default().messages += 1;
    }

    /// Counts an attempt to `endpoint_id` stored with this time and outcome (anything but a success is a failure,
    /// in the minute's totals and in the endpoint's failures alike).
    pub fn attempt(&mut self, created_at: UnixMillis, success: bool, endpoint_id: &str) {
        let minute = minute_of(created_at);
        let counts = self.minutes.entry(minute).or_default();
        if success {
            counts.attempts_success += 1;
        } else {
            counts.attempts_fail += 1;
            *self.failures.entry((minute, endpoint_id.to_owned())).or_default() += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// Each minute with something to add, earliest first.
    pub fn minutes(&self) -> impl Iterator<Item = (UnixMillis, MinuteCounts)> + '_ {
        self.minutes.iter().map(|(minute, counts)| (*minute, *counts))
    }

    /// Failed attempts per minute and endpoint, `(minute, endpoint id, failures)`, earliest minute first and
    /// endpoints in id order within it.
    pub fn endpoint_failures(&self) -> impl Iterator<Item = (UnixMillis, &str, i64)> + '_ {
        self.failures.iter().map(|((minute, endpoint_id), failures)| (*minute, endpoint_id.as_str(), *failures))
    }
}

/// The median and 99th percentile (nearest rank) of `durations`, in any order; `None`s when there are none.
pub(crate) fn duration_percentiles(mut durations: Vec<i64>) -> (Option<i64>, Option<i64>) {
    durations.sort_unstable();
    let at = |percent| {
        let offset = percentile_offset(durations.len() as u64, percent)?;
        durations.get(usize::try_from(offset).ok()?).copied()
    };
    (at(50), at(99))
}

/// The buckets of one series: `count` buckets of `bucket_ms` from `first`, a multiple of `bucket_ms` at or before
/// `since`, the last one holding `until - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BucketPlan {
    pub first: UnixMillis,
    pub bucket_ms: i64,
    count: usize,
}

impl BucketPlan {
    /// Checks the request (see `Operations::activity_series`) and aligns it to whole buckets.
    pub fn new(since: UnixMillis, until: UnixMillis, bucket_ms: i64) -> StoreResult<Self> {
        if bucket_ms <= 0 || bucket_ms % MINUTE_MS != 0 {
            return Err(StoreError::Invalid(format!(
                "a bucket must be a whole number of minutes (a positive multiple of {MINUTE_MS} ms), not {bucket_ms} ms"
            )));
        }
        if since > until {
            return Err(StoreError::Invalid("the range starts after it ends".into()));
        }
        let too_many = || {
            StoreError::Invalid(format!(
                "the range holds more than {MAX_ACTIVITY_BUCKETS} buckets; ask for longer ones"
            ))
        };
        // Times that overflow here are far outside any range the limit allows. The span is not negative:
        // `first <= since <= until`.
        let first = since.checked_sub(since.rem_euclid(bucket_ms)).ok_or_else(too_many)?;
        let span = until.checked_sub(first).ok_or_else(too_many)?;
        let count = if since == until { 0 } else { span / bucket_ms + i64::from(span % bucket_ms != 0) };
        let count = usize::try_from(count).ok().filter(|&count| count <= MAX_ACTIVITY_BUCKETS).ok_or_else(too_many)?;
        Ok(Self { first, bucket_ms, count })
    }

    /// The end of the last bucket (exclusive): the minutes to read are `[first, end)`.
    pub fn end(&self) -> UnixMillis {
        // Cannot overflow: `first + count × bucket_ms` is less than `until + bucket_ms`, and `new` bounded both.
        self.first.saturating_add(self.bucket_ms.saturating_mul(self.count as i64))
    }

    /// Every bucket in order, zeros where `sums` has nothing. `sums` are the stored counters summed per bucket:
    /// `(bucket start, messages, successful attempts, failed attempts)`.
    pub fn fill(
        &self,
        sums: impl IntoIterator<Item = (UnixMillis, i64, i64, i64)>,
    ) -> StoreResult<Vec<ActivityBucket>> {
        let mut buckets: Vec<ActivityBucket> = (0..self.count)
            .map(|index| ActivityBucket { start: self.first + index as i64 * self.bucket_ms, ..Default::default() })
            .collect();
        for (start, messages, success, fail) in sums {
            let index = start.checked_sub(self.first).and_then(|offset| usize::try_from(offset / self.bucket_ms).ok());
            let bucket = index.and_then(|index| buckets.get_mut(index)).filter(|bucket| bucket.start == start);
            let Some(bucket) = bucket else {
                return Err(StoreError::Internal(format!(
                    "activity counters summed into a bucket at {start}, not one of the range"
                )));
            };
            bucket.messages = count(messages)?;
            bucket.attempts = AttemptCounts { success: count(success)?, fail: count(fail)? };
        }
        Ok(buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn starts(plan: &BucketPlan) -> Vec<i64> {
        plan.fill([]).expect("buckets").iter().map(|bucket| bucket.start).collect()
    }

    #[test]
    fn a_range_is_covered_by_whole_aligned_buckets() {
        // 01:30 to 04:10 in hours: the buckets of 01:00, 02:00, 03:00 and 04:00.
        let plan = BucketPlan::new(HOUR + HOUR / 2, 4 * HOUR + 10 * MINUTE_MS, HOUR).expect("a plan");
        assert_eq!(starts(&plan), vec![HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR]);
        assert_eq!((plan.first, plan.end()), (HOUR, 5 * HOUR));
        // An end on a boundary takes no bucket after it; an empty range has none.
        assert_eq!(starts(&BucketPlan::new(HOUR, 3 * HOUR, HOUR).expect("a plan")), vec![HOUR, 2 * HOUR]);
        assert_eq!(starts(&BucketPlan::new(HOUR, HOUR, HOUR).expect("a plan")), Vec::<i64>::new());
        assert_eq!(starts(&BucketPlan::new(HOUR + 1, HOUR + 2, MINUTE_MS).expect("a plan")), vec![HOUR]);
    }

    #[test]
    fn sums_land_in_their_bucket_and_the_others_are_zeros() {
        let plan = BucketPlan::new(0, 3 * MINUTE_MS, MINUTE_MS).expect("a plan");
        let buckets = plan.fill([(MINUTE_MS, 3, 2, 1)]).expect("buckets");
        let expected = |start, messages, success, fail| ActivityBucket {
            start,
            messages,
            attempts: AttemptCounts { success, fail },
        };
        assert_eq!(buckets, vec![expected(0, 0, 0, 0), expected(MINUTE_MS, 3, 2, 1), expected(2 * MINUTE_MS, 0, 0, 0)]);
        assert!(matches!(plan.fill([(3 * MINUTE_MS, 1, 0, 0)]), Err(StoreError::Internal(_))));
        assert!(matches!(plan.fill([(MINUTE_MS + 1, 1, 0, 0)]), Err(StoreError::Internal(_))));
        assert!(matches!(plan.fill([(0, -1, 0, 0)]), Err(StoreError::Internal(_))));
    }

    #[test]
    fn bad_requests_are_invalid() {
        for (since, until, bucket_ms) in [
            (0, HOUR, 0),
            (0, HOUR, -MINUTE_MS),
            (0, HOUR, 90_000),
            (HOUR, 0, MINUTE_MS),
            (0, (MAX_ACTIVITY_BUCKETS as i64 + 1) * MINUTE_MS, MINUTE_MS),
            (i64::MIN, i64::MAX, MINUTE_MS),
        ] {
            let plan = BucketPlan::new(since, until, bucket_ms);
            assert!(matches!(plan, Err(StoreError::Invalid(_))), "{since}..{until} by {bucket_ms}: {plan:?}");
        }
        assert!(BucketPlan::new(0, MAX_ACTIVITY_BUCKETS as i64 * MINUTE_MS, MINUTE_MS).is_ok());
    }

    #[test]
    fn a_tally_counts_by_minute_in_minute_order() {
        let mut tally = ActivityTally::default();
        assert!(tally.is_empty());
        tally.message(2 * MINUTE_MS + 5);
        tally.attempt(MINUTE_MS + 59_999, false, "ep_b");
        tally.attempt(2 * MINUTE_MS, true, "ep_b");
        tally.message(2 * MINUTE_MS + 59_999);
        let counts =
            |messages, attempts_success, attempts_fail| MinuteCounts { messages, attempts_success, attempts_fail };
        assert_eq!(
            tally.minutes().collect::<Vec<_>>(),
            vec![(MINUTE_MS, counts(0, 0, 1)), (2 * MINUTE_MS, counts(2, 1, 0))]
        );
    }

    #[test]
    fn failures_are_tallied_per_minute_and_endpoint_and_successes_are_not() {
        let mut tally = ActivityTally::default();
        for (at, success, endpoint) in [
            (2 * MINUTE_MS + 1, false, "ep_b"),
            (2 * MINUTE_MS + 2, false, "ep_a"),
            (MINUTE_MS, false, "ep_b"),
            (2 * MINUTE_MS + 3, false, "ep_b"),
            (2 * MINUTE_MS + 4, true, "ep_c"),
        ] {
            tally.attempt(at, success, endpoint);
        }
        assert_eq!(
            tally.endpoint_failures().collect::<Vec<_>>(),
            vec![(MINUTE_MS, "ep_b", 1), (2 * MINUTE_MS, "ep_a", 1), (2 * MINUTE_MS, "ep_b", 2)]
        );
        tally.message(0);
        assert_eq!(tally.endpoint_failures().count(), 3, "messages add no failures");
    }

    #[test]
    fn percentiles_are_nearest_rank_whatever_the_order() {
        assert_eq!(duration_percentiles(vec![]), (None, None));
        assert_eq!(duration_percentiles(vec![7]), (Some(7), Some(7)));
        // Ranks 4 of 8 and 8 of 8.
        assert_eq!(duration_percentiles(vec![300, 10, 50, 20, 200, 10, 100, 30]), (Some(30), Some(300)));
        // Ranks 50 and 99 of 100.
        assert_eq!(duration_percentiles((1..=100).rev().collect()), (Some(50), Some(99)));
    }
}
