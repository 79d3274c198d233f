//! One reconcile pass, serialised across replicas by a Postgres advisory lock held for the
//! pass, and recorded as a run with its trigger and outcome; the work itself is in `write`.

use serde_json::{Value, json};
use sqlx::ConnectOptions;

use super::{ReconcileError, Reconciler};
use crate::db;

/// Passes in a row after read-backs that showed someone else's change.
const MAX_REPAIRS: usize = 3;
/// Held for the length of a pass by whichever replica runs it.
pub const PASS_LOCK: i64 = 0x666c_6565_7467_6101;

/// What started a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This replica became the leader.
    Startup,
    /// The registry or the pool changed (a notification).
    Notify,
    /// The previous pass failed.
    Retry,
    /// The periodic full pass (`FLEETGATE_RECONCILE_CRON`).
    Cron,
    /// An admin's `POST /v1/reconcile`.
    Manual,
    /// A read-back showed someone else's concurrent change.
    Repair,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Notify => "notify",
            Self::Retry => "retry",
            Self::Cron => "cron",
            Self::Manual => "manual",
            Self::Repair => "repair",
        }
    }
}

/// How a pass ended, as its run records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Some list changed.
    Applied,
    /// Every list was already as wanted.
    Unchanged,
    /// Something could not be done (the run's error says what); the rest was.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
        }
    }
}

/// What the work of a pass did, before it is recorded.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// One entry per changed list: client id, field, added, removed, foreign.
    pub changes: Vec<Value>,
    /// A read-back differed from what was written.
    pub again: bool,
    pub problems: Vec<String>,
}

impl Work {
    fn outcome(&self) -> Outcome {
        if !self.problems.is_empty() {
            Outcome::Failed
        } else if !self.changes.is_empty() {
            Outcome::Applied
        } else {
            Outcome::Unchanged
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone)]
pub struct PassResult {
    pub run: db::reconcile::Run,
    /// The read-back differed from what was written: someone changed the list meanwhile.
    pub again: bool,
}

impl PassResult {
    pub fn failed(&self) -> bool {
        self.run.outcome == Outcome::Failed.as_str()
    }
}

impl Reconciler {
    /// Runs a pass, then repair passes while read-backs show someone else's concurrent change
    /// (at most `MAX_REPAIRS`); answers with the last pass.
    pub async fn run_settled(&self, trigger: Trigger) -> Result<PassResult, ReconcileError> {
        let mut result = self.run(trigger).await?;
        for _ in 0..MAX_REPAIRS {
            if !result.again {
                break;
            }
            result = self.run(Trigger::Repair).await?;
        }
        Ok(result)
    }

    /// Runs one pass, serialised with every other replica's, and records it.
    pub async fn run(&self, trigger: Trigger) -> Result<PassResult, ReconcileError> {
        // A connection of its own: if this process dies mid-pass, the lock goes with it.
        // Waiting for another pass is expected, not a slow statement to warn about.
        let options = (*self.pool.connect_options())
            .clone()
            .disable_statement_logging();
        let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PASS_LOCK)
            .execute(&mut lock)
            .await?;
        let result = self.run_locked(trigger).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PASS_LOCK)
            .execute(&mut lock)
            .await;
        result
    }

    async fn run_locked(&self, trigger: Trigger) -> Result<PassResult, ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        let interrupted = db::reconcile::close_interrupted_runs(&mut conn).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "closed runs of a pass that never finished");
        }
        let run_id = db::reconcile::start_run(&mut conn, trigger.as_str()).await?;
        *self.open_run.lock().expect("open run lock") = Some(run_id);
        drop(conn);
        let calls_before = self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let work = self.apply().await;
        self.metrics
            .reconcile_pass_seconds
            .with_label_values(&[trigger.as_str()])
            .observe(started.elapsed().as_secs_f64());
        let calls = (self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed)
            - calls_before) as i32;
        // The run's record and what the platform is told of it commit together.
        let mut tx = self.pool.begin().await?;
        let previous_failed = db::reconcile::last_pass_failed(&mut tx).await?;
        let (run, again) = match &work {
            Ok(work) => (
                db::reconcile::finish_run(
                    &mut tx,
                    run_id,
                    work.outcome().as_str(),
                    calls,
                    &Value::Array(work.changes.clone()),
                    summarize(&work.problems).as_deref(),
                )
                .await?,
                work.again,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reconcile pass failed");
                (
                    db::reconcile::finish_run(
                        &mut tx,
                        run_id,
                        Outcome::Failed.as_str(),
                        calls,
                        &json!([]),
                        Some(&e.to_string()),
                    )
                    .await?,
                    false,
                )
            }
        };
        self.settle(&mut tx, &run, previous_failed).await?;
        tx.commit().await?;
        *self.open_run.lock().expect("open run lock") = None;
        self.metrics
            .reconcile_runs
            .with_label_values(&[trigger.as_str(), run.outcome.as_str()])
            .inc();
        tracing::info!(
            run = run.id,
            trigger = trigger.as_str(),
            outcome = run.outcome,
            api_calls = calls,
            "reconcile pass finished"
        );
        Ok(PassResult { run, again })
    }
}

/// The problems of a pass as its error text: the first few, and how many more.
fn summarize(problems: &[String]) -> Option<String> {
    const SHOWN: usize = 10;
    match problems.len() {
        0 => None,
        n if n <= SHOWN => Some(problems.join("; ")),
        n => Some(format!(
            "{}; and {} more",
            problems[..SHOWN].join("; "),
            n - SHOWN
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_failed_by_any_problem_and_applied_by_any_change() {
        let change = || vec![json!({"field": "callbacks"})];
        let work = |changes: Vec<Value>, problems: Vec<String>| Work {
            changes,
            again: false,
            problems,
        };
        assert_eq!(work(vec![], vec![]).outcome(), Outcome::Unchanged);
        assert_eq!(work(change(), vec![]).outcome(), Outcome::Applied);
        assert_eq!(
            work(change(), vec!["full".into()]).outcome(),
            Outcome::Failed
        );
    }

    #[test]
    fn a_pass_error_names_ten_problems_and_counts_the_rest() {
        assert_eq!(summarize(&[]), None);
        let few: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
        assert_eq!(summarize(&few).as_deref(), Some("p0; p1; p2"));
        let many: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
        let text = summarize(&many).unwrap();
        assert!(
            text.starts_with("p0; p1;") && text.ends_with("p9; and 2 more"),
            "{text}"
        );
    }
}
