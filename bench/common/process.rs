//! The servers under test, each a process of its own: fleetgate (the real binary, at its
//! default settings unless told otherwise) and the reference, a bare actix-web handler that
//! answers the poll's 304 on the same route. The load generators are processes too (`wrk`,
//! and [`super::open_loop`]), so no server shares its process with what loads it.

use std::{
    collections::HashMap,
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A child process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Where its standard output goes (fleetgate's logs).
    pub log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Resident memory of the server process, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.child.id())
    }

    /// Processor time the server has used so far (user and system), seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }

    /// Processor time so far (user and system, seconds) of each thread alive now, by thread
    /// id, with the thread's name: which of them does the work.
    pub fn cpu_seconds_by_thread(&self) -> HashMap<u32, (String, f64)> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let Ok(entries) = std::fs::read_dir(&tasks) else {
            return HashMap::new();
        };
        entries
            .flatten()
            .filter_map(|task| {
                let tid = task.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
                Some((tid, (name.trim().to_owned(), stat_cpu_seconds(&stat)?)))
            })
            .collect()
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit, so that what
    /// runs it (a profiler) can write its results.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: kill(2) with a child's pid and a signal number has no memory effects.
        anyhow::ensure!(
            unsafe { libc::kill(pid, libc::SIGTERM) } == 0,
            "cannot signal"
        );
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "the server exited with {status}");
        Ok(())
    }

    /// Bytes its standard output holds so far.
    pub fn log_bytes(&self) -> u64 {
        self.log
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `fleetgate serve` with exactly `vars` (nothing inherited but `PATH`), logging to a
/// file under `dir`, and waits until `/readyz` answers 200; answers it with the time that took.
pub async fn fleetgate(vars: &[(&str, String)], dir: &Path) -> anyhow::Result<(Server, Duration)> {
    fleetgate_under(&[], vars, dir).await
}

/// [`fleetgate`] run by `prefix` (`valgrind --tool=cachegrind …`), if not empty.
pub async fn fleetgate_under(
    prefix: &[String],
    vars: &[(&str, String)],
    dir: &Path,
) -> anyhow::Result<(Server, Duration)> {
    // The port `FLEETGATE_LISTEN` names, if it names one (a relay's URL is its own address).
    let port = match vars.iter().find(|(k, _)| *k == "FLEETGATE_LISTEN") {
        Some((_, listen)) => listen.rsplit(':').next().unwrap_or_default().parse()?,
        None => free_port()?,
    };
    let log = dir.join(format!("fleetgate-{port}.log"));
    let started = Instant::now();
    let child = command(prefix, Path::new(env!("CARGO_BIN_EXE_fleetgate")))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FLEETGATE_LISTEN", format!("127.0.0.1:{port}"))
        // No `.env` from the checkout.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(&log)?)
        .stderr(Stdio::inherit())
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log: Some(log),
    };
    let ready = wait_ready(&format!("{}/readyz", server.base), patience(prefix)).await;
    anyhow::ensure!(
        ready,
        "fleetgate did not become ready; see {:?}",
        server.log
    );
    Ok((server, started.elapsed()))
}

/// Starts this benchmark's own executable as the reference server (see [`serve_reference`]).
pub async fn reference() -> anyhow::Result<Server> {
    reference_under(&[]).await
}

/// [`reference`] run by `prefix`, if not empty.
pub async fn reference_under(prefix: &[String]) -> anyhow::Result<Server> {
    let port = free_port()?;
    let child = command(prefix, &std::env::current_exe()?)
        .args(["--reference-server", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log: None,
    };
    anyhow::ensure!(
        wait_ready(
            &format!("{}/v1/instances/x/grants", server.base),
            patience(prefix)
        )
        .await,
        "the reference server did not start"
    );
    Ok(server)
}

/// The reference: the least an actix-web server can do to answer the no-change poll (the same
/// route pattern, a 304 with the ETag and Cache-Control), with actix-web's default workers.
/// For long-polls, the least it can do to hold requests and answer them all at once:
/// `GET /park/{id}/grants` waits until `POST /wake`; `GET /parked` counts those waiting.
pub fn serve_reference(port: u16) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};
    static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();
    static PARKED: AtomicUsize = AtomicUsize::new(0);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route(
                    "/v1/instances/{id}/grants",
                    web::get().to(|_id: web::Path<String>| async {
                        HttpResponse::NotModified()
                            .insert_header(("etag", "\"3\""))
                            .insert_header(("cache-control", "private, no-cache"))
                            .finish()
                    }),
                )
                .route(
                    "/park/{id}/grants",
                    web::get().to(|_id: web::Path<String>| async {
                        let woken = WAKE.notified();
                        PARKED.fetch_add(1, Ordering::Relaxed);
                        woken.await;
                        PARKED.fetch_sub(1, Ordering::Relaxed);
                        HttpResponse::Ok()
                            .insert_header(("etag", "\"4\""))
                            .content_type("application/json")
                            .body(r#"{"instance_id":"small","revision":4,"owner":"auth0|owner","grants":[]}"#)
                    }),
                )
                .route(
                    "/parked",
                    web::get().to(|| async { PARKED.load(Ordering::Relaxed).to_string() }),
                )
                .route(
                    "/wake",
                    web::post().to(|| async {
                        WAKE.notify_waiters();
                        HttpResponse::Ok().finish()
                    }),
                )
        })
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

/// `program`, or `prefix` running it.
fn command(prefix: &[String], program: &Path) -> Command {
    match prefix.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(program);
            cmd
        }
    }
}

/// How long a server may take to start: a minute when a profiler runs it, six seconds alone.
fn patience(prefix: &[String]) -> Duration {
    Duration::from_secs(if prefix.is_empty() { 6 } else { 60 })
}

async fn wait_ready(url: &str, patience: Duration) -> bool {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < patience {
        if let Ok(r) = client.get(url).send().await
            && (r.status().is_success() || r.status() == 304)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Processor time process `pid` has used (user and system), seconds; also readable from a
/// child that has exited and is not yet waited for. 0 when it cannot be read.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu_seconds(&s))
        .unwrap_or(0.0)
}

/// User and system time, seconds, from a `/proc/…/stat` line.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // The fields after the command name (which may hold spaces, in parentheses): state is the
    // first, utime and stime the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((user + system) / ticks)
}

pub fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
