//! Keeping the Auth0 applications' allow-lists equal to the registry. The pure parts
//! (`desired`, `plan`) take plain data and return plain data: no I/O, no clock.

pub mod desired;
pub mod field;
pub mod plan;
pub mod templates;

pub use field::Field;
