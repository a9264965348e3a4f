//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of what an
//! operator watches — points, alarms, HTTP/Haystack/BACnet requests and
//! errors, per-camera ingest and drops, the recording disk, MQTT. Built on
//! each scrape from counters the parts already keep; nothing here is on a
//! hot path. Names and meanings: docs/operations.md.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::model::kinds::Role;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The API families requests are counted by.
const APIS: [&str; 7] = [
    "haystack", "sparql", "api", "video", "ui", "metrics", "other",
];
/// Status classes 1xx..5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// HTTP request counters by API family and status class, and Haystack ops
/// that answered with an error grid (HTTP 200, as Haystack wants).
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: [[AtomicU64; CLASSES.len()]; APIS.len()],
    haystack_errors: AtomicU64,
}

/// Marks a Haystack response that carries an error grid.
#[derive(Debug, Clone, Copy)]
pub struct HaystackErrorGrid;

impl HttpStats {
    fn count(&self, path: &str, status: StatusCode, haystack_error: bool) {
        let api = api_of(path);
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.requests[api][class].fetch_add(1, Relaxed);
        if haystack_error {
            self.haystack_errors.fetch_add(1, Relaxed);
        }
    }
}

fn api_of(path: &str) -> usize {
    let family = if path.starts_with("/haystack") {
        "haystack"
    } else if path.starts_with("/sparql") {
        "sparql"
    } else if path.starts_with("/api/cameras") || path.starts_with("/api/recording") {
        "video"
    } else if path.starts_with("/api") {
        "api"
    } else if path == "/" || path.starts_with("/ui") {
        "ui"
    } else if path == "/metrics" {
        "metrics"
    } else {
        "other"
    };
    APIS.iter()
        .position(|a| *a == family)
        .unwrap_or(APIS.len() - 1)
}

/// Middleware: counts every response by the route it matched (the route
/// pattern, so ids in paths do not make new series).
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let hs_error = resp.extensions().get::<HaystackErrorGrid>().is_some();
    app.http_stats.count(&path, resp.status(), hs_error);
    resp
}

/// One metric family being written.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }
    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape `\`, `"` and newlines (exposition format).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

