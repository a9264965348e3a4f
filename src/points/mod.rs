//! The point engine (DESIGN.md §1, hub 2): what each point's value is now.
//! Drivers report values and quality; protocols read them and write
//! commands into one shared priority array per writable point; every change
//! goes out on a bounded change bus.
//!
//! The bus is a broadcast channel: publishing never waits, so a slow
//! consumer can never stall the drivers or the other consumers. A consumer
//! that falls more than `BUS_CAPACITY` changes behind is told how many it
//! missed (counted in `dropped_changes`) and resynchronises from `snapshot`.

pub mod alarms;
pub mod history;
pub mod priority;
pub mod recorder;

use crate::model::templates::ValueKind;
use crate::model::Site;
use priority::{PriorityArray, Slot, DEFAULT_LEVEL};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// Changes a consumer may fall behind before it must resynchronise.
pub const BUS_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
}

/// How far a value can be trusted (maps to BACnet Status_Flags/Reliability
/// and Haystack `curStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// No driver has reported yet (the driver may not exist in this build).
    Initial,
    Ok,
    /// The source device does not answer (COMMUNICATION_FAILURE).
    Fault,
    OutOfService,
    /// A command at a level above the default is in force.
    Overridden,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointState {
    pub value: Value,
    pub quality: Quality,
    pub changed: SystemTime,
    pub priority: Option<PriorityArray>,
    /// An output whose device did not carry out the value in force (its
    /// driver says so); shown as `Fault` until the device follows.
    pub output_fault: bool,
    /// The driver's latest report while an operator override is in force
    /// (restored when the override is released).
    pub field: Option<(Value, Quality)>,
}

/// One change on the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Index into `Site::points`.
    pub point: usize,
    pub value: Value,
    pub quality: Quality,
    pub at: SystemTime,
    /// Increases by one per change, engine-wide.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("no point `{0}`")]
    UnknownPoint(String),
    #[error("point `{0}` is not writable")]
    NotWritable(String),
    #[error("priority level {0} is outside 1..=17")]
    BadLevel(u8),
    #[error("point `{0}` is an output: command it through its priority array")]
    Commandable(String),
    #[error("point `{id}` takes a {expected:?} value")]
    WrongType { id: String, expected: ValueKind },
}

pub struct PointEngine {
    ids: HashMap<String, usize>,
    kinds: Vec<ValueKind>,
    states: RwLock<Vec<PointState>>,
    bus: broadcast::Sender<Change>,
    seq: AtomicU64,
    dropped: AtomicU64,
}

impl PointEngine {
    /// Every point of the site, in its initial state; writable points get a
    /// priority array whose relinquish default is `false`/`0`.
    pub fn new(site: &Site) -> Self {
        let now = SystemTime::now();
        let states = site
            .points
            .iter()
            .map(|p| PointState {
                value: Value::Null,
                quality: Quality::Initial,
                changed: now,
                priority: p
                    .template
                    .writable
                    .then(|| PriorityArray::new(default_of(p.template.kind))),
                output_fault: false,
                field: None,
            })
            .map(|mut s| {
                if let Some(pa) = &s.priority {
                    s.value = pa.effective().0;
                }
                s
            })
            .collect();
        let (bus, _) = broadcast::channel(BUS_CAPACITY);
        PointEngine {
            ids: site
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.clone(), i))
                .collect(),
            kinds: site.points.iter().map(|p| p.template.kind).collect(),
            states: RwLock::new(states),
            bus,
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    pub fn get(&self, point: usize) -> Option<PointState> {
        self.read().get(point).cloned()
    }

    /// A copy of every state, for consumers that (re)synchronise.
    pub fn snapshot(&self) -> Vec<PointState> {
        self.read().clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.bus.subscribe()
    }

