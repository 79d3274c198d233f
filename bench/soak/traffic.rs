//! The soak's traffic: requests to the replicas in turn, each kind at its own pace, and what
//! was acknowledged (to check at the end that none of it was lost).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use fleetgate::auth::webhook::WebhookVerifier;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Instances whose grants change, each long-polling them.
pub(crate) const GRANTED: usize = 50;
/// Users in each of those instances' grants at any time.
const GRANT_WINDOW: usize = 5;

/// The replicas, requests going to each in turn (a Service's endpoints), and when each was
/// down: from its kill until it answered `/readyz` again.
pub(crate) struct Front {
    pub(crate) addrs: Vec<String>,
    pub(crate) next: AtomicUsize,
    pub(crate) down: Mutex<Vec<(usize, Instant, Option<Instant>)>>,
}

impl Front {
    fn pick(&self) -> (usize, &str) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        (i, &self.addrs[i])
    }

    /// Whether a request to replica `i` that failed at `at` failed because it was down (or
    /// within two seconds of its coming back: a connection pooled before the kill).
    pub(crate) fn excused(&self, i: usize, at: Instant) -> bool {
        let grace = Duration::from_secs(2);
        self.down.lock().unwrap().iter().any(|(r, from, until)| {
            *r == i && at >= *from && until.is_none_or(|until| at <= until + grace)
        })
    }
}

/// Every request's outcome.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) sent: AtomicUsize,
    pub(crate) failures: Mutex<Vec<(usize, Instant, String)>>,
}

pub(crate) struct Load {
    pub(crate) front: Front,
    pub(crate) tally: Tally,
    pub(crate) stop: AtomicBool,
    pub(crate) http: reqwest::Client,
    pub(crate) admin: String,
    pub(crate) hooks_signer: WebhookVerifier,
    /// Each instance's key (`u{k}`: `keys[k]`).
    pub(crate) keys: Vec<String>,
    pub(crate) instances: usize,
}

