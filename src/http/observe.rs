//! What every request leaves behind, in one middleware: its id (taken from `X-Request-Id`
//! when the caller sent a sane one, otherwise made up, and echoed in the answer), its line in
//! the access log, and its HTTP metrics.
//!
//! The access line carries the request id, method, path, status and time, at INFO; a failure
//! (500 and above) at ERROR with its cause, which the error puts in the answer for this line
//! (never in the body). Successful answers of the [`QUIET`] routes are at DEBUG (and counted
//! in the metrics all the same): the grants poll and its long-poll wake-ups, thousands a
//! second on a large platform, and login decisions, whose handler logs each decision. With
//! `RUST_LOG=debug`, every line a request logs sits in a `request` span carrying its id; at
//! INFO no span is made or entered, which the hot paths would pay for.

use std::{cell::RefCell, rc::Rc, time::Instant};

use actix_web::{
    Error, HttpMessage,
    dev::{Service, ServiceRequest, ServiceResponse},
    http::{
        Method, StatusCode,
        header::{HeaderName, HeaderValue},
    },
};
use foldhash::HashMap;
use futures_util::future::Either;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};
use tracing::Instrument;

use super::framework;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Routes whose successful answers are routine, or logged by their handler: their access
/// lines are at DEBUG. The relay's login steps are every login's path (counted by step and
/// outcome in `fleetgate_relay_steps_total`); their refusals still log at INFO.
pub const QUIET: &[(Method, &str)] = &[
    (Method::GET, "/v1/instances/{id}/grants"),
    (Method::POST, "/v1/login-decisions"),
    (Method::GET, "/authorize"),
    (Method::GET, "/callback"),
    (Method::POST, "/oauth/token"),
];

/// The longest request id taken from a caller.
const MAX_ID: usize = 64;

/// The request's id, as it goes out in `X-Request-Id`: held in place, no allocation of its own
/// (every request has one).
#[derive(Debug, Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_ID],
    len: u8,
}

impl RequestId {
    /// Only visible ASCII gets in (see `from_caller` and `generate`).
    fn new(id: &[u8]) -> Self {
        let mut bytes = [0; MAX_ID];
        bytes[..id.len()].copy_from_slice(id);
        Self {
            bytes,
            len: id.len() as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    fn header(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.bytes[..usize::from(self.len)]).expect("visible ASCII")
    }
}

/// The route pattern of a resource, given to it as app data: the `endpoint` label.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint(pub &'static str);

/// Why a request failed, put in its answer by the error for the access line.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub cause: String,
}

/// `fleetgate_http_requests_total` and `fleetgate_http_requests_duration_seconds`, by
/// endpoint (the route's pattern, `UNMATCHED` for paths no route has), method and status.
#[derive(Clone)]
pub struct HttpMetrics {
    /// Tells this set of metrics from another in the per-thread cache of children (tests and
    /// benchmarks run several servers in one process).
    id: usize,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let labels = &["endpoint", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Total number of HTTP requests")
                .namespace("fleetgate"),
            labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_requests_duration_seconds",
                "HTTP request duration in seconds, until the answer is ready",
            )
            .namespace("fleetgate"),
            labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self {
            id,
            requests,
            duration,
        })
    }

    fn record(
        &self,
        endpoint: Option<&'static str>,
        fallback: &str,
        method: &Method,
        status: u16,
        seconds: f64,
    ) {
        let method = method_index(method);
        let labels = |e: &str| {
            let method = METHODS.get(method).map_or("OTHER", Method::as_str);
            [e.to_owned(), method.to_owned(), status.to_string()]
        };
        let Some(endpoint) = endpoint else {
            let l = labels(fallback);
            let l = [l[0].as_str(), l[1].as_str(), l[2].as_str()];
            self.requests.with_label_values(&l).inc();
            self.duration.with_label_values(&l).observe(seconds);
            return;
        };
        // The children of a route's label set, found once per worker thread: looking them up
        // by their label strings every time costs more than the rest of this middleware.
        thread_local! {
            static CHILDREN: RefCell<HashMap<ChildKey, (IntCounter, Histogram)>> =
                RefCell::default();
        }
        CHILDREN.with_borrow_mut(|children| {
            let key = (
                self.id,
                endpoint.as_ptr() as usize,
                endpoint.len(),
                method,
                status,
            );
            let (count, time) = children.entry(key).or_insert_with(|| {
                let l = labels(endpoint);
                let l = [l[0].as_str(), l[1].as_str(), l[2].as_str()];
                (
                    self.requests.with_label_values(&l),
                    self.duration.with_label_values(&l),
                )
            });
            count.inc();
            time.observe(seconds);
        });
    }
}

