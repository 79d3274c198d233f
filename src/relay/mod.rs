//! The login relay (`FLEETGATE_LOGIN_MODE=relay`): fleetgate's own origin stands between each
//! instance's unmodified auth0-spa-js and the tenant. The tenant authenticates the user, runs
//! the Action and issues every token; the relay decides where a login may return to (exact
//! entries of active instances, from the registry) and keeps each login bound to its instance:
//! a one-time transaction names the instance to the Action (never a parameter anyone can
//! write), a code goes only to its transaction's redirect URI, and each refresh token it hands
//! out is recorded (its hash) with its instance. docs/relay.md: the design and threat model.

pub mod authorize;
pub mod handle;
pub mod params;
pub mod respond;
pub mod token;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::PgPool;

use self::{
    authorize::{Asked, ResponseMode},
    handle::{hash, new_handle},
    respond::ToBrowser,
};
use crate::{
    config::{LoginMode, RelaySettings},
    db,
    domain::{Field, Hostname, InstanceId, InstanceStatus, Templates},
};

/// How long a login may take from `/authorize` to `/callback` (the user types a password).
const LOGIN_SECS: i64 = 600;
/// How long the SPA has to exchange a code once it has it.
pub const CODE_SECS: i64 = 300;
/// How long a logout may take to come back.
const LOGOUT_SECS: i64 = 600;
/// A refresh token unused this long is forgotten (the tenant's default absolute lifetime of a
/// rotating refresh token is 30 days; an idle one expires sooner there).
pub const REFRESH_IDLE_SECS: i64 = 30 * 86_400;

