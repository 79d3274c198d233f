//! Spreading instances over a pool of applications when one application's lists are full
//! (issue #5). Pure: demands and rooms in, placements out.
//!
//! Rules: every instance is placed whole on one application (all its hosts); an assignment
//! never changes by itself; a new instance goes to the first application with room in every
//! list; an instance whose needs grew beyond its application's room stays there, flagged, until
//! an admin moves it; instances that need no slot (covered by the wildcard, or deleted) go to
//! the first application and take no room.

use std::collections::BTreeMap;

use super::desired::Options;
use crate::domain::Field;
use crate::{domain::InstanceStatus, registry::Instance};

/// Entries per list.
pub type Slots = BTreeMap<Field, usize>;

/// The entries an instance needs on its application: for each host that needs exact entries,
/// each template. Suspended instances keep their reservation (they come back); deleted ones
/// need nothing.
pub fn slots_needed(instance: &Instance, opts: Options<'_>) -> Slots {
    let exact = match instance.status {
        InstanceStatus::Deleted => 0,
        _ => instance
            .domains
            .iter()
            .filter(|d| opts.needs_exact_entries(&d.hostname))
            .count(),
    };
    Field::ALL
        .into_iter()
        .map(|f| (f, exact * opts.templates.of(f).len()))
        .collect()
}

/// What one instance asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub instance_id: String,
    pub slots: Slots,
    /// The application it is assigned to, if any.
    pub current: Option<String>,
    /// Of `slots`, those already live on `current` (entries on the list now). They are
    /// honoured first, so that an instance that grows cannot crowd out one that did not.
    pub established: Slots,
}

/// Room for instances on one application, per list: the cap less entries that are not any
/// instance's (foreign entries, wildcard entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub client_id: String,
    pub free: Slots,
    /// Takes newcomers (false: only the instances already on it stay).
    pub open: bool,
}

impl Room {
    pub fn new(client_id: impl Into<String>, cap: usize, reserved: &Slots) -> Self {
        let free = Field::ALL
            .into_iter()
            .map(|f| {
                (
                    f,
                    cap.saturating_sub(reserved.get(&f).copied().unwrap_or(0)),
                )
            })
            .collect();
        Self {
            client_id: client_id.into(),
            free,
            open: true,
        }
    }

    /// The same room, taking no newcomers.
    pub fn closed(self) -> Self {
        Self {
            open: false,
            ..self
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this application, as before.
    Stays(String),
    /// Newly placed on this application.
    Placed(String),
    /// Assigned to this application, which no longer has room for it: its entries are left
    /// off until it is moved.
    Overflows {
        client_id: String,
        field: Field,
        needed: usize,
        free: usize,
    },
    /// No application has room: a new one is needed.
    Unplaced,
}

impl Placement {
    /// The application the instance is configured with, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Stays(c) | Self::Placed(c) | Self::Overflows { client_id: c, .. } => Some(c),
            Self::Unplaced => None,
        }
    }

    /// Whether its entries go on the application's lists.
    pub fn is_listed(&self) -> bool {
        matches!(self, Self::Stays(_) | Self::Placed(_))
    }
}

fn fits(need: &Slots, free: &Slots) -> Result<(), (Field, usize, usize)> {
    for (field, n) in need {
        let room = free.get(field).copied().unwrap_or(0);
        if *n > room {
            return Err((*field, *n, room));
        }
    }
    Ok(())
}

fn take(need: &Slots, free: &mut Slots) {
    for (field, n) in need {
        if let Some(room) = free.get_mut(field) {
            *room -= n;
        }
    }
}

