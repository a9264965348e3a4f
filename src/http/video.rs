//! Video endpoints: recordings, gaps and bookmarks per camera, clip export
//! (MP4, HTTP Range), evidence locks and the audit log. Video needs a
//! logged-in user — anonymous read of the model never opens it — and every
//! export and lock is written to the audit log before it is answered.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::model::kinds::Role;
use crate::video::audit::Entry;
use crate::video::service::Recording;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Reason prefix of the locks alarm bookmarks create.
pub const BOOKMARK: &str = "alarm bookmark: ";

fn login(caller: &Caller, role: Role) -> Result<String, HttpError> {
    match &caller.0 {
        Some(p) if p.role >= role => Ok(p.user.clone()),
        Some(p) => Err(HttpError::json(
            StatusCode::FORBIDDEN,
            format!("user `{}` is a {:?}; this needs {:?}", p.user, p.role, role),
        )),
        None => Err(HttpError::json(
            StatusCode::UNAUTHORIZED,
            "video needs a login (anonymous read covers the model only): POST /api/login, then Authorization: Bearer <token>",
        )),
    }
}

fn recording(app: &AppState) -> Result<Arc<Recording>, HttpError> {
    app.recording.get().cloned().ok_or_else(|| {
        HttpError::json(
            StatusCode::SERVICE_UNAVAILABLE,
            "recording is not running (no data dir, or `[recording] enabled = false`)",
        )
    })
}

fn camera(app: &AppState, id: &str) -> Result<(), HttpError> {
    match app.site.equipment(id) {
        Some(e) if e.recording.is_some() => Ok(()),
        _ => Err(HttpError::json(
            StatusCode::NOT_FOUND,
            format!("no camera `{id}`"),
        )),
    }
}

/// `start`/`end`: RFC 3339 (`2026-12-01T10:00:00Z`) or ms since the epoch.
fn time_ms(name: &str, v: &str) -> Result<i64, HttpError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            HttpError::json(
                StatusCode::BAD_REQUEST,
                format!("`{name}={v}`: expected RFC 3339 (2026-12-01T10:00:00Z) or milliseconds since 1970"),
            )
        })
}

fn json_time(name: &str, v: &Value) -> Result<i64, HttpError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            HttpError::json(
                StatusCode::BAD_REQUEST,
                format!("`{name}`: whole milliseconds expected"),
            )
        }),
        Value::String(s) => time_ms(name, s),
        _ => Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("`{name}`: RFC 3339 text or milliseconds expected"),
        )),
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

impl RangeQuery {
    /// Default: the last hour.
    fn range(&self) -> Result<(i64, i64), HttpError> {
        let now = crate::video::store::now_ms();
        let end = self
            .end
            .as_deref()
            .map(|v| time_ms("end", v))
            .transpose()?
            .unwrap_or(now);
        let start = self
            .start
            .as_deref()
            .map(|v| time_ms("start", v))
            .transpose()?
            .unwrap_or(end - 3_600_000);
        if end <= start {
            return Err(HttpError::json(
                StatusCode::BAD_REQUEST,
                "`end` must be after `start`",
            ));
        }
        Ok((start, end))
    }
}

fn store_error(e: impl std::fmt::Display) -> HttpError {
    HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub async fn recordings(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, HttpError> {
    login(&caller, Role::Viewer)?;
    camera(&app, &id)?;
    let rec = recording(&app)?;
    let (from, to) = q.range()?;
    let r = rec.clone();
    let cam = id.clone();
    let (runs, gaps, locks) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::video::store::StoreError>((
            r.store.recordings(&cam, "main", from, to)?,
            r.store.gaps(&cam, "main", from, to)?,
            r.store.locks()?,
        ))
    })
    .await
    .map_err(store_error)?
    .map_err(store_error)?;
    let overlaps = |s: i64, e: i64| s < to && e > from;
    let bookmarks: Vec<Value> = locks
        .iter()
        .filter(|l| l.camera == id && l.reason.starts_with(BOOKMARK) && overlaps(l.start_ms, l.end_ms))
        .map(|l| json!({ "id": l.id, "start": iso(l.start_ms), "end": iso(l.end_ms), "point": l.reason.trim_start_matches(BOOKMARK), "locked_until": l.expires_at.map(iso) }))
        .collect();
    let evidence: Vec<Value> = locks
        .iter()
        .filter(|l| l.camera == id && !l.reason.starts_with(BOOKMARK) && overlaps(l.start_ms, l.end_ms))
        .map(|l| json!({ "id": l.id, "start": iso(l.start_ms), "end": iso(l.end_ms), "reason": l.reason, "by": l.created_by, "until": l.expires_at.map(iso) }))
        .collect();
    Ok(Json(json!({
        "camera": id, "start": iso(from), "end": iso(to),
        "recordings": runs.iter().map(|r| json!({ "start": iso(r.start_ms), "end": iso(r.end_ms), "start_ms": r.start_ms, "end_ms": r.end_ms, "segments": r.segments.len() })).collect::<Vec<_>>(),
        "gaps": gaps.iter().map(|g| json!({ "start": iso(g.start_ms), "end": iso(g.end_ms) })).collect::<Vec<_>>(),
        "bookmarks": bookmarks,
        "locks": evidence,
    })))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range; others get the whole).
