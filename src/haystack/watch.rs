//! Haystack watches: `watchSub` opens (or extends) a watch on entities,
//! `watchPoll` answers the points whose live value or status changed since
//! the last poll (everything with `refresh`), `watchUnsub` removes ids or
//! closes the watch. A watch not polled within its lease is dropped.

use super::ops::OpError;
use super::wire::{self, Dict, Grid, Value};
use crate::app::App;
use crate::points::{Quality, Value as PValue};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
/// Open watches at once, and ids per watch: bounded like every queue.
pub const MAX_WATCHES: usize = 256;
pub const MAX_IDS: usize = 10_000;

struct Watch {
    dis: String,
    lease: Duration,
    last_seen: Instant,
    /// Entity index → the point's state last sent (None: not a point, or
    /// nothing sent yet).
    entities: BTreeMap<usize, Option<(PValue, Quality)>>,
}

#[derive(Default)]
pub struct Watches {
    open: Mutex<HashMap<String, Watch>>,
}

fn lease_of(req: &Grid) -> Duration {
    req.meta
        .as_ref()
        .and_then(|m| m.get("lease"))
        .and_then(|v| match v {
            Value::Number(n) => {
                let secs = match n.unit.map(|u| u.symbol()) {
                    Some("min") => n.value * 60.0,
                    Some("h") | Some("hr") => n.value * 3600.0,
                    Some("ms") => n.value / 1000.0,
                    _ => n.value,
                };
                (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
            }
            _ => None,
        })
        .unwrap_or(DEFAULT_LEASE)
        .min(MAX_LEASE)
}

fn watch_id_of(req: &Grid) -> Option<String> {
    req.meta.as_ref()?.get("watchId").and_then(wire::text)
}

use super::points::{point_of_entity, with_live_tags};

/// The entity's row with its live tags; records what was sent.
fn row(app: &App, entity: usize, sent: &mut Option<(PValue, Quality)>) -> Dict {
    if let Some(p) = point_of_entity(app, entity) {
        *sent = app.points.get(p).map(|s| (s.value, s.quality));
    }
    with_live_tags(app, entity)
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watch>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        open.retain(|_, w| now.duration_since(w.last_seen) <= w.lease);
        open
    }

    pub fn sub(&self, app: &App, req: &Grid) -> Result<Grid, OpError> {
        let mut open = self.lock();
        let id = match watch_id_of(req) {
            Some(id) => {
                if !open.contains_key(&id) {
                    return Err(OpError::Bad(format!("unknown or expired watch `{id}`")));
                }
                id
            }
            None => {
                if open.len() >= MAX_WATCHES {
                    return Err(OpError::Bad(format!(
                        "too many open watches (at most {MAX_WATCHES})"
                    )));
                }
                let id = format!("w-{}", wire_hex(&rand::random::<[u8; 8]>()));
                let dis = req
                    .meta
                    .as_ref()
                    .and_then(|m| m.get("watchDis"))
                    .and_then(wire::text)
                    .unwrap_or_else(|| "watch".into());
                open.insert(
                    id.clone(),
                    Watch {
                        dis,
                        lease: DEFAULT_LEASE,
                        last_seen: Instant::now(),
                        entities: BTreeMap::new(),
                    },
                );
                id
            }
        };
        let w = open
            .get_mut(&id)
            .ok_or_else(|| OpError::Bad("watch vanished".into()))?;
        w.lease = lease_of(req);
        w.last_seen = Instant::now();
        let mut rows = Vec::with_capacity(req.rows.len());
        for r in &req.rows {
            let entity = r
                .get("id")
                .and_then(wire::ref_id)
                .and_then(|i| app.hs.index.position(&i));
            match entity {
                Some(e) if w.entities.len() < MAX_IDS || w.entities.contains_key(&e) => {
                    let sent = w.entities.entry(e).or_insert(None);
                    rows.push(row(app, e, sent));
                }
                Some(_) => {
                    return Err(OpError::Bad(format!("a watch holds at most {MAX_IDS} ids")))
                }
                None => rows.push(Dict::new()),
            }
        }
        let mut meta = Dict::new();
        meta.insert("watchId".into(), Value::make_str(&id));
        meta.insert("watchDis".into(), Value::make_str(&w.dis));
        meta.insert("lease".into(), wire::seconds(w.lease.as_secs_f64()));
        Ok(wire::grid_of_dicts(Some(meta), rows))
    }

    pub fn poll(&self, app: &App, req: &Grid) -> Result<Grid, OpError> {
        let id = watch_id_of(req)
            .ok_or_else(|| OpError::Bad("missing `watchId` in the grid meta".into()))?;
        let refresh = req.meta.as_ref().is_some_and(|m| m.contains_key("refresh"));
        let mut open = self.lock();
        let w = open
            .get_mut(&id)
            .ok_or_else(|| OpError::Bad(format!("unknown or expired watch `{id}`")))?;
        w.last_seen = Instant::now();
        let mut rows = Vec::new();
        for (e, sent) in w.entities.iter_mut() {
            let now = point_of_entity(app, *e)
                .and_then(|p| app.points.get(p))
                .map(|s| (s.value, s.quality));
            if refresh || (now.is_some() && now != *sent) {
                rows.push(row(app, *e, sent));
            }
        }
        let mut meta = Dict::new();
        meta.insert("watchId".into(), Value::make_str(&id));
        Ok(wire::grid_of_dicts(Some(meta), rows))
    }

    pub fn unsub(&self, app: &App, req: &Grid) -> Result<Grid, OpError> {
        let id = watch_id_of(req)
            .ok_or_else(|| OpError::Bad("missing `watchId` in the grid meta".into()))?;
        let mut open = self.lock();
        let close = req.meta.as_ref().is_some_and(|m| m.contains_key("close"));
        if close {
            open.remove(&id);
        } else if let Some(w) = open.get_mut(&id) {
            for r in &req.rows {
                if let Some(e) = r
                    .get("id")
                    .and_then(wire::ref_id)
                    .and_then(|i| app.hs.index.position(&i))
                {
                    w.entities.remove(&e);
                }
            }
        }
        Ok(wire::grid_of_dicts(None, Vec::new()))
    }
}

fn wire_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
