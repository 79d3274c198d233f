use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    fleetgate::cli::main().await
}
