//! The attempt feed: every attempt this process makes, as it is made, to whoever follows (`hookrelay tail`, through
//! the API's attempt stream). Nothing is kept: a follower that falls behind by more than [`CAPACITY`] attempts is
//! told how many it missed. With no follower, publishing costs one atomic load.

use std::sync::Arc;

use hookrelay_core::retry::NextStep;
use hookrelay_core::time::UnixMillis;
use tokio::sync::broadcast;

/// Attempts a follower may fall behind by before it misses some.
pub const CAPACITY: usize = 1024;

/// One attempt, as a follower sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEvent {
    pub attempt_id: String,
    pub app_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// Where it was sent (the endpoint's URL, or the one its transformation chose).
    pub url: String,
    /// HTTP status, 0 when no answer came.
    pub status_code: u16,
    pub succeeded: bool,
    pub duration_ms: i64,
    /// When the attempt started.
    pub at: UnixMillis,
    /// 1 for the first attempt of the delivery.
    pub attempt_number: u32,
    pub next: NextStep,
    /// The start of the answer's body, or why no answer came.
    pub response: String,
}

/// Most bytes of the response body an event carries.
pub const MAX_RESPONSE_BYTES: usize = 512;

pub struct AttemptFeed {
    sender: broadcast::Sender<Arc<AttemptEvent>>,
}

impl Default for AttemptFeed {
    fn default() -> Self {
        Self { sender: broadcast::Sender::new(CAPACITY) }
    }
}

impl AttemptFeed {
    /// Whether anyone follows; the dispatcher builds an event only then.
    pub fn is_followed(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn publish(&self, event: AttemptEvent) {
        // No follower is not an error: the event is simply not seen.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Attempts made from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<AttemptEvent>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> AttemptEvent {
        AttemptEvent {
            attempt_id: format!("atmpt_{n}"),
            app_id: "app_1".into(),
            msg_id: "msg_1".into(),
            endpoint_id: "ep_1".into(),
            event_type: "invoice.paid".into(),
            url: "http://127.0.0.1:1/".into(),
            status_code: 200,
            succeeded: true,
            duration_ms: 3,
            at: 0,
            attempt_number: n,
            next: NextStep::Succeeded,
            response: String::new(),
        }
    }

    #[tokio::test]
    async fn followers_see_attempts_made_after_they_start_following() {
        let feed = AttemptFeed::default();
        assert!(!feed.is_followed());
        feed.publish(event(1));
        let mut follower = feed.follow();
        assert!(feed.is_followed());
        feed.publish(event(2));
        assert_eq!(follower.recv().await.expect("an event").attempt_number, 2);
        drop(follower);
        assert!(!feed.is_followed());
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_learns_how_many_it_missed() {
        let feed = AttemptFeed::default();
        let mut follower = feed.follow();
        for n in 0..(CAPACITY as u32 + 5) {
            feed.publish(event(n));
        }
        assert_eq!(follower.recv().await, Err(broadcast::error::RecvError::Lagged(5)));
        assert_eq!(follower.recv().await.expect("the oldest kept").attempt_number, 5);
    }
}
