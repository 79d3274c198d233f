//! The writing half of a pass: record where instances now go (and audit moves), then for each
//! application plan its lists, write ahead what fleetgate will own, PATCH the changed fields,
//! read them back, and record what fleetgate owns and what the lists hold.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sqlx::Acquire;

use super::{
    ApplicationPlan, ReconcileError, Reconciler,
    deployment::{self, Stance},
    pass::Work,
    placement::AppLists,
    plan::FieldPlan,
    reconciler::{lists_of, plan_lists},
};
use crate::{db, domain::Field};

impl Reconciler {
    /// Records what fleetgate now owns on each list (what it kept plus what it added: owned
    /// entries that are gone and unwanted are forgotten, so a person adding one later is not
    /// mistaken for fleetgate) and the lists as read.
    async fn record(
        &self,
        conn: &mut sqlx::PgConnection,
        plan: &ApplicationPlan,
        lists: &BTreeMap<Field, Vec<String>>,
    ) -> Result<(), ReconcileError> {
        let mut tx = conn.begin().await?;
        for p in &plan.fields {
            let owned: Vec<String> = p.owned_after.iter().cloned().collect();
            db::reconcile::set_owned(&mut tx, &plan.client_id, p.field.name(), &owned).await?;
        }
        for (field, list) in lists {
            db::reconcile::save_snapshot(&mut tx, &plan.client_id, field.name(), list).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Places instances (creating applications if allowed), then for each application: plan,
    /// write ahead what will be owned, PATCH the changed fields, read back, record.
    pub(super) async fn apply(&self) -> Result<Work, ReconcileError> {
        self.settle_creations().await?;
        let mut survey = self.survey(self.settings.auto_create_applications).await?;
        if let Some(relay) = &self.relay {
            let wrong = self.keep_relay_app(relay).await?;
            survey.problems.extend(wrong);
        }
        let mut conn = self.pool.acquire().await?;
        for client_id in &survey.vanished {
            self.forget_vanished(&mut conn, client_id).await?;
        }
        {
            let mut tx = conn.begin().await?;
            for (id, p) in &survey.placements {
                let Some(client_id) = p.client_id() else {
                    continue;
                };
                let before = survey.current.get(id).map(String::as_str);
                if before == Some(client_id) {
                    continue;
                }
                // Only from what the survey saw: an admin's move made since wins, and the
                // notification it sent brings another pass.
                let moved = db::applications::reassign(&mut tx, id, before, client_id).await?;
                if moved && before.is_some() {
                    db::audit::record(
                        &mut tx,
                        db::audit::NewEntry {
                            actor: "reconciler",
                            action: "instance.moved",
                            target_type: "instance",
                            target_id: id,
                            before: Some(json!({ "client_id": before })),
                            after: Some(json!({ "client_id": client_id, "reason": "outgrew its application" })),
                            request_id: None,
                        },
                    )
                    .await?;
                }
            }
            db::applications::unassign_deleted(&mut tx, &survey.deleted).await?;
            tx.commit().await?;
        }
        let mut work = Work::default();
        let ours = survey.deployment.clone();
        for app in &survey.apps {
            let mark = match &app.stance {
                Stance::Ours => None,
                Stance::Mark => Some(None),
                Stance::TakeOver { from } => Some(Some(from.as_str())),
                Stance::Theirs { other } => {
                    survey
                        .problems
                        .push(deployment::refusal(&app.client_id, other, &ours));
                    continue;
                }
            };
            let desired = self.desired_for(&survey, &app.client_id);
            let plan = plan_lists(&app.client_id, &desired, &app.actual, &app.owned);
            for p in &plan.fields {
                let labels = [app.client_id.as_str(), p.field.name()];
                self.metrics
                    .foreign_entries
                    .with_label_values(&labels)
                    .set(p.foreign.len() as f64);
                self.metrics
                    .allowlist_fill_ratio
                    .with_label_values(&labels)
                    .set(p.next.len() as f64 / self.cap() as f64);
            }
            if !plan.over_cap.is_empty() {
                survey.problems.extend(
                    plan.over_cap
                        .iter()
                        .map(|e| format!("application {}: {e}", app.client_id)),
                );
                continue;
            }
            if let Some(from) = mark
                && let Err(e) = self.mark(&mut conn, &app.client_id, &ours, from).await
            {
                survey.problems.push(format!(
                    "application {}: its deployment mark (client_metadata.{}) could not be written, so it was left alone: {e}",
                    app.client_id,
                    deployment::MARK
                ));
                continue;
            }
            let restored = self.removed_by_hand(&mut conn, app, &plan).await?;
            let (applied, changed_again) = self.apply_one(&mut conn, &plan, &app.actual).await?;
            self.note_restored(&mut conn, &app.client_id, &restored)
                .await?;
            work.changes.extend(applied);
            work.again |= changed_again;
        }
        work.problems = survey.problems;
        Ok(work)
    }

    /// Takes an application that no longer exists in the tenant (deleted by hand) out of the
    /// pool, with its assignments, so this pass places its instances again; audited. (The
    /// survey made it the pass's problem: the pass fails once, and the alert on failing passes
    /// tells someone.)
    async fn forget_vanished(
        &self,
        conn: &mut sqlx::PgConnection,
        client_id: &str,
    ) -> Result<(), ReconcileError> {
        // Its gauges go with it (a fill alert must not keep firing for it).
        for field in crate::domain::Field::ALL {
            let labels = [client_id, field.name()];
            let _ = self
                .metrics
                .allowlist_fill_ratio
                .remove_label_values(&labels);
            let _ = self.metrics.foreign_entries.remove_label_values(&labels);
        }
        let mut tx = conn.begin().await?;
        let instances = db::applications::unassign_all(&mut tx, client_id).await?;
        db::applications::remove(&mut tx, client_id).await?;
        db::audit::record(
            &mut tx,
            db::audit::NewEntry {
                actor: "reconciler",
                action: "application.vanished",
                target_type: "application",
                target_id: client_id,
                before: Some(json!({ "instances": instances })),
                after: None,
                request_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::error!(
            client_id,
            instances,
            "an application of the pool no longer exists in the tenant; its instances are placed again"
        );
        Ok(())
    }

    /// The entries on each list that fleetgate wrote, that the last read-back still saw, and
    /// that are gone now (removed by someone else) and wanted back: the plan re-adds them.
    /// (An entry owned ahead of a write that never landed was never seen, so it is no loss.)
    /// The last read-back is read only when the plan re-adds an owned entry (rarely: new
    /// entries are not owned until this pass writes them ahead).
    async fn removed_by_hand(
        &self,
        conn: &mut sqlx::PgConnection,
        app: &AppLists,
        plan: &ApplicationPlan,
    ) -> Result<Vec<Restored>, ReconcileError> {
        let readds_owned = plan.fields.iter().any(|p| {
            let owned = app.owned.get(p.field.name());
            p.added.iter().any(|e| owned.is_some_and(|o| o.contains(e)))
        });
        if !readds_owned {
            return Ok(Vec::new());
        }
        let seen = db::reconcile::snapshots(conn, &app.client_id).await?;
        Ok(restored(app, plan, &seen))
    }

    /// Counts entries written back (`fleetgate_allowlist_entries_restored_total`) and audits a
    /// list that was found emptied.
    async fn note_restored(
        &self,
        conn: &mut sqlx::PgConnection,
        client_id: &str,
        restored: &[Restored],
    ) -> Result<(), ReconcileError> {
        for &Restored {
            field,
            entries: n,
            emptied,
        } in restored
        {
            self.metrics
                .entries_restored
                .with_label_values(&[field.name()])
                .inc_by(n as u64);
            tracing::warn!(client_id, %field, restored = n, emptied, "entries fleetgate wrote were removed by someone else; written back");
            if emptied {
                db::audit::record(
                    conn,
                    db::audit::NewEntry {
                        actor: "reconciler",
                        action: "application.list_restored",
                        target_type: "application",
                        target_id: client_id,
                        before: Some(json!({ "field": field, "entries": 0 })),
                        after: Some(json!({ "field": field, "restored": n })),
                        request_id: None,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Marks an application as this deployment's (`from`: the deployment it is taken over
    /// from, audited).
    async fn mark(
        &self,
        conn: &mut sqlx::PgConnection,
        client_id: &str,
        ours: &str,
        from: Option<&str>,
    ) -> Result<(), ReconcileError> {
        self.client
            .patch_client(
                client_id,
                &json!({ "client_metadata": { deployment::MARK: ours } }),
            )
            .await?;
        let Some(from) = from else {
            return Ok(());
        };
        tracing::warn!(
            client_id,
            from,
            "took over an application another deployment managed"
        );
        db::audit::record(
            conn,
            db::audit::NewEntry {
                actor: "reconciler",
                action: "application.taken_over",
                target_type: "application",
                target_id: client_id,
                before: Some(json!({ "deployment": from })),
                after: Some(json!({ "deployment": ours })),
                request_id: None,
            },
        )
        .await?;
        Ok(())
    }

    async fn apply_one(
        &self,
        conn: &mut sqlx::PgConnection,
        plan: &ApplicationPlan,
        actual: &BTreeMap<Field, Vec<String>>,
    ) -> Result<(Vec<Value>, bool), ReconcileError> {
        let client_id = plan.client_id.as_str();
        let changed: Vec<&FieldPlan> = plan.fields.iter().filter(|p| p.changes()).collect();
        if changed.is_empty() {
            self.record(conn, plan, actual).await?;
            return Ok((Vec::new(), false));
        }
        // Write-ahead: own what is about to be added, so that an interrupted pass can never
        // leave fleetgate's own entries looking foreign (and so never removable).
        {
            let mut tx = conn.begin().await?;
            for p in &changed {
                db::reconcile::own(&mut tx, client_id, p.field.name(), &p.added).await?;
            }
            tx.commit().await?;
        }
        let body: Map<String, Value> = changed
            .iter()
            .map(|p| (p.field.name().to_owned(), json!(p.next)))
            .collect();
        self.client
            .patch_client(client_id, &Value::Object(body))
            .await?;
        let read_back = lists_of(
            &self
                .client
                .get_client(client_id, &Field::ALL.map(Field::name))
                .await?,
        );
        let mut again = false;
        for p in &changed {
            if read_back[&p.field] != p.next {
                tracing::warn!(client_id, field = %p.field, "the list changed between write and read-back; another pass follows");
                again = true;
            }
        }
        self.record(conn, plan, &read_back).await?;
        let changes = changed
            .iter()
            .map(|p| json!({"client_id": client_id, "field": p.field, "added": p.added, "removed": p.removed, "foreign": p.foreign}))
            .collect();
        Ok((changes, again))
    }
}

/// Entries of one list written back.
#[derive(Debug, PartialEq, Eq)]
struct Restored {
    field: Field,
    entries: usize,
    /// The list was found empty.
    emptied: bool,
}

/// Per list, the entries the plan re-adds that fleetgate owned and the last read-back (`seen`,
/// field name → entries) still saw: removed by someone else since. Pure.
fn restored(
    app: &AppLists,
    plan: &ApplicationPlan,
    seen: &BTreeMap<String, Vec<String>>,
) -> Vec<Restored> {
    plan.fields
        .iter()
        .filter_map(|p| {
            let owned = app.owned.get(p.field.name())?;
            let last = seen.get(p.field.name())?;
            let entries = p
                .added
                .iter()
                .filter(|e| owned.contains(*e) && last.contains(*e))
                .count();
            (entries > 0).then(|| Restored {
                field: p.field,
                entries,
                emptied: app.actual.get(&p.field).is_none_or(Vec::is_empty),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_written_seen_and_gone_count_as_removed_by_hand() {
        let entry = |s: &str| format!("https://{s}.example/cb");
        let mut app = AppLists::empty("app");
        app.owned.insert(
            "callbacks".into(),
            [entry("seen"), entry("never-landed")].into(),
        );
        let desired = |entries: Vec<String>| {
            Field::ALL
                .into_iter()
                .map(|f| {
                    (
                        f,
                        if f == Field::Callbacks {
                            entries.clone()
                        } else {
                            Vec::new()
                        },
                    )
                })
                .collect()
        };
        let plan = plan_lists(
            "app",
            &desired(vec![entry("seen"), entry("never-landed"), entry("new")]),
            &app.actual,
            &app.owned,
        );
        let seen = [("callbacks".to_owned(), vec![entry("seen")])].into();
        assert_eq!(
            restored(&app, &plan, &seen),
            [Restored {
                field: Field::Callbacks,
                entries: 1,
                emptied: true
            }],
            "not the entry owned ahead of a write that never landed, nor a new one"
        );
        assert!(restored(&app, &plan, &BTreeMap::new()).is_empty());
    }
}
