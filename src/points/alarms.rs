//! Alarm evaluation in the point engine, for every protocol: which points
//! alarm and how (`definition`, also what the BACnet device configures as
//! intrinsic reporting), their event state, and acknowledgement.
//!
//! Algorithms, as BACnet defines them so the gateway's alarm list and the
//! BMS's agree:
//! - CHANGE_OF_STATE for binary points: off-normal while the value equals the
//!   alarm value;
//! - OUT_OF_RANGE for analog points: high-limit above `high`, low-limit below
//!   `low`, back to normal only inside the limits by the deadband; entering
//!   and leaving both wait `time_delay` (a blip shorter than that is no alarm);
//! - FAULT while the point's quality is fault or initial (no trustworthy
//!   value), whatever the value.
//!
//! Transitions to off-normal and to fault must be acknowledged (notification
//! classes 1 and 2 both require it); a return to normal needs none.

use super::{Quality, Value};
use crate::model::templates::ValueKind;
use crate::model::{Point, Site};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Notification class of security alarms (alarm inputs, tamper, video loss).
pub const NC_SECURITY: u32 = 1;
/// Notification class of equipment status (online, recording, power, time).
pub const NC_EQUIPMENT: u32 = 2;

/// How one point alarms.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// CHANGE_OF_STATE: off-normal while the value equals `alarm_value`.
    ChangeOfState { alarm_value: bool, class: u32 },
    /// OUT_OF_RANGE with limits, deadband and a time delay (seconds).
    OutOfRange {
        low: f64,
        high: f64,
        deadband: f64,
        time_delay_s: u32,
        class: u32,
    },
}

impl Definition {
    pub fn class(&self) -> u32 {
        match self {
            Definition::ChangeOfState { class, .. } | Definition::OutOfRange { class, .. } => {
                *class
            }
        }
    }
}

/// Which points alarm, to which class. Status points (online, recording)
/// alarm when they go false; alarm points when they go true; motion and
/// relays do not alarm (motion is far too frequent for an alarm console).
/// Analog points with an operating range alarm outside it.
pub fn definition(p: &Point) -> Option<Definition> {
    let mut def = template_definition(p)?;
    // The site file may say a normally-active input alarms when it opens,
    // or send its alarms to another class.
    match &mut def {
        Definition::ChangeOfState { alarm_value, class } => {
            *alarm_value = p.alarm.alarm_value.unwrap_or(*alarm_value);
            *class = p.alarm.notification_class.unwrap_or(*class);
        }
        Definition::OutOfRange { class, .. } => {
            *class = p.alarm.notification_class.unwrap_or(*class);
        }
    }
    Some(def)
}

