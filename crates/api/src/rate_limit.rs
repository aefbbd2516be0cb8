//! Token-bucket rate limits kept in this process's memory: the per-token API limit (`HOOKRELAY_API_RATE_LIMIT`
//! requests per second, up to `HOOKRELAY_API_RATE_LIMIT_BURST` at once, [`RateLimiter`]) and each inbound
//! source's `rateLimit` on its ingest URL ([`Buckets`] keyed by source, each with its own [`Rate`]).
//!
//! Keys are bounded by what the operator created (tokens, sources), and the map is bounded anyway
//! ([`MAX_BUCKETS`]): when it is full, buckets that have refilled completely are dropped (forgetting a full bucket
//! changes nothing), and if that is not enough the map starts over, which errs towards letting requests through.
//! With several processes each keeps its own buckets, so a limit applies per process.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hookrelay_core::token::TokenDigest;

/// Most buckets kept at once.
pub const MAX_BUCKETS: usize = 10_000;

/// How fast a bucket refills and how much it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    /// `None` when `per_sec` is 0 (no limit); a burst of 0 means one second's worth.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        (per_sec > 0).then(|| {
            let burst = if burst == 0 { per_sec } else { burst };
            Self { per_sec: f64::from(per_sec), burst: f64::from(burst) }
        })
    }
}

/// One bucket per key, each checked at the rate its caller passes.
pub struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Requests the key may still send now.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// The rate of the last check, to tell when the bucket is full again.
    rate: Rate,
}

impl Bucket {
    fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.rate.per_sec >= self.rate.burst
    }
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Self { buckets: Mutex::default() }
    }
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    /// Takes one request from `key`'s bucket, or says how long to wait until one is available. A changed rate
    /// applies from this check on.
    pub fn check(&self, key: &K, rate: Rate, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: rate.burst, at: now, rate });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_sec).min(rate.burst);
        bucket.at = now;
        bucket.rate = rate;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate.per_sec))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// The rate and burst of every token's bucket.
pub struct RateLimiter {
    rate: Rate,
    buckets: Buckets<TokenDigest>,
}

impl RateLimiter {
    /// `None` when `per_sec` is 0 (no limit); a burst of 0 means one second's worth.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        Rate::new(per_sec, burst).map(|rate| Self { rate, buckets: Buckets::default() })
    }

    /// Takes one request from `key`'s bucket, or says how long to wait until one is available.
    pub fn check(&self, key: &TokenDigest, now: Instant) -> Result<(), Duration> {
        self.buckets.check(key, self.rate, now)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// A wait as `Retry-After` seconds: rounded up, at least 1 (0 would invite an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimiter::new(0, 10).is_none());
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(2, 3).expect("a limit");
        let (a, b) = ([1; 32], [2; 32]);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&a, start), Ok(()));
        }
        let wait = limiter.check(&a, start).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(500));
        // Another token has its own bucket.
        assert_eq!(limiter.check(&b, start), Ok(()));
        // Half a second later one request is allowed again, and only one.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.check(&a, later), Ok(()));
        assert!(limiter.check(&a, later).is_err());
        // Long idle refills up to the burst, not beyond.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check(&a, much_later), Ok(()));
        }
        assert!(limiter.check(&a, much_later).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = RateLimiter::new(1, 1).expect("a limit");
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS + 10) {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let _ = limiter.check(&key, now);
        }
        assert!(limiter.len() <= MAX_BUCKETS);
    }

    #[test]
    fn each_key_has_its_own_rate_and_a_new_rate_applies_at_once() {
        let buckets = Buckets::<&str>::default();
        let (slow, fast) = (Rate::new(1, 0).expect("a rate"), Rate::new(5, 0).expect("a rate"));
        let now = Instant::now();
        assert_eq!(buckets.check(&"a", slow, now), Ok(()));
        assert_eq!(buckets.check(&"a", slow, now), Err(Duration::from_secs(1)));
        for _ in 0..5 {
            assert_eq!(buckets.check(&"b", fast, now), Ok(()));
        }
        assert!(buckets.check(&"b", fast, now).is_err());
        // A second later `a` has refilled at its new, faster rate up to its new burst.
        let later = now + Duration::from_secs(1);
        for _ in 0..5 {
            assert_eq!(buckets.check(&"a", fast, later), Ok(()));
        }
        assert!(buckets.check(&"a", fast, later).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_100)), 3);
    }
}
