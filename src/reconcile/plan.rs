//! From desired, actual and owned entries to what a list becomes. Pure.
//!
//! fleetgate removes only entries it added ("owned") and no longer wants; every other entry
//! (a person's, or one that was there before fleetgate wanted it) is foreign: kept where it
//! stands and reported. Existing entries keep their order; new ones are appended.

use std::collections::{BTreeSet, HashSet};

use crate::domain::{Field, field::MAX_URLS_PER_FIELD};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldPlan {
    pub field: Field,
    /// The list to write.
    pub next: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Entries fleetgate did not add: kept, never removed.
    pub foreign: Vec<String>,
    /// What fleetgate owns once `next` is written.
    #[serde(skip)]
    pub owned_after: BTreeSet<String>,
}

impl FieldPlan {
    pub fn changes(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }
}

/// The list would exceed Auth0's cap; it is reported, never truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{field} would hold {needed} entries, more than Auth0's limit of {limit}")]
pub struct OverCap {
    pub field: Field,
    pub needed: usize,
    pub limit: usize,
}

pub fn plan_field(
    field: Field,
    desired: &[String],
    actual: &[String],
    owned: &BTreeSet<String>,
) -> Result<FieldPlan, OverCap> {
    let wanted: HashSet<&String> = desired.iter().collect();
    let mut next = Vec::with_capacity(actual.len() + desired.len());
    let mut removed = Vec::new();
    let mut foreign = Vec::new();
    for entry in actual {
        let ours = owned.contains(entry);
        if ours && !wanted.contains(entry) {
            removed.push(entry.clone());
            continue;
        }
        if !ours {
            foreign.push(entry.clone());
        }
        next.push(entry.clone());
    }
    let present: HashSet<String> = next.iter().cloned().collect();
    let added: Vec<String> = {
        let mut seen = HashSet::new();
        desired
            .iter()
            .filter(|e| !present.contains(*e) && seen.insert(*e))
            .cloned()
            .collect()
    };
    next.extend(added.iter().cloned());
    if next.len() > MAX_URLS_PER_FIELD {
        return Err(OverCap {
            field,
            needed: next.len(),
            limit: MAX_URLS_PER_FIELD,
        });
    }
    let owned_after = owned
        .iter()
        .filter(|e| present.contains(*e))
        .chain(&added)
        .cloned()
        .collect();
    Ok(FieldPlan {
        field,
        next,
        added,
        removed,
        foreign,
        owned_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn removes_only_what_it_owns_and_appends_new() {
        let owned: BTreeSet<String> = s(&["o1", "o2"]).into_iter().collect();
        let p = plan_field(
            Field::Callbacks,
            &s(&["o1", "n1", "p1"]),
            &s(&["p1", "o1", "p2", "o2"]),
            &owned,
        )
        .unwrap();
        assert_eq!(p.next, s(&["p1", "o1", "p2", "n1"]));
        assert_eq!(p.added, s(&["n1"]));
        assert_eq!(p.removed, s(&["o2"]));
        assert_eq!(
            p.foreign,
            s(&["p1", "p2"]),
            "p1 was there before fleetgate wanted it: still not ours"
        );
        assert_eq!(p.owned_after, s(&["n1", "o1"]).into_iter().collect());
        // Later, nobody wants p1: it stays, because fleetgate never added it.
        let again = plan_field(Field::Callbacks, &[], &p.next, &p.owned_after).unwrap();
        assert_eq!(again.next, s(&["p1", "p2"]));
    }

    #[test]
    fn the_cap_is_reported_not_truncated() {
        let desired: Vec<String> = (0..100).map(|i| format!("https://h{i}.com")).collect();
        let e = plan_field(
            Field::WebOrigins,
            &desired,
            &s(&["https://someone.com"]),
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            OverCap {
                field: Field::WebOrigins,
                needed: 101,
                limit: 100
            }
        );
        assert!(plan_field(Field::WebOrigins, &desired, &[], &BTreeSet::new()).is_ok());
    }

    fn entry() -> impl Strategy<Value = String> {
        "[a-h]".prop_map(|c| format!("https://{c}.example.com"))
    }

    proptest! {
        #[test]
        fn plan_properties(
            desired in proptest::collection::vec(entry(), 0..8),
            actual in proptest::collection::vec(entry(), 0..8),
            owned in proptest::collection::btree_set(entry(), 0..8),
        ) {
            let p = plan_field(Field::Callbacks, &desired, &actual, &owned).unwrap();
            // Foreign entries always survive, as often as they were there.
            for e in actual.iter().filter(|e| !owned.contains(*e)) {
                prop_assert_eq!(p.next.iter().filter(|x| *x == e).count(), actual.iter().filter(|x| *x == e).count());
            }
            // Everything desired is there; owned entries nobody wants are gone.
            for e in &desired {
                prop_assert!(p.next.contains(e));
            }
            for e in owned.iter().filter(|e| !desired.contains(e)) {
                prop_assert!(!p.next.contains(e));
            }
            // Kept entries keep their relative order, and come before the added ones.
            let kept: Vec<&String> = actual.iter().filter(|e| !owned.contains(*e) || desired.contains(e)).collect();
            prop_assert_eq!(p.next[..kept.len()].iter().collect::<Vec<_>>(), kept);
            prop_assert_eq!(&p.next[p.next.len() - p.added.len()..], &p.added[..]);
            // Applying the plan and planning again changes nothing.
            let again = plan_field(Field::Callbacks, &desired, &p.next, &p.owned_after).unwrap();
            prop_assert!(!again.changes());
            prop_assert_eq!(&again.next, &p.next);
            prop_assert_eq!(&again.owned_after, &p.owned_after);
        }
    }
}
