//! Placing a pool's instances, from what a pass read: how much room each application has,
//! how much of each instance is already live where it is, and where every instance goes
//! (`shard::assign`), moving those that outgrew their application when allowed. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::deployment::Stance;
use super::{
    desired::Options,
    shard::{self, Demand, Placement, Room, Slots},
};
use crate::{domain::Field, registry::Instance};

/// One application of the pool as a pass read it.
#[derive(Debug, Clone)]
pub struct AppLists {
    pub client_id: String,
    pub actual: BTreeMap<Field, Vec<String>>,
    /// Per field name, the entries fleetgate owns on it.
    pub owned: BTreeMap<String, BTreeSet<String>>,
    /// What this deployment does with it, from its mark (`client_metadata`): another
    /// deployment's takes no newcomers.
    pub stance: Stance,
}

impl AppLists {
    /// An application with empty lists (one about to be created).
    pub fn empty(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            actual: Field::ALL.into_iter().map(|f| (f, Vec::new())).collect(),
            owned: BTreeMap::new(),
            stance: Stance::Mark,
        }
    }
}

/// Room per application: the cap less foreign entries and the wildcard's entries.
pub fn rooms(apps: &[AppLists], opts: Options<'_>, cap: usize) -> Vec<Room> {
    let wildcard = opts.wildcard && opts.platform_domain.is_some();
    apps.iter()
        .map(|a| {
            let reserved: Slots = Field::ALL
                .into_iter()
                .map(|f| {
                    let none = BTreeSet::new();
                    let owned = a.owned.get(f.name()).unwrap_or(&none);
                    let foreign = a.actual[&f].iter().filter(|e| !owned.contains(*e)).count();
                    let wildcards = if wildcard {
                        opts.templates.of(f).len()
                    } else {
                        0
                    };
                    (f, foreign + wildcards)
                })
                .collect();
            let room = Room::new(a.client_id.clone(), cap, &reserved);
            if a.stance.manages() {
                room
            } else {
                room.closed()
            }
        })
        .collect()
}

/// How many of an instance's own entries each list holds now.
pub fn established(
    instance: &Instance,
    opts: Options<'_>,
    lists: &BTreeMap<Field, Vec<String>>,
) -> Slots {
    Field::ALL
        .into_iter()
        .map(|f| {
            let list = &lists[&f];
            let live = instance
                .domains
                .iter()
                .filter(|d| opts.needs_exact_entries(&d.hostname))
                .flat_map(|d| opts.templates.entries(f, &d.hostname).collect::<Vec<_>>())
                .filter(|e| list.contains(e))
                .count();
            (f, live)
        })
        .collect()
}

/// Places every demand on `apps`. With `auto_move`, instances that outgrew their application
/// are placed afresh (their demand forgets its application, so later placements in the same
/// pass treat them as new).
pub fn place(
    demands: &mut [Demand],
    apps: &[AppLists],
    opts: Options<'_>,
    cap: usize,
    auto_move: bool,
) -> BTreeMap<String, Placement> {
    let placements = shard::assign(demands, &rooms(apps, opts, cap));
    if !auto_move {
        return placements;
    }
    let mut outgrown = demands
        .iter_mut()
        .filter(|d| {
            matches!(
                placements.get(&d.instance_id),
                Some(Placement::Overflows { .. })
            )
        })
        .peekable();
    if outgrown.peek().is_none() {
        return placements;
    }
    outgrown.for_each(|d| d.current = None);
    shard::assign(demands, &rooms(apps, opts, cap))
}

/// The demands left without room, as they would ask a new application (no current one,
/// nothing established), and whether a new, empty application would take any of them: one is
/// created only then (else creating would never end).
pub fn unplaced(
    demands: &[Demand],
    placements: &BTreeMap<String, Placement>,
    opts: Options<'_>,
    cap: usize,
) -> (Vec<Demand>, bool) {
    let unplaced: Vec<Demand> = demands
        .iter()
        .filter(|d| placements.get(&d.instance_id) == Some(&Placement::Unplaced))
        .map(|d| Demand {
            current: None,
            established: Slots::default(),
            ..d.clone()
        })
        .collect();
    let fits_new = shard::assign(&unplaced, &rooms(&[AppLists::empty("")], opts, cap))
        .values()
        .any(|p| *p != Placement::Unplaced);
    (unplaced, fits_new)
}

