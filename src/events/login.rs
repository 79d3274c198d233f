//! `instance.login_ready` and `instance.login_failing`: told once per set of hosts and once
//! per failure streak, from what the platform was last told (`instance_login_events`).

use serde_json::json;
use sqlx::PgConnection;

use super::{Kind, Outbox};
use crate::db;

/// Whether an instance's hosts can log in now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginNow {
    /// These hosts (by name) can log in, `via` the relay or the application named.
    Ready { hosts: Vec<String>, via: Via },
    /// A pass failed and its URLs are not live.
    Failing { hosts: Vec<String>, reason: String },
    /// Not yet (a pass will write it).
    Pending,
    /// Not active, or no hosts: nothing to tell; a later login_ready is told afresh.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Relay,
    Application(String),
}

/// What the platform was last told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Told {
    pub ready_hosts: Option<Vec<String>>,
    pub failing: bool,
}

/// What to tell now, and what will have been told. Pure.
pub fn news(told: &Told, now: &LoginNow) -> (Option<Kind>, Told) {
    match now {
        LoginNow::Ready { hosts, .. } => {
            let fresh = told.failing || told.ready_hosts.as_ref() != Some(hosts);
            (
                fresh.then_some(Kind::InstanceLoginReady),
                Told {
                    ready_hosts: Some(hosts.clone()),
                    failing: false,
                },
            )
        }
        LoginNow::Failing { .. } => (
            (!told.failing).then_some(Kind::InstanceLoginFailing),
            Told {
                ready_hosts: None,
                failing: true,
            },
        ),
        LoginNow::Pending => (None, told.clone()),
        LoginNow::Gone => (None, Told::default()),
    }
}

/// Tells the platform about `instance_id`'s login if there is news, in the caller's
/// transaction (which holds the instance's lock or the pass lock).
pub async fn tell(
    conn: &mut PgConnection,
    outbox: Outbox,
    instance_id: &str,
    told: Option<Told>,
    now: &LoginNow,
) -> sqlx::Result<()> {
    if !outbox.is_on() {
        return Ok(());
    }
    let told = match told {
        Some(t) => t,
        None => db::events::login_told(conn, instance_id)
            .await?
            .map(|(ready_hosts, failing)| Told {
                ready_hosts,
                failing,
            })
            .unwrap_or_default(),
    };
    let (kind, after) = news(&told, now);
    if let Some(kind) = kind {
        let data = match now {
            LoginNow::Ready { hosts, via } => json!({
                "instance_id": instance_id,
                "hosts": hosts,
                "via": match via { Via::Relay => "relay", Via::Application(_) => "application" },
                "client_id": match via { Via::Relay => None, Via::Application(c) => Some(c) },
            }),
            LoginNow::Failing { hosts, reason } => json!({
                "instance_id": instance_id,
                "hosts": hosts,
                "reason": reason,
            }),
            LoginNow::Pending | LoginNow::Gone => unreachable!("no news of these"),
        };
        outbox.record(conn, kind, Some(instance_id), data).await?;
    }
    if after != told {
        db::events::set_login_told(
            conn,
            instance_id,
            after.ready_hosts.as_deref(),
            after.failing,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(hosts: &[&str]) -> LoginNow {
        LoginNow::Ready {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            via: Via::Relay,
        }
    }

    #[test]
    fn ready_is_told_once_per_set_of_hosts() {
        let (kind, told) = news(&Told::default(), &ready(&["a.example"]));
        assert_eq!(kind, Some(Kind::InstanceLoginReady));
        assert_eq!(news(&told, &ready(&["a.example"])).0, None);
        assert_eq!(
            news(&told, &ready(&["a.example", "b.example"])).0,
            Some(Kind::InstanceLoginReady)
        );
        assert_eq!(news(&told, &LoginNow::Pending), (None, told.clone()));
    }

    #[test]
    fn failing_is_told_once_per_streak_and_ready_again_after_it() {
        let failing = LoginNow::Failing {
            hosts: vec!["a.example".into()],
            reason: "full".into(),
        };
        let (_, ready_told) = news(&Told::default(), &ready(&["a.example"]));
        let (kind, told) = news(&ready_told, &failing);
        assert_eq!(kind, Some(Kind::InstanceLoginFailing));
        assert_eq!(news(&told, &failing).0, None);
        assert_eq!(
            news(&told, &ready(&["a.example"])).0,
            Some(Kind::InstanceLoginReady)
        );
    }

    #[test]
    fn an_instance_gone_and_back_is_ready_again() {
        let (_, told) = news(&Told::default(), &ready(&["a.example"]));
        let (kind, told) = news(&told, &LoginNow::Gone);
        assert_eq!((kind, &told), (None, &Told::default()));
        assert_eq!(
            news(&told, &ready(&["a.example"])).0,
            Some(Kind::InstanceLoginReady)
        );
    }
}
