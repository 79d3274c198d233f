//! When each person last logged in to each instance, seen by login decisions and kept in
//! memory until [`LastLogins::flush`] writes them in one statement: a login storm costs no
//! write per login, and a replica that dies loses at most one flush interval of them.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::db;

/// What a login tells: its email and connection, and when.
type Login = (Option<String>, Option<String>, DateTime<Utc>);
/// (instance, user) → the latest login.
type Seen = HashMap<(String, String), Login>;

/// Logins seen since the last flush, by (instance, user): the latest, with its email.
#[derive(Default)]
pub struct LastLogins {
    seen: Mutex<Seen>,
}

impl LastLogins {
    pub fn saw(&self, instance: &str, user: &str, email: Option<&str>, connection: Option<&str>) {
        let mut seen = self.seen.lock().expect("last logins lock");
        seen.insert(
            (instance.to_owned(), user.to_owned()),
            (
                email.map(str::to_owned),
                connection.map(str::to_owned),
                Utc::now(),
            ),
        );
    }

    /// Writes what was seen since the last flush; on failure it is kept for the next.
    pub async fn flush(&self, pool: &PgPool) -> sqlx::Result<usize> {
        let batch: Vec<db::last_logins::Seen> = {
            let mut seen = self.seen.lock().expect("last logins lock");
            seen.drain()
                .map(|((i, u), (e, c, at))| (i, u, e, c, at))
                .collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let written = match pool.acquire().await {
            Ok(mut conn) => db::last_logins::record(&mut conn, &batch).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let mut seen = self.seen.lock().expect("last logins lock");
            for (i, u, e, c, at) in batch {
                seen.entry((i, u)).or_insert((e, c, at));
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn logins_not_written_are_kept_for_the_next_flush_and_the_latest_wins() {
        let seen = LastLogins::default();
        seen.saw("acme", "auth0|a", Some("a@example.com"), None);
        seen.saw("acme", "auth0|a", None, Some("google-oauth2"));
        seen.saw("beta", "auth0|a", None, None);
        // Nothing listens on port 1: the write fails.
        let away = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(1))
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        assert!(seen.flush(&away).await.is_err());
        let kept = seen.seen.lock().unwrap();
        assert_eq!(kept.len(), 2);
        let (email, connection, _) = &kept[&("acme".to_owned(), "auth0|a".to_owned())];
        assert_eq!(
            (email, connection.as_deref()),
            (&None, Some("google-oauth2"))
        );
    }
}
