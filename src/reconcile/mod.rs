//! Keeping the Auth0 applications' allow-lists equal to the registry. The pure parts
//! (`desired`: the entries each instance needs; `plan`: one list's diff; `shard` and
//! `placement`: which application each instance goes on; `sync`: whether an instance's URLs
//! are live) take plain data and return plain data: no I/O, no clock. A pass (`pass`) reads
//! the pool (`survey`), creates applications when allowed (`creations`), and writes through
//! the Management API; `leader` decides which replica runs passes when; `pool` and `views`
//! are what operators change and read.

mod creations;
mod deployment;
pub mod desired;
pub mod leader;
mod pass;
pub mod placement;
pub mod plan;
mod pool;
mod reconciler;
mod relay_app;
mod settle;
pub mod shard;
mod survey;
pub mod sync;
mod views;
mod write;

pub use pass::{Outcome, PASS_LOCK, PassResult, Trigger};
pub use pool::{ListFill, PoolEntry};
pub use reconciler::{ApplicationPlan, ReconcileError, Reconciler};
pub use views::{
    InstanceSync, Leader, LoginStatus, RunOutcome, Runs, Status, UNSYNCED_SHOWN, Unsynced,
};
