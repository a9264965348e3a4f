//! Live values for the dashboard: Server-Sent Events at `GET /api/live`.
//!
//! A client first gets a `snapshot` (every point's value and quality, or
//! only those named in `?points=a,b`, and the active alarms), then
//! `points` events with the changes since the last send, coalesced per
//! point, and `alarms` events when an alarm's state or acknowledgement
//! changes. Memory per client is bounded: changes wait in the point
//! engine's shared broadcast ring (fixed size) until this client's socket
//! takes them, and at most `BATCH_LIMIT` distinct points are gathered for
//! one send. A client that falls behind the ring, or overflows a batch, is
//! sent a fresh snapshot (`"resync": true`) instead of the backlog.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::points::alarms::EventState;
use crate::points::{Change, Quality, Value};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Concurrent live streams; more get 503 (each holds a bus receiver).
pub const MAX_CLIENTS: usize = 64;
/// Distinct points gathered for one `points` event; more means the client
/// is far behind and a snapshot is cheaper than the backlog.
pub const BATCH_LIMIT: usize = 1024;
/// Point ids one `?points=` filter may name.
pub const MAX_FILTER: usize = 4096;
/// Alarm acknowledgements do not pass the change bus, so alarm state is
/// compared this often.
const ALARM_POLL: Duration = Duration::from_secs(1);
/// An SSE comment this often keeps proxies and the browser from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

static CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// One of the `MAX_CLIENTS` places; given back when the stream is dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        let before = CLIENTS.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_CLIENTS {
            CLIENTS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        CLIENTS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The latest value per point since the last send, up to a limit.
#[derive(Debug)]
pub struct Batch {
    latest: BTreeMap<usize, (Value, Quality, u64)>,
    limit: usize,
    overflowed: bool,
}

impl Batch {
    pub fn new(limit: usize) -> Self {
        Batch {
            latest: BTreeMap::new(),
            limit,
            overflowed: false,
        }
    }

    /// Keeps the change (replacing an older one of the same point). Returns
    /// false once more than `limit` distinct points are waiting.
    pub fn push(&mut self, c: &Change) -> bool {
        if self.latest.len() >= self.limit && !self.latest.contains_key(&c.point) {
            self.overflowed = true;
        } else {
            let at =
                c.at.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
            self.latest.insert(c.point, (c.value, c.quality, at));
        }
        !self.overflowed
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Empties the batch: (point, value, quality, ms since the epoch).
    pub fn take(&mut self) -> Vec<(usize, Value, Quality, u64)> {
        self.overflowed = false;
        std::mem::take(&mut self.latest)
            .into_iter()
            .map(|(p, (v, q, at))| (p, v, q, at))
            .collect()
    }
}

/// What a client was last told of one alarm.
type AlarmSeen = HashMap<usize, (EventState, bool)>;

/// Points whose alarm state or acknowledgement differs from what the client
/// was told, given the currently active alarms; updates `seen`. A point that
/// left the active list (back to normal and acknowledged) is reported too,
/// so the client can drop it.
pub fn alarm_changes(seen: &mut AlarmSeen, active: &[(usize, EventState, bool)]) -> Vec<usize> {
    let mut changed = Vec::new();
    let now: HashSet<usize> = active.iter().map(|(p, _, _)| *p).collect();
    for &(p, state, acked) in active {
        if seen.insert(p, (state, acked)) != Some((state, acked)) {
            changed.push(p);
        }
    }
    let gone: Vec<usize> = seen.keys().filter(|p| !now.contains(p)).copied().collect();
    for p in gone {
        seen.remove(&p);
        changed.push(p);
    }
    changed.sort_unstable();
    changed
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Comma-separated point ids; default every point.
    points: Option<String>,
}

/// Resolves `?points=` to point indexes; unknown ids are a 400.
fn parse_filter(app: &AppState, raw: Option<&str>) -> Result<Option<HashSet<usize>>, HttpError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let ids: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() > MAX_FILTER {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("`points` names {} ids; at most {MAX_FILTER}", ids.len()),
        ));
    }
    ids.iter()
        .map(|id| {
            app.points.index_of(id).ok_or_else(|| {
                HttpError::json(
                    StatusCode::BAD_REQUEST,
                    format!("`points`: no point `{id}`"),
                )
            })
        })
        .collect::<Result<HashSet<usize>, _>>()
        .map(Some)
}

