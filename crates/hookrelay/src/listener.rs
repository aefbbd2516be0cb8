//! The API's TCP listener: accepts connections up to a cap and closes those that hold a slot without using it,
//! so idle sockets cannot starve the API of file descriptors.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client likes, so about a thousand idle
//! sockets used up the open-file limit and the API stopped answering. Here:
//! - at most `max_connections` are open at once; the accept loop waits for a free slot, so further connections
//!   queue in the kernel's backlog instead of taking descriptors, and accepted ones are not affected;
//! - a new connection must send its first request's headers within `header_read_timeout`;
//! - a kept-alive connection must start (and finish the headers of) its next request within `idle_timeout`
//!   (hyper's header-read timer, which hyper re-arms when it waits for a request on a kept-alive connection);
//! - an accept error (EMFILE when the process is out of descriptors anyway) is logged and retried after a short
//!   pause, never in a tight loop and never ending the server;
//! - at shutdown it stops accepting, lets requests in progress finish (up to a grace period) and closes idle
//!   connections, as `axum::serve`'s graceful shutdown did.
//!
//! It also raises the soft open-file limit to the hard limit at start: the default soft limit (often 1024) is
//! what a single idle-connection flood exhausted, while the hard limit is usually far higher.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Fewest connections a derived default allows, however low the open-file limit.
const MIN_DEFAULT_CONNECTIONS: u64 = 64;
/// Most connections a derived default allows: each open connection costs memory (tens of KiB idle, more with a
/// request in progress), and an API's clients keep far fewer open.
const MAX_DEFAULT_CONNECTIONS: u64 = 10_000;
/// Descriptors kept for everything other than API connections and deliveries: the database files, the log,
/// DNS lookups, the listener itself.
pub const RESERVED_FILES: u64 = 256;
/// Connections the kernel holds for the accept loop (capped by `net.core.somaxconn`): those waiting for a slot
/// when the cap is reached. tokio's `bind` uses 128, which a burst of clients beyond the cap overflows, and a
/// client whose handshake finds the backlog full waits for its SYN to be retried.
const BACKLOG: u32 = 1024;
/// Pause after an accept error other than a client's aborted connection.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Least time between two log lines about accept errors.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// How the listener bounds its connections.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a new connection has to send the headers of its first request.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request's headers.
    pub idle_timeout: Duration,
    /// How long a stopping server waits for requests in progress.
    pub shutdown_grace: Duration,
}

/// The open-file limit after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process runs with now.
    pub soft: u64,
    /// The soft limit it started with.
    pub was: u64,
}

/// Raises the process's soft limit on open files to its hard limit (the most an unprivileged process may ask
/// for) and returns it; on failure, returns the limit unchanged with a warning.
#[cfg(unix)]
pub fn raise_open_file_limit() -> OpenFileLimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // "Unlimited" is not a number the kernel accepts for open files; Linux's own ceiling (fs.nr_open) defaults
    // to 2^20.
    const UNLIMITED: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let was = limit.current.unwrap_or(UNLIMITED);
    let hard = limit.maximum.unwrap_or(UNLIMITED);
    if was >= hard {
        return OpenFileLimit { soft: was, was };
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: limit.maximum }) {
        Ok(()) => OpenFileLimit { soft: hard, was },
        Err(err) => {
            tracing::warn!(error = %err, soft = was, hard, "cannot raise the open-file limit to its hard limit");
            OpenFileLimit { soft: was, was }
        }
    }
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> OpenFileLimit {
    OpenFileLimit { soft: MAX_DEFAULT_CONNECTIONS * 2, was: MAX_DEFAULT_CONNECTIONS * 2 }
}

/// The default connection cap for `open_files` descriptors of which `reserved` are kept for deliveries, the
/// database and the rest: what is left, but at least half the limit (a low limit is better shared than refused)
/// and within [`MIN_DEFAULT_CONNECTIONS`]..=[`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections(open_files: u64, reserved: u64) -> usize {
    let left = open_files.saturating_sub(reserved).max(open_files / 2);
    usize::try_from(left.clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS)).unwrap_or(usize::MAX)
}

