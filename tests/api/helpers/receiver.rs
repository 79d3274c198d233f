//! A platform's event receiver: verifies each delivery's Standard Webhooks signature with the
//! events secret, answers as the test scripts it (failures first, a delay, a hang), and
//! records every delivery and whether two deliveries of one event ever overlapped.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fleetgate::auth::webhook::WebhookVerifier;
use secrecy::SecretString;
use serde_json::Value;

/// The secret tests sign events with (not the deploy hook's).
pub const EVENTS_SECRET: &str = "whsec_c2VjcmV0LWZvci1ldmVudHMtMDEyMzQ1Njc4OQ==";

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
pub struct Script {
    /// Answered (in order) before anything else, per event id prefix "" = any event.
    pub fail_first: VecDeque<u16>,
    /// Fail every delivery of events about this instance this many times first.
    pub fail_instance: Option<(String, usize)>,
    /// Answer every delivery with this status (after the above), 204 by default.
    pub always: Option<u16>,
    /// Wait this long before answering.
    pub delay: Duration,
}

#[derive(Default)]
struct State {
    script: Script,
    deliveries: Vec<Delivery>,
    in_flight: HashSet<String>,
    overlapped: Vec<String>,
    failed_for_instance: usize,
    refused_signatures: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_with(Script::default()).await
    }

    pub async fn start_with(script: Script) -> Self {
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::post().to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/events"),
            state,
        }
    }

    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.state.lock().unwrap().script);
    }

    /// Every delivery, in the order they arrived.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// Events acknowledged (2xx), in the order they were.
    pub fn acknowledged(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| (200..300).contains(&d.status))
            .collect()
    }

    /// Types of the acknowledged events about `instance`, in order.
    pub fn types_for(&self, instance: &str) -> Vec<String> {
        self.acknowledged()
            .iter()
            .filter(|d| d.body["data"]["instance_id"] == instance)
            .map(|d| d.body["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Event ids delivered while another delivery of the same id was under way.
    pub fn overlapped(&self) -> Vec<String> {
        self.state.lock().unwrap().overlapped.clone()
    }

    pub fn refused_signatures(&self) -> usize {
        self.state.lock().unwrap().refused_signatures
    }

    /// Waits (at most `secs`) until `n` different events are acknowledged; answers every
    /// acknowledged delivery (a repeated one included).
    pub async fn until_acknowledged(&self, n: usize, secs: u64) -> Vec<Delivery> {
        super::within(secs, &format!("{n} events acknowledged"), || async {
            let ids: HashSet<String> = self.acknowledged().into_iter().map(|d| d.id).collect();
            ids.len() >= n
        })
        .await;
        self.acknowledged()
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let verifier = WebhookVerifier::new(&SecretString::from(EVENTS_SECRET)).unwrap();
    let id = match verifier.verify(&body, |name| req.headers().get(name).map(|v| v.as_bytes())) {
        Ok(id) => id,
        Err(_) => {
            state.lock().unwrap().refused_signatures += 1;
            return HttpResponse::Unauthorized().finish();
        }
    };
    let event: Value = serde_json::from_slice(&body).unwrap();
    let delay = {
        let mut s = state.lock().unwrap();
        if !s.in_flight.insert(id.clone()) {
            s.overlapped.push(id.clone());
        }
        s.script.delay
    };
    tokio::time::sleep(delay).await;
    let mut s = state.lock().unwrap();
    s.in_flight.remove(&id);
    let instance = event["data"]["instance_id"].as_str().unwrap_or("");
    let status = if let Some(code) = s.script.fail_first.pop_front() {
        code
    } else if let Some((failing, times)) = s.script.fail_instance.clone()
        && failing == instance
        && s.failed_for_instance < times
    {
        s.failed_for_instance += 1;
        500
    } else {
        s.script.always.unwrap_or(204)
    };
    s.deliveries.push(Delivery {
        id,
        body: event,
        status,
        at: std::time::Instant::now(),
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}
