//! The command line: `serve`, `migrate`, and `hook` helpers for trying the deploy hook.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::webhook::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookVerifier},
    config::{LogFormat, Settings},
    db,
    emulator::{Emulator, EmulatorConfig, faults::Faults},
    startup, telemetry,
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
    /// Print what a reconcile pass would change now (reads Auth0; writes nothing).
    Plan,
    /// Run the local Auth0 stand-in (loopback only): tokens, JWKS, Management API clients.
    Emulator(EmulatorArgs),
    /// Sign and send deploy-hook events, as the hosting platform does.
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
}

#[derive(clap::Args)]
struct EmulatorArgs {
    /// Loopback address and port to listen on (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:4010")]
    listen: std::net::SocketAddr,
    /// Keep the tenant in this JSON file: loaded at start if present, saved on every change.
    #[arg(long)]
    state: Option<std::path::PathBuf>,
    /// Identifier of the seeded API (fleetgate's AUTH0_AUDIENCE).
    #[arg(long, default_value = "https://fleetgate.local/api")]
    api_audience: String,
    /// Identifier of the second seeded API, the one instances' APIs accept (fleetgate's
    /// FLEETGATE_INSTANCE_AUDIENCE).
    #[arg(long, default_value = "https://instances.fleetgate.local/api")]
    instance_audience: String,
    /// Management API token bucket size (Auth0 Free plan: 2).
    #[arg(long, default_value_t = 2)]
    rate_limit_burst: u32,
    /// Management API tokens added per second (Auth0 Free plan: 2).
    #[arg(long, default_value_t = 2.0)]
    rate_limit_per_second: f64,
    /// Applications the tenant may hold (Auth0: 10 on Free, 100 self-service).
    #[arg(long, default_value_t = 100)]
    max_clients: usize,
    /// Share (0-1) of Management API and token answers replaced by a 500 or 503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share (0-1) of answers replaced by a 429 beyond the bucket.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_fault_rate: f64,
    /// Share (0-1) of requests delayed by up to --latency-ms.
    #[arg(long, default_value_t = 0.0)]
    latency_rate: f64,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0-1) of requests whose connection is cut after processing.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// A post-login Action (a file exporting onExecutePostLogin) to run with Node on every
    /// login and refresh-token exchange.
    #[arg(long)]
    action: Option<std::path::PathBuf>,
    /// A secret of the Action (event.secrets), NAME=VALUE; repeat for more. It shows in the
    /// process list: give real secrets with --action-secret-file.
    #[arg(long = "action-secret", value_parser = action_secret, requires = "action")]
    action_secrets: Vec<(String, String)>,
    /// A file of the Action's secrets, one NAME=VALUE per line (blank lines and lines
    /// starting with # are skipped); keep it readable by you only.
    #[arg(long, requires = "action")]
    action_secret_file: Option<std::path::PathBuf>,
}

/// The Action's secrets in `path`: NAME=VALUE lines.
fn read_action_secrets(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--action-secret-file {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(n, line)| {
            action_secret(line.trim_end_matches('\r')).map_err(|e| {
                anyhow::anyhow!(
                    "--action-secret-file {} line {}: {e}",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect()
}

fn action_secret(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("must be NAME=VALUE".into()),
    }
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
        body: String,
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
            telemetry::init(settings.log_format);
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
                "fleetgate serving (each connection takes an open file, a parked long-poll two)"
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
            telemetry::init(settings.log_format);
            startup::migrate(&db::pool(
                settings.database_url(),
                settings.db_max_connections,
            )?)
            .await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Plan => {
            let settings = Settings::from_env()?;
            telemetry::init(settings.log_format);
            let reconciler_settings = settings.reconciler.clone().ok_or_else(|| {
                anyhow::anyhow!("the reconciler is not configured: set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID")
            })?;
            let pool = db::pool(settings.database_url(), settings.db_max_connections)?;
            let reconciler = crate::reconcile::Reconciler::new(
                pool.clone(),
                &settings.auth0.base_url,
                reconciler_settings,
                settings.platform_domain.clone(),
                crate::metrics::Metrics::new(),
            );
            let plan = reconciler.plan().await?;
            pool.close().await;
            // The same document as `GET /v1/reconcile/plan`.
            let plan = serde_json::json!({ "applications": plan });
            say(&serde_json::to_string_pretty(&plan)?);
            Ok(())
        }
        Command::Emulator(args) => {
            telemetry::init(LogFormat::Text);
            let mut action_secrets = args.action_secrets;
            if let Some(file) = &args.action_secret_file {
                action_secrets.extend(read_action_secrets(file)?);
            }
            let config = EmulatorConfig {
                listen: args.listen,
                state_file: args.state,
                api_audience: args.api_audience,
                instance_audience: args.instance_audience,
                action: args
                    .action
                    .map(|file| crate::emulator::login::action::ActionConfig {
                        file,
                        secrets: action_secrets.into_iter().collect(),
                    }),
                rate_limit_burst: args.rate_limit_burst,
                rate_limit_per_second: args.rate_limit_per_second,
                max_clients: args.max_clients,
                faults: Faults {
                    error_rate: args.error_rate,
                    rate_limit_rate: args.rate_limit_fault_rate,
                    latency_rate: args.latency_rate,
                    latency_ms: args.latency_ms,
                    drop_rate: args.drop_rate,
                    ..Faults::default()
                },
                signing_key_pem: None,
            };
            let emulator = Emulator::build(config)?;
            let base_url = emulator.base_url().to_owned();
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::cancel_on_signal(shutdown.clone()));
            let server = tokio::spawn(emulator.run_until_stopped(shutdown));
            print_seeded(&base_url).await?;
            server.await?
        }
        Command::Hook { command } => {
            telemetry::init(LogFormat::Text);
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

/// Prints the seeded tenant once the server answers, as `GET /emulator/tenant` returns it but
/// for the M2M secret: logs are kept and shared, the secret stays where it is.
async fn print_seeded(base_url: &str) -> anyhow::Result<()> {
    let mut seeded: serde_json::Value = reqwest::get(format!("{base_url}/emulator/tenant"))
        .await?
        .json()
        .await?;
    if let Some(secret) = seeded.get_mut("m2m_client_secret") {
        *secret = serde_json::json!(format!("(not shown: GET {base_url}/emulator/tenant)"));
    }
    println!("Auth0 emulator on {base_url} (use AUTH0_DOMAIN={base_url}); seeded tenant:");
    println!("{seeded}");
    Ok(())
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
