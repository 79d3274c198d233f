//! What the allow-lists should hold, from the registry alone.

use std::collections::{BTreeMap, HashSet};

use crate::domain::{Field, Templates};
use crate::{
    domain::{Hostname, InstanceStatus},
    registry::Instance,
};

/// Entries per field, in a stable order (wildcards first, then instances in the order given,
/// each instance's hosts in order), without duplicates.
pub type Lists = BTreeMap<Field, Vec<String>>;

#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub platform_domain: Option<&'a Hostname>,
    /// Collapse single-label platform subdomains into one `https://*.{platform}` entry per template.
    pub wildcard: bool,
    pub templates: &'a Templates,
}

impl Options<'_> {
    /// Whether `host` needs entries of its own, or is covered by the wildcard.
    pub fn needs_exact_entries(&self, host: &Hostname) -> bool {
        match (self.wildcard, self.platform_domain) {
            (true, Some(p)) => !host.is_single_label_under(p),
            _ => true,
        }
    }
}

/// The desired lists for these instances. Suspended and deleted instances contribute nothing;
/// the wildcard entries appear only while some active instance relies on them. (A wildcard
/// also covers the platform subdomains of inactive instances: the login decision, not the
/// allow-list, keeps those out.)
pub fn desired<'i>(instances: impl IntoIterator<Item = &'i Instance>, opts: Options<'_>) -> Lists {
    let mut hosts: Vec<&Hostname> = Vec::new();
    let mut uses_wildcard = false;
    for instance in instances
        .into_iter()
        .filter(|i| i.status == InstanceStatus::Active)
    {
        for domain in &instance.domains {
            if opts.needs_exact_entries(&domain.hostname) {
                hosts.push(&domain.hostname);
            } else {
                uses_wildcard = true;
            }
        }
    }
    let wildcard_host = opts
        .platform_domain
        .filter(|_| uses_wildcard)
        .map(|p| format!("*.{p}"));
    Field::ALL
        .into_iter()
        .map(|field| {
            let mut seen = HashSet::new();
            let templates = opts.templates.of(field);
            let wild = wildcard_host
                .iter()
                .flat_map(|w| templates.iter().map(move |t| t.render(w)));
            let exact = hosts.iter().flat_map(|h| opts.templates.entries(field, h));
            let list: Vec<String> = wild
                .chain(exact)
                .filter(|e| seen.insert(e.clone()))
                .collect();
            (field, list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn instance(id: &str, status: InstanceStatus, hosts: &[&str]) -> Instance {
        Instance::sample(id, status, hosts)
    }

    fn lists(instances: &[Instance], wildcard: bool) -> Lists {
        let platform = Hostname::parse("apps.example.com").unwrap();
        let templates = Templates::defaults();
        desired(
            instances,
            Options {
                platform_domain: Some(&platform),
                wildcard,
                templates: &templates,
            },
        )
    }

    #[test]
    fn wildcard_collapses_single_label_platform_hosts_only() {
        let fleet = [
            instance(
                "a",
                InstanceStatus::Active,
                &["a.apps.example.com", "www.acme.com"],
            ),
            instance(
                "b",
                InstanceStatus::Active,
                &["b.apps.example.com", "x.b.apps.example.com"],
            ),
        ];
        let l = lists(&fleet, true);
        assert_eq!(
            l[&Field::Callbacks],
            [
                "https://*.apps.example.com/callback",
                "https://www.acme.com/callback",
                "https://x.b.apps.example.com/callback"
            ]
        );
        assert_eq!(
            l[&Field::WebOrigins],
            [
                "https://*.apps.example.com",
                "https://www.acme.com",
                "https://x.b.apps.example.com"
            ]
        );
        let exact = lists(&fleet, false);
        assert_eq!(exact[&Field::Callbacks].len(), 4);
        assert!(!exact[&Field::Callbacks].iter().any(|e| e.contains('*')));
    }

    #[test]
    fn inactive_instances_contribute_nothing() {
        let fleet = [
            instance(
                "a",
                InstanceStatus::Suspended,
                &["a.apps.example.com", "www.a.com"],
            ),
            instance("b", InstanceStatus::Deleted, &[]),
        ];
        assert!(
            lists(&fleet, true).values().all(Vec::is_empty),
            "no wildcard either"
        );
    }

    proptest! {
        #[test]
        fn every_active_host_is_covered_and_nothing_else(
            specs in proptest::collection::vec((0u8..3, proptest::collection::vec((0u8..3, "[a-z]{1,6}"), 0..4)), 0..12),
            wildcard in any::<bool>(),
        ) {
            let statuses = [InstanceStatus::Active, InstanceStatus::Suspended, InstanceStatus::Deleted];
            let mut used = HashSet::new();
            let fleet: Vec<Instance> = specs.iter().enumerate().map(|(i, (s, hosts))| {
                let names: Vec<String> = hosts.iter().map(|(kind, label)| match kind {
                    0 => format!("{label}.apps.example.com"),
                    1 => format!("{label}.x.apps.example.com"),
                    _ => format!("www.{label}.com"),
                }).filter(|h| used.insert(h.clone())).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                instance(&format!("i{i}"), statuses[*s as usize], &refs)
            }).collect();
            let l = lists(&fleet, wildcard);
            let callbacks = &l[&Field::Callbacks];
            let unique: HashSet<_> = callbacks.iter().collect();
            prop_assert_eq!(unique.len(), callbacks.len(), "no duplicates");
            for i in &fleet {
                for d in &i.domains {
                    let exact = format!("https://{}/callback", d.hostname);
                    let single = d.hostname.as_str().split('.').count() == 4 && d.hostname.as_str().ends_with(".apps.example.com");
                    let by_wildcard = wildcard && single && callbacks.contains(&"https://*.apps.example.com/callback".to_owned());
                    let covered = callbacks.contains(&exact) || by_wildcard;
                    if i.status == InstanceStatus::Active {
                        prop_assert!(covered, "{} is active but not covered", d.hostname);
                    } else {
                        // An inactive instance's entries are gone; only a wildcard that active
                        // instances need can still cover its platform subdomain.
                        prop_assert!(!callbacks.contains(&exact), "{} is inactive but listed", d.hostname);
                    }
                }
            }
            let active_hosts = fleet.iter().filter(|i| i.status == InstanceStatus::Active).map(|i| i.domains.len()).sum::<usize>();
            prop_assert!(callbacks.len() <= active_hosts + 1);
        }
    }
}
