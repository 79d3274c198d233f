//! Every live key's hash in memory, so that an instance's poll does not touch the database.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, Ordering},
};

use chrono::{DateTime, Utc};
use foldhash::HashMap;

use super::{KeyHash, hash, well_formed};
use crate::db::keys::KeyRow;

#[derive(Debug, Clone)]
struct Entry {
    /// Shared with every lookup's answer: a poll clones no string.
    instance_id: Arc<str>,
    expires_at: Option<DateTime<Utc>>,
}

/// What the memory says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Instance(Arc<str>),
    Unknown,
    /// The memory is not in step with the database (starting, or notifications interrupted).
    NotSynced,
}

/// Every live key's hash and instance, kept equal to `instance_keys` by notifications.
#[derive(Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<KeyHash, Entry>>,
    synced: AtomicBool,
}

impl KeyCache {
    /// The instance of `key` at `now` (read only for a key that expires: most never do, and
    /// every poll looks its key up). A token not shaped like a key is no key at all: while the
    /// memory is not in step it is `Unknown` at once (the database is asked only for a
    /// well-formed key); in step, its hash is in no entry (every entry is a generated key's).
    pub fn lookup(&self, key: &str, now: impl FnOnce() -> DateTime<Utc>) -> Lookup {
        if !self.synced.load(Ordering::Acquire) {
            return if well_formed(key) {
                Lookup::NotSynced
            } else {
                Lookup::Unknown
            };
        }
        let hash = hash(key);
        match self.keys.read().expect("key cache lock").get(&hash) {
            Some(e) if e.expires_at.is_none_or(|t| t > now()) => {
                Lookup::Instance(e.instance_id.clone())
            }
            _ => Lookup::Unknown,
        }
    }

    /// Replaces everything (after a (re)connection) and marks the cache in step.
    pub fn replace_all(&self, rows: Vec<KeyRow>) {
        let mut keys = self.keys.write().expect("key cache lock");
        keys.clear();
        keys.extend(rows.into_iter().filter_map(entry));
        self.synced.store(true, Ordering::Release);
    }

    /// Replaces one instance's keys.
    pub fn replace_instance(&self, instance_id: &str, rows: Vec<KeyRow>) {
        let mut keys = self.keys.write().expect("key cache lock");
        keys.retain(|_, e| &*e.instance_id != instance_id);
        keys.extend(rows.into_iter().filter_map(entry));
    }

    /// Adds a key just issued to an instance that had none (its first deploy): nothing else
    /// of the instance's changes.
    pub fn insert(&self, hash: KeyHash, instance_id: &str) {
        let entry = Entry {
            instance_id: instance_id.into(),
            expires_at: None,
        };
        self.keys
            .write()
            .expect("key cache lock")
            .insert(hash, entry);
    }

    pub fn mark_unsynced(&self) {
        self.synced.store(false, Ordering::Release);
    }
}

fn entry(row: KeyRow) -> Option<(KeyHash, Entry)> {
    let hash: KeyHash = row.hash.try_into().ok()?;
    Some((
        hash,
        Entry {
            instance_id: row.instance_id.into(),
            expires_at: row.expires_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::{ExposeSecret, SecretString};

    use crate::keys::generate;

    fn row(key: &SecretString, instance: &str, expires_at: Option<DateTime<Utc>>) -> KeyRow {
        KeyRow {
            hash: hash(key.expose_secret()).to_vec(),
            instance_id: instance.into(),
            expires_at,
        }
    }

    #[test]
    fn lookups_follow_the_rows_and_expiry() {
        let cache = KeyCache::default();
        let (a, _) = generate();
        let (b, _) = generate();
        let now = Utc::now();
        assert_eq!(cache.lookup(a.expose_secret(), || now), Lookup::NotSynced);
        cache.replace_all(vec![
            row(&a, "acme", None),
            row(&b, "acme", Some(now + chrono::Duration::seconds(5))),
        ]);
        assert_eq!(
            cache.lookup(a.expose_secret(), || now),
            Lookup::Instance("acme".into())
        );
        assert_eq!(
            cache.lookup(b.expose_secret(), || now),
            Lookup::Instance("acme".into())
        );
        assert_eq!(
            cache.lookup(b.expose_secret(), || now + chrono::Duration::seconds(6)),
            Lookup::Unknown
        );
        cache.replace_instance("acme", vec![row(&b, "acme", None)]);
        assert_eq!(cache.lookup(a.expose_secret(), || now), Lookup::Unknown);
        cache.mark_unsynced();
        assert_eq!(cache.lookup(b.expose_secret(), || now), Lookup::NotSynced);
        // Not shaped like a key: no key, whatever the memory's state.
        assert_eq!(cache.lookup("fgi_short", || now), Lookup::Unknown);
    }
}
