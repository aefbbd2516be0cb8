//! Server-sent event streams (`text/event-stream`), as the `hookrelay listen` and `hookrelay tail` routes answer:
//! a comment every few seconds keeps proxies and load balancers from closing a quiet stream, and every stream
//! ends after [`LIFETIME`] (or when the server shuts down), so that the client reconnects and its token is checked again (a revoked token stops
//! streaming within that time).

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

/// How long a stream lasts before the client must reconnect.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// How often a quiet stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The response that streams `events` until the client goes away, [`LIFETIME`] ends, or the server shuts down
/// (`closed` resolves).
pub fn respond(
    events: impl Stream<Item = Event> + Send + 'static,
    closed: impl Future<Output = ()> + Send + 'static,
) -> Response {
    let end = async move {
        tokio::select! {
            () = tokio::time::sleep(LIFETIME) => {}
            () = closed => {}
        }
    };
    let events = events.take_until(end).map(Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// An event named `name` whose data is `data` as JSON (one line: JSON text has no raw newlines).
pub fn json_event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
