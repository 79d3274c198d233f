//! An instance as the API shows it, loaded from its rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{
    db::{self, domains::DomainRow, instances::InstanceRow},
    domain::{DomainKind, Hostname, InstanceId, InstanceStatus, UserId},
};

use super::{RegistryError, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Domain {
    pub hostname: Hostname,
    pub kind: DomainKind,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Instance {
    pub id: InstanceId,
    pub owner: UserId,
    pub status: InstanceStatus,
    pub domains: Vec<Domain>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bookkeeping for every replica's memory (`grants::roster`): moves on every write of the
    /// instance's row, also one that changes nothing; not part of what the instance is.
    #[serde(skip)]
    pub version: i64,
}

/// Two instances are equal when everything the API shows of them is (the version aside). The
/// destructuring is exhaustive: a new field must be placed on one side or the other.
impl PartialEq for Instance {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            id,
            owner,
            status,
            domains,
            created_at,
            updated_at,
            version: _,
        } = self;
        (id, owner, status, domains, created_at, updated_at)
            == (
                &other.id,
                &other.owner,
                &other.status,
                &other.domains,
                &other.created_at,
                &other.updated_at,
            )
    }
}

impl Eq for Instance {}

impl Instance {
    pub(super) fn from_rows(
        row: InstanceRow,
        domains: impl IntoIterator<Item = DomainRow>,
    ) -> Result<Self> {
        let corrupt = |e: crate::domain::ParseError| RegistryError::Corrupt(e.to_string());
        Ok(Self {
            id: InstanceId::parse(&row.id).map_err(corrupt)?,
            owner: UserId::parse(&row.owner).map_err(corrupt)?,
            status: row.status.parse().map_err(corrupt)?,
            domains: domains
                .into_iter()
                .map(|d| {
                    Ok(Domain {
                        hostname: Hostname::parse(&d.hostname).map_err(corrupt)?,
                        kind: d.kind.parse().map_err(corrupt)?,
                    })
                })
                .collect::<Result<_>>()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }

    /// Its hosts, by name (as the registry loads them).
    pub fn hostnames(&self) -> Vec<String> {
        self.domains
            .iter()
            .map(|d| d.hostname.to_string())
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an instance always serialises")
    }
}

#[cfg(test)]
impl Instance {
    /// An instance for tests of pure code; hosts are classified against `apps.example.com`.
    pub(crate) fn sample(id: &str, status: InstanceStatus, hosts: &[&str]) -> Self {
        let platform = Hostname::parse("apps.example.com").expect("valid");
        Self {
            id: InstanceId::parse(id).expect("a valid id"),
            owner: UserId::parse("auth0|o").expect("valid"),
            status,
            domains: hosts
                .iter()
                .map(|h| {
                    let hostname = Hostname::parse(h).expect("a valid host");
                    Domain {
                        kind: DomainKind::of(&hostname, Some(&platform)),
                        hostname,
                    }
                })
                .collect(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            version: 0,
        }
    }
}

/// The instance with this id, with its domains (one round trip).
pub async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Instance>> {
    db::instances::with_domains(conn, id, false)
        .await?
        .map(|s| Instance::from_rows(s.row, s.domains))
        .transpose()
}

/// An instance read under its row's lock, and whether it holds a live key.
pub(super) struct Locked {
    pub instance: Instance,
    pub keyed: bool,
}

/// Like [`load`], locking the instance's row until the transaction ends: writers of one
/// instance are serialised.
pub(super) async fn load_locked(conn: &mut PgConnection, id: &str) -> Result<Option<Locked>> {
    db::instances::with_domains(conn, id, true)
        .await?
        .map(|s| {
            Ok(Locked {
                instance: Instance::from_rows(s.row, s.domains)?,
                keyed: s.keyed,
            })
        })
        .transpose()
}

/// Loads the domains of these rows and assembles instances, in the rows' order.
pub async fn load_many(conn: &mut PgConnection, rows: Vec<InstanceRow>) -> Result<Vec<Instance>> {
    with_domains(conn, rows).await
}

async fn with_domains(conn: &mut PgConnection, rows: Vec<InstanceRow>) -> Result<Vec<Instance>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut by_instance: HashMap<String, Vec<DomainRow>> = HashMap::new();
    for d in db::domains::of_instances(conn, &ids).await? {
        by_instance
            .entry(d.instance_id.clone())
            .or_default()
            .push(d);
    }
    rows.into_iter()
        .map(|row| {
            let mine = by_instance.remove(&row.id).unwrap_or_default();
            Instance::from_rows(row, mine)
        })
        .collect()
}
