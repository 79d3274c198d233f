//! Delivering the outbox. The replica holding [`DELIVERY_LOCK`] (on a connection of its own,
//! so the lock dies with the process and another replica takes over within
//! [`LOCK_CHECK`]) POSTs each due event to `FLEETGATE_EVENTS_URL`, signed per Standard
//! Webhooks, and records the attempt; it wakes on the notification each new event sends, and
//! when a retry falls due.
//!
//! Order: only the oldest pending event of each instance is ever due, so an instance's events
//! arrive in the order they were made (a later one waits while an earlier one is retried);
//! events of different instances go out concurrently. At least once: an attempt whose answer
//! is not recorded (the process died, the database was away) is made again, with the same
//! `webhook-id`.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use standardwebhooks::Webhook;
use tokio_util::sync::CancellationToken;

use super::retry::{self, After};
use crate::{
    config::EventsSettings,
    db::{self, events::EVENTS_CHANNEL},
    metrics::Metrics,
};

pub const DELIVERY_LOCK: i64 = 0x666c_6565_7467_6103;
/// How often a replica that does not deliver asks for the lock, and the deliverer checks it
/// still holds it.
pub const LOCK_CHECK: Duration = Duration::from_secs(2);
/// The shortest wait between rounds with nothing due.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// Events taken per round, and attempts in flight at once (each to a different instance).
const BATCH: i64 = 64;
const IN_FLIGHT: usize = 16;

pub struct Deliverer {
    pool: PgPool,
    client: reqwest::Client,
    url: reqwest::Url,
    signer: Webhook,
    schedule: Vec<Duration>,
    timeout: Duration,
    metrics: Metrics,
}

impl Deliverer {
    pub fn new(pool: PgPool, settings: &EventsSettings, metrics: Metrics) -> anyhow::Result<Self> {
        let signer = Webhook::new(settings.secret()).map_err(|_| {
            anyhow::anyhow!("FLEETGATE_EVENTS_SECRET is not a valid Standard Webhooks secret")
        })?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            // The receiver is the configured address: a redirect is its failure, not a
            // place to send signed events to.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("fleetgate/{}", crate::VERSION))
            .build()?;
        Ok(Self {
            pool,
            client,
            url: settings.url.clone(),
            signer,
            schedule: settings.retry_schedule.clone(),
            timeout: settings.timeout,
            metrics,
        })
    }

