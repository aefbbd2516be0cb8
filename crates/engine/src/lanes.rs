//! Per-endpoint lanes: claimed deliveries wait in their endpoint's lane and at most `concurrency` of them are
//! sent at once. A lane holds at most `capacity` deliveries (in flight + waiting); when it is full the
//! dispatcher stops claiming for that endpoint, so a slow endpoint never fills the process with its work.
//! The capacity is at least one claim batch, so a busy endpoint's backlog is claimed a batch at a time
//! instead of being claimed and handed back. A lane also paces its requests to the endpoint's rate limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use hookrelay_core::EndpointId;
use hookrelay_store::ClaimedDelivery;

#[derive(Default)]
struct Lane {
    waiting: VecDeque<ClaimedDelivery>,
    running: usize,
    /// Earliest start of the next request when the endpoint has a rate limit.
    next_slot: Option<tokio::time::Instant>,
}

impl Lane {
    fn load(&self) -> usize {
        self.waiting.len() + self.running
    }

    /// Nothing queued, nothing running, and no pacing to remember: the lane can be forgotten.
    fn is_idle(&self, now: tokio::time::Instant) -> bool {
        self.load() == 0 && self.next_slot.is_none_or(|slot| slot <= now)
    }
}

/// What happened to a delivery offered to its lane.
pub enum Admission {
    /// Queued behind the lane's running workers.
    Queued,
    /// Queued, and the lane has room for another worker: start one for this endpoint.
    StartWorker(EndpointId),
    /// The lane is full; the delivery goes back to the store.
    Full(Box<ClaimedDelivery>),
}

pub struct Lanes {
    lanes: Mutex<HashMap<EndpointId, Lane>>,
    concurrency: usize,
    capacity: usize,
}

impl Lanes {
    pub fn new(concurrency: usize, capacity: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self { lanes: Mutex::new(HashMap::new()), concurrency, capacity: capacity.max(concurrency) }
    }

    /// How many sends a delivery admitted to a full lane may wait behind, its own included.
    pub fn rounds_to_drain(&self) -> usize {
        self.capacity.div_ceil(self.concurrency)
    }

    /// How long a full lane takes to drain at the lowest rate limit (one request per second), of which each of
    /// `sharing_processes` processes keeps to its share (see [`reserve_slot`](Self::reserve_slot)).
    pub fn slowest_paced_drain(&self, sharing_processes: usize) -> Duration {
        let sharing = u32::try_from(sharing_processes.max(1)).unwrap_or(u32::MAX);
        Duration::from_secs(self.capacity as u64).saturating_mul(sharing)
    }

    fn with_lanes<R>(&self, f: impl FnOnce(&mut HashMap<EndpointId, Lane>) -> R) -> R {
        // A panic while holding the lock cannot leave a lane half-updated in a way that matters more than
        // stopping delivery would, so a poisoned lock is used as is.
        let mut guard = self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    pub fn admit(&self, delivery: ClaimedDelivery) -> Admission {
        let capacity = self.capacity;
        let concurrency = self.concurrency;
        self.with_lanes(|lanes| {
            let lane = lanes.entry(delivery.endpoint_id.clone()).or_default();
            if lane.load() >= capacity {
                return Admission::Full(Box::new(delivery));
            }
            let endpoint = delivery.endpoint_id.clone();
            lane.waiting.push_back(delivery);
            if lane.running < concurrency {
                lane.running += 1;
                Admission::StartWorker(endpoint)
            } else {
                Admission::Queued
            }
        })
    }

    /// The next delivery for a worker of `endpoint`; `None` retires the worker (and the lane, once idle).
    pub fn next_for(&self, endpoint: &EndpointId) -> Option<ClaimedDelivery> {
        self.with_lanes(|lanes| {
            let lane = lanes.get_mut(endpoint)?;
            let next = lane.waiting.pop_front();
            if next.is_none() {
                lane.running = lane.running.saturating_sub(1);
                if lane.is_idle(tokio::time::Instant::now()) {
                    lanes.remove(endpoint);
                }
            }
            next
        })
    }

    /// Takes the deliveries waiting in `endpoint`'s lane (not those being sent).
    pub fn take_waiting(&self, endpoint: &EndpointId) -> Vec<ClaimedDelivery> {
        self.with_lanes(|lanes| {
            lanes.get_mut(endpoint).map(|lane| lane.waiting.drain(..).collect()).unwrap_or_default()
        })
    }

    /// Takes every delivery still waiting (not yet being sent) out of the lanes, for a shutdown to hand back.
    pub fn drain_waiting(&self) -> Vec<ClaimedDelivery> {
        self.with_lanes(|lanes| lanes.values_mut().flat_map(|lane| lane.waiting.drain(..)).collect())
    }

    /// When the next request to `endpoint` may start under a limit of `per_second` requests, reserving that
    /// slot; `None` when there is no limit. Requests are spaced evenly (no bursts), which is what receivers
    /// that set a rate limit expect.
    pub fn reserve_slot(
        &self,
        endpoint: &EndpointId,
        per_second: Option<u32>,
        sharing_processes: usize,
    ) -> Option<tokio::time::Instant> {
        let per_second = per_second.filter(|rate| *rate > 0)?;
        // With N processes delivering, each keeps to 1/N of the rate so that together they keep to it.
        let sharing = u32::try_from(sharing_processes.max(1)).unwrap_or(u32::MAX);
        let spacing = (Duration::from_secs(1) * sharing) / per_second;
        self.with_lanes(|lanes| {
            let lane = lanes.get_mut(endpoint)?;
            let now = tokio::time::Instant::now();
            let slot = lane.next_slot.map_or(now, |next| next.max(now));
            lane.next_slot = Some(slot + spacing);
            Some(slot)
        })
    }

    /// Endpoints whose lanes are full: the next claim skips them. Also forgets idle lanes.
    pub fn saturated(&self) -> Vec<EndpointId> {
        let capacity = self.capacity;
        let now = tokio::time::Instant::now();
        self.with_lanes(|lanes| {
            // Lanes kept only for their pacing go once their next slot has passed.
            lanes.retain(|_, lane| !lane.is_idle(now));
            lanes.iter().filter(|(_, lane)| lane.load() >= capacity).map(|(id, _)| id.clone()).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lease counts on a full lane draining within `slowest_paced_drain`: so must the slots a full lane
    /// reserves at one request per second, however many processes share the rate limit.
    #[test]
    fn a_full_lane_at_the_lowest_rate_drains_within_the_slowest_paced_drain() {
        let (concurrency, capacity) = (2, 50);
        let lanes = Lanes::new(concurrency, capacity);
        for sharing in [1, 3, 8] {
            let endpoint = EndpointId::new();
            lanes.with_lanes(|lanes| lanes.insert(endpoint.clone(), Lane::default()));
            let start = tokio::time::Instant::now();
            let last = (0..capacity)
                .map(|_| lanes.reserve_slot(&endpoint, Some(1), sharing).expect("a rate-limited slot"))
                .last()
                .expect("slots");
            let waited = last - start;
            assert!(waited <= lanes.slowest_paced_drain(sharing), "{sharing} processes: {waited:?}");
            if sharing > 1 {
                assert!(waited > lanes.slowest_paced_drain(1), "{sharing} processes pace slower than one");
            }
        }
    }
}