pub async fn metrics(State(app): State<AppState>, caller: Caller) -> Result<Response, HttpError> {
    caller.require(&app, Role::Viewer)?;
    let app2 = app.clone();
    // Reading the recording disk (statvfs) is file-system work.
    let body = tokio::task::spawn_blocking(move || render(&app2))
        .await
        .map_err(|_| HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, "metrics failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

fn render(app: &crate::app::App) -> String {
    let mut e = Exposition(String::with_capacity(16 * 1024));
    e.family("vgw_build_info", "gauge", "The running version.");
    e.sample(
        "vgw_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    e.one(
        "vgw_uptime_seconds",
        "gauge",
        "Seconds since the gateway started.",
        app.started.elapsed().as_secs_f64(),
    );
    if let Some(rss) = resident_bytes() {
        e.one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the gateway process.",
            rss as f64,
        );
    }
    points(&mut e, app);
    http(&mut e, app);
    bacnet(&mut e, app);
    recording(&mut e, app);
    mqtt(&mut e, app);
    e.0
}

fn points(e: &mut Exposition, app: &crate::app::App) {
    use crate::points::Quality;
    let snapshot = app.points.snapshot();
    e.family("vgw_points", "gauge", "Points by quality.");
    for (q, name) in [
        (Quality::Ok, "ok"),
        (Quality::Initial, "initial"),
        (Quality::Fault, "fault"),
        (Quality::Overridden, "overridden"),
        (Quality::OutOfService, "out_of_service"),
    ] {
        let n = snapshot.iter().filter(|s| s.quality == q).count();
        e.sample("vgw_points", &[("quality", name)], n as f64);
    }
    e.one(
        "vgw_point_changes_total",
        "counter",
        "Point value or quality changes since start.",
        app.points.changes_total() as f64,
    );
    e.one(
        "vgw_point_changes_lagged_total",
        "counter",
        "Changes a slow consumer (watch, MQTT, history) fell behind on and resynchronised.",
        app.points.dropped_changes() as f64,
    );
    let active = app.alarms.active();
    e.family(
        "vgw_alarms",
        "gauge",
        "Alarm points not normal, or not acknowledged.",
    );
    let not_normal = active
        .iter()
        .filter(|(_, a)| a.state != crate::points::alarms::EventState::Normal)
        .count();
    let unacked = active.iter().filter(|(_, a)| !a.acked).count();
    e.sample("vgw_alarms", &[("state", "active")], not_normal as f64);
    e.sample("vgw_alarms", &[("state", "unacknowledged")], unacked as f64);
}

fn http(e: &mut Exposition, app: &crate::app::App) {
    e.family(
        "vgw_http_requests_total",
        "counter",
        "HTTP requests by API family and status class.",
    );
    for (i, api) in APIS.iter().enumerate() {
        for (j, class) in CLASSES.iter().enumerate() {
            let n = app.http_stats.requests[i][j].load(Relaxed);
            if n > 0 || j == 1 {
                e.sample(
                    "vgw_http_requests_total",
                    &[("api", api), ("code", class)],
                    n as f64,
                );
            }
        }
    }
    e.one(
        "vgw_haystack_error_grids_total",
        "counter",
        "Haystack ops answered with an error grid (HTTP 200).",
        app.http_stats.haystack_errors.load(Relaxed) as f64,
    );
}

fn bacnet(e: &mut Exposition, app: &crate::app::App) {
    let Some(stack) = app.bacnet.get().and_then(std::sync::Weak::upgrade) else {
        return;
    };
    let c = stack.counters();
    e.family(
        "vgw_bacnet_requests_total",
        "counter",
        "BACnet requests handled.",
    );
    e.sample(
        "vgw_bacnet_requests_total",
        &[("kind", "confirmed")],
        c.confirmed_requests as f64,
    );
    e.sample(
        "vgw_bacnet_requests_total",
        &[("kind", "unconfirmed")],
        c.unconfirmed_requests as f64,
    );
    e.one(
        "vgw_bacnet_requests_overloaded_total",
        "counter",
        "BACnet requests turned away because every handler was busy.",
        c.overloaded as f64,
    );
    e.one(
        "vgw_bacnet_cov_subscriptions",
        "gauge",
        "Active BACnet COV subscriptions.",
        c.cov_subscriptions as f64,
    );
    e.one(
        "vgw_bacnet_cov_notifications_total",
        "counter",
        "BACnet COV notifications sent.",
        c.cov_notifications as f64,
    );
}

fn recording(e: &mut Exposition, app: &crate::app::App) {
    let Some(rec) = app.recording.get() else {
        return;
    };
    let cams: Vec<_> = rec
        .cameras()
        .filter_map(|c| rec.stats(c).map(|s| (c.to_string(), s)))
        .collect();
    let now = crate::video::store::now_ms();
    type Get = fn(&crate::video::recorder::Stats, i64) -> f64;
    let per_camera: [(&str, &str, &str, Get); 8] = [
        (
            "vgw_camera_connected",
            "gauge",
            "The camera's RTSP session is up.",
            |s, _| b(s.connected.load(Relaxed)),
        ),
        (
            "vgw_camera_recording",
            "gauge",
            "The camera's video is being written.",
            |s, _| b(s.recording.load(Relaxed)),
        ),
        (
            "vgw_camera_frames_total",
            "counter",
            "Frames received.",
            |s, _| s.frames.load(Relaxed) as f64,
        ),
        (
            "vgw_camera_bytes_total",
            "counter",
            "Video bytes received (rate: ingest bitrate / 8).",
            |s, _| s.bytes.load(Relaxed) as f64,
        ),
        (
            "vgw_camera_frames_dropped_total",
            "counter",
            "Frames not recorded (store backpressure, before the first keyframe).",
            |s, _| s.dropped.load(Relaxed) as f64,
        ),
        (
            "vgw_camera_fragments_total",
            "counter",
            "Fragments written.",
            |s, _| s.fragments.load(Relaxed) as f64,
        ),
        (
            "vgw_camera_last_frame_age_seconds",
            "gauge",
            "Seconds since the last frame (NaN before the first).",
            |s, now| match s.last_frame_ms.load(Relaxed) {
                0 => f64::NAN,
                t => (now - t).max(0) as f64 / 1000.0,
            },
        ),
        (
            "vgw_camera_stored_bytes",
            "gauge",
            "Bytes of the camera's recordings on disk (refreshed every minute).",
            |s, _| s.stored_bytes.load(Relaxed) as f64,
        ),
    ];
    for (name, kind, help, get) in per_camera {
        e.family(name, kind, help);
        for (id, s) in &cams {
            e.sample(name, &[("camera", id)], get(s, now));
        }
    }
    e.one(
        "vgw_recording_fragments_dropped_total",
        "counter",
        "Fragments the store's writer queue could not take.",
        rec.store.dropped() as f64,
    );
    e.one(
        "vgw_recording_queue_bytes",
        "gauge",
        "Fragment bytes waiting for the recording writer (memory; at its limit recorders wait, then drop).",
        rec.store.queued_bytes() as f64,
    );
    e.one(
        "vgw_recording_write_errors_total",
        "counter",
        "Failed writes or syncs on the recording disk.",
        rec.store.write_errors() as f64,
    );
    if let Some(lag) = rec.store.durability_lag_p99() {
        e.one(
            "vgw_recording_durability_lag_p99_seconds",
            "gauge",
            "99th percentile of frame arrival to fdatasync, recent window.",
            lag.as_secs_f64(),
        );
    }
    let stored: u64 = cams.iter().map(|(_, s)| s.stored_bytes.load(Relaxed)).sum();
    e.one(
        "vgw_recording_stored_bytes",
        "gauge",
        "Bytes of all recordings on disk (refreshed every minute).",
        stored as f64,
    );
    if let Some(cap) = crate::video::service::recording_capacity(app, rec) {
        e.one(
            "vgw_recording_capacity_bytes",
            "gauge",
            "Bytes recordings may use: the budget, or the disk less the free-space floor.",
            cap as f64,
        );
    }
    if let Ok(s) = nix::sys::statvfs::statvfs(rec.store.root()) {
        let frag = s.fragment_size() as f64;
        e.one(
            "vgw_recording_disk_free_bytes",
            "gauge",
            "Free bytes on the recording file system.",
            s.blocks_available() as f64 * frag,
        );
        e.one(
            "vgw_recording_disk_size_bytes",
            "gauge",
            "Size of the recording file system.",
            s.blocks() as f64 * frag,
        );
    }
}

fn mqtt(e: &mut Exposition, app: &crate::app::App) {
    let Some(m) = app.mqtt.read().unwrap_or_else(|p| p.into_inner()).clone() else {
        return;
    };
    e.one(
        "vgw_mqtt_connected",
        "gauge",
        "Connected to the MQTT broker.",
        b(m.connected.load(Relaxed)),
    );
    e.one(
        "vgw_mqtt_connections_total",
        "counter",
        "Connections made to the broker (1 + reconnects).",
        m.connections.load(Relaxed) as f64,
    );
    e.one(
        "vgw_mqtt_published_total",
        "counter",
        "Point states and events published.",
        m.published.load(Relaxed) as f64,
    );
    e.one(
        "vgw_mqtt_events_dropped_total",
        "counter",
        "Events dropped while the broker was away (queue_limit) or by a lagging publisher.",
        m.events_dropped.load(Relaxed) as f64,
    );
    e.family(
        "vgw_mqtt_sets_total",
        "counter",
        "`/set` writes by outcome.",
    );
    e.sample(
        "vgw_mqtt_sets_total",
        &[("result", "accepted")],
        m.sets_accepted.load(Relaxed) as f64,
    );
    e.sample(
        "vgw_mqtt_sets_total",
        &[("result", "refused")],
        m.sets_refused.load(Relaxed) as f64,
    );
}

/// Resident set size (`VmRSS` in /proc, whatever the page size); None
/// where there is no /proc.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_numbers_spelt_for_prometheus() {
        let mut e = Exposition(String::new());
        e.sample("m", &[("camera", "a\"b\\c\nd")], f64::NAN);
        assert_eq!(e.0, "m{camera=\"a\\\"b\\\\c\\nd\"} NaN\n");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn requests_are_counted_by_family_not_by_id() {
        let s = HttpStats::default();
        s.count("/api/points/{id}", StatusCode::OK, false);
        s.count(
            "/api/cameras/{id}/clip.mp4",
            StatusCode::PARTIAL_CONTENT,
            false,
        );
        s.count("/haystack/{op}", StatusCode::OK, true);
        s.count("unmatched", StatusCode::NOT_FOUND, false);
        let get = |api: &str, class: usize| {
            s.requests[APIS.iter().position(|a| *a == api).unwrap()][class].load(Relaxed)
        };
        assert_eq!(get("api", 1), 1);
        assert_eq!(get("video", 1), 1);
        assert_eq!(get("haystack", 1), 1);
        assert_eq!(get("other", 3), 1);
        assert_eq!(s.haystack_errors.load(Relaxed), 1);
    }
}
