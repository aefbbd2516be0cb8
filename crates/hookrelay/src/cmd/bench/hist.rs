//! A tiny log-bucketed latency histogram (32 buckets per power of two, so about 3% resolution), written here
//! so the benchmark needs no extra dependency.

/// Values below this are counted exactly (one bucket each).
const LINEAR: u64 = 64;
/// 32 sub-buckets per power of two from 2^6 up to 2^63.
const SUB_BUCKETS: u64 = 32;
const BUCKETS: usize = LINEAR as usize + 58 * SUB_BUCKETS as usize;

/// Counts of values (microseconds, in practice) by bucket.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), to the bucket's resolution; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                // The bucket's midpoint, but never above the largest value actually seen.
                return Some(representative(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exponent = 63 - u64::from(value.leading_zeros()); // >= 6
    let shift = exponent - 5;
    let sub = (value >> shift) - SUB_BUCKETS;
    (LINEAR + (exponent - 6) * SUB_BUCKETS + sub) as usize
}

fn representative(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return bucket;
    }
    let offset = bucket - LINEAR;
    let exponent = offset / SUB_BUCKETS + 6;
    let mantissa = offset % SUB_BUCKETS + SUB_BUCKETS;
    let shift = exponent - 5;
    (mantissa << shift).saturating_add((1u64 << shift) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_range_and_quantiles_are_close() {
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        let mut histogram = Histogram::default();
        for value in 1..=10_000 {
            histogram.record(value);
        }
        let p50 = histogram.quantile(0.5).unwrap_or(0) as f64;
        let p99 = histogram.quantile(0.99).unwrap_or(0) as f64;
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.04, "{p50}");
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.04, "{p99}");
        assert_eq!(histogram.quantile(1.0), Some(10_000));
    }
}