/// Adds what is wrong with the placements to a pass's `problems`, in words: each overflow,
/// and the first instance without room unless a problem is noted already (which says why).
/// The placements that stop a pass; an unplaced instance does not when it logs in through the
/// relay instead (`relayed`).
pub fn note_problems(
    placements: &BTreeMap<String, Placement>,
    problems: &mut Vec<String>,
    relayed: bool,
) {
    for (id, p) in placements {
        match p {
            Placement::Unplaced if !relayed && problems.is_empty() => problems.push(format!(
                "instance '{id}' fits no application: set FLEETGATE_AUTO_CREATE_APPLICATIONS=true or register an application with room"
            )),
            Placement::Overflows { client_id, field, needed, free } => problems.push(format!(
                "instance '{id}' needs {needed} {field} entries on application {client_id}, which has room for {free}: move it"
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{DomainKind, Hostname, InstanceId, InstanceStatus, Templates, UserId};

    fn templates() -> Templates {
        Templates::parse(|f| {
            if f == Field::Callbacks {
                "https://{host}/callback,https://{host}/silent"
            } else {
                "https://{host}"
            }
        })
        .unwrap()
    }

    fn opts<'a>(templates: &'a Templates, platform: Option<&'a Hostname>) -> Options<'a> {
        Options {
            platform_domain: platform,
            wildcard: platform.is_some(),
            templates,
        }
    }

    fn slots(n: usize) -> Slots {
        Field::ALL.into_iter().map(|f| (f, n)).collect()
    }

    /// An application whose lists hold `foreign` entries nobody owns and `owned` of fleetgate's.
    fn app(client_id: &str, foreign: usize, owned: usize) -> AppLists {
        let mut a = AppLists::empty(client_id);
        for f in Field::ALL {
            let list = a.actual.get_mut(&f).unwrap();
            list.extend((0..foreign).map(|i| format!("https://person{i}.example")));
            let mine: Vec<String> = (0..owned)
                .map(|i| format!("https://fleet{i}.example"))
                .collect();
            list.extend(mine.iter().cloned());
            a.owned
                .insert(f.name().to_owned(), mine.into_iter().collect());
        }
        a
    }

    fn demand(id: &str, n: usize, current: Option<&str>) -> Demand {
        Demand {
            instance_id: id.into(),
            slots: slots(n),
            current: current.map(String::from),
            established: slots(0),
        }
    }

    #[test]
    fn room_is_the_cap_less_foreign_and_wildcard_entries() {
        let t = templates();
        let platform = Hostname::parse("apps.example.com").unwrap();
        let apps = [app("a", 3, 5)];
        // Without the wildcard only foreign entries are reserved; what fleetgate owns is not.
        assert_eq!(rooms(&apps, opts(&t, None), 10)[0].free, slots(7));
        // With it, each field also carries the wildcard's entries (two callbacks, one else).
        let free = &rooms(&apps, opts(&t, Some(&platform)), 10)[0].free;
        assert_eq!(free[&Field::Callbacks], 5);
        assert_eq!(free[&Field::WebOrigins], 6);
    }

    #[test]
    fn established_counts_the_instance_entries_already_listed() {
        let t = templates();
        let platform = Hostname::parse("apps.example.com").unwrap();
        let instance = Instance {
            id: InstanceId::parse("acme").unwrap(),
            owner: UserId::parse("auth0|o").unwrap(),
            status: InstanceStatus::Active,
            domains: ["shop.acme.com", "acme.apps.example.com"]
                .into_iter()
                .map(|h| crate::registry::Domain {
                    hostname: Hostname::parse(h).unwrap(),
                    kind: DomainKind::Custom,
                })
                .collect(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            version: 0,
        };
        let mut lists: BTreeMap<Field, Vec<String>> =
            Field::ALL.into_iter().map(|f| (f, Vec::new())).collect();
        lists
            .get_mut(&Field::Callbacks)
            .unwrap()
            .push("https://shop.acme.com/callback".into());
        lists
            .get_mut(&Field::WebOrigins)
            .unwrap()
            .push("https://someone-else.com".into());
        let live = established(&instance, opts(&t, Some(&platform)), &lists);
        // The platform subdomain is under the wildcard: only the custom host counts.
        assert_eq!(live[&Field::Callbacks], 1);
        assert_eq!(live[&Field::WebOrigins], 0);
    }

    #[test]
    fn an_outgrown_instance_moves_only_when_allowed() {
        let t = templates();
        let apps = [app("a", 0, 0), app("b", 0, 0)];
        let demands = || vec![demand("big", 8, Some("a")), demand("small", 4, Some("a"))];
        let stay = place(&mut demands(), &apps, opts(&t, None), 10, false);
        assert_eq!(stay["big"], Placement::Stays("a".into()));
        assert!(
            matches!(stay["small"], Placement::Overflows { ref client_id, needed: 4, free: 2, .. } if client_id == "a"),
            "{:?}",
            stay["small"]
        );
        let mut moving = demands();
        let moved = place(&mut moving, &apps, opts(&t, None), 10, true);
        assert_eq!(moved["big"], Placement::Stays("a".into()));
        assert_eq!(moved["small"], Placement::Placed("b".into()));
        assert_eq!(
            moving[1].current, None,
            "the moved demand forgot its application"
        );
    }

    #[test]
    fn a_new_application_is_wanted_only_if_it_would_take_someone() {
        let t = templates();
        let apps = [app("a", 0, 0)];
        let demands = vec![
            demand("fits-nowhere", 20, None),
            demand("later", 6, None),
            demand("first", 6, None),
        ];
        let placements = place(&mut demands.clone(), &apps, opts(&t, None), 10, false);
        let (left, fits_new) = unplaced(&demands, &placements, opts(&t, None), 10);
        let ids: Vec<&str> = left.iter().map(|d| d.instance_id.as_str()).collect();
        assert_eq!(ids, ["fits-nowhere", "first"]);
        assert!(fits_new);
        let only_huge = [demand("fits-nowhere", 20, None)];
        let placements = place(&mut only_huge.clone(), &apps, opts(&t, None), 10, false);
        assert!(!unplaced(&only_huge, &placements, opts(&t, None), 10).1);
    }

    #[test]
    fn problems_name_overflows_and_the_first_instance_without_room() {
        let placements: BTreeMap<String, Placement> = [
            ("x".to_owned(), Placement::Unplaced),
            ("y".to_owned(), Placement::Unplaced),
        ]
        .into();
        let mut problems = Vec::new();
        note_problems(&placements, &mut problems, false);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("'x' fits no application"),
            "{problems:?}"
        );
        let mut problems = vec!["creating another application failed".to_owned()];
        note_problems(&placements, &mut problems, false);
        assert_eq!(problems.len(), 1, "a problem that says why stands alone");
        let mut problems = Vec::new();
        note_problems(&placements, &mut problems, true);
        assert!(problems.is_empty(), "relayed instead, in overflow mode");
    }

    proptest! {
        #[test]
        fn moving_leaves_nothing_overflowing_and_keeps_what_stays(
            needs in proptest::collection::vec((0usize..6, proptest::option::of(0usize..3)), 0..30),
            foreign in proptest::collection::vec(0usize..4, 1..4),
        ) {
            let t = templates();
            let apps: Vec<AppLists> = foreign.iter().enumerate().map(|(i, f)| app(&format!("app{i}"), *f, 0)).collect();
            let demands: Vec<Demand> = needs.iter().enumerate().map(|(i, (n, cur))| demand(&format!("i{i:02}"), *n, cur.map(|c| format!("app{c}")).as_deref())).collect();
            let o = opts(&t, None);
            let fixed = place(&mut demands.clone(), &apps, o, 12, false);
            prop_assert_eq!(&fixed, &shard::assign(&demands, &rooms(&apps, o, 12)));
            let moved = place(&mut demands.clone(), &apps, o, 12, true);
            let room = rooms(&apps, o, 12);
            for (id, p) in &moved {
                prop_assert!(!matches!(p, Placement::Overflows { .. }), "{id} still overflows");
                if let Placement::Stays(c) = &fixed[id] {
                    prop_assert_eq!(p, &Placement::Stays(c.clone()), "{} was moved though it fit", id);
                }
            }
            for r in &room {
                for f in Field::ALL {
                    let used: usize = demands.iter().filter(|d| moved[&d.instance_id].is_listed() && moved[&d.instance_id].client_id() == Some(r.client_id.as_str())).map(|d| d.slots[&f]).sum();
                    prop_assert!(used <= r.free[&f]);
                }
            }
        }
    }
}
