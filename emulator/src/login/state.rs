//! What the login side remembers between requests, in memory only (a restart logs everyone
//! out, as a new tenant would): browser sessions, logins waiting for the form, authorization
//! codes and refresh tokens. Pure data; the handlers hold the lock.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::{Map, Value};

/// How long an authorization code can be exchanged (Auth0 publishes none; codes are used
/// within seconds).
const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// How long the login form of one `/authorize` stays usable.
const PENDING_LIFETIME: Duration = Duration::from_secs(3600);

/// A random, unguessable identifier (32 bytes, base64url).
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    WebMessage,
}

impl ResponseMode {
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        Some(match raw.unwrap_or("query") {
            "query" => Self::Query,
            "fragment" => Self::Fragment,
            "form_post" => Self::FormPost,
            "web_message" => Self::WebMessage,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Fragment => "fragment",
            Self::FormPost => "form_post",
            Self::WebMessage => "web_message",
        }
    }
}

/// A PKCE challenge and its method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    S256(String),
    Plain(String),
}

/// An `/authorize` request that passed its checks.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub audience: Option<String>,
    pub challenge: Option<Challenge>,
    /// `max_age` or `prompt=login` was sent: the ID token carries `auth_time`.
    pub wants_auth_time: bool,
    /// The query as sent, for `event.request.query`.
    pub query: Map<String, Value>,
}

/// A browser's login session: who, since when (`auth_time`), and its `sid` (what the ID token
/// names; never the cookie's value).
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub sid: String,
    /// When the user last entered a password (seconds since the epoch).
    pub auth_time: i64,
}

/// What an exchange yields: who logged in, for what, and the claims the Action added.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    /// The session the login ran in (the ID token's `sid`).
    pub sid: String,
    /// `auth_time` for the ID token: set when the application asked for it (`max_age`, or
    /// `prompt=login`), as Auth0 does.
    pub auth_time: Option<i64>,
    pub client_id: String,
    pub scope: String,
    pub audience: Option<String>,
    pub access_claims: Map<String, Value>,
    pub id_claims: Map<String, Value>,
    /// `api.refreshToken.setMetadata` at login; read back as `event.refresh_token.metadata`.
    pub refresh_metadata: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Code {
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub challenge: Option<Challenge>,
    pub grant: Grant,
    expires: Instant,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub id: String,
    pub family: String,
    pub created_at: String,
    pub grant: Grant,
    used: bool,
}

/// Why a refresh token was not exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefused {
    Unknown,
    /// Exchanged before: the whole family is revoked (rotation's reuse detection).
    Reused,
}

struct Pending {
    authorization: Authorization,
    browser: String,
    at: Instant,
}

#[derive(Default)]
pub struct LoginState {
    /// Session cookie → its session.
    sessions: HashMap<String, Session>,
    /// Login forms shown: the transaction, the browser it was shown to (its CSRF cookie) and
    /// when.
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, RefreshToken>,
    revoked: HashSet<String>,
}

