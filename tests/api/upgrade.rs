//! The rolling-upgrade drill (`scripts/drills/rolling-upgrade`, which builds the previous
//! release and runs this with `--ignored`): two replicas of the previous release serve under
//! steady deploy hooks, grant changes, short and long polls and login decisions; this build
//! migrates the database under them and replaces them one at a time, as the shipped
//! Kubernetes Deployment does (a new replica ready, then the old one out of the rotation and
//! stopped with SIGTERM). Holds: every acknowledged change is there at the end, no request
//! fails but those sent to a replica that was stopping, the leader moves to a new replica,
//! which reconciles, and every long-polling instance ends with the last grants. Then a
//! rollback: the previous release starts again on the migrated schema and serves.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

/// The replicas requests go to, in turn (a Service's endpoints).
#[derive(Default)]
struct Front {
    addrs: RwLock<Vec<String>>,
    next: AtomicUsize,
}

impl Front {
    fn pick(&self) -> String {
        let addrs = self.addrs.read().unwrap();
        addrs[self.next.fetch_add(1, Ordering::Relaxed) % addrs.len()].clone()
    }

    fn add(&self, addr: &str) {
        self.addrs.write().unwrap().push(addr.to_owned());
    }

    fn remove(&self, addr: &str) {
        self.addrs.write().unwrap().retain(|a| a != addr);
    }
}

/// Every request's outcome: failures by the replica they went to, and when.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    failures: Mutex<Vec<(String, Instant, String)>>,
}

impl Tally {
    fn ok(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, addr: &str, what: String) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let at = Instant::now();
        self.failures
            .lock()
            .unwrap()
            .push((addr.to_owned(), at, what));
    }
}

struct Load {
    front: Front,
    tally: Tally,
    stop: AtomicBool,
    http: reqwest::Client,
    admin: String,
    key: String,
    deliveries: AtomicUsize,
}

const INSTANCES: usize = 30;
const POLLED: &str = "polled";

fn hosts(k: usize, generation: usize) -> Vec<String> {
    vec![
        format!("u{k}.{PLATFORM_DOMAIN}"),
        format!("www.u{k}-{}.com", generation % 3),
    ]
}

/// A signed deploy-hook delivery `id` of `body` to the replica at `addr`.
fn delivery(http: &reqwest::Client, addr: &str, id: &str, body: &str) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let signed = signature(id, ts, body);
    hook_request(
        http,
        addr,
        id,
        ts,
        &signed,
        "application/json",
        body.to_owned(),
    )
}

