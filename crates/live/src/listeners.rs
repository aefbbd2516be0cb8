//! `hookrelay listen` sessions: an endpoint whose URL is `listen://<name>` is delivered to over the connection a
//! `hookrelay listen` opened to the API, not to an address of its own, so a developer's laptop receives real
//! deliveries with no port open toward it. The API streams each [`Forward`] to the connected session and passes its
//! [`Answer`] back; the dispatcher waits for that answer as it would for an HTTP response.
//!
//! One session per endpoint: a new connection replaces the one before (a laptop that reconnects after a network
//! change gets its deliveries at once, without waiting for the old connection to time out).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// The URL scheme of endpoints delivered to through `hookrelay listen`.
pub const SCHEME: &str = "listen";
/// Most sessions one process holds; one more connection is refused.
pub const MAX_SESSIONS: usize = 1000;
/// Deliveries waiting to be written to one session's stream; the dispatcher waits (within the delivery timeout)
/// when it is full.
const SESSION_QUEUE: usize = 64;

/// Why a delivery to a `listen://` endpoint did not reach its listener.
pub const NOT_CONNECTED: &str =
    "no `hookrelay listen` is connected for this endpoint (to this server process); the delivery is retried";

/// A delivery handed to a listener: what it forwards to its local URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// Set by [`Listeners::forward`]; the answer names it.
    pub id: u64,
    pub msg_id: String,
    pub event_type: String,
    pub method: String,
    /// The request's headers as the endpoint would have got them: signature headers included.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What the listener's local URL answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status, 0 when the local URL gave no answer.
    pub status_code: u16,
    /// The answer's body (cut by the caller), or why no answer came.
    pub body: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooManySessions;

struct Session {
    serial: u64,
    deliveries: mpsc::Sender<Forward>,
}

struct Waiting {
    endpoint_id: String,
    reply: oneshot::Sender<Answer>,
}

/// The sessions of this process, and the deliveries waiting for their answers.
#[derive(Default)]
pub struct Listeners {
    sessions: Mutex<HashMap<String, Session>>,
    waiting: Mutex<HashMap<u64, Waiting>>,
    next_id: AtomicU64,
}

/// An open session; the API streams its deliveries. Dropping it ends the session (unless a newer connection
/// replaced it already) and fails the deliveries still waiting for its answers.
pub struct Connection {
    pub deliveries: mpsc::Receiver<Forward>,
    endpoint_id: String,
    serial: u64,
    listeners: Arc<Listeners>,
}

impl Listeners {
    /// Opens the session of an endpoint, replacing the one before.
    pub fn connect(self: &Arc<Self>, endpoint_id: &str) -> Result<Connection, TooManySessions> {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(endpoint_id) {
            return Err(TooManySessions);
        }
        let (sender, receiver) = mpsc::channel(SESSION_QUEUE);
        let serial = self.next_id.fetch_add(1, Ordering::Relaxed);
        sessions.insert(endpoint_id.to_owned(), Session { serial, deliveries: sender });
        Ok(Connection { deliveries: receiver, endpoint_id: endpoint_id.to_owned(), serial, listeners: self.clone() })
    }

    /// Whether a listener of the endpoint is connected to this process.
    pub fn is_connected(&self, endpoint_id: &str) -> bool {
        lock(&self.sessions).contains_key(endpoint_id)
    }

    /// Hands a delivery to the endpoint's listener and waits for its answer, at most `timeout` in all.
    pub async fn forward(&self, endpoint_id: &str, mut forward: Forward, timeout: Duration) -> Result<Answer, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let sender = lock(&self.sessions).get(endpoint_id).map(|s| s.deliveries.clone()).ok_or(NOT_CONNECTED)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        forward.id = id;
        let (reply, answer) = oneshot::channel();
        lock(&self.waiting).insert(id, Waiting { endpoint_id: endpoint_id.to_owned(), reply });
        let _forget = Forget { waiting: &self.waiting, id };
        let waited = || format!("`hookrelay listen` did not answer within {} s", timeout.as_secs_f64());
        match tokio::time::timeout_at(deadline, sender.send(forward)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(NOT_CONNECTED.into()),
            Err(_) => return Err(waited()),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("`hookrelay listen` disconnected before answering; the delivery is retried".into()),
            Err(_) => Err(waited()),
        }
    }

    /// Passes a listener's answer to the delivery waiting for it; false when none waits (it timed out, or the
    /// id belongs to another endpoint).
    pub fn answer(&self, endpoint_id: &str, id: u64, answer: Answer) -> bool {
        let mut waiting = lock(&self.waiting);
        match waiting.get(&id) {
            Some(w) if w.endpoint_id == endpoint_id => {}
            _ => return false,
        }
        let Some(w) = waiting.remove(&id) else { return false };
        w.reply.send(answer).is_ok()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut sessions = lock(&self.listeners.sessions);
        if sessions.get(&self.endpoint_id).is_some_and(|s| s.serial == self.serial) {
            sessions.remove(&self.endpoint_id);
            drop(sessions);
            // Nobody will answer these: fail them now rather than at their timeout.
            lock(&self.listeners.waiting).retain(|_, w| w.endpoint_id != self.endpoint_id);
        }
    }
}

