//! A local stand-in for the parts of an Auth0 tenant fleetgate uses, faithful to
//! docs/auth0.md: client-credentials tokens, the JWKS, the Management API's clients
//! endpoints with Auth0's validation, error bodies, scopes and rate limit, the login side with
//! the post-login Action run for real, plus fault injection and dev-user tokens under
//! `/emulator/`. Used by `scripts/dev`, the tests and the benchmarks; a crate of its own, so
//! that none of it (nor its dependencies) ships in fleetgate's binary, and it depends on
//! nothing of fleetgate's.

pub mod clients;
mod control;
pub mod errors;
pub mod faults;
mod gates;
pub mod keys;
mod local;
pub mod login;
mod management;
pub mod matching;
mod peer;
pub mod ratelimit;
pub mod state;
mod token;
pub mod urls;
pub mod users;

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    sync::{Mutex, RwLock},
    time::Instant,
};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use self::{faults::Faults, keys::SigningKey, ratelimit::Bucket, state::Tenant};

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Must be a loopback address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Load the tenant from this file if it exists, and save every change to it.
    pub state_file: Option<PathBuf>,
    /// The identifier of the seeded API (fleetgate's audience).
    pub api_audience: String,
    /// The identifier of the second seeded API: the one instances' APIs accept
    /// (fleetgate's `FLEETGATE_INSTANCE_AUDIENCE`).
    pub instance_audience: String,
    pub rate_limit_burst: u32,
    pub rate_limit_per_second: f64,
    /// Applications a tenant may have (10 on Auth0's Free plan, 100 self-service).
    pub max_clients: usize,
    pub faults: Faults,
    /// Sign with this key instead of generating one (tests pass a fixture to save time).
    pub signing_key_pem: Option<String>,
    /// The post-login Action to run on logins and refresh-token exchanges.
    pub action: Option<login::action::ActionConfig>,
    /// The `iss` of every token, as a tenant whose logins run on a custom domain
    /// (`https://login.example.com/`); None: the emulator's URL.
    pub issuer: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4010)),
            state_file: None,
            api_audience: "https://fleetgate.local/api".into(),
            instance_audience: "https://instances.fleetgate.local/api".into(),
            rate_limit_burst: 2,
            rate_limit_per_second: 2.0,
            max_clients: 100,
            faults: Faults::default(),
            signing_key_pem: None,
            action: None,
            issuer: None,
        }
    }
}

/// Everything the handlers share.
pub struct Emu {
    pub tenant: Mutex<Tenant>,
    pub bucket: Mutex<Bucket>,
    pub faults: RwLock<Faults>,
    /// The generator faults are drawn from when they name a seed.
    pub fault_rng: Mutex<Option<rand::rngs::StdRng>>,
    /// Answers given, by `METHOD route status`.
    pub stats: Mutex<BTreeMap<String, u64>>,
    /// Sessions, pending logins, codes and refresh tokens (lock after `tenant`, never before).
    pub login: Mutex<login::state::LoginState>,
    pub action: Option<login::action::Action>,
}

impl Emu {
    /// Runs `f` on the tenant and saves it afterwards.
    pub fn change<T>(&self, f: impl FnOnce(&mut Tenant) -> T) -> T {
        let mut tenant = self.tenant.lock().expect("tenant lock");
        let out = f(&mut tenant);
        if let Err(e) = tenant.save() {
            tracing::error!(error = format!("{e:#}"), "saving the emulator state failed");
        }
        out
    }
}

pub struct Emulator {
    port: u16,
    base_url: String,
    /// The seeded tenant as `GET /emulator/tenant` describes it.
    described: serde_json::Value,
    server: Server,
    /// The Action's harness file, removed when the server stops (its workers may outlive the
    /// process's last await, and with them the `Action` that would remove it when dropped).
    harness: Option<PathBuf>,
}

impl Emulator {
    pub fn build(config: EmulatorConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.listen.ip().is_loopback(),
            "the emulator listens on loopback addresses only, not {}",
            config.listen
        );
        config.faults.check().map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        let base_url = format!("http://{}:{port}", config.listen.ip());
        let tenant = match &config.state_file {
            Some(path) if path.exists() => Tenant::load(
                path,
                &base_url,
                config.max_clients,
                &config.instance_audience,
            )?,
            _ => {
                let key = match &config.signing_key_pem {
                    Some(pem) => SigningKey::from_pem(pem)?,
                    None => SigningKey::generate()?,
                };
                let tenant = Tenant::seed(
                    &base_url,
                    [&config.api_audience, &config.instance_audience],
                    key,
                    config.max_clients,
                    config.state_file.clone(),
                );
                tenant.save()?;
                tenant
            }
        };
        let mut tenant = tenant;
        tenant.custom_issuer = config.issuer.clone();
        let emu = web::Data::new(Emu {
            tenant: Mutex::new(tenant),
            bucket: Mutex::new(Bucket::new(
                config.rate_limit_burst,
                config.rate_limit_per_second,
                Instant::now(),
            )),
            faults: RwLock::new(config.faults.clone()),
            fault_rng: Mutex::new(config.faults.seeded_rng()),
            stats: Mutex::new(BTreeMap::new()),
            login: Mutex::default(),
            action: config
                .action
                .clone()
                .map(login::action::Action::new)
                .transpose()?,
        });
        let harness = emu.action.as_ref().map(|a| a.harness().to_owned());
        let described = emu.tenant.lock().expect("tenant lock").described();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(emu.clone())
                .app_data(web::PayloadConfig::default().limit(1024 * 1024))
                .route("/.well-known/jwks.json", web::get().to(token::jwks))
                .service(
                    web::resource("/oauth/token")
                        .wrap(from_fn(gates::faults))
                        .route(web::post().to(token::token))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(login::preflight)),
                )
                .configure(login::routes)
                .service(
                    web::scope("/api/v2")
                        .wrap(from_fn(gates::management))
                        .wrap(from_fn(gates::faults))
                        .route("/clients", web::get().to(management::list))
                        .route("/clients", web::post().to(management::create))
                        .route("/clients/{id}", web::get().to(management::get))
                        .route("/clients/{id}", web::patch().to(management::patch))
                        .route("/clients/{id}", web::delete().to(management::delete))
                        .default_service(web::to(gates::not_found)),
                )
                .service(control::scope())
                .default_service(web::to(gates::not_found))
                .wrap(from_fn(gates::count))
                .wrap(from_fn(local::only_this_machine))
        })
        .on_connect(crate::peer::remember)
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            base_url,
            described,
            server,
            harness,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: what fleetgate's `AUTH0_DOMAIN` should be.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The seeded tenant as `GET /emulator/tenant` describes it (the M2M secret included).
    pub fn described(&self) -> &serde_json::Value {
        &self.described
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = self.server.await;
        stopper.abort();
        if let Some(harness) = self.harness {
            let _ = std::fs::remove_file(harness);
        }
        Ok(result?)
    }
}
