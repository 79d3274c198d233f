//! Logging: `tracing` to stdout, human-readable or JSON, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_server=warn";

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => {
            let ansi = std::io::stdout().is_terminal();
            registry
                .with(fmt::layer().with_target(false).with_ansi(ansi))
                .try_init()
        }
    };
}
