//! Building and running the service: the HTTP server and its background work, stopped
//! together by one cancellation token.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, web};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, jwt::TokenVerifier, webhook::WebhookVerifier},
    config::Settings,
    db,
    grants::{self, Grants, Live},
    http::{self, AppState, Callers, TenantFacts, framework, observe},
    keys,
    metrics::Metrics,
    reconcile::{self, Reconciler},
    registry::{self, Registry},
};

/// How long processed webhook ids are remembered.
const WEBHOOK_ID_RETENTION_DAYS: i32 = 7;
/// After SIGTERM, requests in flight get this long to finish…
const REQUEST_GRACE_SECS: u64 = 8;
/// …and the process ends within this, whatever is still running.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on an address of its own (`FLEETGATE_METRICS_LISTEN`), and its port.
    metrics_server: Option<(u16, Server)>,
    pool: PgPool,
    reconciler: Option<Arc<Reconciler>>,
    deliverer: Option<Arc<crate::events::deliver::Deliverer>>,
    /// Days delivered and failed events are kept (when events are on).
    events_kept_days: Option<i32>,
    last_logins_flush: Duration,
    live: Arc<Live>,
    metrics: Metrics,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and prepares the server.
    pub fn build(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            anyhow::anyhow!(
                "FLEETGATE_LISTEN: cannot listen on {}: {e}",
                settings.listen
            )
        })?;
        let port = listener.local_addr()?.port();
        let metrics = Metrics::new();
        let outbox = crate::events::Outbox::new(settings.events.is_some());
        let reconciler = settings.reconciler.clone().map(|r| {
            Arc::new(
                Reconciler::new(
                    pool.clone(),
                    &settings.auth0.base_url,
                    r,
                    settings.platform_domain.clone(),
                    (settings.login_mode, settings.relay.clone()),
                    metrics.clone(),
                )
                .with_outbox(outbox),
            )
        });
        let deliverer = match &settings.events {
            Some(events) => {
                metrics.events_enabled.set(1);
                if events.in_clear() {
                    tracing::warn!(
                        "FLEETGATE_EVENTS_URL is plain http to another host: events (emails among them) cross the network unencrypted"
                    );
                }
                Some(Arc::new(crate::events::deliver::Deliverer::new(
                    pool.clone(),
                    events,
                    metrics.clone(),
                )?))
            }
            None => None,
        };
        let live = Arc::new(Live::default());
        let state = web::Data::new(AppState {
            registry: registry::Commands::new(
                pool.clone(),
                live.clone(),
                Registry::new(settings.platform_domain.clone()).with_events(
                    outbox,
                    settings.login_mode != crate::config::LoginMode::Direct,
                ),
            ),
            grants: grants::Commands::new(
                pool.clone(),
                live.clone(),
                Grants::new(settings.grants.roles.clone(), settings.grants.changes_kept)
                    .with_outbox(outbox),
                settings.grants.max_parked_per_caller,
            ),
            keys: keys::Keys::new(pool.clone(), live.keys(), settings.grants.key_grace),
            runs: reconcile::Runs::new(pool.clone()),
            events: crate::events::Events::new(pool.clone()),
            reconciler: reconciler.clone(),
            callers: Callers {
                tokens: Arc::new(TokenVerifier::new(&settings.auth0)),
                webhooks: Arc::new(WebhookVerifier::new(&settings.webhook_secret)?),
                failures: Arc::new(auth::failures::FailureLimiter::new(
                    settings.auth_failures_per_minute,
                )),
                action_secret: settings.grants.action_secret.clone(),
                ui_client_id: settings.grants.ui_client_id.clone(),
            },
            tenant: TenantFacts {
                base_url: settings.auth0.base_url.clone(),
                issuer: settings.auth0.issuer(),
                instance_audience: settings.auth0.instance_audience.clone(),
                audience: settings.auth0.audience.clone(),
                instance_claim: format!("{}instance", settings.auth0.claim_namespace),
            },
            relay: match (&settings.relay, &settings.reconciler) {
                (Some(relay), Some(r)) => Some(
                    crate::relay::Relay::new(
                        pool.clone(),
                        settings.login_mode,
                        relay.clone(),
                        &settings.auth0.base_url,
                        r.templates.clone(),
                        &format!("{}instance", settings.auth0.claim_namespace),
                        metrics.relay_steps.clone(),
                    )
                    .remembering(live.clone()),
                ),
                _ => None,
            },
        });
        metrics
            .registry
            .register(Box::new(live.parked_polls_gauge()))
            .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))?;
        metrics
            .registry
            .register(Box::new(live.login_facts_counter()))
            .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))?;
        let http_metrics = observe::HttpMetrics::new(&metrics.registry)
            .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))?;
        let registry = web::Data::new(metrics.registry.clone());
        let metrics_server = match settings.metrics_listen {
            None => None,
            Some(addr) => Some(metrics_server(addr, &metrics)?),
        };
        let shared = state.clone();
        let metrics_here = settings.metrics_listen.is_none();
        // Each HTTP worker gets its own share of the connections, opened on its own thread
        // (see `db::worker_pool`); the pool given here serves the background work.
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let per_worker = settings.db_max_connections.div_ceil(workers as u32).max(1);
        let base_pool = pool.clone();
        let server = HttpServer::new(move || {
            let pool = db::worker_pool(&base_pool, per_worker);
            actix_web::rt::spawn(db::warm(pool.clone()));
            App::new()
                .app_data(web::Data::new(state.for_worker(pool)))
                .app_data(framework::json_config())
                .app_data(framework::query_config())
                .app_data(framework::payload_config())
                .configure(http::routes)
                .configure(|cfg| {
                    if metrics_here {
                        cfg.service(
                            web::resource("/metrics")
                                .app_data(registry.clone())
                                .app_data(observe::Endpoint("/metrics"))
                                .route(web::get().to(crate::metrics::serve)),
                        );
                    }
                })
                .default_service(web::to(framework::no_route))
                .wrap(http::caller::Authenticate)
                .wrap_fn({
                    // One per worker: the future of every request holds it.
                    let http_metrics = std::rc::Rc::new(http_metrics.clone());
                    move |req, srv| observe::middleware(req, srv, &http_metrics)
                })
        })
        .on_connect(http::peer::remember)
        .workers(workers)
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(REQUEST_GRACE_SECS)
        .run();
        Ok(Self {
            port,
            server,
            metrics_server,
            pool,
            reconciler,
            deliverer,
            events_kept_days: settings.events.as_ref().map(|e| e.kept_days),
            last_logins_flush: settings.grants.last_logins_flush,
            live,
            metrics,
            state: shared,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when it has an address of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish. The pool
    /// stays open: it belongs to the caller.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let metrics_serving = self.metrics_server.map(|(_, server)| {
            let handle = server.handle();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = server => {}
                    _ = shutdown.cancelled() => handle.stop(false).await,
                }
            })
        });
        let background = tokio::spawn(housekeeping(
            self.pool.clone(),
            self.state.relay.clone(),
            self.events_kept_days,
            shutdown.clone(),
        ));
        let delivering = match self.deliverer.clone() {
            Some(d) => tokio::spawn(d.run(shutdown.clone())),
            None => tokio::spawn(async {}),
        };
        let forgetting = tokio::spawn({
            let (state, shutdown) = (self.state.clone(), shutdown.clone());
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = every.tick() => state.callers.failures.forget_idle(),
                    }
                }
            }
        });
        // Last logins seen by login decisions, written in one statement per interval (and once
        // more at shutdown).
        let recording = tokio::spawn({
            let (grants, shutdown) = (self.state.grants.clone(), shutdown.clone());
            let flush_every = self.last_logins_flush;
            async move {
                let mut every = tokio::time::interval(flush_every);
                loop {
                    let stopping = tokio::select! {
                        _ = shutdown.cancelled() => true,
                        _ = every.tick() => false,
                    };
                    if let Err(e) = grants.flush_last_logins().await {
                        tracing::warn!(error = %e, "recording last logins failed; kept for the next try");
                    }
                    if stopping {
                        return;
                    }
                }
            }
        });
        let listening = tokio::spawn(grants::listener::run(
            self.pool.clone(),
            self.live.clone(),
            self.metrics.grants_memory_in_step.clone(),
            shutdown.clone(),
        ));
        let reconciling = match self.reconciler.clone() {
            Some(r) => tokio::spawn(reconcile::leader::run(r, shutdown.clone())),
            None => {
                tracing::warn!(
                    "the reconciler is off: set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID"
                );
                tokio::spawn(async {})
            }
        };
        let stopper = tokio::spawn({
            let shutdown = shutdown.clone();
            let live = self.live.clone();
            async move {
                shutdown.cancelled().await;
                // Stop accepting first, then answer the parked long-polls, then let every
                // request in flight finish.
                let stopped = handle.stop(true);
                live.close();
                stopped.await;
            }
        });
        let result = self.server.await;
        shutdown.cancel();
        let _ = tokio::join!(
            background,
            forgetting,
            stopper,
            reconciling,
            listening,
            delivering,
            recording
        );
        if let Some(serving) = metrics_serving {
            let _ = serving.await;
        }
        Ok(result?)
    }
}