/// Removes a delivery's waiting entry however its wait ends.
struct Forget<'a> {
    waiting: &'a Mutex<HashMap<u64, Waiting>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.waiting).remove(&self.id);
    }
}

/// The maps stay consistent whatever panicked while holding them (each change is one insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Forward {
        Forward {
            id: 0,
            msg_id: "msg_1".into(),
            event_type: "invoice.paid".into(),
            method: "POST".into(),
            headers: vec![("webhook-id".into(), "msg_1".into())],
            body: "{}".into(),
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_delivery_reaches_the_connected_listener_and_its_answer_comes_back() {
        let listeners = Arc::new(Listeners::default());
        let mut connection = listeners.connect("ep_1").expect("room");
        let sender = listeners.clone();
        let waiting = tokio::spawn(async move { sender.forward("ep_1", delivery(), SECOND).await });
        let got = connection.deliveries.recv().await.expect("a delivery");
        assert_eq!(got.msg_id, "msg_1");
        assert!(
            !listeners.answer("ep_2", got.id, Answer { status_code: 200, body: String::new() }),
            "another endpoint"
        );
        assert!(listeners.answer("ep_1", got.id, Answer { status_code: 204, body: "ok".into() }));
        assert_eq!(waiting.await.expect("joined"), Ok(Answer { status_code: 204, body: "ok".into() }));
        assert!(!listeners.answer("ep_1", got.id, Answer { status_code: 200, body: String::new() }), "answered twice");
    }

    #[tokio::test]
    async fn without_a_listener_the_delivery_fails_at_once() {
        let listeners = Listeners::default();
        assert_eq!(listeners.forward("ep_1", delivery(), SECOND).await, Err(NOT_CONNECTED.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_listener_that_does_not_answer_fails_the_delivery_at_the_timeout() {
        let listeners = Arc::new(Listeners::default());
        let _connection = listeners.connect("ep_1").expect("room");
        let result = listeners.forward("ep_1", delivery(), SECOND).await;
        assert!(result.expect_err("timed out").contains("did not answer within 1 s"));
        assert!(lock(&listeners.waiting).is_empty(), "nothing left waiting");
    }

    #[tokio::test]
    async fn a_listener_that_disconnects_fails_its_waiting_deliveries_and_a_new_connection_replaces_the_old() {
        let listeners = Arc::new(Listeners::default());
        let mut first = listeners.connect("ep_1").expect("room");
        let sender = listeners.clone();
        let waiting = tokio::spawn(async move { sender.forward("ep_1", delivery(), SECOND * 30).await });
        first.deliveries.recv().await.expect("a delivery");
        drop(first);
        assert!(waiting.await.expect("joined").expect_err("disconnected").contains("disconnected"));
        assert!(!listeners.is_connected("ep_1"));

        let old = listeners.connect("ep_1").expect("room");
        let mut new = listeners.connect("ep_1").expect("room");
        drop(old); // must not end the newer session
        assert!(listeners.is_connected("ep_1"));
        let sender = listeners.clone();
        tokio::spawn(async move { sender.forward("ep_1", delivery(), SECOND).await });
        assert!(new.deliveries.recv().await.is_some());
    }

    #[test]
    fn sessions_are_limited() {
        let listeners = Arc::new(Listeners::default());
        let connections: Vec<_> =
            (0..MAX_SESSIONS).map(|n| listeners.connect(&format!("ep_{n}")).expect("room")).collect();
        assert_eq!(listeners.connect("one_more").err(), Some(TooManySessions));
        assert!(listeners.connect("ep_0").is_ok(), "a reconnect is not one more");
        drop(connections);
    }
}
