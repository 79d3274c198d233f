//! Black-box tests of the Auth0 emulator over HTTP, one per behaviour of docs/auth0.md.

#[path = "../common/browser.rs"]
mod browser;
mod clients;
mod dev_machine;
mod faults_and_limits;
mod helpers;
mod login;
mod management_client;
#[path = "../common/node.rs"]
mod node;
mod oidc_clients;
mod tokens;
