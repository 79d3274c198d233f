//! What the platform is told after a pass, in the transaction that records it:
//! `reconcile.failed` when a streak of failed passes begins, and (in `direct` mode, where a
//! login waits for a pass) each instance's `instance.login_ready` / `instance.login_failing`.

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
    db::{self, reconcile::Run},
    domain::InstanceStatus,
    events::{
        Kind,
        login::{self, LoginNow, Told, Via},
    },
    registry::Instance,
};

impl Reconciler {
    /// `previous_failed`: whether the pass before this one failed.
    pub(super) async fn tell(
        &self,
        conn: &mut PgConnection,
        run: &Run,
        previous_failed: bool,
    ) -> Result<(), ReconcileError> {
        if !self.outbox.is_on() {
            return Ok(());
        }
        if run.outcome == super::Outcome::Failed.as_str() && !previous_failed {
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
        if self.login_mode != LoginMode::Direct {
            return Ok(());
        }
        let told: HashMap<String, Told> = db::events::logins_told(conn)
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
            .collect();
        let failure = failure(Some(run));
        let mut news = Vec::new();
        self.each_sync(conn, failure.as_deref(), |instance, client_id, urls| {
            let now = login_now(instance, client_id, &urls);
            let before = told.get(instance.id.as_str()).cloned().unwrap_or_default();
            if login::news(&before, &now) != (None, before.clone()) {
                news.push((instance.id.to_string(), before, now));
            }
        })
        .await?;
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
