//! `fleetgate-emulator`: runs the Auth0 emulator until SIGINT or SIGTERM, printing the seeded
//! tenant (but its M2M secret) once it listens.

use std::process::ExitCode;

use clap::Parser;
use fleetgate_emulator::{Emulator, EmulatorConfig, faults::Faults, login::action::ActionConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "fleetgate-emulator",
    version,
    about = "A local stand-in for the Auth0 tenant fleetgate uses (loopback only): tokens, JWKS, Management API clients, logins with the post-login Action"
)]
struct Args {
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
    /// The `iss` of every token, as with an Auth0 custom domain (an https URL ending in /,
    /// e.g. https://login.example.com/); default: the emulator's own URL.
    #[arg(long, value_parser = custom_issuer)]
    issuer: Option<String>,
}

fn custom_issuer(raw: &str) -> Result<String, String> {
    let ok = raw.starts_with("https://") && raw.ends_with('/') && url::Url::parse(raw).is_ok();
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("must be an https URL ending in /, e.g. https://login.example.com/".into())
    }
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetgate-emulator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut action_secrets = args.action_secrets;
    if let Some(file) = &args.action_secret_file {
        action_secrets.extend(read_action_secrets(file)?);
    }
    let config = EmulatorConfig {
        listen: args.listen,
        state_file: args.state,
        api_audience: args.api_audience,
        instance_audience: args.instance_audience,
        action: args.action.map(|file| ActionConfig {
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
        issuer: args.issuer,
    };
    let emulator = Emulator::build(config)?;
    let base_url = emulator.base_url().to_owned();
    // Logs are kept and shared: the M2M secret stays in GET /emulator/tenant.
    let mut seeded = emulator.described().clone();
    seeded["m2m_client_secret"] =
        serde_json::json!(format!("(not shown: GET {base_url}/emulator/tenant)"));
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let server = tokio::spawn(emulator.run_until_stopped(shutdown));
    println!("Auth0 emulator on {base_url} (use AUTH0_DOMAIN={base_url}); seeded tenant:");
    println!("{seeded}");
    server.await?
}

/// Cancels `token` on the first SIGINT or SIGTERM; the process ends within five seconds, or
/// at once on a second signal. (The service's `startup::cancel_on_signal` does the same with
/// its own bound; the crates share no code on purpose.)
async fn stop_on_signal(token: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    let signal = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    signal.await;
    token.cancel();
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::exit(1);
    });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    std::process::exit(1);
}
