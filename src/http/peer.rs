//! The connection a request came on: its socket (remembered when the connection is accepted),
//! and whether its client has gone away. actix-web keeps polling a handler after its client
//! closed the connection (the answer is dropped when written), so a long-poll would stay
//! parked until its timeout; [`gone`] lets it end when the client goes. The emulator uses
//! [`with_socket`] to cut connections as a fault.

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
/// client is there, or when that cannot be told.
pub async fn gone(req: &HttpRequest) {
    // A duplicate of our own, watched by this task; the server's reads are not disturbed
    // (peeking consumes nothing).
    let watched = with_socket(req, |socket| {
        socket
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(tokio::net::TcpStream::from_std)
    });
    let Some(Ok(watched)) = watched else {
        return std::future::pending().await;
    };
    let mut byte = [0u8; 1];
    match watched.peek(&mut byte).await {
        // End of stream or a broken connection: the client is gone.
        Ok(0) | Err(_) => {}
        // The client sent more (a pipelined request): it is there.
        Ok(_) => std::future::pending().await,
    }
}