impl Load {
    fn ok(&self) {
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, replica: usize, what: String) {
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
        self.tally
            .failures
            .lock()
            .unwrap()
            .push((replica, Instant::now(), what));
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

pub(crate) fn hosts(k: usize, generation: usize) -> Vec<String> {
    vec![
        format!("u{k}.apps.example.com"),
        format!("www.u{k}-{}.com", generation % 3),
    ]
}

pub(crate) fn deploy_body(k: usize, generation: usize) -> String {
    json!({"type": "instance.deployed", "data": {
        "instance_id": format!("u{k}"), "owner": "auth0|owner", "domains": hosts(k, generation)}})
    .to_string()
}

pub(crate) fn users(from: usize) -> Vec<String> {
    (from..from + GRANT_WINDOW)
        .map(|n| format!("auth0|user-{n}"))
        .collect()
}

/// Sends `request` (built again for each attempt) to the replicas in turn until one answers
/// with a status `done` accepts; failures are tallied.
pub(crate) async fn until_done(
    load: &Load,
    what: &str,
    request: impl Fn(&str) -> reqwest::RequestBuilder,
    done: impl Fn(StatusCode) -> bool,
) -> Option<reqwest::Response> {
    loop {
        let (replica, addr) = load.front.pick();
        match request(addr).send().await {
            Ok(res) if done(res.status()) => {
                load.ok();
                return Some(res);
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                load.failed(replica, format!("{what}: {status} {body}"));
            }
            Err(e) => load.failed(replica, format!("{what}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deploy hooks at `per_second`, each instance's custom domain moving among three; each sent
/// until acknowledged (a Standard Webhooks sender's retries, same id): the hosts each instance
/// was last acknowledged with, and how many deliveries were.
pub(crate) async fn hooks(
    load: Arc<Load>,
    per_second: u64,
) -> (BTreeMap<usize, Vec<String>>, usize) {
    let mut last = BTreeMap::new();
    let mut pace = pacer(per_second);
    let mut n = load.instances;
    while !load.stopping() {
        pace.tick().await;
        let (k, generation) = (n % load.instances, n / load.instances);
        let (id, body) = (format!("msg_soak_{n}"), deploy_body(k, generation));
        until_done(
            &load,
            &id,
            |addr| {
                crate::common::signed_hook(
                    &load.http,
                    &format!("{addr}/v1/hooks/deploy"),
                    &load.hooks_signer,
                    &id,
                    body.clone(),
                )
            },
            |s| s == StatusCode::OK,
        )
        .await;
        last.insert(k, hosts(k, generation));
        n += 1;
    }
    (last, n - load.instances)
}

/// Grant changes at `per_second`: the first [`GRANTED`] instances in turn get their whole set
/// replaced by a window of users one further on (one user added, one removed; a `PUT` is
/// idempotent, so it is sent until acknowledged): the users each was last acknowledged with,
/// and how many changes were.
pub(crate) async fn grants(
    load: Arc<Load>,
    per_second: u64,
) -> (BTreeMap<usize, Vec<String>>, usize) {
    let mut last = BTreeMap::new();
    let mut pace = pacer(per_second);
    let mut n = 0;
    while !load.stopping() {
        pace.tick().await;
        let (k, from) = (n % GRANTED, n / GRANTED + 1);
        let body = json!({"grants": users(from).iter().map(|u| json!({"user_id": u, "role": "member"})).collect::<Vec<_>>()});
        until_done(
            &load,
            &format!("grants of u{k}"),
            |addr| {
                load.http
                    .put(format!("{addr}/v1/instances/u{k}/grants"))
                    .bearer_auth(&load.admin)
                    .json(&body)
            },
            |s| s == StatusCode::OK,
        )
        .await;
        last.insert(k, users(from));
        n += 1;
    }
    (last, n)
}

/// Instance `u{k}` long-polling its grants (`wait` seconds, with the revision it holds), as the
/// instance kit does: the users it holds when told to stop, once it is no longer behind.
pub(crate) async fn long_poll(load: Arc<Load>, k: usize) -> Vec<String> {
    let (mut etag, mut held) = (String::new(), Vec::new());
    loop {
        let (replica, addr) = load.front.pick();
        let mut req = load
            .http
            .get(format!("{addr}/v1/instances/u{k}/grants?wait=10"))
            .bearer_auth(&load.keys[k]);
        if !etag.is_empty() {
            req = req.header("if-none-match", &etag);
        }
        match req.send().await {
            Ok(res) if res.status() == StatusCode::OK => {
                let tag = res.headers()["etag"]
                    .to_str()
                    .unwrap_or_default()
                    .to_owned();
                match res.json::<Value>().await {
                    Ok(body) => {
                        load.ok();
                        etag = tag;
                        held = user_ids(&body);
                    }
                    Err(e) => load.failed(replica, format!("long-poll of u{k}: {e}")),
                }
            }
            Ok(res) if res.status() == StatusCode::NOT_MODIFIED => {
                load.ok();
                if load.stopping() {
                    return held;
                }
            }
            Ok(res) => {
                let status = res.status();
                load.failed(replica, format!("long-poll of u{k}: {status}"));
            }
            Err(e) => load.failed(replica, format!("long-poll of u{k}: {e}")),
        }
    }
}

pub(crate) fn user_ids(snapshot: &Value) -> Vec<String> {
    let mut users: Vec<String> = snapshot["grants"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["user_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    users.sort();
    users
}

/// Requests at `per_second`, each made by `request(n, addr)` once (not retried) and expected
/// to be answered with a status `ok` accepts: how many were.
pub(crate) async fn steady(
    load: Arc<Load>,
    what: &'static str,
    per_second: u64,
    request: impl Fn(&Load, usize, &str) -> reqwest::RequestBuilder,
    ok: impl Fn(StatusCode) -> bool,
) -> usize {
    let (mut pace, mut n, mut answered) = (pacer(per_second), 0, 0);
    while !load.stopping() {
        pace.tick().await;
        let (replica, addr) = load.front.pick();
        match request(&load, n, addr).send().await {
            Ok(res) if ok(res.status()) => {
                let _ = res.bytes().await;
                load.ok();
                answered += 1;
            }
            Ok(res) => load.failed(replica, format!("{what}: {}", res.status())),
            Err(e) => load.failed(replica, format!("{what}: {e}")),
        }
        n += 1;
    }
    answered
}

/// An interval of `per_second` ticks that does not burst to catch up.
pub(crate) fn pacer(per_second: u64) -> tokio::time::Interval {
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}
