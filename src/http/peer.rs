//! The connection a request came on: its socket (remembered when the connection is accepted),
//! and whether its client has gone away. actix-web keeps polling a handler after its client
//! closed the connection (the answer is dropped when written), so a long-poll would stay
//! parked until its timeout; [`gone`] lets it end when the client goes. (The emulator's crate
//! has its own copy of [`remember`] and [`with_socket`], to cut connections as a fault.)

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

/// Completes when the client of `req` closes its connection (or it breaks); never when the
/// client is there, or when that cannot be told. The socket is watched in place
/// ([`super::hangup`]): no duplicate, so a parked poll costs one open file, not two.
pub async fn gone(req: &HttpRequest) {
    let watched = with_socket(req, |socket| super::hangup::watch(socket.as_raw_fd()));
    match watched {
        Some(Ok(hang_up)) => hang_up.await,
        _ => std::future::pending().await,
    }
}