/// Listens on `addr` with a backlog of [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As tokio's `bind` does: a restarted server can listen again at once, with connections of the previous one
    // still in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `app` on `listener` within `limits` until `stop` resolves, then shuts down gracefully.
pub async fn serve(listener: TcpListener, app: Router, limits: ListenerLimits, stop: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop_seen) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    let mut accept_errors = AcceptErrors::default();
    loop {
        // Wait for a free slot before accepting: a connection beyond the cap stays in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
            () = &mut stop => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                let connection = Connection { app: app.clone(), limits, stopping: stop_seen.clone(), _slot: permit };
                tokio::spawn(connection.serve(stream, remote));
            }
            Err(err) if is_aborted_by_client(&err) => {}
            Err(err) => {
                drop(permit);
                accept_errors.log(&err, limits.max_connections - slots.available_permits());
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    () = &mut stop => break,
                }
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: all slots free means all connections are done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "connections still open after the shutdown grace period are closed"
        );
    }
    // Dropping `stopping` here closes whatever connection is left.
}

/// One accepted connection and what it needs.
struct Connection {
    app: Router,
    limits: ListenerLimits,
    stopping: watch::Receiver<bool>,
    /// Freed when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, remote: SocketAddr) {
        let first_request = Arc::new(AtomicBool::new(false));
        let service = {
            let (app, first_request) = (self.app.clone(), first_request.clone());
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                first_request.store(true, Ordering::Relaxed);
                // What `Router::into_make_service_with_connect_info` would add, for handlers that ask.
                request.extensions_mut().insert(ConnectInfo(remote));
                let mut app = app.clone();
                async move {
                    let response = tower_service::Service::call(&mut app, request.map(Body::new)).await;
                    Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.idle_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        // hyper's timer covers the wait between requests; a new connection gets the (shorter) header timeout.
        let first_headers_due = tokio::time::sleep(self.limits.header_read_timeout);
        let mut first_headers_due = std::pin::pin!(first_headers_due);
        let mut first_headers_checked = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::trace!(%remote, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = &mut first_headers_due, if !first_headers_checked => {
                    if !first_request.load(Ordering::Relaxed) {
                        tracing::debug!(%remote, "closing a connection that sent no request headers in time");
                        return;
                    }
                    first_headers_checked = true;
                }
                changed = self.stopping.changed() => {
                    if changed.is_err() {
                        // The listener is gone: its grace period is over.
                        return;
                    }
                    // Finishes the request in progress, if any, then closes; an idle connection closes now.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Errors that concern one client's connection, not the listener: accept the next one at once.
fn is_aborted_by_client(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset)
}

/// Logs accept errors at most once per [`ACCEPT_ERROR_LOG_EVERY`], with how many were not logged.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn log(&mut self, err: &std::io::Error, open: usize) {
        if self.last_logged.is_some_and(|at| at.elapsed() < ACCEPT_ERROR_LOG_EVERY) {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            error = %err,
            open_connections = open,
            errors_not_logged = self.unlogged,
            "cannot accept connections; retrying (if the error is `Too many open files`, lower \
             HOOKRELAY_MAX_CONNECTIONS or HOOKRELAY_MAX_IN_FLIGHT, or raise the open-file limit)"
        );
        self.last_logged = Some(Instant::now());
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_the_reserve_and_stays_within_bounds() {
        let check = |open_files, reserved, expected| {
            assert_eq!(default_max_connections(open_files, reserved), expected, "{open_files} files, {reserved} kept")
        };
        check(65_536, 1_296, 10_000);
        check(8_192, 1_296, 6_896);
        // A low limit: half of it, rather than nothing.
        check(1_024, 1_296, 512);
        check(2_048, 1_296, 1_024);
        check(100, 1_296, 64);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit};
        let limit = raise_open_file_limit();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(now.current, now.maximum.or(now.current), "soft limit {:?} below the hard limit", now.current);
        assert_eq!(Some(limit.soft), now.current);
        assert!(limit.soft >= limit.was);
    }
}