    /// Runs until `shutdown`: waits for the lock, then delivers while it holds it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut conn: Option<PgConnection> = None;
        while !shutdown.is_cancelled() {
            let took = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                r = db::locks::try_lock(&self.pool, &mut conn, DELIVERY_LOCK) => r,
            };
            match took {
                Ok(true) => {
                    tracing::info!("this replica now delivers events");
                    let lock = conn.take().expect("the lock is held on this connection");
                    self.metrics.events_deliverer.set(1);
                    let delivered = tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => Ok(()),
                        r = self.deliver_while_held(lock) => r,
                    };
                    if let Err(e) = delivered {
                        tracing::warn!(error = %e, "event delivery stopped");
                    }
                    self.metrics.events_deliverer.set(0);
                    self.metrics.events_pending.set(0);
                    self.metrics.events_oldest_pending_seconds.set(0.0);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot contend for the event delivery lock");
                    conn = None;
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(LOCK_CHECK) => {}
            }
        }
    }

    /// Delivers until an error (the lock's connection lost, the database away). The lock's
    /// connection is dropped on return, which releases it.
    async fn deliver_while_held(&self, mut lock: PgConnection) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        loop {
            // Still ours: a deliverer whose lock connection died must not go on beside the
            // replica that took over.
            sqlx::query("SELECT 1").execute(&mut lock).await?;
            let due = {
                let mut conn = self.pool.acquire().await?;
                self.count_backlog(&mut conn).await?;
                db::events::due(&mut conn, BATCH).await?
            };
            if !due.is_empty() {
                futures_util::stream::iter(due)
                    .for_each_concurrent(IN_FLIGHT, |event| self.attempt(event))
                    .await;
                continue;
            }
            let next = db::events::next_due(&mut *self.pool.acquire().await?).await?;
            // At least every LOCK_CHECK: the lock is checked, and an event whose notification
            // was lost (the listener reconnecting) is found. At most every MIN_WAIT: "due"
            // is the database's clock, "now" this machine's, and they may differ a little.
            let wait = next
                .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(LOCK_CHECK)
                .clamp(MIN_WAIT, LOCK_CHECK);
            tokio::select! {
                note = listener.recv() => { note?; }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn count_backlog(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        let (pending, oldest) = db::events::backlog(conn).await?;
        self.metrics.events_pending.set(pending);
        self.metrics.events_oldest_pending_seconds.set(oldest);
        Ok(())
    }

    /// One attempt at one event, recorded with what came of it.
    async fn attempt(&self, event: db::events::Due) {
        let body = event.payload.to_string();
        let started = std::time::Instant::now();
        let answer = self.post(&event.id, body).await;
        let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let (status_code, error) = match &answer {
            Ok(status) if status.is_success() => (Some(status.as_u16()), None),
            Ok(status) => (Some(status.as_u16()), Some(format!("answered {status}"))),
            Err(why) => (None, Some(why.clone())),
        };
        let after = retry::after_attempt(
            error.is_none(),
            event.attempts.max(0) as u32 + 1,
            &self.schedule,
        );
        let retry_at = match after {
            After::Retry(wait) => {
                Some(chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
            }
            _ => None,
        };
        let outcome = db::events::Outcome {
            status_code: status_code.map(i32::from),
            error: error.as_deref(),
            duration_ms,
            status: after.status(),
            retry_at,
        };
        let recorded = match self.pool.acquire().await {
            Ok(mut conn) => db::events::record_attempt(&mut conn, event.seq, &outcome).await,
            Err(e) => Err(e),
        };
        self.metrics
            .event_deliveries
            .with_label_values(&[after.outcome()])
            .inc();
        match (recorded, after) {
            (Err(e), _) => tracing::warn!(
                event = event.id,
                error = %e,
                "an event's delivery attempt could not be recorded; it will be delivered again"
            ),
            (Ok(()), After::Delivered) => {
                tracing::debug!(event = event.id, "event delivered")
            }
            (Ok(()), After::Retry(wait)) => tracing::info!(
                event = event.id,
                attempt = event.attempts + 1,
                error = error.as_deref().unwrap_or_default(),
                retry_in_secs = wait.as_secs_f64(),
                "event delivery failed; trying again later"
            ),
            (Ok(()), After::GivenUp) => tracing::warn!(
                event = event.id,
                attempts = event.attempts + 1,
                error = error.as_deref().unwrap_or_default(),
                "event delivery failed on every attempt of the schedule; given up (POST /v1/events/{{id}}/redeliver sends it again)"
            ),
        }
    }

    /// POSTs a signed event; answers the status that came back, or why none did (never the
    /// URL, which may hold a credential).
    async fn post(&self, id: &str, body: String) -> Result<reqwest::StatusCode, String> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self
            .signer
            .sign(id, timestamp, body.as_bytes())
            .map_err(|e| format!("cannot sign: {e}"))?;
        let sent = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) => Ok(answer.status()),
            Err(e) if e.is_timeout() => Err(format!(
                "no answer within {} s (FLEETGATE_EVENTS_TIMEOUT_SECS)",
                self.timeout.as_secs()
            )),
            Err(e) => Err(root_cause(&e.without_url())),
        }
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)` rather than `error
/// sending request`), prefixed by the outermost.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    if std::ptr::eq(inner, e) {
        e.to_string()
    } else {
        format!("{e}: {inner}")
    }
}