/// A client for the tenant's token endpoint: no redirects followed, 10 s at most.
fn tenant_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    mode: LoginMode,
    settings: Arc<RelaySettings>,
    tenant: Arc<str>,
    templates: Arc<Templates>,
    http: reqwest::Client,
    steps: prometheus::IntCounterVec,
    /// The Action's claim naming a token's instance (`{namespace}instance`).
    instance_claim: Arc<str>,
    /// The replica's memory of instances (the database is read while it is not in step).
    live: Arc<crate::grants::Live>,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        mode: LoginMode,
        settings: RelaySettings,
        tenant_base_url: &str,
        templates: Templates,
        instance_claim: &str,
        steps: prometheus::IntCounterVec,
    ) -> Self {
        Self {
            pool,
            mode,
            settings: Arc::new(settings),
            tenant: tenant_base_url.into(),
            templates: Arc::new(templates),
            http: tenant_client(),
            steps,
            instance_claim: instance_claim.into(),
            live: Arc::default(),
        }
    }

    /// The same relay, finding instances in this replica's memory when it is in step.
    pub fn remembering(self, live: Arc<crate::grants::Live>) -> Self {
        Self { live, ..self }
    }

    /// The same relay for one HTTP worker: its database work on the worker's `pool`, and its
    /// calls to the tenant on a client of its own. A connection is driven by the runtime that
    /// opened it, and each worker has a runtime of its own: on a client shared by the workers,
    /// half the exchanges would wait for another worker's thread to wake at every answer (as
    /// `db::worker_pool` says of database connections).
    pub fn for_worker(&self, pool: PgPool) -> Self {
        Self {
            pool,
            http: tenant_client(),
            ..self.clone()
        }
    }

    /// `relay` (every instance) or `overflow` (those not live at the tenant).
    pub fn mode(&self) -> LoginMode {
        self.mode
    }

    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    pub fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    /// Counts one step's outcome (`fleetgate_relay_steps_total`).
    pub fn count(&self, step: &str, outcome: &str) {
        self.steps.with_label_values(&[step, outcome]).inc();
    }

    fn entries(&self, field: Field, host: &Hostname) -> Vec<String> {
        self.templates.entries(field, host).collect()
    }

    /// The origins an SPA on `host` calls from: its web and allowed origins.
    fn origins(&self, host: &Hostname) -> impl Iterator<Item = String> + '_ {
        self.templates
            .entries(Field::WebOrigins, host)
            .chain(self.templates.entries(Field::AllowedOrigins, host))
    }

    /// The active instance `host` belongs to. Every active instance may log in through the
    /// relay (in `overflow` mode too: one that is also live at the tenant gains nothing from it
    /// but what its own entries already allow).
    async fn active_instance_of(&self, host: &Hostname) -> Result<Option<String>, RelayError> {
        use crate::grants::roster::By;
        if let Some(found) = self.live.roster().lookup(By::Host(host.as_str())) {
            return Ok((found.status == InstanceStatus::Active).then(|| found.id.to_string()));
        }
        let found = db::relay::instance_of_host(&self.pool, host.as_str()).await?;
        Ok(found
            .filter(|(_, status)| status == InstanceStatus::Active.as_str())
            .map(|(id, _)| id))
    }

    /// Whether `url`'s host still belongs to the active `instance`: a transaction made minutes
    /// ago delivers nothing to a site that was suspended, or that changed hands, meanwhile.
    pub(super) async fn still_its(&self, instance: &str, url: &str) -> Result<bool, RelayError> {
        Ok(match site_of(url) {
            Some(site) => self.site_still_its(instance, &site).await?,
            None => false,
        })
    }

    /// Whether `site` still belongs to the active `instance`.
    pub(super) async fn site_still_its(
        &self,
        instance: &str,
        site: &Hostname,
    ) -> Result<bool, RelayError> {
        Ok(self.active_instance_of(site).await?.as_deref() == Some(instance))
    }

    /// `GET /authorize`: where the browser goes next.
    pub async fn begin(&self, query: &[u8]) -> Result<ToBrowser, RelayError> {
        let asked = match authorize::read(query, &self.settings.client_id) {
            Ok(a) => a,
            Err(why) => return Ok(refused("Invalid login request", &why)),
        };
        let Some(instance) = self.active_instance_of(&asked.host).await? else {
            return Ok(mismatch(&asked));
        };
        let callbacks = self.entries(Field::Callbacks, &asked.host);
        let origins = self.entries(Field::WebOrigins, &asked.host);
        if !authorize::allowed(&asked, &callbacks, &origins) {
            return Ok(mismatch(&asked));
        }
        if let Err((error, description)) = authorize::required(&asked) {
            return Ok(back_to_spa(&asked, error, &description));
        }
        let handle = new_handle();
        db::relay::insert(
            &self.pool,
            &db::relay::NewTransaction {
                handle_hash: &hash(&handle),
                kind: "login",
                instance_id: &instance,
                return_to: &asked.redirect_uri,
                state: asked.state.as_deref(),
                response_mode: asked.response_mode.name(),
                expires_at: Utc::now() + chrono::Duration::seconds(LOGIN_SECS),
            },
        )
        .await?;
        Ok(ToBrowser::Redirect(authorize::upstream(
            &self.tenant,
            &asked,
            &self.settings.client_id,
            &self.settings.callback(),
            &handle,
        )))
    }

    /// `GET /callback`: the tenant's answer (a code, or an error) handed to the SPA of the
    /// login's transaction, once.
    pub async fn come_back(&self, query: &[u8]) -> Result<ToBrowser, RelayError> {
        let pairs = match params::parse(query) {
            Ok(p) => p,
            Err(why) => return Ok(refused("Invalid answer", &why)),
        };
        let get = |k: &str| params::get(&pairs, k);
        let handle = get("state").filter(|h| handle::well_formed(h));
        let code = get("code");
        let taken = match handle {
            None => None,
            Some(h) => {
                let code_hash = code.map(hash);
                db::relay::come_back(
                    &self.pool,
                    "login",
                    &hash(h),
                    code_hash.as_ref().map(|c| &c[..]),
                )
                .await?
            }
        };
        let Some(t) = taken else {
            return Ok(refused(
                "This sign-in has expired or was already completed",
                "The sign-in could not be matched to one that is under way.",
            ));
        };
        if !self.still_its(&t.instance_id, &t.return_to).await? {
            return Ok(refused(
                "This site cannot sign in now",
                "The site this sign-in began at was suspended or changed since.",
            ));
        }
        let mode = ResponseMode::parse(Some(&t.response_mode)).unwrap_or(ResponseMode::Query);
        let mut answer: Vec<(&str, &str)> = Vec::new();
        match code {
            Some(code) => answer.push(("code", code)),
            None => {
                answer.push(("error", get("error").unwrap_or("server_error")));
                if let Some(d) = get("error_description") {
                    answer.push(("error_description", d));
                }
            }
        }
        if let Some(state) = &t.state {
            answer.push(("state", state));
        }
        Ok(respond::to_spa(mode, &t.return_to, &answer, &new_handle()))
    }

    /// The Action's decision asks which instance a relayed login (or refresh) is for: the
    /// instance of its transaction, once; None for a handle that is unknown, expired or used.
    pub async fn decide(&self, handle: &str) -> Result<Option<InstanceId>, RelayError> {
        if !handle::well_formed(handle) {
            return Ok(None);
        }
        let found = db::relay::decide(&self.pool, &hash(handle)).await?;
        Ok(found.and_then(|id| InstanceId::parse(&id).ok()))
    }

    /// The origin `origin` if it is a web or allowed origin of an active instance: CORS on
    /// `/oauth/token` is for those only.
    pub async fn cors_origin(&self, origin: &str) -> Result<Option<String>, RelayError> {
        let Some(host) = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().and_then(|h| Hostname::parse(h).ok()))
        else {
            return Ok(None);
        };
        if self.active_instance_of(&host).await?.is_none() {
            return Ok(None);
        }
        let listed = self.origins(&host).any(|o| o == origin);
        Ok(listed.then(|| origin.to_owned()))
    }

    /// `GET /v2/logout` (`returnTo`) and `GET /oidc/logout` (`post_logout_redirect_uri`,
    /// `state`): through the tenant's logout, then back to the instance.
    pub async fn logout(&self, query: &[u8], oidc: bool) -> Result<ToBrowser, RelayError> {
        let pairs = match params::parse(query) {
            Ok(p) => p,
            Err(why) => return Ok(refused("Invalid logout request", &why)),
        };
        let get = |k: &str| params::get(&pairs, k);
        if let Some(client) = get("client_id").filter(|c| *c != self.settings.client_id) {
            return Ok(refused(
                "Invalid logout request",
                &format!("Unknown client: {}", crate::domain::printable(client)),
            ));
        }
        let return_to = get(if oidc {
            "post_logout_redirect_uri"
        } else {
            "returnTo"
        });
        let mut back = self.settings.logged_out();
        if let Some(return_to) = return_to {
            let Some((instance, _)) = self.logout_target(return_to).await? else {
                return Ok(refused(
                    "Invalid logout request",
                    &format!(
                        "The returnTo '{}' is not a logout URL of any active site",
                        crate::domain::printable(return_to)
                    ),
                ));
            };
            let handle = new_handle();
            db::relay::insert(
                &self.pool,
                &db::relay::NewTransaction {
                    handle_hash: &hash(&handle),
                    kind: "logout",
                    instance_id: &instance,
                    return_to,
                    state: if oidc { get("state") } else { None },
                    response_mode: "query",
                    expires_at: Utc::now() + chrono::Duration::seconds(LOGOUT_SECS),
                },
            )
            .await?;
            back = params::url_with(&back, &[("handle", &handle)]);
        }
        Ok(ToBrowser::Redirect(params::url_with(
            &format!("{}/v2/logout", self.tenant),
            &[("client_id", &self.settings.client_id), ("returnTo", &back)],
        )))
    }

    /// The instance whose logout URL `return_to` is (query and fragment aside, as Auth0
    /// matches them), with that URL.
    async fn logout_target(&self, return_to: &str) -> Result<Option<(String, String)>, RelayError> {
        let Ok(url) = url::Url::parse(return_to) else {
            return Ok(None);
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Ok(None);
        }
        let Some(host) = url.host_str().and_then(|h| Hostname::parse(h).ok()) else {
            return Ok(None);
        };
        let Some(instance) = self.active_instance_of(&host).await? else {
            return Ok(None);
        };
        let bare = return_to
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let entries = self.entries(Field::AllowedLogoutUrls, &host);
        Ok(entries
            .into_iter()
            .find(|e| *e == bare)
            .map(|e| (instance, e)))
    }

    /// `GET /logged-out`: the tenant's logout is done; back to the instance the logout named.
    pub async fn logged_out(&self, query: &[u8]) -> Result<ToBrowser, RelayError> {
        let pairs = params::parse(query).unwrap_or_default();
        let handle = params::get(&pairs, "handle").filter(|h| handle::well_formed(h));
        let taken = match handle {
            Some(h) => db::relay::come_back(&self.pool, "logout", &hash(h), None).await?,
            None => None,
        };
        let taken = match taken {
            Some(t) if self.still_its(&t.instance_id, &t.return_to).await? => Some(t),
            _ => None,
        };
        Ok(match taken {
            Some(t) => ToBrowser::Redirect(match &t.state {
                Some(state) => params::with_query(&t.return_to, &[("state", state)]),
                None => t.return_to,
            }),
            None => ToBrowser::Error {
                title: "You are signed out".into(),
                message: "Go back to the site you came from to sign in again.".into(),
            },
        })
    }

    /// Forgets expired transactions and idle refresh-token bindings (every replica may run it).
    pub async fn sweep(&self) -> Result<u64, RelayError> {
        Ok(db::relay::sweep(&self.pool, REFRESH_IDLE_SECS).await?)
    }
}

fn refused(title: &str, message: &str) -> ToBrowser {
    ToBrowser::Error {
        title: title.to_owned(),
        message: message.to_owned(),
    }
}

/// Auth0's words for a redirect URI it does not know, naming it; never a redirect.
fn mismatch(asked: &Asked) -> ToBrowser {
    refused(
        "Callback URL mismatch",
        &format!(
            "The redirect_uri '{}' is not a sign-in address of any active site that signs in through this relay.",
            crate::domain::printable(&asked.redirect_uri)
        ),
    )
}

fn back_to_spa(asked: &Asked, error: &str, description: &str) -> ToBrowser {
    let mut answer = vec![("error", error), ("error_description", description)];
    if let Some(state) = &asked.state {
        answer.push(("state", state));
    }
    respond::to_spa(
        asked.response_mode,
        &asked.redirect_uri,
        &answer,
        &new_handle(),
    )
}

/// The host of `url`, as the registry names hosts.
pub(super) fn site_of(url: &str) -> Option<Hostname> {
    let url = url::Url::parse(url).ok()?;
    Hostname::parse(url.host_str()?).ok()
}
