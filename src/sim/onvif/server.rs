//! One device's HTTP server: SOAP endpoints (authentication, dispatch,
//! faults) and the JSON control API under /sim/.

use super::auth::{challenge_header, Outcome, RequestAuth};
use super::device::{Device, DeviceConfig, Flag};
use super::soap::{self, ns, Fault};
use super::{svc_device, svc_deviceio, svc_events, svc_media};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// SOAP requests are small; anything bigger is refused before parsing.
const MAX_BODY: usize = 64 * 1024;
/// How long an "offline" device leaves a request hanging before dropping it.
const OFFLINE_HANG: Duration = Duration::from_secs(3600);

struct Shared {
    dev: Arc<Device>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

/// What a service handler sees of one request.
pub struct Ctx {
    pub dev: Arc<Device>,
    /// host[:port] the client used to reach us, for the URLs we hand out.
    pub authority: String,
    stop: watch::Receiver<bool>,
}

impl Ctx {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    pub fn host_only(&self) -> String {
        let a = &self.authority;
        if let Some(end) = a.find(']') {
            return a[..=end].to_string();
        }
        a.rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| a.clone())
    }

    /// Resolves when the device is being shut down.
    pub async fn stopped(&self) {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Svc {
    Device,
    Media,
    DeviceIo,
    Events,
    Subscription(u64),
}

impl Svc {
    fn ns(self) -> &'static str {
        match self {
            Svc::Device => ns::TDS,
            Svc::Media => ns::TRT,
            Svc::DeviceIo => ns::TMD,
            Svc::Events | Svc::Subscription(_) => ns::TEV,
        }
    }
}

pub struct SimHandle {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts one simulated device listening on `listen` (port 0 picks one).
pub async fn start(listen: SocketAddr, cfg: DeviceConfig) -> anyhow::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        dev: Arc::new(Device::new(cfg)),
        addr,
        stop,
    });
    let app = router(shared.clone());
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("onvif sim on {addr}: {e}");
        }
    });
    Ok(SimHandle { shared, task })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }
    pub fn device_url(&self) -> String {
        format!("http://{}{}", self.shared.addr, svc_device::PATH)
    }
    /// 1-based; emits a DigitalInput event on a change.
    pub fn set_input(&self, n: u32, active: bool) {
        self.shared.dev.set_input(n, active);
    }
    /// 1-based.
    pub fn relay(&self, n: u32) -> Option<bool> {
        self.shared.dev.relay(n)
    }
    pub fn set_clock_offset_ms(&self, ms: i64) {
        self.shared.dev.set_offset_ms(ms);
    }
    pub fn set_motion(&self, on: bool) {
        self.shared.dev.set_flag(Flag::Motion, on);
    }
    pub fn set_tamper(&self, on: bool) {
        self.shared.dev.set_flag(Flag::Tamper, on);
    }
    pub fn set_signal_loss(&self, on: bool) {
        self.shared.dev.set_flag(Flag::SignalLoss, on);
    }
    pub fn set_storage_failure(&self, on: bool) {
        self.shared.dev.set_flag(Flag::StorageFailure, on);
    }
    pub fn set_recording(&self, on: bool) {
        self.shared.dev.set_flag(Flag::Recording, on);
    }
    pub fn set_online(&self, online: bool) {
        self.shared.dev.set_online(online);
    }
    pub fn subscriptions(&self) -> usize {
        self.shared.dev.subs.count()
    }
    pub async fn shutdown(self) {
        let _ = self.shared.stop.send(true);
        self.shared.dev.subs.close_all();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(svc_device::PATH, post(device))
        .route(svc_media::PATH, post(media))
        .route(svc_deviceio::PATH, post(deviceio))
        .route(svc_events::PATH, post(events))
        .route(
            &format!("{}/{{id}}", svc_events::SUB_PATH),
            post(subscription),
        )
        .route("/sim/state", get(ctl_state).post(ctl_set_state))
        .route("/sim/inputs", get(ctl_inputs))
        .route("/sim/inputs/{n}", post(ctl_set_input))
        .route("/sim/relays", get(ctl_relays))
        .route("/sim/clock", get(ctl_clock).post(ctl_set_clock))
        .route("/sim/online", post(ctl_online))
        .route("/sim/subscriptions", get(ctl_subscriptions))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

type St = State<Arc<Shared>>;

async fn device(State(s): St, h: HeaderMap, u: Uri, b: Bytes) -> Response {
    serve_soap(s, Svc::Device, h, u, b).await
}
async fn media(State(s): St, h: HeaderMap, u: Uri, b: Bytes) -> Response {
    serve_soap(s, Svc::Media, h, u, b).await
}
async fn deviceio(State(s): St, h: HeaderMap, u: Uri, b: Bytes) -> Response {
    serve_soap(s, Svc::DeviceIo, h, u, b).await
}
async fn events(State(s): St, h: HeaderMap, u: Uri, b: Bytes) -> Response {
    serve_soap(s, Svc::Events, h, u, b).await
}
async fn subscription(
    State(s): St,
    Path(id): Path<String>,
    h: HeaderMap,
    u: Uri,
    b: Bytes,
) -> Response {
    // An id that is not ours is simply an unknown resource.
    let id = id.parse::<u64>().unwrap_or(0);
    serve_soap(s, Svc::Subscription(id), h, u, b).await
}

fn soap_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, soap::CONTENT_TYPE)], body).into_response()
}

fn fault_response(f: Fault) -> Response {
    soap_response(f.status(), f.to_xml())
}

