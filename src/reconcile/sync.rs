//! Whether an instance's URLs are live in Auth0, from the lists as last read back. Pure.

use std::collections::BTreeMap;

use super::desired::Options;
use crate::domain::Field;
use crate::{domain::InstanceStatus, registry::Instance};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    /// Auth0 holds it exactly as the registry wants (present, or gone).
    Synced,
    /// Not applied yet.
    Pending,
    /// The last pass failed; `reason` says why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UrlSync {
    pub host: String,
    pub field: Field,
    pub url: String,
    /// Whether the registry wants it on the list (the instance is active).
    pub wanted: bool,
    /// Whether the list held it when last read back.
    pub live: bool,
    pub state: SyncState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The application an instance placed on `client_id` logs in through at the tenant now: every
/// one of its URLs is live there (none when it has no URL).
pub fn live_at<'a>(client_id: Option<&'a str>, urls: &[UrlSync]) -> Option<&'a str> {
    let live = !urls.is_empty() && urls.iter().all(|u| u.state == SyncState::Synced && u.live);
    client_id.filter(|_| live)
}

/// One row per host, field and template. Hosts covered by the wildcard are checked against
/// the wildcard entry.
pub fn sync_status(
    instance: &Instance,
    opts: Options<'_>,
    lists: &BTreeMap<Field, Vec<String>>,
    last_failure: Option<&str>,
) -> Vec<UrlSync> {
    let wanted = instance.status == InstanceStatus::Active;
    let mut out = Vec::new();
    for domain in &instance.domains {
        let host = if opts.needs_exact_entries(&domain.hostname) {
            domain.hostname.to_string()
        } else {
            format!(
                "*.{}",
                opts.platform_domain
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        };
        for field in Field::ALL {
            for template in opts.templates.of(field) {
                let url = template.render(&host);
                let live = lists.get(&field).is_some_and(|l| l.contains(&url));
                let (state, reason) = match (live == wanted, last_failure) {
                    (true, _) => (SyncState::Synced, None),
                    (false, Some(why)) => (SyncState::Failed, Some(why.to_owned())),
                    (false, None) => (SyncState::Pending, None),
                };
                out.push(UrlSync {
                    host: domain.hostname.to_string(),
                    field,
                    url,
                    wanted,
                    live,
                    state,
                    reason,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::Hostname, domain::Templates};

    fn instance(status: InstanceStatus, hosts: &[&str]) -> Instance {
        Instance::sample("acme", status, hosts)
    }

    #[test]
    fn states_follow_the_read_back_lists_and_the_last_failure() {
        let platform = Hostname::parse("apps.example.com").unwrap();
        let templates = Templates::defaults();
        let opts = Options {
            platform_domain: Some(&platform),
            wildcard: true,
            templates: &templates,
        };
        let lists: BTreeMap<Field, Vec<String>> = [(
            Field::Callbacks,
            vec![
                "https://www.acme.com/callback".to_owned(),
                "https://*.apps.example.com/callback".to_owned(),
            ],
        )]
        .into();
        let active = instance(
            InstanceStatus::Active,
            &["www.acme.com", "acme.apps.example.com"],
        );
        let rows = sync_status(&active, opts, &lists, None);
        assert_eq!(rows.len(), 8);
        let state = |host: &str, field: Field| {
            rows.iter()
                .find(|r| r.host == host && r.field == field)
                .unwrap()
                .state
        };
        assert_eq!(state("www.acme.com", Field::Callbacks), SyncState::Synced);
        assert_eq!(
            state("acme.apps.example.com", Field::Callbacks),
            SyncState::Synced,
            "covered by the wildcard"
        );
        assert_eq!(state("www.acme.com", Field::WebOrigins), SyncState::Pending);
        let failed = sync_status(
            &active,
            opts,
            &lists,
            Some("callbacks would hold 101 entries"),
        );
        assert_eq!(
            failed
                .iter()
                .find(|r| r.field == Field::WebOrigins)
                .unwrap()
                .reason
                .as_deref(),
            Some("callbacks would hold 101 entries")
        );
        let suspended = instance(InstanceStatus::Suspended, &["www.acme.com"]);
        let rows = sync_status(&suspended, opts, &lists, None);
        assert_eq!(
            rows.iter()
                .find(|r| r.field == Field::Callbacks)
                .unwrap()
                .state,
            SyncState::Pending,
            "still live, removal pending"
        );
        assert_eq!(
            rows.iter()
                .find(|r| r.field == Field::WebOrigins)
                .unwrap()
                .state,
            SyncState::Synced,
            "gone, as wanted"
        );
    }
}
