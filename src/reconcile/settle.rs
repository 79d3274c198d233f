//! What a pass leaves when it ends, in the transaction that records it: the instances it left
//! out of step, with each such URL and why (`unsynced_instances`, which the status page reads),
//! and what the platform is told: `reconcile.failed` when a streak of failed passes begins, and
//! (in `direct` mode, where a login waits for a pass) each instance's `instance.login_ready` /
//! `instance.login_failing`. One walk over the instances serves both.

use std::collections::HashMap;

use serde_json::json;
use sqlx::PgConnection;

use super::{
    ReconcileError, Reconciler,
    sync::{SyncState, UrlSync, live_at},
    views::failure,
};
use crate::{
    config::LoginMode,
    db::{self, reconcile::Run, unsynced::UnsyncedRow},
    domain::InstanceStatus,
    events::{
        Kind,
        login::{self, LoginNow, Told, Via},
    },
    registry::Instance,
};

impl Reconciler {
    /// Records what the pass `run` left, in the transaction that records the pass:
    /// `previous_failed` says whether the pass before it failed.
    pub(super) async fn settle(
        &self,
        conn: &mut PgConnection,
        run: &Run,
        previous_failed: bool,
    ) -> Result<(), ReconcileError> {
        if self.outbox.is_on() && run.outcome == super::Outcome::Failed.as_str() && !previous_failed
        {
            self.outbox
                .record(
                    conn,
                    Kind::ReconcileFailed,
                    None,
                    json!({
                        "run_id": run.id,
                        "trigger": run.trigger,
                        "error": run.error,
                        "finished_at": run.finished_at,
                    }),
                )
                .await?;
        }
        // In `relay` mode no instance logs in through the pool: nothing is out of step.
        if self.login_mode == LoginMode::Relay {
            db::unsynced::replace(conn, run.id, &[]).await?;
            return Ok(());
        }
        let telling = self.outbox.is_on() && self.login_mode == LoginMode::Direct;
        let told: HashMap<String, Told> = if telling {
            db::events::logins_told(conn)
                .await?
                .into_iter()
                .map(|(id, ready_hosts, failing)| {
                    (
                        id,
                        Told {
                            ready_hosts,
                            failing,
                        },
                    )
                })
                .collect()
        } else {
            HashMap::new()
        };
        let failure = failure(Some(run));
        let (mut news, mut unsynced) = (Vec::new(), Vec::new());
        self.each_sync(conn, failure.as_deref(), |instance, client_id, urls| {
            if telling {
                let now = login_now(instance, client_id, &urls);
                let before = told.get(instance.id.as_str()).cloned().unwrap_or_default();
                if login::news(&before, &now) != (None, before.clone()) {
                    news.push((instance.id.to_string(), before, now));
                }
            }
            let out: Vec<&UrlSync> = urls
                .iter()
                .filter(|u| u.state != SyncState::Synced)
                .collect();
            if !out.is_empty() {
                unsynced.push(UnsyncedRow {
                    instance_id: instance.id.to_string(),
                    status: instance.status.as_str().to_owned(),
                    client_id: client_id.map(str::to_owned),
                    urls: serde_json::to_value(out).expect("URLs serialise"),
                });
            }
        })
        .await?;
        db::unsynced::replace(conn, run.id, &unsynced).await?;
        for (id, before, now) in news {
            login::tell(conn, self.outbox, &id, Some(before), &now).await?;
        }
        Ok(())
    }
}

/// Whether an instance placed in the pool can log in, from its URLs' sync. Pure.
fn login_now(instance: &Instance, client_id: Option<&str>, urls: &[UrlSync]) -> LoginNow {
    if instance.status != InstanceStatus::Active || instance.domains.is_empty() {
        return LoginNow::Gone;
    }
    let hosts = instance.hostnames();
    if let Some(failed) = urls.iter().find(|u| u.state == SyncState::Failed) {
        return LoginNow::Failing {
            hosts,
            reason: failed.reason.clone().unwrap_or_default(),
        };
    }
    match live_at(client_id, urls) {
        Some(c) => LoginNow::Ready {
            hosts,
            via: Via::Application(c.to_owned()),
        },
        None => LoginNow::Pending,
    }
}
