//! The roster: what a login decision reads, in this replica's memory — the instance a host
//! names, its status and owner, its grants and unbound invitations.
//!
//! Two parts, each with its own clock, so an older read never replaces a newer one:
//! - an instance's facts (status, owner, hosts) at its `version`, which moves on every write
//!   of its row in commit order (see the `instance_versions` migration); they come from the
//!   load, from this replica's own registry writes, and from `fleetgate_instances`
//!   notifications (read again by `listener`);
//! - its grants at their revision, read again on demand when the revision this replica heard
//!   of (`revisions`) is past them (see `login`).
//!
//! Until it is loaded, and while the notification connection is down, the roster is not in
//! step and callers read the database instead.

use std::sync::{
    Arc, Mutex, RwLock,
    atomic::{AtomicBool, Ordering},
};

use foldhash::{HashMap, HashMapExt, HashSet};
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::domain::InstanceStatus;

/// An instance's facts as the registry holds them, at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    pub version: i64,
    pub status: InstanceStatus,
    pub owner: String,
    pub hosts: Vec<String>,
}

impl TryFrom<crate::db::roster::FactsRow> for InstanceFacts {
    type Error = crate::domain::ParseError;

    fn try_from(row: crate::db::roster::FactsRow) -> Result<Self, Self::Error> {
        Ok(Self {
            status: row.status.parse()?,
            id: row.id,
            version: row.version,
            owner: row.owner,
            hosts: row.hosts,
        })
    }
}

/// An instance's grants at a revision: each user's role, and the role of each unbound
/// invitation by email. Sorted, searched by halving: compact for millions of grants.
#[derive(Debug)]
pub struct GrantSet {
    revision: i64,
    users: Box<[(Box<str>, Arc<str>)]>,
    invited: Box<[(Box<str>, Arc<str>)]>,
}

impl GrantSet {
    /// Grants not read yet: older than any revision, so the first decision reads them.
    fn unknown() -> Arc<Self> {
        Arc::new(Self {
            revision: -1,
            users: Box::default(),
            invited: Box::default(),
        })
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The role of the user's own grant.
    pub fn role_of(&self, user_id: &str) -> Option<&str> {
        find(&self.users, user_id)
    }

    /// The role of the unbound invitation to this email.
    pub fn invitation_for(&self, email: &str) -> Option<&str> {
        find(&self.invited, email)
    }
}

fn find<'a>(sorted: &'a [(Box<str>, Arc<str>)], key: &str) -> Option<&'a str> {
    sorted
        .binary_search_by(|(k, _)| (**k).cmp(key))
        .ok()
        .map(|i| &*sorted[i].1)
}

/// Builds grant sets, sharing one copy of each role name among them all.
#[derive(Default)]
pub struct GrantSets {
    roles: HashSet<Arc<str>>,
}

/// An instance's grants as they are read, before they become a [`GrantSet`].
#[derive(Default)]
pub struct Subjects {
    users: Vec<(Box<str>, Arc<str>)>,
    invited: Vec<(Box<str>, Arc<str>)>,
}

impl GrantSets {
    /// Adds a user's grant (`user_id`) or else an invitation (`email`) to `to`.
    pub fn add(
        &mut self,
        to: &mut Subjects,
        user_id: Option<String>,
        email: Option<String>,
        role: &str,
    ) {
        let role = self.role(role);
        match (user_id, email) {
            (Some(user), _) => to.users.push((user.into_boxed_str(), role)),
            (None, Some(email)) => to.invited.push((email.into_boxed_str(), role)),
            (None, None) => {}
        }
    }

    /// The set at `revision` of these (subject, role) pairs: users, and invitations by email.
    pub fn build(
        &mut self,
        revision: i64,
        users: impl IntoIterator<Item = (String, String)>,
        invited: impl IntoIterator<Item = (String, String)>,
    ) -> Arc<GrantSet> {
        let mut subjects = Subjects::default();
        for (user, role) in users {
            self.add(&mut subjects, Some(user), None, &role);
        }
        for (email, role) in invited {
            self.add(&mut subjects, None, Some(email), &role);
        }
        Self::finish(revision, subjects)
    }

    pub fn finish(revision: i64, subjects: Subjects) -> Arc<GrantSet> {
        let sorted = |mut v: Vec<(Box<str>, Arc<str>)>| {
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            v.into_boxed_slice()
        };
        Arc::new(GrantSet {
            revision,
            users: sorted(subjects.users),
            invited: sorted(subjects.invited),
        })
    }

