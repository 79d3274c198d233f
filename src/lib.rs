//! fleetgate: the control plane that keeps a fleet of per-customer app instances, their
//! domains, and their Auth0 allow-lists and grants in order.

pub mod auth;
pub mod auth0;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod events;
pub mod grants;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod reconcile;
pub mod registry;
pub mod relay;
pub mod startup;
pub mod telemetry;

/// This build's version (Cargo's; releases are tagged `v{VERSION}` and listed in
/// `CHANGELOG.md`): told by `fleetgate --version`, `/healthz` and `fleetgate_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