/// A server of its own answering `GET /metrics` (Prometheus text format) and nothing else,
/// for an address only the monitoring network reaches.
fn metrics_server(addr: std::net::SocketAddr, metrics: &Metrics) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("FLEETGATE_METRICS_LISTEN: cannot listen on {addr}: {e}"))?;
    let port = listener.local_addr()?.port();
    let registry = web::Data::new(metrics.registry.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .service(web::resource("/metrics").route(web::get().to(crate::metrics::serve)))
            .default_service(web::to(framework::no_route))
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                use futures_util::FutureExt;
                srv.call(req).map(|res| res.map(framework::as_problem))
            })
    })
    .workers(1)
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    Ok((port, server))
}

/// Once an hour, forgets old webhook ids, the relay's expired transactions and idle
/// refresh-token bindings, and events finished more than `events_kept_days` ago (idempotent,
/// so every replica may do it).
async fn housekeeping(
    pool: PgPool,
    relay: Option<crate::relay::Relay>,
    events_kept_days: Option<i32>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match db::webhooks::prune(&pool, WEBHOOK_ID_RETENTION_DAYS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "forgot old webhook ids"),
            Err(e) => tracing::warn!(error = %e, "pruning webhook ids failed"),
        }
        if let Some(days) = events_kept_days {
            let pruned = match pool.acquire().await {
                Ok(mut conn) => db::events::prune(&mut conn, days).await,
                Err(e) => Err(e),
            };
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(forgotten = n, "forgot events finished long ago"),
                Err(e) => tracing::warn!(error = %e, "pruning events failed"),
            }
        }
        if let Some(relay) = &relay {
            match relay.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    forgotten = n,
                    "forgot expired relay transactions and idle refresh tokens"
                ),
                Err(e) => tracing::warn!(error = %e, "sweeping the relay's records failed"),
            }
        }
    }
}

