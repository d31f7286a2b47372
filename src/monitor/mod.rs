//! Monitoring HTTP endpoints (`-m PORT`): `/varz`, `/connz`, `/subsz`,
//! `/healthz`, `/metrics`, `/accountz` and `/accstatz` (`accountz`), the
//! empty `/routez`, `/gatewayz` and `/jsz` and the leaf links' `/leafz` (see
//! `absent`) and the live dashboard at `/` (`dashboard`, which also links
//! every endpoint), with
//! nats-server's JSON field names, types and time formats so existing
//! dashboards, `nats-top` and prometheus-nats-exporter read them unchanged.
//!
//! Owns the HTTP router, query parsing and the response shapes. It only reads
//! `ServerState` through its public API and takes per-client snapshots one at a
//! time; no lock is ever held across an `.await` (handlers do no awaiting at
//! all). It must not change server or client state, parse config files, or
//! touch the message hot path.

mod absent;
mod accountz;
mod connz;
mod dashboard;
mod metrics;
mod params;
mod subsz;
mod system;
mod varz;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::state::ServerState;

pub use connz::{ConnInfo, Connz};
pub use params::QueryMap;
pub use subsz::{SubDetail, Subsz};
pub use varz::Varz;

/// Why a monitoring request was refused; every variant is the caller's fault
/// and becomes a `400 Bad Request` with this text as the body.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MonitorError {
    /// A query parameter's value has the wrong form.
    #[error("invalid value {value:?} for query parameter {param:?}: expected {expected}")]
    BadParam {
        param: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `/connz?sort=` names no known ordering.
    #[error("invalid sorting option: {0:?} (expected one of cid, start, subs, pending, msgs_to, msgs_from, bytes_to, bytes_from, last, idle, uptime, rtt, stop, reason)")]
    BadSort(String),
    /// `sort=stop` or `sort=reason` asked of connections that are not closed.
    #[error("sort by {0} only valid on closed connections (use state=closed)")]
    SortNeedsClosed(&'static str),
    /// `/subsz?test=` is not a valid publish (literal) subject.
    #[error("invalid test subject, must be valid publish subject: {0:?}")]
    BadTestSubject(String),
}

impl IntoResponse for MonitorError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, format!("{self}\n")).into_response()
    }
}

/// Paths counted in `/varz`'s `http_req_stats`, as nats-server reports them.
const COUNTED_PATHS: [&str; 12] = [
    "/",
    "/varz",
    "/connz",
    "/subsz",
    "/routez",
    "/healthz",
    "/metrics",
    "/gatewayz",
    "/leafz",
    "/accountz",
    "/accstatz",
    "/jsz",
];

/// What every handler shares: the server it reports on and the monitor's own
/// small bookkeeping (CPU samples, request counts, its own address).
pub(crate) struct Monitor {
    pub(crate) server: Arc<ServerState>,
    /// The address actually bound, when known (`serve`); else the options'.
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) cpu: varz::CpuSampler,
    req_counts: [AtomicU64; COUNTED_PATHS.len()],
    dashboard: dashboard::Dashboard,
}

impl Monitor {
    /// Fresh bookkeeping over `server` (the HTTP routes' and the system
    /// account task's each).
    fn new(server: Arc<ServerState>, http_addr: Option<SocketAddr>) -> Monitor {
        Monitor {
            server,
            http_addr,
            cpu: varz::CpuSampler::default(),
            req_counts: Default::default(),
            dashboard: dashboard::Dashboard::default(),
        }
    }

