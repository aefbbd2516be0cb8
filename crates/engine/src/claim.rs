//! The dispatcher's main loop: claim due deliveries in batches, hand them to their endpoint lanes, and sleep
//! until more work is due or announced. Lane workers ask the breaker, pace to the rate limit, make the attempt
//! (see `attempt`) and pass the outcome to the recorder.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hookrelay_core::EndpointId;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::operational::EventSink;
use hookrelay_core::retry::NextStep;
use hookrelay_core::time::now_ms;
use hookrelay_store::{AttemptOutcome, ClaimedDelivery, Intake, Queue, Release, Reservation};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::attempt::Attempter;
use crate::breaker::{Breakers, Permit};
use crate::lanes::{Admission, Lanes};
use crate::{DispatcherConfig, EngineError, liveness, record};

/// Longest the loop sleeps without looking at the store, a safety net under the wake-ups.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How soon to look again when due deliveries exist but all their endpoints' lanes are full.
const SATURATED_RECHECK: Duration = Duration::from_millis(250);
/// Pause after the store failed to answer a claim.
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub(crate) struct Dispatcher {
    queue: Arc<dyn Queue>,
    config: DispatcherConfig,
    attempter: Attempter,
    lanes: Lanes,
    breakers: Arc<Breakers>,
    /// Deliveries claimed and not yet recorded: what `max_in_flight` bounds.
    claimed: AtomicUsize,
    wake: Arc<Notify>,
    /// Signalled whenever `claimed` drops, for a shutdown waiting on in-flight work.
    drained: Notify,
    /// Processes sharing the database (from the heartbeat): each paces an endpoint to its share of the rate.
    live_processes: Arc<AtomicUsize>,
    /// The loop is waiting for room (in flight at the limit, or due work only for full lanes or paused
    /// endpoints): recorded outcomes then wake it.
    waiting_for_room: AtomicBool,
}

/// Controls a running dispatcher.
pub struct DispatcherHandle {
    dispatcher: Arc<Dispatcher>,
    stop: watch::Sender<bool>,
    main_loop: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, hands deliveries that were claimed but not started back to the queue, then waits up
    /// to `grace` for the requests in flight to finish and be recorded. Anything still unfinished stays
    /// leased in the store and is sent again after restart.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = self.main_loop.await;
        let waiting = self.dispatcher.lanes.drain_waiting();
        self.dispatcher.hand_back(waiting.into_iter().map(ClaimedDelivery::into_release).collect()).await;
        let deadline = tokio::time::Instant::now() + grace;
        while self.dispatcher.claimed.load(Ordering::Acquire) > 0 {
            if tokio::time::timeout_at(deadline, self.dispatcher.drained.notified()).await.is_err() {
                tracing::warn!(
                    in_flight = self.dispatcher.claimed.load(Ordering::Acquire),
                    "stopping with deliveries in flight; they will be retried after restart"
                );
                break;
            }
        }
    }

    /// A hook for the API: call it when a user changed an endpoint or started recovering it. The endpoint's
    /// circuit breaker closes and the dispatcher looks for its deliveries at once. Deliveries already claimed and
    /// waiting in its lane carry the endpoint as it was (URL, headers, secrets), so they go back to the queue to be
    /// claimed again with the change.
    pub fn endpoint_reset_hook(&self) -> Arc<dyn Fn(&EndpointId) + Send + Sync> {
        let dispatcher = self.dispatcher.clone();
        Arc::new(move |endpoint| {
            // Taken out before the breaker closes: a lane worker finds either the breaker still open (and hands
            // the rest back itself) or an empty lane, never a stale delivery it may send.
            let stale: Vec<Release> =
                dispatcher.lanes.take_waiting(endpoint).into_iter().map(ClaimedDelivery::into_release).collect();
            dispatcher.breakers.reset(endpoint);
            // Lift a pause another process (or this one) shared through the store, then look for work.
            let (dispatcher, endpoint) = (dispatcher.clone(), endpoint.clone());
            tokio::spawn(async move {
                dispatcher.hand_back(stale).await;
                if let Err(err) = dispatcher.queue.pause_endpoint(&endpoint, 0).await {
                    tracing::warn!(error = %err, endpoint_id = %endpoint, "could not lift the endpoint's pause");
                }
                dispatcher.wake.notify_one();
            });
        })
    }
}

