//! Answers to polls, shared: when one change wakes many long-polls of an instance, the first
//! reads the database and the rest reuse its answer instead of each reading it again.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::OnceCell;

/// An answer body at a revision.
pub type Answer = (i64, actix_web::web::Bytes);

/// What a poll asks: the instance, and `since` (None for the snapshot).
type Key = (String, Option<i64>);

/// The revision an answer was asked at, and the answer once read.
type Slot = (i64, Arc<OnceCell<Answer>>);

/// Entries beyond this are dropped wholesale (they are only useful for an instant).
const MAX_ENTRIES: usize = 1024;

#[derive(Default)]
pub struct Answers {
    /// Per question, the answer for the newest revision asked about.
    cells: Mutex<HashMap<Key, Slot>>,
}

impl Answers {
    /// The answer to `(instance, since)` as of revision `at_least` (or later): computed once by
    /// `read`, shared with every caller asking the same at the same revision. Failures are not
    /// kept.
    pub async fn get<E, F, Fut>(
        &self,
        instance: &str,
        since: Option<i64>,
        at_least: i64,
        read: F,
    ) -> Result<Answer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("answers lock");
            let key = (instance.to_owned(), since);
            match cells.get(&key) {
                Some((rev, cell)) if *rev == at_least => cell.clone(),
                Some((rev, _)) if *rev > at_least => {
                    // Asked about an older revision than the one kept: do not disturb it.
                    Arc::new(OnceCell::new())
                }
                _ => {
                    if cells.len() >= MAX_ENTRIES {
                        cells.clear();
                    }
                    let cell = Arc::new(OnceCell::new());
                    cells.insert(key, (at_least, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(read).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_read_serves_everyone_asking_at_a_revision() {
        let answers = Arc::new(Answers::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let ask = |at: i64| {
            let (answers, reads) = (answers.clone(), reads.clone());
            async move {
                answers
                    .get("acme", None, at, || async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, ()>((at, actix_web::web::Bytes::from(format!("r{at}"))))
                    })
                    .await
                    .unwrap()
            }
        };
        let all = futures_util::future::join_all((0..50).map(|_| ask(3))).await;
        assert!(all.iter().all(|a| a.0 == 3));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(ask(4).await.0, 4);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A question about an older revision reads afresh without evicting the newer answer.
        ask(3).await;
        ask(4).await;
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn failures_are_not_kept() {
        let answers = Answers::default();
        let failed = answers
            .get("acme", Some(1), 2, || async { Err::<Answer, _>("down") })
            .await;
        assert!(failed.is_err());
        let ok = answers
            .get("acme", Some(1), 2, || async {
                Ok::<_, &str>((2, actix_web::web::Bytes::from_static(b"{}")))
            })
            .await;
        assert_eq!(ok.unwrap().0, 2);
    }
}