/// Cancels `token` on the first SIGINT or SIGTERM. The process then ends within
/// [`SHUTDOWN_BOUND`] (a stop that takes longer is cut short, with an error in the log), or at
/// once on a second signal.
pub async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    let signal = async {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    signal.await;
    tracing::info!(bound_secs = SHUTDOWN_BOUND.as_secs(), "shutting down");
    token.cancel();
    // A thread of its own: it fires even if the runtime's workers are all stuck.
    std::thread::spawn(|| {
        std::thread::sleep(SHUTDOWN_BOUND);
        tracing::error!("shutdown took longer than its bound; exiting now");
        std::process::exit(1);
    });
    #[cfg(unix)]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::warn!("second signal: exiting now");
    std::process::exit(1);
}

/// Raises this process's limit of open files to the most it may have (many systems start
/// services at 1,024): every connection takes one, parked long-polls included. Answers the
/// limit now in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// Refuses to start when one of fleetgate's own applications (the status page's, an admin
/// client) is in the pool: instances would log in through it, and its tokens work on
/// fleetgate's API. (That none is the primary SPA application is checked with the settings.)
pub async fn check_own_applications(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    let own = &settings.auth0.admin_clients;
    if own.is_empty() {
        tracing::warn!(
            "no application's tokens are accepted on the admin API: set FLEETGATE_ADMIN_CLIENTS or FLEETGATE_UI_CLIENT_ID"
        );
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    for app in db::applications::pool(&mut conn).await? {
        if own.contains(&app.client_id) {
            let var = if settings.grants.ui_client_id.as_ref() == Some(&app.client_id) {
                "FLEETGATE_UI_CLIENT_ID"
            } else {
                "FLEETGATE_ADMIN_CLIENTS"
            };
            anyhow::bail!(
                "{var}: application '{}' is in the pool of applications instances log in through; name an application of fleetgate's own (its tokens work on fleetgate's API)",
                app.client_id
            );
        }
    }
    Ok(())
}

/// Applies pending migrations. Migrations this build does not know, applied by a newer
/// release, are left alone: during a rolling upgrade, and after rolling back, an older release
/// runs on the schema a newer one expanded (docs/operating.md, "Upgrades").
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("applying migrations failed: {e}"))
}

#[cfg(test)]
mod tests {
    fn open_file_limit() -> libc::rlimit {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only the struct given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        limit
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let before = open_file_limit();
        // A soft limit below the hard one, as many service managers set it (one below is
        // harmless to the other tests in this process).
        let lowered = libc::rlimit {
            rlim_cur: before.rlim_max - 1,
            rlim_max: before.rlim_max,
        };
        // SAFETY: setrlimit reads only the struct given.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        assert_eq!(super::raise_open_file_limit().unwrap(), before.rlim_max);
        assert_eq!(open_file_limit().rlim_cur, before.rlim_max);
    }
}
