//! Instance keys: `fgi_` + 32 random bytes (base64url), stored only as a SHA-256 hash, and
//! looked up in memory so that an instance's poll does not touch the database.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::db::keys::KeyRow;

pub const PREFIX: &str = "fgi_";
/// `fgi_` and 43 base64url characters.
const LEN: usize = PREFIX.len() + 43;

pub type KeyHash = [u8; 32];

/// A new key, and the hash to store.
pub fn generate() -> (SecretString, KeyHash) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&key);
    (SecretString::from(key), hash)
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a bearer token is shaped like an instance key (and so is not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Whether a token has an instance key's exact shape; anything else cannot be one.
pub fn well_formed(token: &str) -> bool {
    token.len() == LEN
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Issues a new key for the instance (stored as its hash, with who minted it) and answers it:
/// the only time it is ever seen.
pub async fn issue(
    conn: &mut sqlx::PgConnection,
    instance_id: &str,
    minted_by: &str,
) -> sqlx::Result<SecretString> {
    let (key, hash) = generate();
    crate::db::keys::insert(conn, instance_id, &hash, minted_by).await?;
    Ok(key)
}

/// Issues a key unless the instance has a live one (its first deploy, the first after a
/// deletion or after a new owner).
pub async fn issue_if_none(
    conn: &mut sqlx::PgConnection,
    instance_id: &str,
    minted_by: &str,
) -> sqlx::Result<Option<SecretString>> {
    if crate::db::keys::has_live(conn, instance_id).await? {
        return Ok(None);
    }
    issue(conn, instance_id, minted_by).await.map(Some)
}

#[derive(Debug, Clone)]
struct Entry {
    instance_id: String,
    expires_at: Option<DateTime<Utc>>,
}

/// What the memory says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Instance(String),
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
    pub fn lookup(&self, key: &SecretString, now: DateTime<Utc>) -> Lookup {
        if !self.synced.load(Ordering::Acquire) {
            return Lookup::NotSynced;
        }
        let hash = hash(key.expose_secret());
        match self.keys.read().expect("key cache lock").get(&hash) {
            Some(e) if e.expires_at.is_none_or(|t| t > now) => {
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
        keys.retain(|_, e| e.instance_id != instance_id);
        keys.extend(rows.into_iter().filter_map(entry));
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
            instance_id: row.instance_id,
            expires_at: row.expires_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &SecretString, instance: &str, expires_at: Option<DateTime<Utc>>) -> KeyRow {
        KeyRow {
            hash: hash(key.expose_secret()).to_vec(),
            instance_id: instance.into(),
            expires_at,
        }
    }

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert!(
            well_formed(a.expose_secret()),
            "{}",
            a.expose_secret().len()
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(ha, hash(a.expose_secret()));
        assert!(!well_formed("fgi_short"));
        assert!(!well_formed(&format!("fgi_{}", "a".repeat(42) + "=")));
    }

    #[test]
    fn lookups_follow_the_rows_and_expiry() {
        let cache = KeyCache::default();
        let (a, _) = generate();
        let (b, _) = generate();
        let now = Utc::now();
        assert_eq!(cache.lookup(&a, now), Lookup::NotSynced);
        cache.replace_all(vec![
            row(&a, "acme", None),
            row(&b, "acme", Some(now + chrono::Duration::seconds(5))),
        ]);
        assert_eq!(cache.lookup(&a, now), Lookup::Instance("acme".into()));
        assert_eq!(cache.lookup(&b, now), Lookup::Instance("acme".into()));
        assert_eq!(
            cache.lookup(&b, now + chrono::Duration::seconds(6)),
            Lookup::Unknown
        );
        cache.replace_instance("acme", vec![row(&b, "acme", None)]);
        assert_eq!(cache.lookup(&a, now), Lookup::Unknown);
        cache.mark_unsynced();
        assert_eq!(cache.lookup(&b, now), Lookup::NotSynced);
    }
}