fn byte_range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => n.parse::<u64>().ok().map(|n| (len.saturating_sub(n), len)),
        (a, "") => a.parse::<u64>().ok().map(|a| (a, len)),
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if b >= a => Some((a, (b + 1).min(len))),
            _ => None,
        },
    };
    Some(match r {
        Some((a, b)) if a < b && a < len => Ok((a, b)),
        _ => Err(()),
    })
}

pub async fn clip(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let who = login(&caller, Role::Viewer)?;
    camera(&app, &id)?;
    let rec = recording(&app)?;
    if q.start.is_none() || q.end.is_none() {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            "a clip needs `start` and `end`",
        ));
    }
    let (from, to) = q.range()?;
    let r = rec.clone();
    let cam = id.clone();
    let clip =
        tokio::task::spawn_blocking(move || crate::video::export::plan(&r.store, &cam, from, to))
            .await
            .map_err(store_error)?
            .map_err(|e| match e {
                crate::video::export::ExportError::Empty => {
                    HttpError::json(StatusCode::NOT_FOUND, e.to_string())
                }
                crate::video::export::ExportError::BadRange(_) => {
                    HttpError::json(StatusCode::BAD_REQUEST, e.to_string())
                }
                other => store_error(other),
            })?;
    let range = match byte_range(&headers, clip.len) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(())) => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{}", clip.len))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
            return Ok(resp);
        }
    };
    // One audit line per export, not per Range request of a player.
    if range.is_none_or(|(a, _)| a == 0) {
        let entry = Entry {
            at_ms: crate::video::store::now_ms(),
            who,
            action: "export".into(),
            camera: id.clone(),
            start_ms: clip.start_ms,
            end_ms: clip.end_ms,
            detail: format!("{} frames, {} bytes", clip.frames, clip.len),
        };
        let r = rec.clone();
        tokio::task::spawn_blocking(move || r.audit.append(&entry))
            .await
            .map_err(store_error)?
            .map_err(|e| store_error(format!("audit log: {e}; export refused")))?;
    }
    let (a, b) = range.unwrap_or((0, clip.len));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let clip = Arc::new(clip);
    let c = clip.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(1 << 20),
        };
        let r = c.copy_range(a, b, &mut w).and_then(|_| w.flush_buf());
        if let Err(e) = r {
            let _ = w.tx.blocking_send(Err(e));
        }
    });
    let stream = tokio_stream_from(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(b - a));
    let name = format!("{id}-{}.mp4", iso(clip.start_ms).replace(':', ""));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{}/{}", b - 1, clip.len)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// Sends the clip in 1 MiB chunks over a bounded channel: the blocking
/// reader waits while the client is slow, memory stays bounded.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 20));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush_buf()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buf()
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    /// RFC 3339 text or ms since 1970 (a number or a string).
    start: Value,
    end: Value,
    reason: String,
    /// Days the lock holds (default: until unlocked).
    days: Option<u32>,
}

pub async fn lock(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<LockBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, HttpError> {
    let who = login(&caller, Role::Operator)?;
    camera(&app, &id)?;
    let rec = recording(&app)?;
    let Json(b) = body.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let (start, end) = (json_time("start", &b.start)?, json_time("end", &b.end)?);
    if end <= start {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            "`end` must be after `start`",
        ));
    }
    if b.reason.trim().is_empty() || b.reason.starts_with(BOOKMARK) {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            "give a `reason` (the case or incident number)",
        ));
    }
    let now = crate::video::store::now_ms();
    let until = b.days.map(|d| now + i64::from(d) * 86_400_000);
    let entry = Entry {
        at_ms: now,
        who: who.clone(),
        action: "lock".into(),
        camera: id.clone(),
        start_ms: start,
        end_ms: end,
        detail: b.reason.clone(),
    };
    let r = rec.clone();
    let cam = id.clone();
    let lock_id = tokio::task::spawn_blocking(move || {
        r.audit.append(&entry).map_err(store_error)?;
        r.store
            .lock(&cam, start, end, &b.reason, &who, until)
            .map_err(store_error)
    })
    .await
    .map_err(store_error)??;
    Ok(Json(
        json!({ "id": lock_id, "camera": id, "start": iso(start), "end": iso(end), "until": until.map(iso) }),
    ))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    camera: Option<String>,
    limit: Option<usize>,
}

pub async fn audit(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, HttpError> {
    login(&caller, Role::Operator)?;
    let rec = recording(&app)?;
    let entries = tokio::task::spawn_blocking(move || {
        rec.audit.list(q.camera.as_deref(), q.limit.unwrap_or(1000))
    })
    .await
    .map_err(store_error)?
    .map_err(store_error)?;
    Ok(Json(json!({ "entries": entries })))
}
