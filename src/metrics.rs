//! Prometheus metrics beyond the HTTP ones (which `http::observe` keeps in the same registry), and `GET /metrics`.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Reconcile passes by trigger and outcome.
    pub reconcile_runs: IntCounterVec,
    /// Management API calls by method and status (`error` when no answer came).
    pub auth0_calls: IntCounterVec,
    /// Seconds spent waiting before Management API calls, by reason (`rate_limit`, `backoff`).
    pub auth0_wait_seconds: prometheus::CounterVec,
    /// Entries on the managed lists that fleetgate did not add (drift), by application and field.
    pub foreign_entries: GaugeVec,
    /// 1 while this replica's memory of grant revisions and instance keys follows the
    /// database's notifications; 0 while it falls back to reading the database.
    pub grants_memory_in_step: prometheus::IntGauge,
    /// 1 on the replica that holds the reconciler's lead, 0 elsewhere.
    pub reconcile_leader: IntGauge,
    /// Seconds each reconcile pass took, by trigger.
    pub reconcile_pass_seconds: HistogramVec,
    /// Seconds each Management API call took (one attempt, until its answer), by method.
    pub auth0_call_seconds: HistogramVec,
    /// Entries on each managed list over the cap (FLEETGATE_ALLOWLIST_CAP), by application and field.
    pub allowlist_fill_ratio: GaugeVec,
    /// Entries fleetgate had written that were gone from their list (removed by hand, a list
    /// emptied) and that a pass wrote back, by field.
    pub entries_restored: IntCounterVec,
    /// The login relay's steps by outcome (`ok`, `refused`, `error`).
    pub relay_steps: IntCounterVec,
    /// Outbound events not yet delivered (as the delivering replica last counted them).
    pub events_pending: IntGauge,
    /// Seconds since the oldest undelivered event was made (0 when none is pending).
    pub events_oldest_pending_seconds: prometheus::Gauge,
    /// Delivery attempts of outbound events by outcome (`delivered`, `retry`, `failed`).
    pub event_deliveries: IntCounterVec,
    /// 1 on the replica that delivers outbound events, 0 elsewhere.
    pub events_deliverer: IntGauge,
    /// 1 when outbound events are configured (`FLEETGATE_EVENTS_URL`).
    pub events_enabled: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help).namespace("fleetgate"), labels)
                .expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registers once");
            c
        };
        let reconcile_runs = counter(
            "reconcile_runs_total",
            "Reconcile passes by trigger and outcome.",
            &["trigger", "outcome"],
        );
        let auth0_calls = counter(
            "auth0_calls_total",
            "Management API calls by method and status.",
            &["method", "status"],
        );
        let auth0_wait_seconds = prometheus::CounterVec::new(
            Opts::new(
                "auth0_wait_seconds_total",
                "Seconds waited before Management API calls, by reason.",
            )
            .namespace("fleetgate"),
            &["reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(auth0_wait_seconds.clone()))
            .expect("registers once");
        let foreign_entries = GaugeVec::new(
            Opts::new(
                "allowlist_foreign_entries",
                "Entries on managed lists that fleetgate did not add.",
            )
            .namespace("fleetgate"),
            &["client_id", "field"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(foreign_entries.clone()))
            .expect("registers once");
        let grants_memory_in_step = prometheus::IntGauge::with_opts(
            Opts::new(
                "grants_memory_in_step",
                "1 while grant revisions and instance keys are served from memory kept fresh by notifications.",
            )
            .namespace("fleetgate"),
        )
        .expect("valid metric");
        registry
            .register(Box::new(grants_memory_in_step.clone()))
            .expect("registers once");
        let reconcile_leader = IntGauge::with_opts(
            Opts::new(
                "reconcile_leader",
                "1 on the replica that holds the reconciler's lead.",
            )
            .namespace("fleetgate"),
        )
        .expect("valid metric");
        registry
            .register(Box::new(reconcile_leader.clone()))
            .expect("registers once");
        let histogram = |name: &str, help: &str, label: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help)
                    .namespace("fleetgate")
                    .buckets(buckets),
                &[label],
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registers once");
            h
        };
        let reconcile_pass_seconds = histogram(
            "reconcile_pass_duration_seconds",
            "Seconds each reconcile pass took, by trigger.",
            "trigger",
            vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
        );
        let auth0_call_seconds = histogram(
            "auth0_call_duration_seconds",
            "Seconds each Management API call attempt took until its answer, by method.",
            "method",
            vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        );
        let allowlist_fill_ratio = GaugeVec::new(
            Opts::new(
                "allowlist_fill_ratio",
                "Entries on each managed list over the cap (FLEETGATE_ALLOWLIST_CAP), as a pass last planned it.",
            )
            .namespace("fleetgate"),
            &["client_id", "field"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(allowlist_fill_ratio.clone()))
            .expect("registers once");
        let entries_restored = counter(
            "allowlist_entries_restored_total",
            "Entries fleetgate had written that were removed from a list by someone else, written back by a pass, by field.",
            &["field"],
        );
        // Every field from the start, so the series exist (at 0) before anything is restored.
        for field in crate::domain::Field::ALL {
            entries_restored.with_label_values(&[field.name()]);
        }
        let relay_steps = counter(
            "relay_steps_total",
            "The login relay's steps (authorize, callback, token_code, token_refresh, logout, logged_out, decision) by outcome (ok, refused, error).",
            &["step", "outcome"],
        );
        // Every step's errors from the start, so that alerts see 0 before the first one.
        for step in [
            "authorize",
            "callback",
            "token_code",
            "token_refresh",
            "logout",
            "logged_out",
            "decision",
        ] {
            relay_steps.with_label_values(&[step, "error"]);
        }
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::with_opts(Opts::new(name, help).namespace("fleetgate"))
                .expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registers once");
            g
        };
        let events_pending = gauge(
            "events_pending",
            "Outbound events not yet delivered (counted by the delivering replica; 0 elsewhere).",
        );
        let events_deliverer = gauge(
            "events_deliverer",
            "1 on the replica that delivers outbound events.",
        );
        let events_enabled = gauge(
            "events_enabled",
            "1 when outbound events are configured (FLEETGATE_EVENTS_URL).",
        );
        let events_oldest_pending_seconds = prometheus::Gauge::with_opts(
            Opts::new(
                "events_oldest_pending_seconds",
                "Seconds since the oldest undelivered outbound event was made (0 when none is pending).",
            )
            .namespace("fleetgate"),
        )
        .expect("valid metric");
        registry
            .register(Box::new(events_oldest_pending_seconds.clone()))
            .expect("registers once");
        let event_deliveries = counter(
            "event_deliveries_total",
            "Delivery attempts of outbound events by outcome (delivered; retry: failed, tried again later; failed: the last of the schedule failed).",
            &["outcome"],
        );
        for outcome in ["delivered", "retry", "failed"] {
            event_deliveries.with_label_values(&[outcome]);
        }
        // Which build answers (1, labelled with its version), as Prometheus' own build_info.
        let build_info = GaugeVec::new(
            Opts::new("build_info", "This build, by version: always 1.").namespace("fleetgate"),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[crate::VERSION]).set(1.0);
        registry
            .register(Box::new(build_info))
            .expect("registers once");
        Self {
            registry,
            reconcile_leader,
            reconcile_pass_seconds,
            auth0_call_seconds,
            allowlist_fill_ratio,
            grants_memory_in_step,
            reconcile_runs,
            auth0_calls,
            auth0_wait_seconds,
            foreign_entries,
            entries_restored,
            relay_steps,
            events_pending,
            events_oldest_pending_seconds,
            event_deliveries,
            events_deliverer,
            events_enabled,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics`: the registry in Prometheus' text format.
pub async fn serve(registry: actix_web::web::Data<Registry>) -> actix_web::HttpResponse {
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text) {
        Ok(()) => actix_web::HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(e) => actix_web::HttpResponse::InternalServerError()
            .body(format!("cannot encode metrics: {e}")),
    }
}
