//! The command line: `serve`, `migrate`, `hook` helpers for trying the deploy hook, and an
//! `events` receiver for trying outbound events.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::webhook::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookVerifier},
    config::{LogFormat, Settings},
    db, startup, telemetry,
};

#[derive(Parser)]
#[command(
    name = "fleetgate",
    version,
    about = "Control plane for app instances sharing one Auth0 tenant"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (applies pending migrations first).
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// After restoring the database from a backup where fleetgate cannot notice it (its role
    /// may not read pg_control_system): move every instance's grants revision past any handed
    /// out before, so polling instances fetch snapshots. Run once, before starting replicas.
    Restored {
        /// Also give this database a deployment id of its own: for a copy of another
        /// deployment's database (staging seeded from production), which must not manage that
        /// deployment's applications.
        #[arg(long)]
        new_deployment: bool,
    },
    /// Print what a reconcile pass would change now (reads Auth0; writes nothing).
    Plan,
    /// Sign and send deploy-hook events, as the hosting platform does.
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
    /// Receive fleetgate's outbound events, as the hosting platform does.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Serve a receiver that verifies each event's signature and prints it (one line per
    /// event: webhook-id, type, data). Point FLEETGATE_EVENTS_URL at it.
    Listen {
        /// The Standard Webhooks secret events are signed with (FLEETGATE_EVENTS_SECRET).
        #[arg(long, env = "FLEETGATE_EVENTS_SECRET", hide_env_values = true)]
        secret: String,
        /// The port to listen on.
        #[arg(long, default_value_t = 9010)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        address: std::net::IpAddr,
    },
}

#[derive(Subcommand)]
enum HookCommand {
    /// Print the Standard Webhooks headers for an event body (signed with FLEETGATE_WEBHOOK_SECRET).
    Sign {
        /// The event, e.g. '{"type":"instance.suspended","data":{"instance_id":"acme"}}'.
        body: String,
        /// The webhook-id; a new one by default.
        #[arg(long)]
        id: Option<String>,
    },
    /// Sign an event and POST it to a running fleetgate; prints the answer.
    Send {
        /// The event, e.g. '{"type":"instance.suspended","data":{"instance_id":"acme"}}'.
        body: String,
        /// The webhook-id; a new one by default. Send the same id again to see a redelivery
        /// answered from the record (webhook-replayed: true) instead of applied twice.
        #[arg(long)]
        id: Option<String>,
        /// Base URL of fleetgate.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

pub async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { no_migrate } => {
            let settings = Settings::from_env()?;
            let _log = telemetry::init(settings.log_format);
            let pool = db::pool(settings.database_url(), settings.db_max_connections)?;
            if !no_migrate {
                startup::migrate(&pool).await?;
            }
            startup::check_own_applications(&settings, &pool).await?;
            let app = startup::Application::build(&settings, pool.clone())?;
            let open_files = startup::raise_open_file_limit()
                .inspect_err(|e| tracing::warn!(error = %e, "the open-file limit was not raised"))
                .ok();
            tracing::info!(
                listen = %settings.listen,
                port = app.port(),
                open_files,
                "fleetgate serving (each connection, a parked long-poll included, takes one open file)"
            );
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::cancel_on_signal(shutdown.clone()));
            let served = app.run_until_stopped(shutdown).await;
            // Connections still out are cut rather than waited for.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), pool.close()).await;
            served
        }
        Command::Migrate => {
            let settings = Settings::from_env()?;
            let _log = telemetry::init(settings.log_format);
            startup::migrate(&db::pool(
                settings.database_url(),
                settings.db_max_connections,
            )?)
            .await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Restored { new_deployment } => {
            let settings = Settings::from_env()?;
            let _log = telemetry::init(settings.log_format);
            let pool = db::pool(settings.database_url(), settings.db_max_connections)?;
            let revision = crate::grants::lineage::force(&pool).await?;
            println!(
                "every instance's grants revision is now {revision}: polling instances fetch snapshots"
            );
            if new_deployment {
                let id = db::deployment::renew(&mut *pool.acquire().await?).await?;
                println!(
                    "this database is now deployment {id}: applications the copied deployment marked are left alone"
                );
            }
            Ok(())
        }
        Command::Plan => {
            let settings = Settings::from_env()?;
            let _log = telemetry::init(settings.log_format);
            let reconciler_settings = settings.reconciler.clone().ok_or_else(|| {
                anyhow::anyhow!("the reconciler is not configured: set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID")
            })?;
            let pool = db::pool(settings.database_url(), settings.db_max_connections)?;
            let reconciler = crate::reconcile::Reconciler::new(
                pool.clone(),
                &settings.auth0.base_url,
                reconciler_settings,
                settings.platform_domain.clone(),
                (settings.login_mode, settings.relay.clone()),
                crate::metrics::Metrics::new(),
            );
            let plan = reconciler.plan().await?;
            pool.close().await;
            // The same document as `GET /v1/reconcile/plan`.
            let plan = serde_json::json!({ "applications": plan });
            say(&serde_json::to_string_pretty(&plan)?);
            Ok(())
        }
        Command::Events {
            command:
                EventsCommand::Listen {
                    secret,
                    port,
                    address,
                },
        } => {
            let _log = telemetry::init(LogFormat::Text);
            crate::events::listen::run(&secret, (address, port).into()).await
        }
        Command::Hook { command } => {
            let _log = telemetry::init(LogFormat::Text);
            let secret = std::env::var("FLEETGATE_WEBHOOK_SECRET").map_err(|_| {
                anyhow::anyhow!("FLEETGATE_WEBHOOK_SECRET: is required but not set")
            })?;
            let verifier = WebhookVerifier::new(&SecretString::from(secret))?;
            match command {
                HookCommand::Sign { body, id } => {
                    for (name, value) in signed_headers(&verifier, id, &body)? {
                        say(&format!("{name}: {value}"));
                    }
                    Ok(())
                }
                HookCommand::Send { body, id, url } => send(&verifier, id, &body, &url).await,
            }
        }
    }
}

fn signed_headers(
    verifier: &WebhookVerifier,
    id: Option<String>,
    body: &str,
) -> anyhow::Result<[(&'static str, String); 3]> {
    let id = id.unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    let ts = chrono::Utc::now().timestamp();
    let signature = verifier.sign(&id, ts, body.as_bytes())?;
    Ok([
        (ID_HEADER, id),
        (TIMESTAMP_HEADER, ts.to_string()),
        (SIGNATURE_HEADER, signature),
    ])
}

async fn send(
    verifier: &WebhookVerifier,
    id: Option<String>,
    body: &str,
    url: &str,
) -> anyhow::Result<()> {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/hooks/deploy", url.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in signed_headers(verifier, id, body)? {
        req = req.header(name, value);
    }
    let res = req.send().await?;
    let status = res.status();
    say(&status.to_string());
    // A redelivery (the same webhook id again) is answered from the record, and says so.
    if let Some(replayed) = res.headers().get("webhook-replayed") {
        say(&format!(
            "webhook-replayed: {}",
            replayed.to_str().unwrap_or("?")
        ));
    }
    say(&res.text().await?);
    anyhow::ensure!(status.is_success(), "the hook was refused");
    Ok(())
}

/// A line on standard output. A reader that went away (`fleetgate hook send … | head -1`) is
/// not an error of ours: the line is dropped instead of panicking as `println!` does.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