    /// Receives the next change; a lag is counted and reported as `None`,
    /// after which the consumer should resynchronise from `snapshot`.
    pub async fn next_change(&self, rx: &mut broadcast::Receiver<Change>) -> Option<Change> {
        match rx.recv().await {
            Ok(c) => Some(c),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
                None
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Changes published since start.
    pub fn changes_total(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Changes lost by lagging consumers, since start.
    pub fn dropped_changes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A driver's report. Publishes only when value or quality changed.
    /// While an operator override is in force the report is kept aside,
    /// not shown: the override wins until it is released.
    pub fn report(&self, point: usize, value: Value, quality: Quality) -> bool {
        let mut states = self.write();
        let Some(s) = states.get_mut(point) else {
            return false;
        };
        if s.quality == Quality::Overridden && s.priority.is_none() {
            s.field = Some((value, quality));
            return false;
        }
        self.set_state(states, point, value, quality)
    }

    fn set_state(
        &self,
        mut states: std::sync::RwLockWriteGuard<'_, Vec<PointState>>,
        point: usize,
        value: Value,
        quality: Quality,
    ) -> bool {
        let s = &mut states[point];
        if s.value == value && s.quality == quality {
            return false;
        }
        s.value = value;
        s.quality = quality;
        self.publish(states, point)
    }

    /// Writes (`Some`) or relinquishes (`None`) `level` of a writable point;
    /// returns the value now in force. `duration` makes the write lapse.
    pub fn command(
        &self,
        id: &str,
        level: u8,
        value: Option<Value>,
        who: &str,
        duration: Option<Duration>,
    ) -> Result<Value, WriteError> {
        let point = self
            .index_of(id)
            .ok_or_else(|| WriteError::UnknownPoint(id.into()))?;
        if !(1..=DEFAULT_LEVEL).contains(&level) {
            return Err(WriteError::BadLevel(level));
        }
        let kind = self.kinds[point];
        let value = value
            .map(|v| {
                coerce(v, kind).ok_or_else(|| WriteError::WrongType {
                    id: id.into(),
                    expected: kind,
                })
            })
            .transpose()?;
        let mut states = self.write();
        let s = &mut states[point];
        let pa = s
            .priority
            .as_mut()
            .ok_or_else(|| WriteError::NotWritable(id.into()))?;
        pa.set(
            level,
            value.map(|v| Slot {
                value: v,
                who: who.into(),
                expires: duration.map(|d| Instant::now() + d),
            }),
        );
        let (effective, quality) = Self::in_force(pa, s.output_fault);
        let changed = s.value != effective || s.quality != quality;
        s.value = effective;
        s.quality = quality;
        if changed {
            s.changed = SystemTime::now();
            let change = self.change(point, s);
            drop(states);
            let _ = self.bus.send(change);
        }
        Ok(effective)
    }

    /// An operator's manual value for an input (`None` hands the point back
    /// to its driver, which has not reported yet in this build). The value
    /// is flagged `Overridden` everywhere it is served.
    pub fn override_input(&self, id: &str, value: Option<Value>) -> Result<Value, WriteError> {
        let point = self
            .index_of(id)
            .ok_or_else(|| WriteError::UnknownPoint(id.into()))?;
        let kind = self.kinds[point];
        if self.read()[point].priority.is_some() {
            return Err(WriteError::Commandable(id.into()));
        }
        match value {
            Some(v) => {
                let v = coerce(v, kind).ok_or_else(|| WriteError::WrongType {
                    id: id.into(),
                    expected: kind,
                })?;
                let mut states = self.write();
                if states[point].quality != Quality::Overridden {
                    let s = &states[point];
                    states[point].field = Some((s.value, s.quality));
                }
                self.set_state(states, point, v, Quality::Overridden);
                Ok(v)
            }
            None => {
                // Back to what the driver said last (or nothing yet).
                let mut states = self.write();
                let (v, q) = states[point]
                    .field
                    .take()
                    .unwrap_or((Value::Null, Quality::Initial));
                self.set_state(states, point, v, q);
                Ok(v)
            }
        }
    }

    /// The priority array of a writable point.
    pub fn priority_array(&self, id: &str) -> Option<PriorityArray> {
        self.read().get(self.index_of(id)?)?.priority.clone()
    }

    /// Relinquishes lapsed timed writes; returns how many points changed.
    /// A periodic task calls this.
    pub fn expire_writes(&self, now: Instant) -> usize {
        let mut changes = Vec::new();
        {
            let mut states = self.write();
            for (i, s) in states.iter_mut().enumerate() {
                let Some(pa) = s.priority.as_mut() else {
                    continue;
                };
                if pa.expire(now) {
                    let (v, q) = Self::in_force(pa, s.output_fault);
                    if v != s.value || q != s.quality {
                        s.value = v;
                        s.quality = q;
                        s.changed = SystemTime::now();
                        changes.push(self.change(i, s));
                    }
                }
            }
        }
        let n = changes.len();
        for c in changes {
            let _ = self.bus.send(c);
        }
        n
    }

    /// A driver's verdict on an output: `true` when the device did not
    /// take the value in force (write refused, device offline), `false`
    /// once it follows again. Publishes when the quality changes.
    pub fn set_output_fault(&self, point: usize, fault: bool) -> bool {
        let mut states = self.write();
        let Some(s) = states.get_mut(point) else {
            return false;
        };
        let Some(pa) = s.priority.as_ref() else {
            return false;
        };
        s.output_fault = fault;
        let (_, quality) = Self::in_force(pa, fault);
        if quality == s.quality {
            return false;
        }
        s.quality = quality;
        self.publish(states, point)
    }

    /// Stamps the point's change time and sends it on the bus (after
    /// releasing the lock: a slow receiver never holds up writers).
    fn publish(
        &self,
        mut states: std::sync::RwLockWriteGuard<'_, Vec<PointState>>,
        point: usize,
    ) -> bool {
        let s = &mut states[point];
        s.changed = SystemTime::now();
        let change = self.change(point, s);
        drop(states);
        let _ = self.bus.send(change);
        true
    }

    fn in_force(pa: &PriorityArray, output_fault: bool) -> (Value, Quality) {
        let (v, level) = pa.effective();
        let q = if output_fault {
            Quality::Fault
        } else if level.is_some_and(|l| l < DEFAULT_LEVEL) {
            Quality::Overridden
        } else {
            Quality::Ok
        };
        (v, q)
    }

    fn change(&self, point: usize, s: &PointState) -> Change {
        Change {
            point,
            value: s.value,
            quality: s.quality,
            at: s.changed,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<PointState>> {
        self.states.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<PointState>> {
        self.states.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn default_of(kind: ValueKind) -> Value {
    match kind {
        ValueKind::Bool => Value::Bool(false),
        ValueKind::Number => Value::Number(0.0),
    }
}

/// Accepts the value kinds protocols send for a point kind (BACnet and
/// Haystack both write binary points as 0/1 or booleans).
fn coerce(v: Value, kind: ValueKind) -> Option<Value> {
    match (v, kind) {
        (Value::Null, _) => Some(Value::Null),
        (Value::Bool(b), ValueKind::Bool) => Some(Value::Bool(b)),
        (Value::Number(n), ValueKind::Bool) if n == 0.0 || n == 1.0 => Some(Value::Bool(n == 1.0)),
        (Value::Number(n), ValueKind::Number) if n.is_finite() => Some(Value::Number(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