impl Dispatcher {
    pub(crate) fn start(
        queue: Arc<dyn Queue>,
        config: DispatcherConfig,
        wake: Arc<Notify>,
        events: Arc<dyn EventSink>,
    ) -> Result<DispatcherHandle, EngineError> {
        let attempter = Attempter::new(&config, events)?;
        let (outcomes_tx, outcomes_rx) = mpsc::channel(config.max_in_flight.max(1));
        let dispatcher = Arc::new(Dispatcher {
            queue: queue.clone(),
            attempter,
            breakers: Arc::new(Breakers::new(config.breaker_threshold, config.breaker_pause)),
            lanes: Lanes::new(config.endpoint_concurrency, config.claim_batch.max(2 * config.endpoint_concurrency)),
            config,
            claimed: AtomicUsize::new(0),
            wake,
            drained: Notify::new(),
            live_processes: Arc::new(AtomicUsize::new(1)),
            waiting_for_room: AtomicBool::new(false),
        });
        let recorder_view = dispatcher.clone();
        tokio::spawn(record::run_recorder(queue, outcomes_rx, move |batch| {
            recorder_view.claimed.fetch_sub(batch.len(), Ordering::AcqRel);
            recorder_view.drained.notify_waiters();
            // Room came back (a loop waiting for it looks again now rather than at its next recheck), or retries
            // were scheduled, which may be due before the loop planned to look.
            let retries = batch.iter().any(|outcome| matches!(outcome.next, NextStep::RetryAt(_)));
            if recorder_view.waiting_for_room.swap(false, Ordering::AcqRel) || retries {
                recorder_view.wake.notify_one();
            }
        }));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(liveness::run(
            dispatcher.queue.clone(),
            dispatcher.config.metrics.clone(),
            dispatcher.wake.clone(),
            dispatcher.live_processes.clone(),
            stop_rx.clone(),
        ));
        dispatcher.queue.hand_new_work_to(Arc::new(DirectIntake {
            dispatcher: Arc::downgrade(&dispatcher),
            outcomes: outcomes_tx.downgrade(),
            stop: stop_rx.clone(),
            runtime: tokio::runtime::Handle::current(),
        }));
        let main_loop = tokio::spawn(dispatcher.clone().run(stop_rx, outcomes_tx));
        Ok(DispatcherHandle { dispatcher, stop, main_loop })
    }

