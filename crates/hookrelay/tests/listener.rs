//! The API's listener cannot be starved by connections that hold a socket without using it: health answers under
//! a flood of idle connections, connections beyond the cap wait for a free slot, and silent or idle connections
//! are closed after their timeouts.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{ServerProcess, TestServer, http_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Opens `n` connections that never send a byte. Each handshake must complete at once (the kernel completes it
/// while the connection waits in the listen backlog): under a second, before the first SYN retransmission that
/// a full backlog would cause.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let socket = tokio::time::timeout(Duration::from_millis(900), TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connection {i} was not established within 900 ms: the backlog is full"))
            .expect("connect");
        sockets.push(socket);
    }
    sockets
}

/// Waits until the server closes `socket` (end of file or a reset), giving up after `timeout`; returns when.
async fn closed_by_server(mut socket: TcpStream, timeout: Duration) -> Option<Instant> {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(timeout, socket.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(Instant::now()),
        Ok(Ok(_)) => panic!("the server sent bytes on a connection that sent no request"),
        Err(_) => None,
    }
}

/// Sends `GET /api/v1/health/` on `socket` and reads the whole response; returns its status line.
async fn health_over(socket: &mut TcpStream) -> String {
    socket.write_all(b"GET /api/v1/health/ HTTP/1.1\r\nHost: hookrelay\r\n\r\n").await.expect("request written");
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("response read");
        assert!(n > 0, "the connection closed before the response was complete");
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .expect("content-length");
            if body.len() >= length {
                return head.lines().next().unwrap_or_default().to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_hundreds_of_idle_connections_are_open() {
    // The server starts with a soft open-file limit of 256 (the hard limit stays the machine's): before the fix,
    // it accepted idle sockets until `accept` failed with `Too many open files`, and never answered again.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::spawn_with_open_file_limit(data_dir.path(), &[], "-S -n 256");
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().expect("server address");
    let _idle = idle_connections(addr, 400).await;
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        http_client().get(format!("{}/api/v1/health/", server.base)).send(),
    )
    .await
    .expect("health answered within 5 s under 400 idle connections")
    .expect("health request");
    assert_eq!(response.status(), 200);
    println!("health answered in {:?} with 400 idle connections open", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_pauses_accepting_without_spinning_or_stopping() {
    // A cap far above what 128 descriptors allow, so `accept` fails with `Too many open files`.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let env = [("HOOKRELAY_MAX_CONNECTIONS", "1000"), ("HOOKRELAY_HEADER_READ_TIMEOUT_SECS", "5")];
    let server = ServerProcess::spawn_with_open_file_limit(data_dir.path(), &env, "-n 128");
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().expect("server address");
    let idle = idle_connections(addr, 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // While out of descriptors, the accept loop pauses between tries instead of retrying at once.
    let (cpu_before, wall) = (cpu_ticks(server.pid()), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = (cpu_ticks(server.pid()) - cpu_before) as f64 / ticks_per_second() / wall.elapsed().as_secs_f64();
    assert!(busy < 0.25, "the server used {:.0}% of a core while out of descriptors", busy * 100.0);
    // Once the idle connections time out, it accepts again.
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        http_client().get(format!("{}/api/v1/health/", server.base)).send(),
    )
    .await
    .expect("health answered once descriptors were free again")
    .expect("health request");
    assert_eq!(response.status(), 200);
    drop(idle);
}

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name (which may hold spaces) in parentheses: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn ticks_per_second() -> f64 {
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("getconf runs");
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("CLK_TCK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_idle_ones_time_out() {
    const CAP: usize = 60;
    let server = TestServer::start_with(|args| {
        args.max_connections = Some(CAP);
        args.header_read_timeout_secs = Some(1);
    })
    .await;
    let addr = server.server.as_ref().expect("running").addr;
    let opened = Instant::now();
    // 140 wait in the backlog: more than the 128 a default listener holds.
    let watchers: Vec<_> = idle_connections(addr, 200)
        .await
        .into_iter()
        .map(|socket| tokio::spawn(closed_by_server(socket, Duration::from_secs(20))))
        .collect();
    // Queued behind the idle ones, it is served once they have been closed.
    let (status, body) = server.get("/api/v1/health/").await;
    assert_eq!(status, 200, "{body}");
    let mut closed = Vec::new();
    for watcher in watchers {
        closed.push(watcher.await.expect("watcher").expect("every idle connection is closed in the end"));
    }
    closed.sort();
    // Only CAP were accepted at first; the next was accepted when one of those was closed, and then had its own
    // header-read timeout. Without a cap all would close together, after the first timeout.
    let first_wave = closed[0] - opened;
    let second_wave = closed[CAP] - closed[0];
    assert!(first_wave >= Duration::from_millis(900), "the first idle connection closed after {first_wave:?}");
    assert!(
        second_wave >= Duration::from_millis(600),
        "connection {} closed {second_wave:?} after the first: more than {CAP} were accepted at once",
        CAP + 1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start_with(|args| args.header_read_timeout_secs = Some(1)).await;
    let addr = server.server.as_ref().expect("running").addr;
    let opened = Instant::now();
    let socket = TcpStream::connect(addr).await.expect("connect");
    let closed = closed_by_server(socket, Duration::from_secs(10)).await.expect("closed within 10 s");
    let after = closed - opened;
    assert!(after >= Duration::from_millis(900), "closed after {after:?}, before its timeout");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_lives_until_the_idle_timeout() {
    let server = TestServer::start_with(|args| {
        args.header_read_timeout_secs = Some(1);
        args.idle_timeout_secs = Some(3);
    })
    .await;
    let addr = server.server.as_ref().expect("running").addr;
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(health_over(&mut socket).await, "HTTP/1.1 200 OK");
    // Idle for longer than the header-read timeout, shorter than the idle timeout: still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(health_over(&mut socket).await, "HTTP/1.1 200 OK", "the kept-alive connection was reused");
    let idle_since = Instant::now();
    let closed = closed_by_server(socket, Duration::from_secs(15)).await.expect("closed after the idle timeout");
    let idle = closed - idle_since;
    assert!(idle >= Duration::from_millis(2500), "closed after {idle:?} idle, before the idle timeout");
    server.stop().await;
}
