//! The connection a request came on, so that a fault can cut it. fleetgate's service has the
//! same few lines for its long-polls (`src/http/peer.rs`); they are written twice on purpose,
//! so that neither crate depends on the other.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use actix_web::{HttpRequest, dev::Extensions, rt::net::TcpStream};

/// The connection's socket, recorded when it is accepted.
#[derive(Clone, Copy)]
struct Socket(RawFd);

/// For `HttpServer::on_connect`: records each connection's socket.
pub fn remember(connection: &dyn std::any::Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<TcpStream>() {
        data.insert(Socket(stream.as_raw_fd()));
    }
}

/// Runs `f` on the socket of the connection `req` came on, if it was remembered. Call it only
/// while `req` is being handled: the socket is borrowed, not owned.
pub fn with_socket<T>(req: &HttpRequest, f: impl FnOnce(BorrowedFd<'_>) -> T) -> Option<T> {
    let Socket(fd) = req.conn_data::<Socket>().copied()?;
    // SAFETY: the connection, and so its socket, lives at least as long as the request being
    // handled on it, and the borrow does not outlive this call.
    Some(f(unsafe { BorrowedFd::borrow_raw(fd) }))
}