    fn role(&mut self, role: &str) -> Arc<str> {
        if let Some(r) = self.roles.get(role) {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(role);
        self.roles.insert(r.clone());
        r
    }
}

/// One instance as the roster holds it.
#[derive(Debug)]
pub struct Entry {
    pub id: Arc<str>,
    pub version: i64,
    pub status: InstanceStatus,
    pub owner: Box<str>,
    hosts: Box<[Box<str>]>,
    pub grants: Arc<GrantSet>,
}

/// Which instance a lookup is for.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Host(&'a str),
    Id(&'a str),
}

#[derive(Default)]
struct State {
    instances: HashMap<Arc<str>, Arc<Entry>>,
    hosts: HashMap<Box<str>, Arc<str>>,
}

impl State {
    /// Puts `entry` in place of the instance's previous one, moving its hosts. A host another
    /// instance holds in memory now is left to it (that instance's newer facts took it).
    fn put(&mut self, entry: Entry) {
        let entry = Arc::new(entry);
        if let Some(old) = self.instances.get(&entry.id) {
            for h in &old.hosts {
                if self.hosts.get(h).is_some_and(|id| *id == entry.id) {
                    self.hosts.remove(h);
                }
            }
        }
        for h in &entry.hosts {
            self.hosts.insert(h.clone(), entry.id.clone());
        }
        self.instances.insert(entry.id.clone(), entry);
    }
}

pub struct Roster {
    state: RwLock<State>,
    sets: Mutex<GrantSets>,
    synced: AtomicBool,
    /// Where login decisions found their facts (`fleetgate_login_facts_total{from}`):
    /// `memory`, `reread` (the instance's grants read again first), `miss` (the database: the
    /// roster in step but not holding the instance — made a moment ago elsewhere, or unknown),
    /// `database` (the roster was not in step).
    pub reads: IntCounterVec,
    /// The series of `reads`, resolved once (a decision counts without a lookup).
    pub from_memory: IntCounter,
    pub from_reread: IntCounter,
    pub from_miss: IntCounter,
    pub from_database: IntCounter,
}

impl Default for Roster {
    fn default() -> Self {
        let opts = Opts::new(
            "login_facts_total",
            "Where login decisions found what they decide on: memory, reread (the instance's grants read again first), miss (the database: memory in step but not holding the instance), database (memory not in step).",
        )
        .namespace("fleetgate");
        let reads = IntCounterVec::new(opts, &["from"]).expect("valid metric");
        Self {
            state: RwLock::default(),
            sets: Mutex::default(),
            synced: AtomicBool::default(),
            from_memory: reads.with_label_values(&["memory"]),
            from_reread: reads.with_label_values(&["reread"]),
            from_miss: reads.with_label_values(&["miss"]),
            from_database: reads.with_label_values(&["database"]),
            reads,
        }
    }
}

impl Roster {
    /// Replaces everything with what was read in one snapshot (`grants` by instance, built by
    /// `sets`; an instance without any is at the revision `revisions` says, or 0) and marks the
    /// roster in step.
    pub fn load(
        &self,
        instances: Vec<InstanceFacts>,
        mut grants: HashMap<String, Arc<GrantSet>>,
        revisions: &HashMap<String, i64>,
        mut sets: GrantSets,
    ) {
        let mut state = State {
            instances: HashMap::with_capacity(instances.len()),
            hosts: HashMap::with_capacity(instances.len()),
        };
        for f in instances {
            let set = grants.remove(&f.id).unwrap_or_else(|| {
                sets.build(
                    revisions.get(&f.id).copied().unwrap_or(0),
                    None::<(String, String)>,
                    None::<(String, String)>,
                )
            });
            state.put(entry(f, set));
        }
        *self.sets.lock().expect("roster lock") = sets;
        *self.state.write().expect("roster lock") = state;
        self.synced.store(true, Ordering::Release);
    }

    pub fn mark_unsynced(&self) {
        self.synced.store(false, Ordering::Release);
    }