/// Places every demand, in the order given (keep it stable, e.g. by instance id).
pub fn assign(demands: &[Demand], rooms: &[Room]) -> BTreeMap<String, Placement> {
    let mut free: BTreeMap<&str, Slots> = rooms
        .iter()
        .map(|r| (r.client_id.as_str(), r.free.clone()))
        .collect();
    let first = rooms.first().map(|r| r.client_id.clone());
    let mut out = BTreeMap::new();
    let mut newcomers = Vec::new();
    // Those already assigned keep their application first, so newcomers cannot crowd them out;
    // and what is live already is kept before anyone's growth.
    let mut staying = Vec::new();
    for d in demands {
        let needs_none = d.slots.values().all(|n| *n == 0);
        match d.current.as_deref().filter(|c| free.contains_key(c)) {
            Some(c) => {
                let room = free.get_mut(c).expect("checked");
                let live: Slots = d
                    .established
                    .iter()
                    .map(|(f, n)| (*f, (*n).min(d.slots.get(f).copied().unwrap_or(0))))
                    .collect();
                let kept = fits(&live, room).is_ok();
                if kept {
                    take(&live, room);
                }
                staying.push((d, c, live, kept));
            }
            None if needs_none => {
                let placement = first.clone().map_or(Placement::Unplaced, Placement::Placed);
                out.insert(d.instance_id.clone(), placement);
            }
            None => newcomers.push(d),
        }
    }
    for (d, c, live, kept) in staying {
        let room = free.get_mut(c).expect("checked");
        let growth: Slots = d
            .slots
            .iter()
            .map(|(f, n)| {
                (
                    *f,
                    if kept {
                        n - live.get(f).copied().unwrap_or(0)
                    } else {
                        *n
                    },
                )
            })
            .collect();
        let placement = match fits(&growth, room) {
            Ok(()) => {
                take(&growth, room);
                Placement::Stays(c.to_owned())
            }
            Err((field, _, room_left)) => {
                if kept {
                    // Give back what was kept: the instance is left off until it is moved.
                    for (f, n) in &live {
                        *room.get_mut(f).expect("every field") += n;
                    }
                }
                let free = room_left
                    + if kept {
                        live.get(&field).copied().unwrap_or(0)
                    } else {
                        0
                    };
                Placement::Overflows {
                    client_id: c.to_owned(),
                    field,
                    needed: d.slots[&field],
                    free,
                }
            }
        };
        out.insert(d.instance_id.clone(), placement);
    }
    for d in newcomers {
        let placement = rooms
            .iter()
            .filter(|r| r.open)
            .find(|r| fits(&d.slots, &free[r.client_id.as_str()]).is_ok())
            .map_or(Placement::Unplaced, |r| {
                take(&d.slots, free.get_mut(r.client_id.as_str()).expect("known"));
                Placement::Placed(r.client_id.clone())
            });
        out.insert(d.instance_id.clone(), placement);
    }
    out
}