/// A set of metrics, a route (its pattern, by address and length), method (by
/// [`method_index`]) and status.
type ChildKey = (usize, usize, usize, usize, u16);

/// The methods that are labels of their own; any other is `OTHER`. A method is whatever token
/// the caller sends, and every label value is a series kept for good.
static METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// The method's place in [`METHODS`], or `METHODS.len()` for `OTHER`.
fn method_index(method: &Method) -> usize {
    METHODS
        .iter()
        .position(|m| m == method)
        .unwrap_or(METHODS.len())
}

/// What kind of access line an answer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// 500 and above: ERROR with its cause (WARN without one).
    Failure,
    /// A success of a [`QUIET`] route: DEBUG.
    Routine,
    /// Everything else, refusals included: INFO.
    Normal,
}

fn line_for(status: StatusCode, endpoint: Option<&str>, method: &Method) -> Line {
    let quiet_route =
        || endpoint.is_some_and(|e| QUIET.iter().any(|(m, p)| *p == e && m == method));
    if status.is_server_error() {
        Line::Failure
    } else if (status.is_success() || status.is_redirection()) && quiet_route() {
        Line::Routine
    } else {
        Line::Normal
    }
}

fn from_caller(req: &ServiceRequest) -> Option<RequestId> {
    let b = req.headers().get(HEADER)?.as_bytes();
    let sane = !b.is_empty()
        && b.len() <= MAX_ID
        && b.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    sane.then(|| RequestId::new(b))
}

fn generate() -> RequestId {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated();
    RequestId::new(id.encode_lower(&mut buf).as_bytes())
}

