//! Every instance's current grants revision, in memory, with a way to wait for it to move.
//! Kept fresh by notifications (see `listener`), so the no-change poll needs no database.

use std::{
    sync::{
        RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use foldhash::HashMap;
use prometheus::{IntGauge, Opts};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct Revisions {
    by_instance: RwLock<HashMap<String, watch::Sender<i64>>>,
    /// Parked polls by caller (an instance, a user), for the per-caller cap.
    by_caller: std::sync::Mutex<HashMap<String, usize>>,
    synced: AtomicBool,
    /// Cancelled when the server shuts down: waits end at once.
    closing: CancellationToken,
    /// Polls waiting now (`fleetgate_grants_parked_polls`, registered with the other metrics).
    pub parked: IntGauge,
}

impl Default for Revisions {
    fn default() -> Self {
        let opts = Opts::new(
            "grants_parked_polls",
            "Grant polls waiting for a change on this replica.",
        )
        .namespace("fleetgate");
        Self {
            by_instance: RwLock::default(),
            by_caller: std::sync::Mutex::default(),
            synced: AtomicBool::default(),
            closing: CancellationToken::new(),
            parked: IntGauge::with_opts(opts).expect("valid metric"),
        }
    }
}

/// Counts a waiting poll for as long as it waits, also when its caller goes away.
struct Parked<'a>(&'a IntGauge);

impl<'a> Parked<'a> {
    fn new(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A caller's place among the polls parked now; given back when dropped.
pub struct Slot<'a> {
    revisions: &'a Revisions,
    caller: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut by_caller = self.revisions.by_caller.lock().expect("parked lock");
        if let Some(n) = by_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                by_caller.remove(&self.caller);
            }
        }
    }
}

impl Revisions {
    /// A place for one more parked poll of `caller`, unless it has `max` parked already.
    pub fn slot(&self, caller: &str, max: usize) -> Option<Slot<'_>> {
        let mut by_caller = self.by_caller.lock().expect("parked lock");
        let n = by_caller.entry(caller.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            revisions: self,
            caller: caller.to_owned(),
        })
    }

    /// The instance's revision (0 for one never changed), or None while the memory is not in
    /// step with the database.
    pub fn current(&self, instance_id: &str) -> Option<i64> {
        if !self.synced.load(Ordering::Acquire) {
            return None;
        }
        Some(
            self.by_instance
                .read()
                .expect("revisions lock")
                .get(instance_id)
                .map_or(0, |s| *s.borrow()),
        )
    }

    /// Records that an instance reached `revision` (never moves backwards) and wakes its
    /// waiters if that is news.
    pub fn observe(&self, instance_id: &str, revision: i64) {
        self.with_sender(instance_id, |s| {
            s.send_if_modified(|v| {
                let news = revision > *v;
                if news {
                    *v = revision;
                }
                news
            });
        });
    }

    /// Runs `f` on the instance's sender, created (at revision 0) on first use.
    fn with_sender<T>(&self, instance_id: &str, f: impl FnOnce(&watch::Sender<i64>) -> T) -> T {
        if let Some(s) = self
            .by_instance
            .read()
            .expect("revisions lock")
            .get(instance_id)
        {
            return f(s);
        }
        let mut map = self.by_instance.write().expect("revisions lock");
        f(map
            .entry(instance_id.to_owned())
            .or_insert_with(|| watch::Sender::new(0)))
    }

    /// Loads every revision (after a (re)connection) and marks the memory in step.
    pub fn load(&self, all: Vec<(String, i64)>) {
        for (id, revision) in all {
            self.observe(&id, revision);
        }
        self.synced.store(true, Ordering::Release);
    }

    pub fn mark_unsynced(&self) {
        self.synced.store(false, Ordering::Release);
    }

    /// Waits until the instance's revision differs from `known`, at most `timeout`, or until
    /// `close`; answers the revision then (which is `known` when nothing happened).
    pub async fn wait_past(&self, instance_id: &str, known: i64, timeout: Duration) -> i64 {
        let mut rx = self.with_sender(instance_id, watch::Sender::subscribe);
        let moved = rx.wait_for(|r| *r != known);
        let _parked = Parked::new(&self.parked);
        tokio::select! {
            waited = tokio::time::timeout(timeout, moved) => match waited {
                Ok(Ok(r)) => *r,
                _ => known,
            },
            () = self.closing.cancelled() => known,
        }
    }

    /// Ends every wait, now and from now on (the server is shutting down: a parked poll
    /// answers "no change" so its instance polls again elsewhere, instead of being cut off).
    pub fn close(&self) {
        self.closing.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn each_caller_has_a_bounded_number_of_slots() {
        let r = Revisions::default();
        let held: Vec<_> = (0..4)
            .map(|_| r.slot("instance:acme", 4).unwrap())
            .collect();
        assert!(r.slot("instance:acme", 4).is_none());
        assert!(
            r.slot("instance:beta", 4).is_some(),
            "others are not affected"
        );
        drop(held);
        assert!(r.slot("instance:acme", 4).is_some());
        assert!(
            r.by_caller.lock().unwrap().is_empty(),
            "nothing kept for idle callers"
        );
    }

    #[tokio::test]
    async fn revisions_only_move_forwards_and_wake_waiters() {
        let r = Arc::new(Revisions::default());
        assert_eq!(r.current("acme"), None, "not in step before loading");
        r.load(vec![("acme".into(), 3)]);
        assert_eq!(r.current("acme"), Some(3));
        assert_eq!(r.current("other"), Some(0));
        r.observe("acme", 2);
        assert_eq!(r.current("acme"), Some(3));

        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.wait_past("acme", 3, Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        r.observe("acme", 4);
        assert_eq!(waiter.await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_wait_without_news_ends_at_the_timeout() {
        let r = Revisions::default();
        r.load(vec![]);
        assert_eq!(r.wait_past("acme", 0, Duration::from_millis(20)).await, 0);
        // Already past: answers at once.
        r.observe("acme", 1);
        assert_eq!(r.wait_past("acme", 0, Duration::from_secs(10)).await, 1);
    }

    #[tokio::test]
    async fn closing_ends_every_wait_with_no_change() {
        let r = Arc::new(Revisions::default());
        r.load(vec![("acme".into(), 3)]);
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.wait_past("acme", 3, Duration::from_secs(3600)).await }
        });
        while r.parked.get() == 0 {
            tokio::task::yield_now().await;
        }
        r.close();
        assert_eq!(waiter.await.unwrap(), 3);
        assert_eq!(r.wait_past("acme", 3, Duration::from_secs(3600)).await, 3);
        assert_eq!(r.parked.get(), 0);
    }

    #[tokio::test]
    async fn parked_polls_are_counted_until_they_end_or_are_dropped() {
        let r = Arc::new(Revisions::default());
        r.load(vec![]);
        let answered = tokio::spawn({
            let r = r.clone();
            async move { r.wait_past("acme", 0, Duration::from_secs(3600)).await }
        });
        let abandoned = tokio::spawn({
            let r = r.clone();
            async move { r.wait_past("other", 0, Duration::from_secs(3600)).await }
        });
        while r.parked.get() < 2 {
            tokio::task::yield_now().await;
        }
        r.observe("acme", 1);
        assert_eq!(answered.await.unwrap(), 1);
        assert_eq!(r.parked.get(), 1);
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(r.parked.get(), 0, "a caller that went away is not counted");
    }
}