/// The Host header if it looks like a plain authority, else our address.
fn authority(h: &HeaderMap, addr: SocketAddr) -> String {
    h.get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 255
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(str::to_string)
        .unwrap_or_else(|| addr.to_string())
}

async fn serve_soap(
    s: Arc<Shared>,
    svc: Svc,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let ctx = Ctx {
        dev: s.dev.clone(),
        authority: authority(&headers, s.addr),
        stop: s.stop.subscribe(),
    };
    if !s.dev.online() {
        // An unreachable device answers nothing; the client's timeout fires.
        tokio::select! {
            _ = tokio::time::sleep(OFFLINE_HANG) => {}
            _ = ctx.stopped() => {}
        }
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/soap+xml")
            || ct.starts_with("text/xml")
            || ct.starts_with("application/xml"))
        {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "SOAP 1.2 needs application/soap+xml",
            )
                .into_response();
        }
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return fault_response(Fault::sender(&["ter:WellFormed"], "body is not UTF-8"));
    };
    let req = match soap::parse_request(text) {
        Ok(r) => r,
        Err(f) => return fault_response(f),
    };
    let pre_auth = req.op.ns == svc.ns()
        && !matches!(svc, Svc::Subscription(_))
        && (req.op.name == "GetServiceCapabilities"
            || (svc == Svc::Device && svc_device::pre_auth(&req.op.name)));
    if !pre_auth {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let ra = RequestAuth {
            security: req.header(ns::WSSE, "Security"),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            method: "POST",
            uri: path,
        };
        match s.dev.auth.check(s.dev.cfg.auth, &ra, s.dev.now()) {
            Outcome::Ok => {}
            Outcome::NotAuthorized(why) => {
                tracing::debug!("onvif sim {}: not authorized: {why}", s.addr);
                return fault_response(Fault::not_authorized());
            }
            Outcome::Challenge { stale, nonce } => {
                let mut r =
                    soap_response(StatusCode::UNAUTHORIZED, Fault::not_authorized().to_xml());
                if let Ok(v) = challenge_header(&nonce, stale).parse() {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return r;
            }
        }
    }
    let result = match svc {
        Svc::Device => svc_device::handle(&ctx, &req),
        Svc::Media => svc_media::handle(&ctx, &req),
        Svc::DeviceIo => svc_deviceio::handle(&ctx, &req),
        Svc::Events => svc_events::handle(&ctx, &req),
        Svc::Subscription(id) => svc_events::handle_subscription(&ctx, id, &req).await,
    };
    match result {
        Ok(body) => soap_response(StatusCode::OK, soap::envelope(&body)),
        Err(f) => fault_response(f),
    }
}

// ---- control API (JSON, no auth) ----

#[derive(Deserialize)]
struct InputBody {
    active: bool,
}
#[derive(Deserialize)]
struct ClockBody {
    offset_ms: i64,
}
#[derive(Deserialize)]
struct OnlineBody {
    online: bool,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    motion: Option<bool>,
    tamper: Option<bool>,
    signal_loss: Option<bool>,
    storage_failure: Option<bool>,
    recording: Option<bool>,
}

async fn ctl_state(State(s): St) -> Json<serde_json::Value> {
    let io = s.dev.io();
    Json(serde_json::json!({
        "name": s.dev.cfg.name,
        "inputs": io.inputs,
        "relays": io.relays,
        "motion": io.motion,
        "tamper": io.tamper,
        "signal_loss": io.signal_loss,
        "storage_failure": io.storage_failure,
        "recording": io.recording,
        "online": s.dev.online(),
        "offset_ms": s.dev.offset().num_milliseconds(),
        "subscriptions": s.dev.subs.count(),
    }))
}

async fn ctl_set_state(State(s): St, Json(b): Json<StateBody>) -> StatusCode {
    for (flag, v) in [
        (Flag::Motion, b.motion),
        (Flag::Tamper, b.tamper),
        (Flag::SignalLoss, b.signal_loss),
        (Flag::StorageFailure, b.storage_failure),
        (Flag::Recording, b.recording),
    ] {
        if let Some(v) = v {
            s.dev.set_flag(flag, v);
        }
    }
    StatusCode::NO_CONTENT
}

async fn ctl_inputs(State(s): St) -> Json<Vec<bool>> {
    Json(s.dev.io().inputs)
}

async fn ctl_set_input(State(s): St, Path(n): Path<u32>, Json(b): Json<InputBody>) -> StatusCode {
    if s.dev.set_input(n, b.active) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn ctl_relays(State(s): St) -> Json<Vec<bool>> {
    Json(s.dev.io().relays)
}

async fn ctl_clock(State(s): St) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "offset_ms": s.dev.offset().num_milliseconds(),
        "device_time": s.dev.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

async fn ctl_set_clock(State(s): St, Json(b): Json<ClockBody>) -> StatusCode {
    // chrono panics on absurd durations; a clock off by more than ~100 years
    // is no use to anyone.
    if b.offset_ms.abs() > 3_155_760_000_000 {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    s.dev.set_offset_ms(b.offset_ms);
    StatusCode::NO_CONTENT
}

async fn ctl_online(State(s): St, Json(b): Json<OnlineBody>) -> StatusCode {
    s.dev.set_online(b.online);
    StatusCode::NO_CONTENT
}

async fn ctl_subscriptions(State(s): St) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "count": s.dev.subs.count(), "max": s.dev.subs.max }))
}
