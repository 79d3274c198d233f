//! `fleetgate events listen`: a receiver that verifies each event's Standard Webhooks
//! signature and prints it, one line per event, for trying events out (`scripts/dev` runs
//! one). A receiver of the platform's does the same with any Standard Webhooks library, and
//! drops a `webhook-id` it has already handled.

use std::{collections::HashSet, io::Write, net::SocketAddr, sync::Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use secrecy::SecretString;

use crate::auth::webhook::WebhookVerifier;

struct Receiver {
    verifier: WebhookVerifier,
    /// `webhook-id`s handled, so a redelivery is answered but not printed again.
    seen: Mutex<HashSet<String>>,
}

/// Serves until interrupted.
pub async fn run(secret: &str, listen: SocketAddr) -> anyhow::Result<()> {
    let verifier = WebhookVerifier::new(&SecretString::from(secret.to_owned())).map_err(|_| {
        anyhow::anyhow!("--secret must be a Standard Webhooks secret (whsec_ and base64)")
    })?;
    let receiver = web::Data::new(Receiver {
        verifier,
        seen: Mutex::new(HashSet::new()),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(receiver.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::post().to(receive))
    })
    .workers(1)
    .bind(listen)
    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    for addr in server.addrs() {
        say(&format!(
            "listening for fleetgate's events on http://{addr}/ (FLEETGATE_EVENTS_URL)"
        ));
    }
    server.run().await?;
    Ok(())
}

async fn receive(req: HttpRequest, body: web::Bytes, r: web::Data<Receiver>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    let id = match r.verifier.verify(&body, header) {
        Ok(id) => id,
        Err(e) => {
            say(&format!("refused a delivery: {e}"));
            return HttpResponse::Unauthorized().body(e.to_string());
        }
    };
    if !r.seen.lock().expect("seen lock").insert(id.clone()) {
        say(&format!(
            "{id} again (a redelivery of one already handled): dropped"
        ));
        return HttpResponse::NoContent().finish();
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    say(&format!(
        "{id} {} {}",
        event["type"].as_str().unwrap_or("?"),
        event["data"]
    ));
    HttpResponse::NoContent().finish()
}

fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
