//! The real `fleetgate` binary as separate processes, for drills, lifecycle and replica tests.

use std::{
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use sqlx::PgPool;

use super::*;

/// The URL of this test's database, for processes of their own.
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let server = std::env::var("DATABASE_URL").unwrap();
    let base = server.split('?').next().unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

/// Waits (at most 10 s) until the fleetgate at `addr` answers `/readyz` with 200.
pub async fn until_ready(http: &reqwest::Client, addr: &str) {
    within(10, &format!("{addr} ready"), || async {
        http.get(format!("{addr}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// A `fleetgate serve` process, killed (SIGKILL) when dropped, so that a failing test leaves
/// nothing running.
pub struct Replica {
    child: Child,
    /// Its base URL.
    pub addr: String,
}

impl Replica {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, as a process manager does to stop a service.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// What a [`logged_replica`] logged, once it has exited.
    pub fn log(&mut self) -> String {
        let mut log = String::new();
        std::io::Read::read_to_string(
            self.child.stdout.as_mut().expect("a logged replica"),
            &mut log,
        )
        .unwrap();
        log
    }

    /// Waits (bounded) for the process to exit.
    pub async fn exited(&mut self, secs: u64) -> ExitStatus {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the process did not exit within {secs} s");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `fleetgate` binary with the tests' settings (and nothing else from the environment)
/// for this database and tenant, plus `vars`.
pub fn fleetgate(db: &str, tenant: &TestTenant, vars: &[(&str, String)]) -> Command {
    fleetgate_of(env!("CARGO_BIN_EXE_fleetgate"), db, tenant, vars)
}

/// Like [`fleetgate`], for the binary at `bin` (another release's).
pub fn fleetgate_of(bin: &str, db: &str, tenant: &TestTenant, vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("DATABASE_URL", db)
        .env("AUTH0_DOMAIN", &tenant.base_url)
        .env("AUTH0_AUDIENCE", AUDIENCE)
        .env("FLEETGATE_INSTANCE_AUDIENCE", INSTANCE_AUDIENCE)
        .env("FLEETGATE_PLATFORM_DOMAIN", PLATFORM_DOMAIN)
        .env("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("FLEETGATE_WILDCARD", "false")
        .env("FLEETGATE_ADMIN_CLIENTS", ADMIN_CLIENT)
        .env("RUST_LOG", "warn");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a `fleetgate` command to its end (off the test's runtime, which serves the emulator).
pub async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the fleetgate binary runs"))
        .await
        .unwrap()
}

/// Like [`output`], for a command that must succeed (its stderr shown if it did not).
pub async fn succeeded(cmd: Command) -> std::process::Output {
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts `fleetgate serve` on a port of its own against `tenant` (reconciling if `vars` say
/// so), named `name` in Postgres.
pub fn replica(db: &str, tenant: &TestTenant, vars: &[(&str, String)], name: &str) -> Replica {
    start(
        &[env!("CARGO_BIN_EXE_fleetgate"), "serve"],
        db,
        tenant,
        vars,
        name,
        false,
    )
}

/// Like [`replica`], for the command line `command` (another release's binary and its
/// arguments).
pub fn replica_of(
    command: &[&str],
    db: &str,
    tenant: &TestTenant,
    vars: &[(&str, String)],
    name: &str,
) -> Replica {
    start(command, db, tenant, vars, name, false)
}

/// Like [`replica`], with the default log filter and its log kept for [`Replica::log`] (read
/// only after exit, so keep such a run short: a pipe holds 64 KiB).
pub fn logged_replica(
    db: &str,
    tenant: &TestTenant,
    vars: &[(&str, String)],
    name: &str,
) -> Replica {
    start(
        &[env!("CARGO_BIN_EXE_fleetgate"), "serve"],
        db,
        tenant,
        vars,
        name,
        true,
    )
}

fn start(
    command: &[&str],
    db: &str,
    tenant: &TestTenant,
    vars: &[(&str, String)],
    name: &str,
    logged: bool,
) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut cmd = fleetgate_of(
        command[0],
        &format!("{db}?application_name={name}"),
        tenant,
        vars,
    );
    cmd.args(&command[1..])
        .env("FLEETGATE_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::inherit());
    if logged {
        cmd.env_remove("RUST_LOG").stdout(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null());
    }
    Replica {
        child: cmd.spawn().expect("the fleetgate binary starts"),
        addr: format!("http://127.0.0.1:{port}"),
    }
}

/// Polls `check` every 100 ms for up to `secs` seconds.
pub async fn within<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {secs} s");
}

/// The replica holding the reconciler's leader lock, by its Postgres application name.
pub async fn leader_of(pool: &PgPool) -> Option<String> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    // The low 32 bits of the leader lock's key.
    .bind(fleetgate::reconcile::leader::LEADER_LOCK & 0xffff_ffff)
    .fetch_optional(pool)
    .await
    .unwrap()
}
