//! The tenant's users (a database connection's, `auth0|…`): created under `/emulator/users`,
//! logged in through the login page. Passwords are kept as salted SHA-256 hashes, which is
//! enough for a local stand-in and keeps them out of the state file.

use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The password of a user created without one.
pub const DEFAULT_PASSWORD: &str = "password";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub created_at: String,
    /// Changed by each login, as Auth0 changes it; empty in state files from before it was
    /// kept (then `created_at` stands in).
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub logins_count: u64,
    /// Permissions on the seeded API (fleetgate's), as Auth0's RBAC puts them in the
    /// `permissions` claim of access tokens for that API.
    #[serde(default)]
    pub permissions: Vec<String>,
    salt: String,
    password_sha256: String,
}

/// The database connection's name, as Auth0 names a tenant's first one.
pub const DATABASE_CONNECTION: &str = "Username-Password-Authentication";
/// The social connection the emulator stands in for (no network: its own provider page).
pub const GOOGLE_CONNECTION: &str = "google-oauth2";

/// Whether `email` has the shape Auth0 takes for an address: a local part, `@`, a dotted
/// domain, no white space, at most 254 characters.
pub fn is_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

fn digest(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

impl User {
    /// A new user with an id as Auth0 gives database users (`auth0|` + 24 hex digits).
    pub fn new(email: &str, password: &str, email_verified: bool, name: Option<&str>) -> Self {
        let salt = random_hex(16);
        Self {
            user_id: format!("auth0|{}", random_hex(12)),
            email: email.to_owned(),
            email_verified,
            name: name.unwrap_or(email).to_owned(),
            created_at: now(),
            updated_at: now(),
            logins_count: 0,
            permissions: Vec::new(),
            password_sha256: digest(&salt, password),
            salt,
        }
    }

    /// A user of a social connection (`google-oauth2`), as Auth0 makes one at the person's
    /// first login through it: `{connection}|{the provider's id}` (Google's are 21 digits; here
    /// derived from the email, so the same person is the same user), the email verified (the
    /// provider vouches for it), and no password.
    pub fn social(connection: &str, email: &str, name: &str) -> Self {
        let digits: String = Sha256::digest(format!("{connection}\0{}", email.to_lowercase()))
            .iter()
            .take(21)
            .map(|b| char::from(b'0' + b % 10))
            .collect();
        let salt = random_hex(16);
        Self {
            user_id: format!("{connection}|1{}", &digits[1..]),
            email: email.to_owned(),
            email_verified: true,
            name: if name.trim().is_empty() { email } else { name }.to_owned(),
            created_at: now(),
            updated_at: now(),
            logins_count: 0,
            permissions: Vec::new(),
            // Nobody knows this password: a social user logs in through its provider only.
            password_sha256: digest(&salt, &random_hex(32)),
            salt,
        }
    }

    /// The connection the user belongs to: `Username-Password-Authentication` for database
    /// users, the provider's (`google-oauth2`) for social ones.
    pub fn connection(&self) -> &str {
        match self.user_id.split_once('|') {
            Some(("auth0", _)) | None => DATABASE_CONNECTION,
            Some((provider, _)) => provider,
        }
    }

    pub fn password_is(&self, password: &str) -> bool {
        digest(&self.salt, password)
            .as_bytes()
            .ct_eq(self.password_sha256.as_bytes())
            .into()
    }

    /// A login: counted, and `updated_at` moves.
    pub fn logged_in(&mut self) {
        self.logins_count += 1;
        self.updated_at = now();
    }

    fn nickname(&self) -> &str {
        self.email.split('@').next().unwrap_or_default()
    }

    fn updated(&self) -> &str {
        if self.updated_at.is_empty() {
            &self.created_at
        } else {
            &self.updated_at
        }
    }

    /// The picture Auth0 gives a database user: their Gravatar, falling back to an avatar of
    /// their initials (Gravatar takes the SHA-256 of the address as well as the MD5 Auth0 uses).
    fn picture(&self) -> String {
        let email = self.email.trim().to_lowercase();
        let initials: String = email
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(2)
            .collect();
        format!(
            "https://s.gravatar.com/avatar/{}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png",
            hex(&Sha256::digest(email.as_bytes()))
        )
    }

    /// The OpenID Connect claims a `scope` gives, for the ID token and `/userinfo`: `profile`
    /// → `name`, `nickname`, `picture`, `updated_at`; `email` → `email`, `email_verified`.
    pub fn claims(&self, scope: &str) -> serde_json::Map<String, Value> {
        let mut claims = serde_json::Map::new();
        let asked = |wanted: &str| scope.split(' ').any(|s| s == wanted);
        if asked("profile") {
            claims.insert("name".into(), json!(self.name));
            claims.insert("nickname".into(), json!(self.nickname()));
            claims.insert("picture".into(), json!(self.picture()));
            claims.insert("updated_at".into(), json!(self.updated()));
        }
        if asked("email") {
            claims.insert("email".into(), json!(self.email));
            claims.insert("email_verified".into(), json!(self.email_verified));
        }
        claims
    }

    /// The user as the Management API and `event.user` show it (never the password).
    pub fn profile(&self) -> Value {
        let (provider, id) = self
            .user_id
            .split_once('|')
            .unwrap_or(("auth0", &self.user_id));
        json!({
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "nickname": self.nickname(),
            "picture": self.picture(),
            "created_at": self.created_at,
            "updated_at": self.updated(),
            "logins_count": self.logins_count,
            "permissions": self.permissions,
            "identities": [{
                "provider": provider,
                "user_id": id,
                "connection": self.connection(),
                "isSocial": provider != "auth0",
            }],
            "app_metadata": {},
            "user_metadata": {},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_social_user_is_its_providers_with_a_verified_email_and_no_password() {
        let u = User::social(GOOGLE_CONNECTION, "Carol@Example.com", "Carol");
        assert!(
            u.user_id.starts_with("google-oauth2|1") && u.user_id.len() == 35,
            "{}",
            u.user_id
        );
        assert_eq!(
            u.user_id,
            User::social(GOOGLE_CONNECTION, "carol@example.com", "").user_id,
            "the same person is the same user"
        );
        assert!(u.email_verified && !u.password_is("") && !u.password_is("password"));
        assert_eq!(u.connection(), GOOGLE_CONNECTION);
        let identity = &u.profile()["identities"][0];
        assert_eq!(identity["provider"], "google-oauth2");
        assert_eq!(identity["isSocial"], true);
        assert_eq!(identity["user_id"], u.user_id.split_once('|').unwrap().1);
        let db = User::new("d@example.com", "pw", true, None);
        assert_eq!(db.connection(), DATABASE_CONNECTION);
        assert_eq!(db.profile()["identities"][0]["isSocial"], false);
    }

    #[test]
    fn passwords_are_checked_and_never_shown() {
        let u = User::new("ann@example.com", "s3cret", true, None);
        assert!(u.user_id.starts_with("auth0|") && u.user_id.len() == 30);
        assert!(u.password_is("s3cret"));
        assert!(!u.password_is("s3cret "));
        assert_eq!(u.name, "ann@example.com");
        let shown = u.profile().to_string() + &serde_json::to_string(&u).unwrap();
        assert!(!shown.contains("s3cret"));
    }
}