impl LoginState {
    /// A new session for a user who just entered their password; answers the cookie's value
    /// and the session.
    pub fn start_session(&mut self, user_id: &str) -> (String, Session) {
        let id = random_id();
        let session = Session {
            user_id: user_id.to_owned(),
            sid: random_id()[..32].to_owned(),
            auth_time: chrono::Utc::now().timestamp(),
        };
        self.sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    pub fn session(&self, cookie: &str) -> Option<&Session> {
        self.sessions.get(cookie)
    }

    pub fn end_session(&mut self, session: &str) {
        self.sessions.remove(session);
    }

    /// Keeps an authorization while its login form is filled in; answers the form's id.
    /// A login form shown to `browser` (the value of its CSRF cookie); answers the transaction.
    pub fn pend(&mut self, authorization: Authorization, browser: &str, now: Instant) -> String {
        self.pending
            .retain(|_, p| now.duration_since(p.at) < PENDING_LIFETIME);
        let id = random_id();
        let pending = Pending {
            authorization,
            browser: browser.to_owned(),
            at: now,
        };
        self.pending.insert(id.clone(), pending);
        id
    }

    /// The login of transaction `id`, when `browser` is the one its form was shown to: a form
    /// posted from another browser (login CSRF: a victim signed in to an attacker's session)
    /// finds nothing.
    pub fn pending(&self, id: &str, browser: Option<&str>) -> Option<&Authorization> {
        use subtle::ConstantTimeEq;
        let p = self.pending.get(id)?;
        let same = browser.is_some_and(|b| bool::from(b.as_bytes().ct_eq(p.browser.as_bytes())));
        same.then_some(&p.authorization)
    }

    pub fn finish_pending(&mut self, id: &str) {
        self.pending.remove(id);
    }

    pub fn issue_code(
        &mut self,
        authorization: &Authorization,
        grant: Grant,
        now: Instant,
    ) -> String {
        self.codes.retain(|_, c| c.expires > now);
        let code = random_id();
        self.codes.insert(
            code.clone(),
            Code {
                redirect_uri: authorization.redirect_uri.clone(),
                nonce: authorization.nonce.clone(),
                challenge: authorization.challenge.clone(),
                grant,
                expires: now + CODE_LIFETIME,
            },
        );
        code
    }

    /// The code's grant, once: a code is gone after its first exchange, whatever its outcome.
    pub fn take_code(&mut self, code: &str, now: Instant) -> Option<Code> {
        self.codes.remove(code).filter(|c| c.expires > now)
    }

    /// A refresh token for `grant`, in `family` (a new family for a login).
    pub fn issue_refresh(&mut self, grant: Grant, family: Option<String>) -> String {
        let token = random_id();
        self.refresh.insert(
            token.clone(),
            RefreshToken {
                id: format!("rt_{}", &random_id()[..16]),
                family: family.unwrap_or_else(random_id),
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                grant,
                used: false,
            },
        );
        token
    }

    /// The refresh token, unless unknown or revoked; exchanging one twice revokes its family.
    pub fn refresh_token(&mut self, token: &str) -> Result<RefreshToken, RefreshRefused> {
        let rt = self.refresh.get(token).ok_or(RefreshRefused::Unknown)?;
        if self.revoked.contains(&rt.family) {
            return Err(RefreshRefused::Unknown);
        }
        if rt.used {
            let family = rt.family.clone();
            self.revoked.insert(family.clone());
            self.refresh.retain(|_, t| t.family != family);
            return Err(RefreshRefused::Reused);
        }
        Ok(rt.clone())
    }

    /// Marks a refresh token exchanged (rotation: only its successor works from now on).
    pub fn rotate(&mut self, token: &str) {
        if let Some(rt) = self.refresh.get_mut(token) {
            rt.used = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            user_id: "auth0|ann".into(),
            sid: "sid".into(),
            auth_time: None,
            client_id: "spa".into(),
            scope: "openid offline_access".into(),
            audience: None,
            access_claims: Map::new(),
            id_claims: Map::new(),
            refresh_metadata: Map::new(),
        }
    }

    fn authorization() -> Authorization {
        Authorization {
            client_id: "spa".into(),
            redirect_uri: "https://a.example.com/cb".into(),
            response_mode: ResponseMode::Query,
            scope: "openid".into(),
            state: None,
            nonce: Some("n".into()),
            challenge: None,
            audience: None,
            wants_auth_time: false,
            query: Map::new(),
        }
    }

    #[test]
    fn a_code_works_once_and_not_after_it_expires() {
        let mut s = LoginState::default();
        let now = Instant::now();
        let code = s.issue_code(&authorization(), grant(), now);
        assert!(s.take_code(&code, now).is_some());
        assert!(s.take_code(&code, now).is_none());
        let late = s.issue_code(&authorization(), grant(), now);
        assert!(s.take_code(&late, now + CODE_LIFETIME).is_none());
    }

    #[test]
    fn reusing_a_rotated_refresh_token_revokes_its_family() {
        let mut s = LoginState::default();
        let first = s.issue_refresh(grant(), None);
        let family = s.refresh_token(&first).unwrap().family;
        s.rotate(&first);
        let second = s.issue_refresh(grant(), Some(family));
        assert!(s.refresh_token(&second).is_ok());
        assert_eq!(s.refresh_token(&first).unwrap_err(), RefreshRefused::Reused);
        assert_eq!(
            s.refresh_token(&second).unwrap_err(),
            RefreshRefused::Unknown
        );
        let other = s.issue_refresh(grant(), None);
        assert!(s.refresh_token(&other).is_ok(), "other families live on");
    }

    #[test]
    fn sessions_and_pending_logins() {
        let mut s = LoginState::default();
        let (cookie, session) = s.start_session("auth0|ann");
        assert_eq!(
            s.session(&cookie).map(|s| s.user_id.as_str()),
            Some("auth0|ann")
        );
        assert_ne!(session.sid, cookie, "the sid tokens show is not the cookie");
        let (other, _) = s.start_session("auth0|ann");
        assert_ne!(s.session(&other).unwrap().sid, session.sid);
        s.end_session(&cookie);
        assert!(s.session(&cookie).is_none());
        let now = Instant::now();
        let txn = s.pend(authorization(), "browser-one-cookie", now);
        assert!(s.pending(&txn, Some("browser-one-cookie")).is_some());
        // Another browser (login CSRF), or none, finds nothing, and the login stays.
        assert!(s.pending(&txn, Some("browser-two-cookie")).is_none());
        assert!(s.pending(&txn, None).is_none());
        assert!(s.pending(&txn, Some("browser-one-cookie")).is_some());
        s.finish_pending(&txn);
        assert!(s.pending(&txn, Some("browser-one-cookie")).is_none());
    }
}
