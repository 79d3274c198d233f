//! Telling when clients hang up, for many parked requests at once without an open file each:
//! one epoll instance of our own, watched by one thread, holds the sockets themselves
//! (registered for `EPOLLRDHUP`, the client closing its side), next to tokio's registration
//! of the same sockets (an epoll instance may hold a socket another one holds too).
//!
//! A socket closed while registered leaves the epoll instance by itself, and its number may
//! then be reused by a new connection; a registration is therefore removed only by the watch
//! that made it, and only while the number is still its own.

use std::{
    collections::HashMap,
    future::Future,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    pin::Pin,
    sync::{Mutex, OnceLock},
    task::{Context, Poll, Waker},
};

struct Watcher {
    epoll: OwnedFd,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_token: u64,
    /// Per watch: whether its client hung up, and who to wake when it does.
    watches: HashMap<u64, Slot>,
    /// The watch that registered each socket number, while registered.
    owner_of: HashMap<RawFd, u64>,
}

#[derive(Default)]
struct Slot {
    gone: bool,
    waker: Option<Waker>,
}

/// The process's watcher, started on first use; an error if epoll or the thread cannot be had.
fn watcher() -> io::Result<&'static Watcher> {
    static WATCHER: OnceLock<io::Result<&'static Watcher>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            // SAFETY: plain system call; a non-negative answer is a descriptor we now own.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let watcher: &'static Watcher = Box::leak(Box::new(Watcher {
                // SAFETY: `fd` was just created and is owned by nothing else.
                epoll: unsafe { OwnedFd::from_raw_fd(fd) },
                state: Mutex::new(State::default()),
            }));
            std::thread::Builder::new()
                .name("fleetgate-hangups".into())
                .spawn(move || watcher.run())?;
            Ok(watcher)
        })
        .as_ref()
        .copied()
        .map_err(|e| io::Error::new(e.kind(), e.to_string()))
}

impl Watcher {
    fn run(&self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            // SAFETY: `events` is valid for its length; the epoll descriptor lives forever.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    -1,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "hang-up watcher stopped; parked polls now end at their timeout");
                return;
            }
            let mut state = self.state.lock().expect("hang-up state");
            for event in &events[..n as usize] {
                let token = event.u64;
                if let Some(slot) = state.watches.get_mut(&token) {
                    slot.gone = true;
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                }
            }
        }
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        // SAFETY: plain system call; `fd` may be stale, which epoll answers with an error.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Completes when the client of socket `fd` hangs up (closes its side, or the connection
/// breaks). Hang-ups before the watch began count too.
pub struct HangUp {
    watcher: &'static Watcher,
    fd: RawFd,
    token: u64,
}

/// Watches socket `fd`, which must stay open for as long as the answer is polled (the
/// request on it is being handled). An error when it cannot be watched (then nobody can tell).
pub fn watch(fd: RawFd) -> io::Result<HangUp> {
    let watcher = watcher()?;
    let mut state = watcher.state.lock().expect("hang-up state");
    let token = state.next_token;
    state.next_token += 1;
    watcher.ctl(libc::EPOLL_CTL_ADD, fd, token)?;
    state.watches.insert(token, Slot::default());
    state.owner_of.insert(fd, token);
    Ok(HangUp { watcher, fd, token })
}

impl Future for HangUp {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.watcher.state.lock().expect("hang-up state");
        let slot = state.watches.entry(self.token).or_default();
        if slot.gone {
            return Poll::Ready(());
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        let mut state = self.watcher.state.lock().expect("hang-up state");
        state.watches.remove(&self.token);
        if state.owner_of.get(&self.fd) == Some(&self.token) {
            state.owner_of.remove(&self.fd);
            // Still ours: the socket was not closed and reused meanwhile (if it was closed, it
            // left the epoll instance by itself and this fails harmlessly).
            let _ = self.watcher.ctl(libc::EPOLL_CTL_DEL, self.fd, self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        net::{TcpListener, TcpStream},
        os::fd::{AsRawFd, IntoRawFd},
        time::Duration,
    };

    use super::watch;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_client_closing_ends_the_watch_and_data_does_not() {
        let (mut client, server) = pair();
        let watched = watch(server.as_raw_fd()).unwrap();
        tokio::pin!(watched);
        // A pipelined request is the client being there.
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut watched)
                .await
                .is_err()
        );
        drop(client);
        tokio::time::timeout(Duration::from_secs(2), watched)
            .await
            .expect("the hang-up is told");
    }

    #[tokio::test]
    async fn a_hang_up_before_the_watch_counts() {
        let (client, server) = pair();
        drop(client);
        std::thread::sleep(Duration::from_millis(50));
        let watched = watch(server.as_raw_fd()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), watched)
            .await
            .expect("already gone");
    }

    #[tokio::test]
    async fn a_finished_watch_leaves_a_reused_socket_number_watched() {
        let (_client2, server2) = pair();
        let number = server2.into_raw_fd();
        let stale = watch(number).unwrap();
        // The number now names another connection's socket: the old socket closes (and so
        // leaves epoll), as when a connection ends and the next accepted one gets its number.
        let (client3, server3) = pair();
        // SAFETY: `number` is ours (taken from server2); dup2 closes its socket atomically.
        assert!(unsafe { libc::dup2(server3.as_raw_fd(), number) } == number);
        drop(server3);
        let fresh = watch(number).unwrap();
        drop(stale);
        drop(client3);
        let told = tokio::time::timeout(Duration::from_secs(2), fresh).await;
        // SAFETY: still ours, closed once.
        unsafe { libc::close(number) };
        told.expect("the new socket is still watched after the old watch ended");
    }
}
