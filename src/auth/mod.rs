//! How each kind of caller proves who it is.

pub mod caller;
pub mod failures;
pub mod instance_key;
pub mod jwks;
pub mod jwt;
pub mod webhook;
