use std::process::ExitCode;

/// jemalloc: memory an allocation has not written to stays out of the resident set (glibc's
/// allocator writes its bookkeeping next to each block), which is most of what a parked
/// long-poll's buffers are (see docs/performance.md, "Performance").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    fleetgate::cli::main().await
}
