//! Logging: `tracing` to stdout, human-readable or JSON, filtered by `RUST_LOG`.
//!
//! Lines are formatted where they are logged and written by a thread of their own, several at
//! a time (one write for every line waiting): a login decision or a hook logs a line each, and
//! a write per line was a tenth of a decision's cost. Nothing is dropped: when 128,000 lines
//! wait, loggers wait too. What is still waiting is written when the returned guard is dropped
//! (the process ends normally); a process killed outright loses it.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_server=warn";

/// Installs the global subscriber once; later calls (tests) are ignored. Keep the guard until
/// the process ends: dropping it writes what is still waiting.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> Option<WorkerGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stdout().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("fleetgate-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stdout()));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .try_init(),
    };
    installed.ok().map(|()| guard)
}