    pub fn in_step(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The version of the instance's facts held here (None: not held).
    pub fn version(&self, id: &str) -> Option<i64> {
        let state = self.state.read().expect("roster lock");
        state.instances.get(id).map(|e| e.version)
    }

    /// Takes these facts unless the roster holds the instance at this version or a later one.
    pub fn apply(&self, facts: InstanceFacts) {
        let mut state = self.state.write().expect("roster lock");
        let grants = match state.instances.get(facts.id.as_str()) {
            Some(e) if e.version >= facts.version => return,
            Some(e) => e.grants.clone(),
            None => GrantSet::unknown(),
        };
        state.put(entry(facts, grants));
    }

    /// Takes the instance's grants at `revision` unless it holds them at this revision or a
    /// later one (or does not hold the instance at all). Answers the grants it holds then.
    pub fn apply_grants(
        &self,
        id: &str,
        revision: i64,
        users: impl IntoIterator<Item = (String, String)>,
        invited: impl IntoIterator<Item = (String, String)>,
    ) -> Option<Arc<GrantSet>> {
        let set = self
            .sets
            .lock()
            .expect("roster lock")
            .build(revision, users, invited);
        let mut state = self.state.write().expect("roster lock");
        let old = state.instances.get(id)?;
        if old.grants.revision >= revision {
            return Some(old.grants.clone());
        }
        let next = Entry {
            id: old.id.clone(),
            version: old.version,
            status: old.status,
            owner: old.owner.clone(),
            hosts: old.hosts.clone(),
            grants: set.clone(),
        };
        state.instances.insert(next.id.clone(), Arc::new(next));
        Some(set)
    }

    /// The instance a host (or an id) names, as held here. None when it is not held, or the
    /// roster is not in step: ask the database. A miss is never an answer — an instance made
    /// on another replica a moment ago is not held until its notification arrives, and one
    /// unknown to the database is rare (a mistyped or probing login).
    pub fn lookup(&self, by: By<'_>) -> Option<Arc<Entry>> {
        if !self.in_step() {
            return None;
        }
        let state = self.state.read().expect("roster lock");
        let id = match by {
            By::Id(id) => id,
            By::Host(host) => state.hosts.get(host)?,
        };
        state.instances.get(id).cloned()
    }
}

fn entry(f: InstanceFacts, grants: Arc<GrantSet>) -> Entry {
    Entry {
        id: Arc::from(f.id),
        version: f.version,
        status: f.status,
        owner: f.owner.into_boxed_str(),
        hosts: f.hosts.into_iter().map(String::into_boxed_str).collect(),
        grants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, version: i64, status: InstanceStatus, hosts: &[&str]) -> InstanceFacts {
        InstanceFacts {
            id: id.into(),
            version,
            status,
            owner: format!("auth0|{id}-owner"),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn loaded(instances: Vec<InstanceFacts>) -> Roster {
        let r = Roster::default();
        r.load(
            instances,
            HashMap::default(),
            &HashMap::default(),
            GrantSets::default(),
        );
        r
    }

    fn host(r: &Roster, h: &str) -> Option<String> {
        r.lookup(By::Host(h)).map(|e| e.id.to_string())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn nothing_is_answered_before_the_load_or_while_out_of_step() {
        let r = Roster::default();
        let acme = || facts("acme", 1, InstanceStatus::Active, &["acme.example"]);
        r.apply(acme());
        assert!(!r.in_step() && r.lookup(By::Id("acme")).is_none());
        r.load(
            vec![acme()],
            HashMap::default(),
            &HashMap::default(),
            GrantSets::default(),
        );
        assert!(r.lookup(By::Id("acme")).is_some());
        assert!(
            r.lookup(By::Id("other")).is_none(),
            "a miss: ask the database"
        );
        r.mark_unsynced();
        assert!(r.lookup(By::Id("acme")).is_none());
    }

    #[test]
    fn hosts_name_their_instance_and_move_with_newer_facts_only() {
        let r = loaded(vec![facts("a", 1, InstanceStatus::Active, &["a.example"])]);
        assert_eq!(host(&r, "a.example").as_deref(), Some("a"));
        r.apply(facts("a", 3, InstanceStatus::Active, &["a2.example"]));
        assert_eq!(host(&r, "a.example"), None);
        assert_eq!(host(&r, "a2.example").as_deref(), Some("a"));
        let a = r.lookup(By::Id("a")).unwrap();
        assert_eq!((a.version, a.status), (3, InstanceStatus::Active));
        // An older read arriving late changes nothing.
        r.apply(facts("a", 2, InstanceStatus::Suspended, &["a.example"]));
        r.apply(facts("a", 3, InstanceStatus::Suspended, &["a.example"]));
        assert_eq!(host(&r, "a.example"), None);
        let a = r.lookup(By::Id("a")).unwrap();
        assert_eq!((a.version, a.status), (3, InstanceStatus::Active));
    }

    #[test]
    fn a_host_that_moved_stays_with_its_new_instance_in_either_order() {
        // b took the host from a: whichever instance's news arrives first.
        let r = loaded(vec![facts(
            "a",
            1,
            InstanceStatus::Active,
            &["shop.example"],
        )]);
        r.apply(facts("b", 5, InstanceStatus::Active, &["shop.example"]));
        assert_eq!(host(&r, "shop.example").as_deref(), Some("b"));
        r.apply(facts("a", 4, InstanceStatus::Active, &[]));
        assert_eq!(host(&r, "shop.example").as_deref(), Some("b"));

        let r = loaded(vec![facts(
            "a",
            1,
            InstanceStatus::Active,
            &["shop.example"],
        )]);
        r.apply(facts("a", 4, InstanceStatus::Active, &[]));
        assert_eq!(host(&r, "shop.example"), None);
        r.apply(facts("b", 5, InstanceStatus::Active, &["shop.example"]));
        assert_eq!(host(&r, "shop.example").as_deref(), Some("b"));
    }

    #[test]
    fn grants_are_found_by_user_and_invitations_by_email() {
        let r = loaded(vec![facts("a", 1, InstanceStatus::Active, &[])]);
        let set = r
            .apply_grants(
                "a",
                2,
                pairs(&[("auth0|z", "admin"), ("auth0|b", "member")]),
                pairs(&[("c@example.com", "viewer")]),
            )
            .unwrap();
        assert_eq!(set.role_of("auth0|z"), Some("admin"));
        assert_eq!(set.role_of("auth0|b"), Some("member"));
        assert_eq!(set.role_of("auth0|c"), None);
        assert_eq!(set.invitation_for("c@example.com"), Some("viewer"));
        assert_eq!(set.invitation_for("auth0|z"), None);
    }

    #[test]
    fn grants_only_move_forwards_and_survive_newer_facts() {
        let r = loaded(vec![facts("a", 1, InstanceStatus::Active, &[])]);
        assert_eq!(
            r.lookup(By::Id("a")).unwrap().grants.revision(),
            0,
            "an instance without grants is at revision 0 unless the revisions say otherwise"
        );
        r.apply_grants("a", 3, pairs(&[("auth0|x", "member")]), vec![]);
        let older = r.apply_grants("a", 2, vec![], vec![]).unwrap();
        assert_eq!(older.revision(), 3, "the newer set is kept and answered");
        r.apply(facts("a", 2, InstanceStatus::Suspended, &[]));
        let a = r.lookup(By::Id("a")).unwrap();
        assert_eq!(a.status, InstanceStatus::Suspended);
        assert_eq!(a.grants.role_of("auth0|x"), Some("member"));
        assert!(
            r.apply_grants("nobody", 1, vec![], vec![]).is_none(),
            "grants of an instance not held are not kept"
        );
    }

    #[test]
    fn an_instance_first_heard_of_by_its_facts_has_its_grants_read_on_first_use() {
        let r = loaded(vec![]);
        r.apply(facts("new", 7, InstanceStatus::Active, &["new.example"]));
        let e = r.lookup(By::Host("new.example")).unwrap();
        assert!(e.grants.revision() < 0, "older than any revision");
    }

    #[test]
    fn the_load_takes_grants_and_revisions_from_its_snapshot() {
        let r = Roster::default();
        let mut sets = GrantSets::default();
        let mut grants = HashMap::default();
        grants.insert(
            "a".to_string(),
            sets.build(4, pairs(&[("auth0|x", "admin")]), vec![]),
        );
        let mut revisions = HashMap::default();
        revisions.insert("b".to_string(), 9);
        r.load(
            vec![
                facts("a", 1, InstanceStatus::Active, &[]),
                facts("b", 1, InstanceStatus::Active, &[]),
            ],
            grants,
            &revisions,
            sets,
        );
        let a = r.lookup(By::Id("a")).unwrap();
        assert_eq!(
            (a.grants.revision(), a.grants.role_of("auth0|x")),
            (4, Some("admin"))
        );
        assert_eq!(r.lookup(By::Id("b")).unwrap().grants.revision(), 9);
    }
}
