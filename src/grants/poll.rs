//! The poll an instance (or a person) makes for an instance's grants, as one use case: the
//! no-change answer from memory alone; a long-poll parked until the revision moves (at most
//! `wait`, at most so many per caller); the snapshot or delta read once per change for every
//! poll that change woke. What the caller is allowed to see is the handler's business, asked
//! again through `still_allowed` after every wait: a credential that ended while the poll
//! waited gets its refusal, never the next change.

use std::{future::Future, time::Duration};

use actix_web::web::Bytes;

use super::{Commands, GrantError};
use crate::domain::InstanceId;

/// What a poll asks.
pub struct Poll<'a> {
    pub instance: &'a InstanceId,
    /// The delta after this revision; None for the snapshot.
    pub since: Option<i64>,
    /// The revision the caller has (`since`, or its `If-None-Match`), if any.
    pub known: Option<i64>,
    /// How long to wait for a change when there is none (zero: answer at once).
    pub wait: Duration,
    /// Who waits, for the cap on parked polls per caller (an instance, whatever its keys; a
    /// user): asked only when the poll parks.
    pub caller: &'a dyn Fn() -> String,
}

/// What a poll answers.
#[derive(Debug)]
pub enum PollAnswer {
    /// The snapshot or delta (serialised) at this revision.
    Changed { revision: i64, body: Bytes },
    /// Nothing after this revision (the caller has it).
    Unchanged(i64),
}

#[derive(Debug)]
pub enum PollError<E> {
    /// The caller has this many polls parked already.
    TooManyParked(usize),
    Grant(GrantError),
    /// `still_allowed` refused the caller after a wait.
    Refused(E),
}

impl<E> From<GrantError> for PollError<E> {
    fn from(e: GrantError) -> Self {
        Self::Grant(e)
    }
}

impl Commands {
    /// Answers `poll`. `gone` completes when nobody waits for the answer any more (the client
    /// hung up): a parked poll then ends unanswered. `still_allowed` is asked after every wait,
    /// before anything is read.
    pub async fn poll<E, A, Fut>(
        &self,
        poll: Poll<'_>,
        gone: impl Future<Output = ()>,
        mut still_allowed: A,
    ) -> Result<PollAnswer, PollError<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let id = poll.instance.as_str();
        let revisions = &self.live().revisions;
        let mut gone = std::pin::pin!(gone);
        // The no-change path runs from memory only. The database is read when the memory says
        // something changed, or is not in step; if it then shows no change after all (this
        // replica had not heard of the caller's revision yet), the wait happens once more.
        let mut retried = false;
        loop {
            if let (Some(known), Some(current)) = (poll.known, revisions.current(id)) {
                let now = if current == known && !poll.wait.is_zero() {
                    let max = self.max_parked_per_caller();
                    let Some(_slot) = revisions.slot(&(poll.caller)(), max) else {
                        return Err(PollError::TooManyParked(max));
                    };
                    let waited = revisions.wait_past(id, known, poll.wait);
                    // Boxed: only a parked poll pays for the wait's state.
                    let parked = Box::pin(async {
                        tokio::select! {
                            now = waited => Some(now),
                            // Nobody to answer: stop waiting (the answer is never written).
                            () = gone.as_mut() => None,
                        }
                    });
                    let Some(now) = parked.await else {
                        return Ok(PollAnswer::Unchanged(known));
                    };
                    still_allowed().await.map_err(PollError::Refused)?;
                    now
                } else {
                    current
                };
                if now == known {
                    return Ok(PollAnswer::Unchanged(known));
                }
            }
            let (revision, body) = match revisions.current(id) {
                // Polls woken by the same change share one read.
                Some(at) => {
                    Box::pin(
                        self.live()
                            .answers
                            .get(id, poll.since, at, || self.read(poll.instance, poll.since)),
                    )
                    .await?
                }
                None => Box::pin(self.read(poll.instance, poll.since)).await?,
            };
            revisions.observe(id, revision);
            if poll.known != Some(revision) {
                return Ok(PollAnswer::Changed { revision, body });
            }
            if poll.wait.is_zero() || retried {
                return Ok(PollAnswer::Unchanged(revision));
            }
            retried = true;
        }
    }
}
