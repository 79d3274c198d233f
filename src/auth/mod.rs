//! How each kind of caller proves who it is.

pub mod failures;
pub mod jwks;
pub mod jwt;
pub mod webhook;