    fn count(&self, path: &str) {
        if let Some(i) = COUNTED_PATHS.iter().position(|p| *p == path) {
            self.req_counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn req_stats(&self) -> std::collections::BTreeMap<&'static str, u64> {
        COUNTED_PATHS
            .iter()
            .zip(&self.req_counts)
            .map(|(p, c)| (*p, c.load(Ordering::Relaxed)))
            .collect()
    }
}

type Shared = State<Arc<Monitor>>;

/// The monitoring routes over `state`, for embedding in another server or for
/// tests; `http_port` in `/varz` comes from the options. Prefer [`serve`],
/// which reports the port actually bound.
pub fn router(state: Arc<ServerState>) -> Router {
    router_at(state, None)
}

fn router_at(server: Arc<ServerState>, http_addr: Option<SocketAddr>) -> Router {
    let mon = Arc::new(Monitor::new(server, http_addr));
    dashboard::Dashboard::start(&mon);
    Router::new()
        .route("/", get(index))
        .route("/dashboard.js", get(dashboard_js))
        .route("/dashboard/data", get(dashboard_data))
        .route("/varz", get(varz_handler))
        .route("/connz", get(connz_handler))
        .route("/subsz", get(subsz_handler))
        .route("/subscriptionsz", get(subsz_handler))
        .route("/routez", get(routez_handler))
        .route("/gatewayz", get(gatewayz_handler))
        .route("/leafz", get(leafz_handler))
        .route("/accountz", get(accountz::accountz_handler))
        .route("/accstatz", get(accountz::accstatz_handler))
        .route("/jsz", get(jsz_handler))
        .route("/healthz", get(healthz_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(mon)
}

/// Serves the monitoring endpoints on `listener` until the task is dropped or
/// the listener fails; run it in its own task next to `Server::run`.
pub async fn serve(
    state: Arc<ServerState>,
    listener: Option<tokio::net::TcpListener>,
) -> std::io::Result<()> {
    system::start(&state);
    let Some(listener) = listener else {
        return Ok(());
    };
    let addr = listener.local_addr().ok();
    axum::serve(listener, router_at(state, addr)).await
}

/// Pretty JSON (as nats-server's `json.MarshalIndent`) with its CORS header.
fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The page may only run its own script (a client-chosen name that slipped
/// into the DOM as markup could not execute).
const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

async fn index(State(mon): Shared) -> Response {
    mon.count("/");
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DASHBOARD_CSP),
        )],
        Html(dashboard::PAGE),
    )
        .into_response()
}

async fn dashboard_js() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        dashboard::SCRIPT,
    )
        .into_response()
}

async fn dashboard_data(State(mon): Shared) -> Response {
    json(&mon.dashboard.data(&mon.server))
}

async fn varz_handler(State(mon): Shared) -> Response {
    mon.count("/varz");
    json(&varz::collect(&mon))
}

async fn connz_handler(State(mon): Shared, Query(q): Query<QueryMap>) -> Response {
    mon.count("/connz");
    match connz::ConnzOptions::parse(&q) {
        Ok(opts) => json(&connz::collect(&mon.server, &opts)),
        Err(e) => e.into_response(),
    }
}

async fn subsz_handler(State(mon): Shared, Query(q): Query<QueryMap>) -> Response {
    mon.count("/subsz");
    match subsz::SubszOptions::parse(&q) {
        Ok(opts) => json(&subsz::collect(&mon.server, &opts)),
        Err(e) => e.into_response(),
    }
}

async fn routez_handler(State(mon): Shared) -> Response {
    mon.count("/routez");
    json(&absent::routez(&mon.server))
}

async fn gatewayz_handler(State(mon): Shared) -> Response {
    mon.count("/gatewayz");
    json(&absent::gatewayz(&mon.server))
}

async fn leafz_handler(State(mon): Shared) -> Response {
    mon.count("/leafz");
    json(&absent::leafz(&mon.server))
}

async fn jsz_handler(State(mon): Shared) -> Response {
    mon.count("/jsz");
    json(&absent::jsz(&mon.server))
}

/// `/healthz` body, as nats-server's `HealthStatus`.
#[derive(Debug, Serialize)]
pub struct HealthStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

async fn healthz_handler(State(mon): Shared) -> Response {
    mon.count("/healthz");
    if mon.server.is_shutting_down() {
        let mut r = json(&HealthStatus {
            status: "unavailable",
            status_code: Some(503),
            error: Some("server is shutting down"),
        });
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return r;
    }
    json(&HealthStatus {
        status: "ok",
        status_code: None,
        error: None,
    })
}

async fn metrics_handler(State(mon): Shared) -> Response {
    mon.count("/metrics");
    let body = metrics::render(&mon);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
