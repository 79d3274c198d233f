//! How each kind of caller proves who it is.

pub mod admin;
pub mod jwks;
pub mod jwt;
pub mod webhook;
