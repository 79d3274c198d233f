//! Replacing an instance's whole set of grants at once (pure): which grants to add, which to
//! give another role, which to remove, so that the instance ends with exactly the set asked for.
//!
//! A user entry stands for the grant with that user id; an email entry for the grant with that
//! email, an invitation or one already accepted (its email is kept), so that sending the same
//! set again after invitations were accepted changes nothing.

use std::collections::HashMap;

use uuid::Uuid;

use super::Subject;
use crate::domain::grant::Grant;

/// One grant of the set asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub subject: Subject,
    pub role: String,
}

/// What replacing the set takes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<Wanted>,
    /// (grant, its new role)
    pub set_role: Vec<(Uuid, String)>,
    pub remove: Vec<Uuid>,
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.set_role.is_empty() && self.remove.is_empty()
    }
}

/// Why a set cannot be applied; names the entries by their place in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    #[error("grants[{first}] and grants[{second}] name the same {what}")]
    Duplicate {
        first: usize,
        second: usize,
        what: String,
    },
    #[error(
        "grants[{first}] and grants[{second}] both stand for grant {grant} (user and email of one accepted invitation): keep one of them"
    )]
    SameGrant {
        first: usize,
        second: usize,
        grant: Uuid,
    },
}

/// The plan that turns `existing` into `wanted`.
pub fn plan(existing: &[Grant], wanted: &[Wanted]) -> Result<Plan, ReplaceError> {
    let mut by_user = HashMap::new();
    let mut by_email = HashMap::new();
    for g in existing {
        if let Some(u) = &g.user_id {
            by_user.insert(u.as_str(), g);
        }
        if let Some(e) = &g.email {
            by_email.insert(e.as_str(), g);
        }
    }
    let mut seen_subject: HashMap<(bool, &str), usize> = HashMap::new();
    let mut matched: HashMap<Uuid, usize> = HashMap::new();
    let mut plan = Plan::default();
    for (i, w) in wanted.iter().enumerate() {
        let (is_user, key, found) = match &w.subject {
            Subject::User(u) => (true, u.as_str(), by_user.get(u.as_str())),
            Subject::Email(e) => (false, e.as_str(), by_email.get(e.as_str())),
        };
        if let Some(&first) = seen_subject.get(&(is_user, key)) {
            return Err(ReplaceError::Duplicate {
                first,
                second: i,
                what: if is_user {
                    format!("user '{key}'")
                } else {
                    format!("email '{key}'")
                },
            });
        }
        seen_subject.insert((is_user, key), i);
        match found {
            None => plan.add.push(w.clone()),
            Some(g) => {
                if let Some(&first) = matched.get(&g.id) {
                    return Err(ReplaceError::SameGrant {
                        first,
                        second: i,
                        grant: g.id,
                    });
                }
                matched.insert(g.id, i);
                if g.role == w.role {
                    plan.unchanged += 1;
                } else {
                    plan.set_role.push((g.id, w.role.clone()));
                }
            }
        }
    }
    plan.remove = existing
        .iter()
        .filter(|g| !matched.contains_key(&g.id))
        .map(|g| g.id)
        .collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{Email, UserId};

    fn grant(user: Option<&str>, email: Option<&str>, role: &str) -> Grant {
        Grant {
            id: Uuid::new_v4(),
            user_id: user.map(str::to_owned),
            email: email.map(str::to_owned),
            role: role.into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            bound_at: None,
        }
    }

    fn user(u: &str, role: &str) -> Wanted {
        Wanted {
            subject: Subject::User(UserId::parse(u).unwrap()),
            role: role.into(),
        }
    }

    fn email(e: &str, role: &str) -> Wanted {
        Wanted {
            subject: Subject::Email(Email::parse(e).unwrap()),
            role: role.into(),
        }
    }

    #[test]
    fn adds_changes_removes_and_keeps() {
        let kept = grant(Some("auth0|a"), None, "member");
        let promoted = grant(Some("auth0|b"), None, "member");
        let gone = grant(Some("auth0|c"), None, "member");
        let invited = grant(None, Some("kim@corp.com"), "member");
        let existing = [kept.clone(), promoted.clone(), gone.clone(), invited];
        let p = plan(
            &existing,
            &[
                user("auth0|a", "member"),
                user("auth0|b", "admin"),
                email("kim@corp.com", "member"),
                user("auth0|new", "member"),
            ],
        )
        .unwrap();
        assert_eq!(p.add, vec![user("auth0|new", "member")]);
        assert_eq!(p.set_role, vec![(promoted.id, "admin".to_owned())]);
        assert_eq!(p.remove, vec![gone.id]);
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn an_accepted_invitation_is_named_by_its_email_or_its_user() {
        let accepted = grant(Some("auth0|kim"), Some("kim@corp.com"), "member");
        let existing = [accepted.clone()];
        for wanted in [email("kim@corp.com", "member"), user("auth0|kim", "member")] {
            let p = plan(&existing, &[wanted]).unwrap();
            assert!(p.is_empty(), "{p:?}");
        }
        assert_eq!(
            plan(
                &existing,
                &[email("kim@corp.com", "member"), user("auth0|kim", "admin")]
            ),
            Err(ReplaceError::SameGrant {
                first: 0,
                second: 1,
                grant: accepted.id
            })
        );
    }

    #[test]
    fn a_subject_twice_is_refused_naming_both_places() {
        let err = plan(
            &[],
            &[
                user("auth0|a", "member"),
                email("x@y.com", "member"),
                user("auth0|a", "admin"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "grants[0] and grants[2] name the same user 'auth0|a'"
        );
    }

    #[test]
    fn an_empty_set_removes_everything() {
        let existing = [
            grant(Some("auth0|a"), None, "member"),
            grant(None, Some("b@c.com"), "admin"),
        ];
        let p = plan(&existing, &[]).unwrap();
        assert_eq!(p.remove.len(), 2);
        assert!(p.add.is_empty() && p.set_role.is_empty());
    }

    proptest! {
        /// Applying the plan to the existing grants gives exactly the set asked for.
        #[test]
        fn applying_the_plan_gives_the_set_asked_for(
            have in proptest::collection::btree_map(0u8..40, any::<bool>(), 0..30),
            want in proptest::collection::btree_map(0u8..40, any::<bool>(), 0..30),
        ) {
            let role = |admin: bool| if admin { "admin" } else { "member" };
            let existing: Vec<Grant> = have
                .iter()
                .map(|(n, admin)| grant(Some(&format!("auth0|u{n}")), None, role(*admin)))
                .collect();
            let wanted: Vec<Wanted> = want
                .iter()
                .map(|(n, admin)| user(&format!("auth0|u{n}"), role(*admin)))
                .collect();
            let p = plan(&existing, &wanted).unwrap();
            let mut after: HashMap<String, String> = existing
                .iter()
                .filter(|g| !p.remove.contains(&g.id))
                .map(|g| {
                    let role = p
                        .set_role
                        .iter()
                        .find(|(id, _)| *id == g.id)
                        .map_or(g.role.clone(), |(_, r)| r.clone());
                    (g.user_id.clone().unwrap(), role)
                })
                .collect();
            for w in &p.add {
                let Subject::User(u) = &w.subject else { unreachable!() };
                prop_assert!(after.insert(u.as_str().to_owned(), w.role.clone()).is_none());
            }
            let expected: HashMap<String, String> = want
                .iter()
                .map(|(n, admin)| (format!("auth0|u{n}"), role(*admin).to_owned()))
                .collect();
            prop_assert_eq!(after, expected);
            prop_assert_eq!(p.unchanged + p.set_role.len() + p.add.len(), wanted.len());
        }
    }
}