/// Deploy hooks, each sent until a replica acknowledges it (as a Standard Webhooks sender
/// retries, with the same id): the hosts each instance was last acknowledged with.
async fn hooks(load: Arc<Load>) -> BTreeMap<usize, Vec<String>> {
    let mut last = BTreeMap::new();
    let mut n = 0;
    while !load.stop.load(Ordering::Relaxed) {
        load.deliveries.fetch_add(1, Ordering::Relaxed);
        let (k, generation) = (n % INSTANCES, n / INSTANCES + 1);
        let body = json!({"type": "instance.deployed", "data": {
            "instance_id": format!("u{k}"), "owner": "auth0|owner-1", "domains": hosts(k, generation)}})
        .to_string();
        let id = format!("msg_upgrade_{n}");
        loop {
            let addr = load.front.pick();
            let sent = delivery(&load.http, &addr, &id, &body).send().await;
            match sent {
                Ok(res) if res.status() == StatusCode::OK => {
                    load.tally.ok();
                    break;
                }
                Ok(res) => load
                    .tally
                    .failed(&addr, format!("hook {id}: {}", res.status())),
                Err(e) => load.tally.failed(&addr, format!("hook {id}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last.insert(k, hosts(k, generation));
        n += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    last
}

/// Grants added to the polled instance by an admin, each until acknowledged (a 409 after a
/// failed attempt: that attempt took effect): the users granted.
async fn grants(load: Arc<Load>) -> Vec<String> {
    let mut granted = Vec::new();
    let mut n = 0;
    while !load.stop.load(Ordering::Relaxed) {
        let user = format!("auth0|user-{n}");
        let mut retried = false;
        loop {
            let addr = load.front.pick();
            let sent = load
                .http
                .post(format!("{addr}/v1/instances/{POLLED}/grants"))
                .bearer_auth(&load.admin)
                .json(&json!({"user_id": user, "role": "member"}))
                .send()
                .await;
            match sent.map(|r| r.status()) {
                Ok(StatusCode::CREATED | StatusCode::OK) => break load.tally.ok(),
                Ok(StatusCode::CONFLICT) if retried => break load.tally.ok(),
                Ok(status) => load.tally.failed(&addr, format!("grant {user}: {status}")),
                Err(e) => load.tally.failed(&addr, format!("grant {user}: {e}")),
            }
            retried = true;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        granted.push(user);
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    granted
}

/// An instance long-polling its grants (`wait`, with the revision it holds): what it holds
/// when told to stop, once it is no longer behind.
async fn long_poll(load: Arc<Load>, wait: u32) -> (String, Vec<String>) {
    let (mut etag, mut users) = (String::new(), Vec::new());
    loop {
        let addr = load.front.pick();
        let mut req = load
            .http
            .get(format!("{addr}/v1/instances/{POLLED}/grants?wait={wait}"))
            .bearer_auth(&load.key);
        if !etag.is_empty() {
            req = req.header("if-none-match", &etag);
        }
        match req.send().await {
            Ok(res) if res.status() == StatusCode::OK => {
                load.tally.ok();
                etag = res.headers()["etag"].to_str().unwrap().to_owned();
                let body: Value = res.json().await.unwrap();
                users = body["grants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| g["user_id"].as_str().unwrap().to_owned())
                    .collect();
            }
            Ok(res) if res.status() == StatusCode::NOT_MODIFIED => {
                load.tally.ok();
                if load.stop.load(Ordering::Relaxed) {
                    return (etag, users);
                }
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                load.tally.failed(&addr, format!("poll: {status} {body}"));
            }
            Err(e) => load.tally.failed(&addr, format!("poll: {e}")),
        }
        if wait == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Login decisions for a granted user at the polled instance, as the Action asks them.
async fn decisions(load: Arc<Load>) -> usize {
    let mut allowed = 0;
    while !load.stop.load(Ordering::Relaxed) {
        let addr = load.front.pick();
        let sent = load
            .http
            .post(format!("{addr}/v1/login-decisions"))
            .bearer_auth(ACTION_SECRET)
            .json(&login(
                "auth0|user-0",
                None,
                false,
                &format!("https://{POLLED}.{PLATFORM_DOMAIN}/callback"),
            ))
            .send()
            .await;
        match sent {
            Ok(res) if res.status() == StatusCode::OK => {
                load.tally.ok();
                let body: Value = res.json().await.unwrap();
                allowed += usize::from(body["allow"] == true);
            }
            Ok(res) => load
                .tally
                .failed(&addr, format!("decision: {}", res.status())),
            Err(e) => load.tally.failed(&addr, format!("decision: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    allowed
}

fn previous_release() -> String {
    std::env::var("FLEETGATE_PREVIOUS_BIN")
        .expect("FLEETGATE_PREVIOUS_BIN: the previous release's binary (scripts/drills/rolling-upgrade builds it and runs this)")
}

#[sqlx::test(migrations = false)]
#[ignore = "a drill: scripts/drills/rolling-upgrade builds the previous release and runs it"]
async fn a_rolling_upgrade_from_the_previous_release_drops_nothing(pool: PgPool) {
    let previous = previous_release();
    let tenant = TestTenant::start_with(roomy()).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.extend([
        ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()),
        ("FLEETGATE_RECONCILE_CRON", "*/5 * * * * *".to_owned()),
    ]);
    let spa = vars[2].1.clone();
    let db = database_url(&pool).await;
    let http = reqwest::Client::new();

    // The previous release migrates the empty database to its schema and serves.
    let mut old_a = replica_of(&[&previous, "serve"], &db, &tenant, &vars, "old-a");
    until_ready(&http, &old_a.addr).await;
    let mut old_b = replica_of(&[&previous, "serve"], &db, &tenant, &vars, "old-b");
    until_ready(&http, &old_b.addr).await;
    let version = |addr: String| {
        let http = http.clone();
        async move {
            let (_, health) =
                into_json(http.get(format!("{addr}/healthz")).send().await.unwrap()).await;
            health["version"].as_str().unwrap_or("?").to_owned()
        }
    };
    let from = version(old_a.addr.clone()).await;

    let admin = tenant.sign(&tenant.claims(&["fleet:admin"]));
    let body = json!({"type": "instance.deployed", "data": {
        "instance_id": POLLED, "owner": "auth0|owner-1", "domains": [format!("{POLLED}.{PLATFORM_DOMAIN}")]}})
    .to_string();
    let (status, deployed) = into_json(
        delivery(&http, &old_a.addr, "msg_polled", &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{deployed}");
    let load = Arc::new(Load {
        front: Front::default(),
        tally: Tally::default(),
        stop: AtomicBool::new(false),
        http: http.clone(),
        admin,
        key: deployed["instance_key"].as_str().unwrap().to_owned(),
        deliveries: AtomicUsize::new(0),
    });
    // Releases up to 0.2.0 refuse a key another replica issued until its notification arrives
    // (later ones read such a key from the database): the instance starts polling once both
    // replicas know it.
    for addr in [&old_a.addr, &old_b.addr] {
        within(10, "the new key known to every replica", || async {
            http.get(format!("{addr}/v1/instances/{POLLED}/grants"))
                .bearer_auth(&load.key)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
    }
    load.front.add(&old_a.addr);
    load.front.add(&old_b.addr);
    let hooks = tokio::spawn(hooks(load.clone()));
    let granted = tokio::spawn(grants(load.clone()));
    let pollers: Vec<_> = [5, 5, 5, 0]
        .into_iter()
        .map(|wait| tokio::spawn(long_poll(load.clone(), wait)))
        .collect();
    let decided = tokio::spawn(decisions(load.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Replaced one at a time: the new replica (the first migrates) ready, then the old one out
    // of the rotation and stopped as a process manager stops it.
    let (mut new, mut stopping) = (Vec::new(), Vec::new());
    for (old, name) in [(&mut old_a, "new-a"), (&mut old_b, "new-b")] {
        let started = Instant::now();
        let replica = replica(&db, &tenant, &vars, name);
        until_ready(&http, &replica.addr).await;
        load.front.add(&replica.addr);
        load.front.remove(&old.addr);
        stopping.push((old.addr.clone(), Instant::now()));
        old.terminate();
        let status = old.exited(15).await;
        eprintln!(
            "{name} ({}) ready and the replica it replaces ({}) stopped ({status}) {:?} after it started",
            replica.addr,
            old.addr,
            started.elapsed()
        );
        new.push(replica);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let to = version(new[0].addr.clone()).await;

    load.stop.store(true, Ordering::Relaxed);
    let last_hosts = hooks.await.unwrap();
    let granted = granted.await.unwrap();
    let allowed = decided.await.unwrap();
    let mut held = Vec::new();
    for poller in pollers {
        held.push(poller.await.unwrap());
    }

    // Only requests to a replica being stopped (out of the rotation) may have failed.
    let failures = load.tally.failures.lock().unwrap().clone();
    let (excused, unexcused): (Vec<_>, Vec<_>) = failures.iter().partition(|(addr, at, _)| {
        stopping
            .iter()
            .any(|(stopped, since)| stopped == addr && at >= since)
    });
    eprintln!(
        "{from} → {to}: {} requests, {} failed at a replica being stopped, {} elsewhere; {} deliveries acknowledged over {} instances, {} grants added, {allowed} logins allowed",
        load.tally.sent.load(Ordering::Relaxed),
        excused.len(),
        unexcused.len(),
        load.deliveries.load(Ordering::Relaxed),
        last_hosts.len(),
        granted.len(),
    );
    let shown: Vec<String> = unexcused
        .iter()
        .map(|(addr, _, what)| format!("{addr}: {what}"))
        .collect();
    assert!(shown.is_empty(), "failed elsewhere: {shown:#?}");
    assert!(allowed > 0, "no login was decided");

    // Nothing acknowledged is lost.
    let admin_get = |path: String| {
        let (http, admin) = (http.clone(), load.admin.clone());
        let addr = new[1].addr.clone();
        async move {
            into_json(
                http.get(format!("{addr}{path}"))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    for (k, want) in &last_hosts {
        let (status, instance) = admin_get(format!("/v1/instances/u{k}")).await;
        assert_eq!(status, 200, "{instance}");
        let mut have: Vec<String> = instance["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["hostname"].as_str().unwrap().to_owned())
            .collect();
        let mut want = want.clone();
        have.sort();
        want.sort();
        assert_eq!(have, want, "u{k}: its last acknowledged deploy");
    }
    let (_, snapshot) = admin_get(format!("/v1/instances/{POLLED}/grants")).await;
    let mut now: Vec<String> = snapshot["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["user_id"].as_str().unwrap().to_owned())
        .collect();
    now.sort();
    let mut granted = granted;
    granted.sort();
    assert_eq!(now, granted, "every acknowledged grant, nothing else");
    // Every polling instance ends with them: none missed a change across the replacements.
    for (etag, mut users) in held {
        users.sort();
        assert_eq!(users, granted, "a poller holding {etag} missed a change");
    }

    // The leader moved to a new replica, which reconciles: every host's callback is live.
    within(30, "a new replica leading", || async {
        leader_of(&pool)
            .await
            .is_some_and(|name| name.starts_with("new-"))
    })
    .await;
    within(60, "every acknowledged host's callback live", || async {
        let live = fleetgate::domain::field::entries(&tenant.client(&spa).await["callbacks"]);
        last_hosts
            .values()
            .flatten()
            .all(|host| live.contains(&format!("https://{host}/callback")))
    })
    .await;

    // A rollback: the previous release again, on the schema this build migrated. A release
    // from this one on leaves migrations it does not know alone; 0.1.0 refuses them when it
    // migrates at start, and serves with `--no-migrate` (docs/operating.md, "Upgrades").
    let mut migrate = fleetgate_of(&previous, &db, &tenant, &vars);
    migrate.arg("migrate");
    let migrated = output(migrate).await;
    let refused = String::from_utf8_lossy(&migrated.stderr);
    let command: &[&str] = if migrated.status.success() {
        &[&previous, "serve"]
    } else {
        assert!(
            from == "0.1.0" && refused.contains("previously applied but is missing"),
            "the previous release cannot run on this schema: {refused}"
        );
        eprintln!("{from} refuses migrations it does not know: rolled back with --no-migrate");
        &[&previous, "serve", "--no-migrate"]
    };
    drop(new);
    let back = replica_of(command, &db, &tenant, &vars, "rolled-back");
    until_ready(&http, &back.addr).await;
    let poll = http
        .get(format!("{}/v1/instances/{POLLED}/grants", back.addr))
        .bearer_auth(&load.key)
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    let body: Value = poll.json().await.unwrap();
    assert_eq!(body["grants"].as_array().unwrap().len(), granted.len());
}
