//! A TCP proxy on loopback that a test can cut: the way to take a server away from a client (a database from a
//! store, say) without stopping the server, which other tests share.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection made to [`addr`](Self::addr) to the target until [`cut`](Self::cut); then the
/// open connections are closed and new ones refused. Dropping it cuts it too.
pub struct CuttableProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl CuttableProxy {
    /// Listens on 127.0.0.1 on a port the OS picks, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy on loopback");
        let addr = listener.local_addr().expect("the proxy's address");
        let (cut, mut cut_seen) = watch::channel(false);
        let connection_cut = cut.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // Returning drops the listener: later connections are refused.
                    _ = cut_seen.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        tokio::spawn(forward(client, target, connection_cut.clone()));
                    }
                }
            }
        });
        Self { addr, cut }
    }

    /// The address clients connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    if *cut.borrow() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    tokio::select! {
        _ = cut.changed() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}