    fn lease_ms(&self) -> i64 {
        // A claimed delivery waits for at most a full lane to drain ahead of it, each round taking at most
        // one timeout, its own send included, plus the pacing of a rate-limited endpoint (slower when several
        // processes share its limit); the rest is slack for recording. A shorter lease would let a delivery be
        // claimed again while its first send is still in flight.
        let rounds = u32::try_from(self.lanes.rounds_to_drain()).unwrap_or(u32::MAX);
        let sharing = self.live_processes.load(Ordering::Relaxed);
        let lease = self.config.delivery_timeout.saturating_mul(rounds)
            + self.lanes.slowest_paced_drain(sharing)
            + Duration::from_secs(60);
        lease.as_millis() as i64
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, outcomes: mpsc::Sender<AttemptOutcome>) {
        match self.queue.requeue_interrupted().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "re-queued deliveries interrupted by the previous run"),
            Err(err) => tracing::warn!(error = %err, "could not re-queue interrupted deliveries"),
        }
        loop {
            if *stop.borrow() {
                break;
            }
            let free = self.config.max_in_flight.saturating_sub(self.claimed.load(Ordering::Acquire));
            let mut more_due = false;
            // Read on every turn of the loop (at least once a second), which keeps the gauge current.
            let paused = self.breakers.paused();
            self.config.metrics.set_open_breakers(paused.len());
            if free > 0 {
                let want = free.min(self.config.claim_batch);
                let now = now_ms();
                let mut skip = self.lanes.saturated();
                skip.extend(paused);
                match self.queue.claim_due(now, want, now + self.lease_ms(), &skip).await {
                    Ok(batch) => {
                        more_due = batch.len() == want;
                        self.dispatch(batch, &outcomes).await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming due deliveries failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(STORE_ERROR_BACKOFF) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                }
            }
            if more_due {
                continue;
            }
            let in_flight = self.claimed.load(Ordering::Acquire);
            let idle = if free == 0 { MAX_IDLE } else { self.time_until_next_due().await };
            if free == 0 || idle == SATURATED_RECHECK {
                self.waiting_for_room.store(true, Ordering::Release);
                // An outcome recorded before the flag was up did not wake the loop: look again now instead.
                if self.claimed.load(Ordering::Acquire) < in_flight {
                    continue;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn time_until_next_due(&self) -> Duration {
        match self.queue.next_due_at().await {
            Ok(Some(due)) => {
                let wait = due - now_ms();
                if wait <= 0 { SATURATED_RECHECK } else { Duration::from_millis(wait as u64).min(MAX_IDLE) }
            }
            Ok(None) => MAX_IDLE,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the next due time");
                MAX_IDLE
            }
        }
    }

    async fn dispatch(self: &Arc<Self>, batch: Vec<ClaimedDelivery>, outcomes: &mpsc::Sender<AttemptOutcome>) {
        self.claimed.fetch_add(batch.len(), Ordering::AcqRel);
        self.admit(batch, outcomes).await;
    }

    /// Puts deliveries already counted in `claimed` in their endpoints' lanes, starting workers as needed; hands
    /// back those a full lane does not take.
    async fn admit(self: &Arc<Self>, batch: Vec<ClaimedDelivery>, outcomes: &mpsc::Sender<AttemptOutcome>) {
        let taken_over = batch.iter().filter(|delivery| delivery.taken_over).count();
        if taken_over > 0 {
            self.config.metrics.leases_taken_over(taken_over);
        }
        let mut releases = Vec::new();
        for delivery in batch {
            match self.lanes.admit(delivery) {
                Admission::Queued => {}
                Admission::StartWorker(endpoint) => {
                    tokio::spawn(self.clone().work_lane(endpoint, outcomes.clone()));
                }
                Admission::Full(delivery) => releases.push(delivery.into_release()),
            }
        }
        self.hand_back(releases).await;
    }

    async fn work_lane(self: Arc<Self>, endpoint: EndpointId, outcomes: mpsc::Sender<AttemptOutcome>) {
        while let Some(delivery) = self.lanes.next_for(&endpoint) {
            let permit = self.breakers.permit(&endpoint);
            if permit == Permit::Hold {
                // The endpoint is paused: this delivery and the ones waiting behind it go back to the queue
                // untouched, keeping their retries for when the endpoint recovers.
                let mut held = vec![delivery.into_release()];
                held.extend(self.lanes.take_waiting(&endpoint).into_iter().map(ClaimedDelivery::into_release));
                self.hand_back(held).await;
                continue;
            }
            let sharing = self.live_processes.load(Ordering::Relaxed);
            if let Some(slot) = self.lanes.reserve_slot(&endpoint, delivery.rate_limit, sharing) {
                tokio::time::sleep_until(slot).await;
            }
            let in_flight = self.config.metrics.attempt_started();
            let outcome = self.attempter.attempt(delivery).await;
            drop(in_flight);
            let delivered = outcome.attempt.status == DeliveryStatus::Success;
            if let Some(pause) = self.breakers.record(&endpoint, delivered, permit == Permit::Probe) {
                tracing::warn!(endpoint_id = %endpoint, pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "endpoint keeps failing; pausing it (circuit breaker open)");
                // Other processes sharing the database pause it too; this one already skips it.
                let until = now_ms() + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2);
                if let Err(err) = self.queue.pause_endpoint(&endpoint, until).await {
                    tracing::warn!(error = %err, endpoint_id = %endpoint, "could not share the endpoint's pause");
                }
            }
            if outcomes.send(outcome).await.is_err() {
                return;
            }
        }
    }

    /// Returns claimed deliveries to the queue unattempted and frees their capacity.
    async fn hand_back(&self, releases: Vec<Release>) {
        if releases.is_empty() {
            return;
        }
        if let Err(err) = self.queue.release(&releases).await {
            tracing::warn!(error = %err, "could not release deliveries; they return when their lease ends");
        }
        self.claimed.fetch_sub(releases.len(), Ordering::AcqRel);
        self.drained.notify_waiters();
    }
}

/// The dispatcher as the store sees it when it leases the deliveries of new messages while storing them (see
/// `Queue::hand_new_work_to`): room comes out of `max_in_flight` like a claim's, and what is handed over goes to
/// the lanes like a claimed batch. Weak references: the store outlives a stopped dispatcher.
struct DirectIntake {
    dispatcher: Weak<Dispatcher>,
    outcomes: mpsc::WeakSender<AttemptOutcome>,
    stop: watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
}

impl Intake for DirectIntake {
    fn reserve(&self, wanted: usize) -> Reservation {
        let Some(dispatcher) = self.dispatcher.upgrade().filter(|_| !*self.stop.borrow()) else {
            return Reservation::default();
        };
        let mut granted = 0;
        let _ = dispatcher.claimed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |claimed| {
            // At most a claim's batch, as a claim would take: more could overflow an endpoint's lane, and the
            // overflow would only be handed back.
            granted =
                dispatcher.config.max_in_flight.saturating_sub(claimed).min(wanted).min(dispatcher.config.claim_batch);
            Some(claimed + granted)
        });
        if granted == 0 {
            return Reservation::default();
        }
        let mut skip = dispatcher.lanes.saturated();
        skip.extend(dispatcher.breakers.paused());
        Reservation { granted, skip, lease_until: now_ms() + dispatcher.lease_ms() }
    }

    fn hand_over(&self, reserved: usize, deliveries: Vec<ClaimedDelivery>) {
        let Some(dispatcher) = self.dispatcher.upgrade() else { return };
        let unused = reserved.saturating_sub(deliveries.len());
        if unused > 0 {
            dispatcher.claimed.fetch_sub(unused, Ordering::AcqRel);
            dispatcher.drained.notify_waiters();
        }
        if deliveries.is_empty() {
            return;
        }
        let (outcomes, stop) = (self.outcomes.upgrade(), *self.stop.borrow());
        self.runtime.spawn(async move {
            match outcomes {
                Some(outcomes) if !stop => dispatcher.admit(deliveries, &outcomes).await,
                // Stopping: back to the queue, for the next run or another process.
                _ => dispatcher.hand_back(deliveries.into_iter().map(ClaimedDelivery::into_release).collect()).await,
            }
        });
    }
}
