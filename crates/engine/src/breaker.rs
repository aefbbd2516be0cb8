//! Circuit breakers, one per endpoint: after `threshold` consecutive failed attempts the endpoint is paused.
//! While paused, its queued deliveries stay in the store (they do not burn their retries against a dead
//! endpoint); when the pause ends, one delivery is sent as a probe. A successful probe closes the breaker
//! and the backlog flows again; a failed one pauses the endpoint for twice as long, up to a maximum.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hookrelay_core::EndpointId;
use tokio::time::Instant;

/// Longest pause between probes.
const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
enum State {
    Closed,
    /// Paused until `until`; the next pause after a failed probe is `pause × 2`.
    Open {
        until: Instant,
        pause: Duration,
    },
    /// One probe in flight; everything else waits for its result.
    Probing {
        pause: Duration,
    },
}

#[derive(Debug)]
struct Breaker {
    consecutive_failures: u32,
    state: State,
}

/// Whether a worker may send a delivery to its endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    Send,
    /// Send it as the probe of a paused endpoint.
    Probe,
    /// Do not send; hand the delivery back to the queue.
    Hold,
}

pub struct Breakers {
    breakers: Mutex<HashMap<EndpointId, Breaker>>,
    threshold: u32,
    first_pause: Duration,
}

impl Breakers {
    pub fn new(threshold: u32, first_pause: Duration) -> Self {
        Self { breakers: Mutex::new(HashMap::new()), threshold: threshold.max(1), first_pause }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<EndpointId, Breaker>) -> R) -> R {
        let mut guard = self.breakers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    pub fn permit(&self, endpoint: &EndpointId) -> Permit {
        self.with(|breakers| {
            let Some(breaker) = breakers.get_mut(endpoint) else { return Permit::Send };
            match breaker.state {
                State::Closed => Permit::Send,
                State::Open { until, pause } if Instant::now() >= until => {
                    breaker.state = State::Probing { pause };
                    Permit::Probe
                }
                State::Open { .. } | State::Probing { .. } => Permit::Hold,
            }
        })
    }

    /// Records an attempt's result. Returns the pause when this result opened (or re-opened) the breaker.
    pub fn record(&self, endpoint: &EndpointId, delivered: bool, was_probe: bool) -> Option<Duration> {
        let (threshold, first_pause) = (self.threshold, self.first_pause);
        self.with(|breakers| {
            if delivered {
                // A healthy endpoint needs no entry; removing it also keeps the map small.
                breakers.remove(endpoint);
                return None;
            }
            let breaker =
                breakers.entry(endpoint.clone()).or_insert(Breaker { consecutive_failures: 0, state: State::Closed });
            breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
            let pause = match breaker.state {
                State::Probing { pause } if was_probe => (pause * 2).min(MAX_PAUSE),
                State::Closed if breaker.consecutive_failures >= threshold => first_pause,
                _ => return None,
            };
            breaker.state = State::Open { until: Instant::now() + pause, pause };
            Some(pause)
        })
    }

    /// Forgets the endpoint's failures and closes its breaker: a user changed the endpoint or asked to
    /// recover it, so it deserves a fresh chance now rather than at the next probe.
    pub fn reset(&self, endpoint: &EndpointId) {
        self.with(|breakers| breakers.remove(endpoint));
    }

    /// Endpoints that are paused or probing: the dispatcher does not claim for them.
    pub fn paused(&self) -> Vec<EndpointId> {
        let now = Instant::now();
        self.with(|breakers| {
            breakers
                .iter()
                .filter(|(_, breaker)| match breaker.state {
                    State::Closed => false,
                    State::Open { until, .. } => now < until,
                    State::Probing { .. } => true,
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_and_closes_on_success() {
        let breakers = Breakers::new(3, Duration::from_secs(10));
        let ep = EndpointId::new();
        assert_eq!(breakers.record(&ep, false, false), None);
        assert_eq!(breakers.record(&ep, false, false), None);
        assert_eq!(breakers.permit(&ep), Permit::Send);
        assert_eq!(breakers.record(&ep, false, false), Some(Duration::from_secs(10)), "third failure opens");
        assert_eq!(breakers.permit(&ep), Permit::Hold);
        assert_eq!(breakers.paused(), vec![ep.clone()]);

        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(breakers.paused().is_empty(), "due for a probe: the dispatcher may claim again");
        assert_eq!(breakers.permit(&ep), Permit::Probe);
        assert_eq!(breakers.permit(&ep), Permit::Hold, "one probe at a time");
        assert_eq!(breakers.record(&ep, false, true), Some(Duration::from_secs(20)), "a failed probe re-opens, longer");

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breakers.permit(&ep), Permit::Hold, "the second pause is twice as long");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breakers.permit(&ep), Permit::Probe);
        assert_eq!(breakers.record(&ep, true, true), None);
        assert_eq!(breakers.permit(&ep), Permit::Send);
        assert!(breakers.paused().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_closes_an_open_breaker() {
        let breakers = Breakers::new(1, Duration::from_secs(600));
        let ep = EndpointId::new();
        assert!(breakers.record(&ep, false, false).is_some());
        assert_eq!(breakers.permit(&ep), Permit::Hold);
        breakers.reset(&ep);
        assert_eq!(breakers.permit(&ep), Permit::Send);
        assert!(breakers.paused().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let breakers = Breakers::new(2, Duration::from_secs(10));
        let ep = EndpointId::new();
        breakers.record(&ep, false, false);
        breakers.record(&ep, true, false);
        assert_eq!(breakers.record(&ep, false, false), None);
        assert_eq!(breakers.permit(&ep), Permit::Send);
    }
}
