//! Black-box tests of the HTTP API against a real Postgres.

mod action;
mod admin_auth;
mod bodies;
#[path = "../common/browser.rs"]
mod browser;
mod bulk_grants;
mod callers;
mod cli;
mod decisions;
mod drills;
mod errors;
mod events;
mod example;
mod grants;
mod helpers;
mod hooks;
mod instances;
mod isolation;
mod kit;
mod lifecycle;
mod login;
mod migrations;
#[path = "../common/node.rs"]
mod node;
mod own_applications;
mod passes;
mod people;
mod polling;
mod pool;
mod reconcile;
mod registry;
mod relay;
mod relay_fleet;
mod relay_tampering;
mod release;
mod restore;
mod schema;
mod shards;
mod spec;
mod status;
mod tenant_changes;
mod trust;
mod upgrade;
