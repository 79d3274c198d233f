//! Black-box tests of the Auth0 emulator over HTTP, one per behaviour of docs/auth0.md (the
//! browser stand-in and the Node runner are shared with fleetgate's tests, in `tests/common`).

mod action;
#[path = "../../tests/common/browser.rs"]
mod browser;
mod clients;
mod dev_machine;
mod faults_and_limits;
mod helpers;
mod login;
#[path = "../../tests/common/node.rs"]
mod node;
mod oidc_clients;
mod oidc_details;
mod social;
mod tokens;
