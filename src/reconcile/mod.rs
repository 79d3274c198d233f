//! Keeping the Auth0 applications' allow-lists equal to the registry. The pure parts
//! (`desired`, `plan`) take plain data and return plain data: no I/O, no clock; `apply` runs a
//! pass against Postgres and the Management API; `leader` decides which replica runs them when.

pub mod apply;
pub mod desired;
pub mod leader;
pub mod plan;
mod pool;
pub mod shard;
pub mod sync;
mod views;

pub use apply::{ApplicationPlan, PassResult, ReconcileError, Reconciler};
pub use pool::PoolEntry;
pub use views::{UNSYNCED_SHOWN, runs};