fn template_definition(p: &Point) -> Option<Definition> {
    let t = p.template;
    match t.kind {
        ValueKind::Bool if t.writable => None,
        ValueKind::Bool => match t.key {
            "online" | "recording-ok" => Some(Definition::ChangeOfState {
                alarm_value: false,
                class: NC_EQUIPMENT,
            }),
            "alarm-in" | "tamper" | "video-loss" => Some(Definition::ChangeOfState {
                alarm_value: true,
                class: NC_SECURITY,
            }),
            _ if t.markers.contains(&"alarm") => Some(Definition::ChangeOfState {
                alarm_value: true,
                class: NC_EQUIPMENT,
            }),
            _ => None,
        },
        ValueKind::Number => p.limits.map(|(low, high)| Definition::OutOfRange {
            low,
            high,
            // 2 % of the range, so a value hovering at a limit does not
            // flap between alarm and normal.
            deadband: ((high - low) * 0.02).abs(),
            time_delay_s: 10,
            class: NC_EQUIPMENT,
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventState {
    Normal,
    Offnormal,
    HighLimit,
    LowLimit,
    Fault,
}

/// The alarm side of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmState {
    pub state: EventState,
    /// When `state` was entered.
    pub since: SystemTime,
    /// Whether the transition into `state` has been acknowledged (always
    /// true for normal, and for the state a point starts in).
    pub acked: bool,
    pub acked_by: Option<String>,
    /// A different state the value asks for, and since when (time delay).
    pending: Option<(EventState, Instant)>,
}

/// A change of event state, for logs and event consumers.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub point: usize,
    pub from: EventState,
    pub to: EventState,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    #[error("point `{0}` has no alarm")]
    NoAlarm(String),
    #[error("nothing to acknowledge: `{0}` has no unacknowledged transition")]
    NothingToAck(String),
}

pub struct Alarms {
    defs: Vec<Option<Definition>>,
    ids: Vec<String>,
    states: Mutex<HashMap<usize, AlarmState>>,
}

/// The state the value asks for, before any time delay.
fn target(def: &Definition, current: EventState, value: Value, quality: Quality) -> EventState {
    if matches!(quality, Quality::Fault | Quality::Initial) {
        return EventState::Fault;
    }
    match (def, value) {
        (Definition::ChangeOfState { alarm_value, .. }, Value::Bool(b)) => {
            if b == *alarm_value {
                EventState::Offnormal
            } else {
                EventState::Normal
            }
        }
        (
            Definition::OutOfRange {
                low,
                high,
                deadband,
                ..
            },
            Value::Number(n),
        ) => match current {
            EventState::HighLimit if n > high - deadband => EventState::HighLimit,
            EventState::LowLimit if n < low + deadband => EventState::LowLimit,
            _ if n > *high => EventState::HighLimit,
            _ if n < *low => EventState::LowLimit,
            _ => EventState::Normal,
        },
        // No value yet: nothing to judge.
        _ => current,
    }
}

fn delay(def: &Definition, from: EventState, to: EventState) -> Duration {
    match def {
        // Faults and change-of-state act at once: a door alarm must ring
        // within milliseconds.
        Definition::OutOfRange { time_delay_s, .. }
            if from != EventState::Fault && to != EventState::Fault =>
        {
            Duration::from_secs(u64::from(*time_delay_s))
        }
        _ => Duration::ZERO,
    }
}

impl Alarms {
    /// Every alarm point starts in the state its initial quality gives
    /// (fault, as no driver has reported), acknowledged: starting up is not
    /// an event anyone must confirm.
    pub fn new(site: &Site) -> Self {
        let defs: Vec<Option<Definition>> = site.points.iter().map(definition).collect();
        let now = SystemTime::now();
        let states = defs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_some())
            .map(|(i, _)| {
                (
                    i,
                    AlarmState {
                        state: EventState::Fault,
                        since: now,
                        acked: true,
                        acked_by: None,
                        pending: None,
                    },
                )
            })
            .collect();
        Alarms {
            defs,
            ids: site.points.iter().map(|p| p.id.clone()).collect(),
            states: Mutex::new(states),
        }
    }

    pub fn definition(&self, point: usize) -> Option<&Definition> {
        self.defs.get(point)?.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, AlarmState>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Evaluates a point's new value; returns the transition it causes now
    /// (one that waits for a time delay comes from `tick`).
    pub fn evaluate(
        &self,
        point: usize,
        value: Value,
        quality: Quality,
        now: Instant,
    ) -> Option<Transition> {
        let def = self.definition(point)?;
        let mut states = self.lock();
        let s = states.get_mut(&point)?;
        let want = target(def, s.state, value, quality);
        if want == s.state {
            s.pending = None;
            return None;
        }
        let wait = delay(def, s.state, want);
        match s.pending {
            Some((p, since)) if p == want && now.duration_since(since) < wait => return None,
            Some((p, _)) if p == want => {}
            _ if !wait.is_zero() => {
                s.pending = Some((want, now));
                return None;
            }
            _ => {}
        }
        Some(Self::enter(point, s, want))
    }

    fn enter(point: usize, s: &mut AlarmState, to: EventState) -> Transition {
        let from = s.state;
        s.state = to;
        s.since = SystemTime::now();
        s.acked = to == EventState::Normal;
        s.acked_by = None;
        s.pending = None;
        Transition { point, from, to }
    }

    /// Completes transitions whose time delay has passed.
    pub fn tick(&self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut states = self.lock();
        for (&point, s) in states.iter_mut() {
            let Some((want, since)) = s.pending else {
                continue;
            };
            let Some(def) = self.defs.get(point).and_then(|d| d.as_ref()) else {
                continue;
            };
            if now.duration_since(since) >= delay(def, s.state, want) {
                out.push(Self::enter(point, s, want));
            }
        }
        out
    }

    /// Acknowledges the point's latest transition.
    pub fn acknowledge(&self, point: usize, who: &str) -> Result<AlarmState, AckError> {
        let id = self.ids.get(point).cloned().unwrap_or_default();
        let mut states = self.lock();
        let s = states
            .get_mut(&point)
            .ok_or(AckError::NoAlarm(id.clone()))?;
        if s.acked {
            return Err(AckError::NothingToAck(id));
        }
        s.acked = true;
        s.acked_by = Some(who.to_string());
        Ok(s.clone())
    }

    pub fn state(&self, point: usize) -> Option<AlarmState> {
        self.lock().get(&point).cloned()
    }

    /// Points not normal or not acknowledged, by point index.
    pub fn active(&self) -> Vec<(usize, AlarmState)> {
        let mut v: Vec<(usize, AlarmState)> = self
            .lock()
            .iter()
            .filter(|(_, s)| s.state != EventState::Normal || !s.acked)
            .map(|(i, s)| (*i, s.clone()))
            .collect();
        v.sort_by_key(|(i, _)| *i);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn alarms() -> (Site, Alarms) {
        let site = crate::model::load_site(Path::new("config/demo.toml"), None).unwrap();
        let a = Alarms::new(&site);
        (site, a)
    }

    fn idx(site: &Site, id: &str) -> usize {
        site.points.iter().position(|p| p.id == id).unwrap()
    }

    #[test]
    fn a_door_alarm_is_raised_at_once_and_needs_an_acknowledgement() {
        let (site, a) = alarms();
        let door = idx(&site, "nvr-1.alarm-in-1");
        let t0 = Instant::now();
        // From the start-up fault to normal once a driver reports.
        let t = a
            .evaluate(door, Value::Bool(false), Quality::Ok, t0)
            .unwrap();
        assert_eq!((t.from, t.to), (EventState::Fault, EventState::Normal));
        assert!(a.active().iter().all(|(i, _)| *i != door));
        let t = a
            .evaluate(door, Value::Bool(true), Quality::Ok, t0)
            .unwrap();
        assert_eq!(t.to, EventState::Offnormal);
        assert!(!a.state(door).unwrap().acked);
        assert!(a.active().iter().any(|(i, _)| *i == door));
        assert_eq!(
            a.acknowledge(door, "api:alice")
                .unwrap()
                .acked_by
                .as_deref(),
            Some("api:alice")
        );
        assert!(matches!(
            a.acknowledge(door, "api:alice"),
            Err(AckError::NothingToAck(_))
        ));
        // Still off-normal, so still listed, but acknowledged.
        assert!(a.active().iter().any(|(i, s)| *i == door && s.acked));
        let t = a
            .evaluate(door, Value::Bool(false), Quality::Ok, t0)
            .unwrap();
        assert_eq!(t.to, EventState::Normal);
        assert!(a.active().iter().all(|(i, _)| *i != door));
    }

    #[test]
    fn a_camera_going_offline_or_unreachable_alarms() {
        let (site, a) = alarms();
        let online = idx(&site, "cam-001.online");
        let t0 = Instant::now();
        a.evaluate(online, Value::Bool(true), Quality::Ok, t0)
            .unwrap();
        assert_eq!(
            a.evaluate(online, Value::Bool(false), Quality::Ok, t0)
                .unwrap()
                .to,
            EventState::Offnormal
        );
        assert_eq!(
            a.evaluate(online, Value::Bool(false), Quality::Fault, t0)
                .unwrap()
                .to,
            EventState::Fault
        );
        assert!(
            !a.state(online).unwrap().acked,
            "a new fault needs acknowledging"
        );
    }

    #[test]
    fn limits_wait_for_the_time_delay_and_leave_by_the_deadband() {
        let (site, a) = alarms();
        let temp = idx(&site, "nvr-1.temp");
        let Some(Definition::OutOfRange {
            high,
            deadband,
            time_delay_s,
            ..
        }) = a.definition(temp).cloned()
        else {
            panic!("nvr-1.temp has no range alarm");
        };
        let t0 = Instant::now();
        let delay = Duration::from_secs(u64::from(time_delay_s));
        a.evaluate(temp, Value::Number(high - 5.0), Quality::Ok, t0)
            .unwrap(); // fault → normal at once
                       // Above the limit: pending, not yet an alarm.
        assert_eq!(
            a.evaluate(temp, Value::Number(high + 1.0), Quality::Ok, t0),
            None
        );
        assert!(a.tick(t0 + delay / 2).is_empty());
        // A blip back inside cancels it.
        assert_eq!(
            a.evaluate(temp, Value::Number(high - 5.0), Quality::Ok, t0 + delay / 2),
            None
        );
        assert!(a.tick(t0 + delay * 2).is_empty());
        // Staying above for the delay raises it.
        a.evaluate(temp, Value::Number(high + 1.0), Quality::Ok, t0 + delay * 3);
        let t = a.tick(t0 + delay * 4);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].to, EventState::HighLimit);
        // Just under the limit is still high (deadband); well under, after the delay, normal.
        assert_eq!(
            a.evaluate(
                temp,
                Value::Number(high - deadband / 2.0),
                Quality::Ok,
                t0 + delay * 5
            ),
            None
        );
        assert_eq!(a.state(temp).unwrap().state, EventState::HighLimit);
        a.evaluate(
            temp,
            Value::Number(high - deadband * 2.0),
            Quality::Ok,
            t0 + delay * 6,
        );
        assert_eq!(a.tick(t0 + delay * 7)[0].to, EventState::Normal);
    }

    #[test]
    fn motion_and_relays_do_not_alarm() {
        let (site, a) = alarms();
        assert!(a.definition(idx(&site, "cam-001.motion")).is_none());
        assert!(a.definition(idx(&site, "nvr-1.alarm-out-1")).is_none());
        assert!(matches!(
            a.acknowledge(idx(&site, "cam-001.motion"), "x"),
            Err(AckError::NoAlarm(_))
        ));
    }
}
