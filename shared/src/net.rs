//! Accepting TCP connections for the HTTP servers: the next connection with `TCP_NODELAY`,
//! waiting out transient accept errors (such as running out of file descriptors).

use std::{net::SocketAddr, time::Duration};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Pause after a failed accept, so an exhausted file table does not spin the loop.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The next connection on `listener`, or `None` once `stop` is cancelled.
pub async fn accept(
    listener: &TcpListener,
    stop: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
        }
    }
}
