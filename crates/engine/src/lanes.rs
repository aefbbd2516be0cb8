//! Per-endpoint lanes: claimed deliveries wait in their endpoint's lane and at most `concurrency` of them are
//! sent at once. A lane holds at most `capacity` deliveries (in flight + waiting); when it is full the
//! dispatcher stops claiming for that endpoint, so a slow endpoint never fills the process with its work.
//! The capacity is at least one claim batch, so a busy endpoint's backlog is claimed a batch at a time
//! instead of being claimed and handed back.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use hookrelay_core::EndpointId;
use hookrelay_store::ClaimedDelivery;

#[derive(Default)]
struct Lane {
    waiting: VecDeque<ClaimedDelivery>,
    running: usize,
}

impl Lane {
    fn load(&self) -> usize {
        self.waiting.len() + self.running
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
                if lane.running == 0 {
                    lanes.remove(endpoint);
                }
            }
            next
        })
    }

    /// Endpoints whose lanes are full: the next claim skips them.
    pub fn saturated(&self) -> Vec<EndpointId> {
        let capacity = self.capacity;
        self.with_lanes(|lanes| {
            lanes.iter().filter(|(_, lane)| lane.load() >= capacity).map(|(id, _)| id.clone()).collect()
        })
    }
}
