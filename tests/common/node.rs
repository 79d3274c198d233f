//! Node's test runner, run from a Rust test against the servers it started. Shared by the
//! emulator's tests and fleetgate's (`#[path]`-included).

use std::{path::PathBuf, process::Command};

/// The repository's root (the workspace's, holding `Cargo.lock`), whichever of its crates the
/// test belongs to.
pub fn repository() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root holds Cargo.lock")
        .to_path_buf()
}

/// Runs `node --test <args>` in `dir` (relative to the repository) with `envs`, and asserts
/// that it ran tests and every one passed. `dir` must have its packages installed (`npm ci`,
/// which `scripts/test` runs) when `needs_packages`.
pub async fn node_tests(
    dir: &str,
    args: &[&str],
    envs: Vec<(String, String)>,
    needs_packages: bool,
) {
    let dir = repository().join(dir).display().to_string();
    assert!(
        !needs_packages || std::path::Path::new(&dir).join("node_modules").exists(),
        "run `npm ci` in {dir} first (scripts/test does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg("--test").args(args).current_dir(&dir).envs(envs);
    let out = tokio::task::spawn_blocking(move || {
        cmd.output()
            .expect("node (18 or later) must be installed for the Node tests")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{stdout}"
    );
}