/// GET /api/live: the event stream (viewer, like the other read APIs).
pub async fn live(
    State(app): State<AppState>,
    caller: Caller,
    q: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    super::api::require(&app, &caller)?;
    let Query(q) = q.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let filter = parse_filter(&app, q.points.as_deref())?;
    let slot = Slot::take().ok_or_else(|| HttpError {
        retry_after: Some(10),
        ..HttpError::json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_CLIENTS} live streams are open already"),
        )
    })?;
    // Subscribe before the snapshot, so no change falls between the two.
    let rx = app.points.subscribe();
    let app_stopping = app.stopping.subscribe();
    let mut tick = tokio::time::interval(ALARM_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let client = Client {
        app,
        rx,
        filter,
        batch: Batch::new(BATCH_LIMIT),
        seen: AlarmSeen::new(),
        tick,
        resync: Some(0),
        first: true,
        stopping: app_stopping,
        who: caller.0.clone(),
        _slot: slot,
    };
    let stream =
        futures::stream::unfold(
            client,
            |mut c| async move { c.next().await.map(|e| (Ok(e), c)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

struct Client {
    app: AppState,
    rx: tokio::sync::broadcast::Receiver<Change>,
    filter: Option<HashSet<usize>>,
    batch: Batch,
    seen: AlarmSeen,
    tick: tokio::time::Interval,
    /// A snapshot is due; the value counts the changes missed.
    resync: Option<u64>,
    first: bool,
    /// The gateway is stopping: the stream ends.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Who opened the stream: checked again every tick, so a user removed
    /// (or demoted) by a reload stops receiving at once.
    who: Option<crate::auth::Principal>,
    _slot: Slot,
}

impl Client {
    fn still_allowed(&self) -> bool {
        match &self.who {
            Some(p) => self
                .app
                .auth
                .user(&p.user)
                .is_some_and(|u| u.role == p.role),
            None => self.app.site.settings.anonymous_read,
        }
    }

    fn wants(&self, point: usize) -> bool {
        self.filter.as_ref().is_none_or(|f| f.contains(&point))
    }

    /// The next event; None when the point engine is gone.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            if let Some(missed) = self.resync.take() {
                return Some(self.snapshot(missed));
            }
            tokio::select! {
                r = self.stopping.changed() => if r.is_err() || *self.stopping.borrow() {
                    return None;
                },
                r = self.rx.recv() => match r {
                    Ok(c) => {
                        if self.wants(c.point) {
                            self.batch.push(&c);
                        }
                        self.drain();
                        if self.batch.overflowed() {
                            self.batch.take();
                            self.resync = Some(0);
                        } else if !self.batch.is_empty() {
                            return Some(self.points_event());
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        self.batch.take();
                        self.resync = Some(n);
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    if !self.still_allowed() {
                        return None;
                    }
                    if let Some(e) = self.alarms_event() {
                        return Some(e);
                    }
                }
            }
        }
    }

    /// Takes what is already waiting on the bus into the batch (a burst
    /// becomes one event), stopping at the batch limit.
    fn drain(&mut self) {
        while !self.batch.overflowed() {
            match self.rx.try_recv() {
                Ok(c) if self.wants(c.point) => {
                    self.batch.push(&c);
                }
                Ok(_) => {}
                Err(TryRecvError::Lagged(n)) => {
                    self.batch.take();
                    self.resync = Some(n);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn point_json(&self, p: usize, v: Value, q: Quality, at: u64) -> serde_json::Value {
        json!({ "id": self.app.site.points[p].id, "value": v, "quality": q, "at": at })
    }

    fn points_event(&mut self) -> Event {
        let list: Vec<_> = self
            .batch
            .take()
            .into_iter()
            .map(|(p, v, q, at)| self.point_json(p, v, q, at))
            .collect();
        event("points", &json!({ "points": list }))
    }

    fn snapshot(&mut self, missed: u64) -> Event {
        let states = self.app.points.snapshot();
        let points: Vec<_> = states
            .iter()
            .enumerate()
            .filter(|(i, _)| self.wants(*i))
            .map(|(i, s)| {
                let at = s
                    .changed
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                self.point_json(i, s.value, s.quality, at)
            })
            .collect();
        let active = self.app.alarms.active();
        self.seen = active
            .iter()
            .map(|(p, a)| (*p, (a.state, a.acked)))
            .collect();
        let alarms: Vec<_> = active
            .iter()
            .map(|(p, a)| super::api::alarm_json(&self.app, *p, a))
            .collect();
        let resync = !self.first;
        self.first = false;
        event(
            "snapshot",
            &json!({ "points": points, "alarms": alarms, "resync": resync, "missed": missed }),
        )
    }

    fn alarms_event(&mut self) -> Option<Event> {
        let active: Vec<(usize, EventState, bool)> = self
            .app
            .alarms
            .active()
            .into_iter()
            .map(|(p, a)| (p, a.state, a.acked))
            .collect();
        let changed = alarm_changes(&mut self.seen, &active);
        if changed.is_empty() {
            return None;
        }
        let list: Vec<_> = changed
            .iter()
            .filter_map(|&p| {
                let a = self.app.alarms.state(p)?;
                Some(super::api::alarm_json(&self.app, p, &a))
            })
            .collect();
        Some(event("alarms", &json!({ "alarms": list })))
    }
}

fn event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn change(point: usize, v: f64, seq: u64) -> Change {
        Change {
            point,
            value: Value::Number(v),
            quality: Quality::Ok,
            at: SystemTime::now(),
            seq,
        }
    }

    #[test]
    fn batch_keeps_the_latest_value_per_point() {
        let mut b = Batch::new(8);
        assert!(b.push(&change(3, 1.0, 1)));
        assert!(b.push(&change(1, 5.0, 2)));
        assert!(b.push(&change(3, 2.0, 3)));
        let got: Vec<_> = b.take().into_iter().map(|(p, v, _, _)| (p, v)).collect();
        assert_eq!(got, vec![(1, Value::Number(5.0)), (3, Value::Number(2.0))]);
        assert!(b.is_empty());
    }

    #[test]
    fn batch_overflows_past_its_limit_and_recovers_after_take() {
        let mut b = Batch::new(2);
        assert!(b.push(&change(1, 1.0, 1)));
        assert!(b.push(&change(2, 1.0, 2)));
        // A known point still fits; a third distinct one does not.
        assert!(b.push(&change(2, 3.0, 3)));
        assert!(!b.push(&change(9, 1.0, 4)));
        assert!(b.overflowed());
        assert_eq!(b.take().len(), 2);
        assert!(!b.overflowed());
        assert!(b.push(&change(9, 1.0, 5)));
    }

    #[test]
    fn alarm_changes_report_new_changed_and_cleared_alarms_once() {
        let mut seen = AlarmSeen::new();
        let a = [
            (4, EventState::Offnormal, false),
            (7, EventState::Fault, true),
        ];
        assert_eq!(alarm_changes(&mut seen, &a), vec![4, 7]);
        assert!(alarm_changes(&mut seen, &a).is_empty());
        // Acknowledged: reported again.
        let b = [
            (4, EventState::Offnormal, true),
            (7, EventState::Fault, true),
        ];
        assert_eq!(alarm_changes(&mut seen, &b), vec![4]);
        // Point 7 back to normal and acknowledged: it leaves the list.
        let c = [(4, EventState::Offnormal, true)];
        assert_eq!(alarm_changes(&mut seen, &c), vec![7]);
        assert!(alarm_changes(&mut seen, &c).is_empty());
    }

    #[test]
    fn slots_are_limited_and_given_back() {
        let held: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_CLIENTS + 5)
            .collect();
        assert!(held.len() <= MAX_CLIENTS);
        assert!(Slot::take().is_none());
        drop(held);
        assert!(Slot::take().is_some());
    }
}
