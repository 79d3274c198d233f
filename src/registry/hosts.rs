//! Pure rules for the set of hosts an instance may have.

use std::collections::HashSet;

use crate::domain::{DomainKind, Hostname};

use super::{Domain, RegistryError};

/// More hosts than this could never fit in one application's allow-lists (100 URLs each).
pub const MAX_DOMAINS_PER_INSTANCE: usize = 50;

/// Checks a requested host set and classifies each host; keeps the requested order.
pub fn validate_hosts(
    hosts: &[Hostname],
    platform_domain: Option<&Hostname>,
) -> Result<Vec<Domain>, RegistryError> {
    if hosts.len() > MAX_DOMAINS_PER_INSTANCE {
        return Err(RegistryError::InvalidDomains(format!(
            "an instance may have at most {MAX_DOMAINS_PER_INSTANCE} domains, got {}",
            hosts.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        if !seen.insert(host) {
            return Err(RegistryError::InvalidDomains(format!(
                "host '{host}' is listed more than once"
            )));
        }
        if platform_domain == Some(host) {
            return Err(RegistryError::InvalidDomains(format!(
                "host '{host}' is the platform domain itself; give a subdomain of it"
            )));
        }
        out.push(Domain {
            hostname: host.clone(),
            kind: DomainKind::of(host, platform_domain),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hostname {
        Hostname::parse(s).unwrap()
    }

    #[test]
    fn classifies_and_rejects_duplicates_apex_and_too_many() {
        let p = h("apps.example.com");
        let ok = validate_hosts(&[h("a.apps.example.com"), h("www.acme.com")], Some(&p)).unwrap();
        assert_eq!(ok[0].kind, DomainKind::Platform);
        assert_eq!(ok[1].kind, DomainKind::Custom);
        let dup = validate_hosts(&[h("A.acme.com"), h("a.acme.com")], Some(&p))
            .unwrap_err()
            .to_string();
        assert!(
            dup.contains("'a.acme.com' is listed more than once"),
            "{dup}"
        );
        let apex = validate_hosts(std::slice::from_ref(&p), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(apex.contains("platform domain itself"), "{apex}");
        let many: Vec<_> = (0..=MAX_DOMAINS_PER_INSTANCE)
            .map(|i| h(&format!("h{i}.acme.com")))
            .collect();
        assert!(
            validate_hosts(&many, Some(&p))
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }
}
