//! Folding a run of changes into one delta, and applying a delta to a snapshot. Pure.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::grant::{Change, Delta, Grant, Snapshot};

/// What the changes after `from` (in revision order, up to `revision`) amount to. A grant
/// added and removed within the run does not appear; one added then updated appears once, as
/// added with its last state; one updated then removed appears as removed.
pub fn fold(instance_id: &str, from: i64, revision: i64, changes: &[Change]) -> Delta {
    // Per grant: was it present at `from`? (None = not yet known) and its latest state.
    enum Fate {
        New(Grant),
        Changed(Grant),
        Gone,
        NewThenGone,
    }
    let mut order: Vec<Uuid> = Vec::new();
    let mut fates: HashMap<Uuid, Fate> = HashMap::new();
    let mut owner = None;
    for change in changes {
        let (id, next) = match change {
            Change::Owner(o) => {
                owner = Some(o.clone());
                continue;
            }
            Change::Added(g) => (
                g.id,
                match fates.remove(&g.id) {
                    // Removed then added again under the same id cannot happen (ids are fresh),
                    // but if it did, the grant is simply present with this state.
                    Some(Fate::Gone) => Fate::Changed(g.clone()),
                    _ => Fate::New(g.clone()),
                },
            ),
            Change::Updated(g) => (
                g.id,
                match fates.remove(&g.id) {
                    Some(Fate::New(_)) | Some(Fate::NewThenGone) => Fate::New(g.clone()),
                    _ => Fate::Changed(g.clone()),
                },
            ),
            Change::Removed(id) => (
                *id,
                match fates.remove(id) {
                    Some(Fate::New(_)) | Some(Fate::NewThenGone) => Fate::NewThenGone,
                    _ => Fate::Gone,
                },
            ),
        };
        if !order.contains(&id) {
            order.push(id);
        }
        fates.insert(id, next);
    }
    let mut delta = Delta {
        instance_id: instance_id.to_owned(),
        from,
        revision,
        owner,
        ..Delta::default()
    };
    for id in order {
        match fates.remove(&id) {
            Some(Fate::New(g)) => delta.added.push(g),
            Some(Fate::Changed(g)) => delta.updated.push(g),
            Some(Fate::Gone) => delta.removed.push(id),
            Some(Fate::NewThenGone) | None => {}
        }
    }
    delta
}

/// The snapshot `delta` leads to from `snapshot` (which must be at `delta.from`). New grants
/// go to the end, as a snapshot lists them in creation order.
pub fn apply(snapshot: &Snapshot, delta: &Delta) -> Snapshot {
    let mut grants: Vec<Grant> = snapshot
        .grants
        .iter()
        .filter(|g| !delta.removed.contains(&g.id))
        .map(|g| {
            delta
                .updated
                .iter()
                .find(|u| u.id == g.id)
                .cloned()
                .unwrap_or_else(|| g.clone())
        })
        .collect();
    grants.extend(delta.added.iter().cloned());
    Snapshot {
        instance_id: snapshot.instance_id.clone(),
        revision: delta.revision,
        owner: delta
            .owner
            .clone()
            .unwrap_or_else(|| snapshot.owner.clone()),
        grants,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::*;

    fn grant(n: u8, role: &str) -> Grant {
        Grant {
            id: Uuid::from_u128(n as u128),
            user_id: Some(format!("auth0|u{n}")),
            email: None,
            role: role.to_owned(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            bound_at: None,
        }
    }

    /// Plays operations against a model of the grants, yielding the change log they write.
    #[derive(Debug, Clone)]
    enum Op {
        Add,
        Update(usize, bool),
        Remove(usize),
        Owner(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Add),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(i, admin)| Op::Update(i, admin)),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => (0u8..3).prop_map(Op::Owner),
        ]
    }

    /// The log and the snapshot after each revision.
    fn play(ops: &[Op]) -> (Vec<Change>, Vec<Snapshot>) {
        let mut state = Snapshot {
            instance_id: "acme".into(),
            revision: 0,
            owner: "auth0|owner".into(),
            grants: vec![],
        };
        let mut log = vec![];
        let mut states = vec![state.clone()];
        let mut next_id = 0u8;
        for op in ops {
            let change = match op {
                Op::Add => {
                    next_id += 1;
                    let g = grant(next_id, "member");
                    state.grants.push(g.clone());
                    Change::Added(g)
                }
                Op::Update(i, admin) if !state.grants.is_empty() => {
                    let n = i % state.grants.len();
                    state.grants[n].role = if *admin { "admin" } else { "member" }.into();
                    Change::Updated(state.grants[n].clone())
                }
                Op::Remove(i) if !state.grants.is_empty() => {
                    let g = state.grants.remove(i % state.grants.len());
                    Change::Removed(g.id)
                }
                Op::Owner(n) => {
                    state.owner = format!("auth0|owner{n}");
                    Change::Owner(state.owner.clone())
                }
                _ => continue,
            };
            state.revision += 1;
            log.push(change);
            states.push(state.clone());
        }
        (log, states)
    }

    proptest! {
        /// From any revision, the folded delta brings that snapshot to the latest one.
        #[test]
        fn a_delta_from_any_revision_reaches_the_latest_snapshot(
            ops in proptest::collection::vec(op(), 0..40),
            pick in any::<usize>(),
        ) {
            let (log, states) = play(&ops);
            let latest = states.last().unwrap();
            let from = pick % states.len();
            let delta = fold("acme", from as i64, latest.revision, &log[from..]);
            prop_assert_eq!(&apply(&states[from], &delta), latest);
        }

        /// A delta names each grant at most once.
        #[test]
        fn a_delta_names_each_grant_once(ops in proptest::collection::vec(op(), 0..40)) {
            let (log, states) = play(&ops);
            let delta = fold("acme", 0, states.last().unwrap().revision, &log);
            let mut ids: Vec<Uuid> = delta.added.iter().chain(&delta.updated).map(|g| g.id)
                .chain(delta.removed.iter().copied()).collect();
            let n = ids.len();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), n);
        }
    }

    #[test]
    fn added_then_removed_leaves_nothing() {
        let g = grant(1, "member");
        let delta = fold(
            "acme",
            0,
            2,
            &[Change::Added(g.clone()), Change::Removed(g.id)],
        );
        assert!(delta.added.is_empty() && delta.updated.is_empty() && delta.removed.is_empty());
    }

    #[test]
    fn updated_then_removed_is_removed() {
        let g = grant(1, "admin");
        let delta = fold(
            "acme",
            3,
            5,
            &[Change::Updated(g.clone()), Change::Removed(g.id)],
        );
        assert_eq!(delta.removed, vec![g.id]);
        assert!(delta.updated.is_empty());
    }
}