/// The fewest applications these demands could possibly fit in, given `cap` per list.
pub fn lower_bound(demands: &[Demand], cap: usize) -> usize {
    Field::ALL
        .into_iter()
        .map(|f| {
            demands
                .iter()
                .map(|d| d.slots.get(&f).copied().unwrap_or(0))
                .sum::<usize>()
                .div_ceil(cap.max(1))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slots(n: usize) -> Slots {
        Field::ALL.into_iter().map(|f| (f, n)).collect()
    }

    fn demand(id: &str, n: usize, current: Option<&str>) -> Demand {
        Demand {
            instance_id: id.into(),
            slots: slots(n),
            current: current.map(String::from),
            established: Slots::new(),
        }
    }

    #[test]
    fn a_closed_room_keeps_its_instances_and_takes_no_newcomers() {
        let rooms = [
            Room::new("theirs", 10, &slots(0)).closed(),
            Room::new("ours", 10, &slots(0)),
        ];
        let p = assign(
            &[demand("old", 2, Some("theirs")), demand("new", 2, None)],
            &rooms,
        );
        assert_eq!(p["old"], Placement::Stays("theirs".into()));
        assert_eq!(
            p["new"],
            Placement::Placed("ours".into()),
            "not the first, closed room"
        );
        let only = [Room::new("theirs", 10, &slots(0)).closed()];
        assert_eq!(
            assign(&[demand("new", 2, None)], &only)["new"],
            Placement::Unplaced
        );
    }

    #[test]
    fn first_fit_keeps_assignments_and_flags_overflow() {
        let rooms = [Room::new("a", 10, &slots(2)), Room::new("b", 10, &slots(0))];
        // a: 8 free (2 reserved for foreign/wildcard entries), b: 10 free.
        let demands = [
            demand("i1", 4, Some("a")),
            demand("i2", 3, None),
            demand("i3", 3, None),
            demand("i4", 0, None),
            demand("i5", 6, Some("b")),
            demand("i6", 2, None),
        ];
        let p = assign(&demands, &rooms);
        assert_eq!(p["i1"], Placement::Stays("a".into()), "a: 4 left");
        assert_eq!(
            p["i5"],
            Placement::Stays("b".into()),
            "b: 4 left, kept before newcomers are placed"
        );
        assert_eq!(
            p["i2"],
            Placement::Placed("a".into()),
            "first with room; a: 1 left"
        );
        assert_eq!(p["i3"], Placement::Placed("b".into()), "b: 1 left");
        assert_eq!(
            p["i4"],
            Placement::Placed("a".into()),
            "no slots: the first application"
        );
        assert_eq!(p["i6"], Placement::Unplaced, "nobody has 2");
        let grown = assign(&[demand("i1", 9, Some("a"))], &rooms);
        assert_eq!(
            grown["i1"],
            Placement::Overflows {
                client_id: "a".into(),
                field: Field::Callbacks,
                needed: 9,
                free: 8
            }
        );
        assert!(!grown["i1"].is_listed());
        assert_eq!(
            lower_bound(&demands, 10),
            2,
            "18 slots per list at 10 per application"
        );
    }

    #[test]
    fn growth_cannot_crowd_out_what_is_live() {
        let rooms = [Room::new("a", 5, &slots(0))];
        // a was 3, grew to 4; b is 2; both live on "a" (3 + 2 = 5).
        let grown = Demand {
            established: slots(3),
            ..demand("a", 4, Some("a"))
        };
        let steady = Demand {
            established: slots(2),
            ..demand("b", 2, Some("a"))
        };
        let p = assign(&[grown, steady], &rooms);
        assert_eq!(
            p["b"],
            Placement::Stays("a".into()),
            "the instance that did not grow keeps its room"
        );
        assert!(
            matches!(
                p["a"],
                Placement::Overflows {
                    needed: 4,
                    free: 3,
                    ..
                }
            ),
            "{:?}",
            p["a"]
        );
    }

    #[test]
    fn slots_count_exact_hosts_times_templates() {
        use crate::{domain::Hostname, domain::Templates};
        let platform = Hostname::parse("apps.example.com").unwrap();
        let templates = Templates::parse(|f| {
            if f == Field::Callbacks {
                "https://{host}/callback,https://{host}/silent"
            } else {
                "https://{host}"
            }
        })
        .unwrap();
        let opts = Options {
            platform_domain: Some(&platform),
            wildcard: true,
            templates: &templates,
        };
        let instance = |status, hosts: &[&str]| Instance::sample("acme", status, hosts);
        let hosts = ["acme.apps.example.com", "www.acme.com", "shop.acme.com"];
        let active = slots_needed(&instance(InstanceStatus::Active, &hosts), opts);
        assert_eq!(
            (active[&Field::Callbacks], active[&Field::WebOrigins]),
            (4, 2),
            "two custom hosts; the platform one is under the wildcard"
        );
        assert_eq!(
            slots_needed(&instance(InstanceStatus::Suspended, &hosts), opts),
            active,
            "a suspended instance keeps its room"
        );
        assert!(
            slots_needed(&instance(InstanceStatus::Deleted, &hosts), opts)
                .values()
                .all(|n| *n == 0)
        );
    }

    proptest! {
        #[test]
        fn assignment_properties(
            needs in proptest::collection::vec((0usize..6, proptest::option::of(0usize..3)), 0..40),
            caps in proptest::collection::vec((5usize..20, 0usize..4), 1..4),
        ) {
            let rooms: Vec<Room> = caps.iter().enumerate().map(|(i, (cap, reserved))| Room::new(format!("app{i}"), *cap, &slots(*reserved))).collect();
            let demands: Vec<Demand> = needs.iter().enumerate().map(|(i, (n, cur))| demand(&format!("i{i:02}"), *n, cur.map(|c| format!("app{c}")).as_deref())).collect();
            let p = assign(&demands, &rooms);
            prop_assert_eq!(p.len(), demands.len());
            // No application holds more listed slots than its room.
            for r in &rooms {
                for f in Field::ALL {
                    let used: usize = demands.iter().filter(|d| p[&d.instance_id].is_listed() && p[&d.instance_id].client_id() == Some(r.client_id.as_str())).map(|d| d.slots[&f]).sum();
                    prop_assert!(used <= r.free[&f], "{} {f}: {used} > {}", r.client_id, r.free[&f]);
                }
            }
            for d in &demands {
                let placed = &p[&d.instance_id];
                // An assignment to a pool application never changes by itself.
                if let Some(c) = d.current.as_deref().filter(|c| rooms.iter().any(|r| r.client_id == *c)) {
                    prop_assert_eq!(placed.client_id(), Some(c));
                }
                // Unplaced only when no application had room.
                if *placed == Placement::Unplaced {
                    prop_assert!(d.slots.values().any(|n| *n > 0));
                }
            }
            // Placing again with the result as the current assignment changes nothing.
            let again: Vec<Demand> = demands.iter().map(|d| Demand { current: p[&d.instance_id].client_id().map(String::from), ..d.clone() }).collect();
            let q = assign(&again, &rooms);
            for d in &demands {
                prop_assert_eq!(p[&d.instance_id].client_id(), q[&d.instance_id].client_id());
            }
        }
    }
}