/// Middleware body, used with `App::wrap_fn`. Every answer that is an error is made
/// problem+json here too ([`framework::as_problem`]).
pub fn middleware<S>(
    req: ServiceRequest,
    srv: &S,
    metrics: &Rc<HttpMetrics>,
) -> impl Future<Output = Result<ServiceResponse, Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error>,
{
    let started = Instant::now();
    let id = from_caller(&req).unwrap_or_else(generate);
    req.extensions_mut().insert(id);
    let span = tracing::debug_span!("request", request_id = id.as_str(), method = %req.method(), path = %req.path());
    let fut = srv.call(req);
    let metrics = metrics.clone();
    let answer = async move {
        let mut res = framework::as_problem(fut.await?);
        let seconds = started.elapsed().as_secs_f64();
        let status = res.status();
        let req = res.request();
        let endpoint = req.app_data::<Endpoint>().map(|e| e.0);
        // Answered before routing (a refused credential): find the route it was for.
        let fallback = match endpoint {
            Some(_) => None,
            None => req.match_pattern(),
        };
        metrics.record(
            endpoint,
            fallback.as_deref().unwrap_or("UNMATCHED"),
            req.method(),
            status.as_u16(),
            seconds,
        );
        let (method, path, millis) = (req.method(), req.path(), seconds * 1000.0);
        let status_code = status.as_u16();
        match (
            line_for(status, endpoint, method),
            res.response().extensions().get::<Failure>(),
        ) {
            (Line::Failure, Some(f)) => {
                tracing::error!(request_id = id.as_str(), %method, path, status = status_code, millis, code = f.code, error = %f.cause, "request failed")
            }
            (Line::Failure, None) => {
                tracing::warn!(request_id = id.as_str(), %method, path, status = status_code, millis, "answered")
            }
            (Line::Routine, _) => {
                tracing::debug!(request_id = id.as_str(), %method, path, status = status_code, millis, "answered")
            }
            (Line::Normal, _) => {
                tracing::info!(request_id = id.as_str(), %method, path, status = status_code, millis, "answered")
            }
        }
        res.headers_mut().insert(HEADER, id.header());
        Ok(res)
    };
    if span.is_disabled() {
        Either::Left(answer)
    } else {
        Either::Right(answer.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Option<&str> = Some("/v1/instances/{id}/grants");

    /// `fleetgate_http_requests_total` in `registry`: "<value of label> <count>" per series.
    fn counts_by(registry: &Registry, label: &str) -> Vec<String> {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "fleetgate_http_requests_total")
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let l = m.get_label().iter().find(|l| l.name() == label).unwrap();
                format!("{} {}", l.value(), m.get_counter().get_value())
            })
            .collect()
    }

    #[test]
    fn two_servers_on_one_thread_count_in_their_own_registries() {
        let (a, b) = (Registry::new(), Registry::new());
        let (ma, mb) = (HttpMetrics::new(&a).unwrap(), HttpMetrics::new(&b).unwrap());
        ma.record(POLL, "", &Method::GET, 304, 0.001);
        mb.record(POLL, "", &Method::GET, 304, 0.001);
        mb.record(POLL, "", &Method::GET, 304, 0.001);
        assert_eq!(counts_by(&a, "status"), ["304 1"]);
        assert_eq!(counts_by(&b, "status"), ["304 2"]);
    }

    #[test]
    fn a_pattern_that_starts_another_counts_apart() {
        let registry = Registry::new();
        let metrics = HttpMetrics::new(&registry).unwrap();
        let long: &'static str = "/v1/instances/{id}/grants/{grant_id}";
        // The same address, a shorter length: a key by address alone would mix them.
        let short = &long[.."/v1/instances/{id}/grants".len()];
        metrics.record(Some(short), "", &Method::GET, 304, 0.001);
        metrics.record(Some(long), "", &Method::GET, 304, 0.001);
        let endpoints = counts_by(&registry, "endpoint");
        assert_eq!(
            endpoints,
            [
                "/v1/instances/{id}/grants 1",
                "/v1/instances/{id}/grants/{grant_id} 1"
            ]
        );
    }

    #[test]
    fn methods_outside_the_standard_nine_share_one_label() {
        let registry = Registry::new();
        let metrics = HttpMetrics::new(&registry).unwrap();
        for method in ["FOO1", "FOO2", "get"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            metrics.record(POLL, "", &method, 405, 0.001);
        }
        metrics.record(POLL, "", &Method::GET, 304, 0.001);
        let labels = counts_by(&registry, "method");
        assert_eq!(labels, ["GET 1", "OTHER 3"]);
    }

    #[test]
    fn only_successes_of_quiet_routes_are_routine() {
        let line = |status: u16, endpoint, method| {
            line_for(StatusCode::from_u16(status).unwrap(), endpoint, &method)
        };
        assert_eq!(line(304, POLL, Method::GET), Line::Routine);
        assert_eq!(
            line(200, POLL, Method::GET),
            Line::Routine,
            "a long-poll woken"
        );
        assert_eq!(
            line(200, Some("/v1/login-decisions"), Method::POST),
            Line::Routine
        );
        // The relay's login steps: a redirect on, an exchange answered.
        assert_eq!(line(302, Some("/authorize"), Method::GET), Line::Routine);
        assert_eq!(line(302, Some("/callback"), Method::GET), Line::Routine);
        assert_eq!(line(200, Some("/oauth/token"), Method::POST), Line::Routine);
        // Refusals and failures of quiet routes are logged; so is everything else.
        assert_eq!(line(400, Some("/authorize"), Method::GET), Line::Normal);
        assert_eq!(line(403, Some("/oauth/token"), Method::POST), Line::Normal);
        assert_eq!(line(302, Some("/v2/logout"), Method::GET), Line::Normal);
        assert_eq!(line(401, POLL, Method::GET), Line::Normal);
        assert_eq!(line(429, POLL, Method::GET), Line::Normal);
        assert_eq!(line(503, POLL, Method::GET), Line::Failure);
        assert_eq!(
            line(200, POLL, Method::PUT),
            Line::Normal,
            "a change of grants"
        );
        assert_eq!(
            line(200, Some("/v1/hooks/deploy"), Method::POST),
            Line::Normal
        );
        assert_eq!(line(404, None, Method::GET), Line::Normal);
    }
}
