//! One simulated device's configuration and live state (I/O, alarms, clock,
//! subscriptions), and the events its state changes raise.

use super::auth::{AuthMode, Authenticator};
use super::events::{EventMsg, PropertyOp, Subscriptions};
use super::topics::Topic;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub username: String,
    pub password: String,
    pub inputs: u32,
    pub relays: u32,
    pub clock_offset_ms: i64,
    pub max_subscriptions: usize,
    pub auth: AuthMode,
    /// Stream URI for GetStreamUri; default rtsp://<device host>:554/stream1.
    pub rtsp_url: Option<String>,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            name: "vgw-sim".into(),
            username: "admin".into(),
            password: "admin".into(),
            inputs: 4,
            relays: 2,
            clock_offset_ms: 0,
            max_subscriptions: 10,
            auth: AuthMode::Any,
            rtsp_url: None,
            manufacturer: "vgw".into(),
            model: "ONVIF simulator".into(),
            serial: "SIM-0001".into(),
        }
    }
}

/// Tolerance between a UsernameToken's Created and the device clock.
pub const WSSE_WINDOW_S: i64 = 5;

pub const VIDEO_SOURCE: &str = "VideoSource_1";
pub const STORAGE_TOKEN: &str = "Storage_1";
pub const RECORDING_JOB: &str = "RecordingJob_1";

pub fn input_token(n: u32) -> String {
    format!("DigitalInput_{n}")
}
pub fn relay_token(n: u32) -> String {
    format!("RelayOutput_{n}")
}

#[derive(Debug, Default, Clone)]
pub struct Io {
    pub inputs: Vec<bool>,
    pub relays: Vec<bool>,
    pub motion: bool,
    pub tamper: bool,
    pub signal_loss: bool,
    pub storage_failure: bool,
    pub recording: bool,
}

pub struct Device {
    pub cfg: DeviceConfig,
    offset_ms: AtomicI64,
    online: AtomicBool,
    io: Mutex<Io>,
    pub subs: Subscriptions,
    pub auth: Authenticator,
}

/// A single alarm flag the control API and Rust API can set.
#[derive(Debug, Clone, Copy)]
pub enum Flag {
    Motion,
    Tamper,
    SignalLoss,
    StorageFailure,
    Recording,
}

impl Device {
    pub fn new(cfg: DeviceConfig) -> Self {
        let io = Io {
            inputs: vec![false; cfg.inputs as usize],
            relays: vec![false; cfg.relays as usize],
            ..Io::default()
        };
        Device {
            offset_ms: AtomicI64::new(cfg.clock_offset_ms),
            online: AtomicBool::new(true),
            io: Mutex::new(io),
            subs: Subscriptions::new(cfg.max_subscriptions),
            auth: Authenticator::new(
                &cfg.username,
                &cfg.password,
                chrono::Duration::seconds(WSSE_WINDOW_S),
            ),
            cfg,
        }
    }

    /// The device's UTC clock: real time plus the configured offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn set_offset_ms(&self, ms: i64) {
        self.offset_ms.store(ms, Ordering::Relaxed);
    }

    pub fn online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    pub fn set_online(&self, on: bool) {
        self.online.store(on, Ordering::Relaxed);
    }

    pub fn io(&self) -> Io {
        self.io.lock().unwrap().clone()
    }

    fn msg(&self, topic: Topic, op: PropertyOp, source: String, data: String) -> EventMsg {
        EventMsg {
            topic,
            utc_time: self.now(),
            op,
            source_value: source,
            data_value: data,
        }
    }

    /// Every property's current state, as PropertyOperation="Initialized".
    pub fn snapshot(&self) -> Vec<EventMsg> {
        let io = self.io();
        let op = PropertyOp::Initialized;
        let mut out = Vec::new();
        for (i, v) in io.inputs.iter().enumerate() {
            out.push(self.msg(
                Topic::DigitalInput,
                op,
                input_token(i as u32 + 1),
                v.to_string(),
            ));
        }
        for (i, v) in io.relays.iter().enumerate() {
            out.push(self.msg(
                Topic::Relay,
                op,
                relay_token(i as u32 + 1),
                relay_state(*v).into(),
            ));
        }
        for (topic, v) in [
            (Topic::MotionAlarm, io.motion),
            (Topic::GlobalSceneChange, io.tamper),
            (Topic::SignalLoss, io.signal_loss),
        ] {
            out.push(self.msg(topic, op, VIDEO_SOURCE.into(), v.to_string()));
        }
        out.push(self.msg(
            Topic::StorageFailure,
            op,
            STORAGE_TOKEN.into(),
            io.storage_failure.to_string(),
        ));
        out.push(self.msg(
            Topic::RecordingJobState,
            op,
            RECORDING_JOB.into(),
            job_state(io.recording).into(),
        ));
        out
    }

    fn changed(&self, topic: Topic, source: String, data: String) {
        let m = self.msg(topic, PropertyOp::Changed, source, data);
        self.subs.publish(&m);
    }

    /// 1-based. Returns false for an unknown input.
    pub fn set_input(&self, n: u32, active: bool) -> bool {
        let changed = {
            let mut io = self.io.lock().unwrap();
            match io.inputs.get_mut((n as usize).wrapping_sub(1)) {
                Some(v) => std::mem::replace(v, active) != active,
                None => return false,
            }
        };
        if changed {
            self.changed(Topic::DigitalInput, input_token(n), active.to_string());
        }
        true
    }

    /// 1-based. Returns false for an unknown relay.
    pub fn set_relay(&self, n: u32, active: bool) -> bool {
        let changed = {
            let mut io = self.io.lock().unwrap();
            match io.relays.get_mut((n as usize).wrapping_sub(1)) {
                Some(v) => std::mem::replace(v, active) != active,
                None => return false,
            }
        };
        if changed {
            self.changed(Topic::Relay, relay_token(n), relay_state(active).into());
        }
        true
    }

    pub fn relay(&self, n: u32) -> Option<bool> {
        self.io
            .lock()
            .unwrap()
            .relays
            .get((n as usize).wrapping_sub(1))
            .copied()
    }

    pub fn set_flag(&self, flag: Flag, on: bool) {
        let changed = {
            let mut io = self.io.lock().unwrap();
            let slot = match flag {
                Flag::Motion => &mut io.motion,
                Flag::Tamper => &mut io.tamper,
                Flag::SignalLoss => &mut io.signal_loss,
                Flag::StorageFailure => &mut io.storage_failure,
                Flag::Recording => &mut io.recording,
            };
            std::mem::replace(slot, on) != on
        };
        if !changed {
            return;
        }
        let (topic, source, data) = match flag {
            Flag::Motion => (Topic::MotionAlarm, VIDEO_SOURCE, on.to_string()),
            Flag::Tamper => (Topic::GlobalSceneChange, VIDEO_SOURCE, on.to_string()),
            Flag::SignalLoss => (Topic::SignalLoss, VIDEO_SOURCE, on.to_string()),
            Flag::StorageFailure => (Topic::StorageFailure, STORAGE_TOKEN, on.to_string()),
            Flag::Recording => (
                Topic::RecordingJobState,
                RECORDING_JOB,
                job_state(on).to_string(),
            ),
        };
        self.changed(topic, source.into(), data);
    }
}

/// tt:RelayLogicalState.
pub fn relay_state(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "inactive"
    }
}

/// Recording job State as the Recording Control spec names it.
fn job_state(active: bool) -> &'static str {
    if active {
        "Active"
    } else {
        "Idle"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_covers_every_property_and_changes_only_on_edges() {
        let d = Device::new(DeviceConfig {
            inputs: 3,
            relays: 2,
            ..Default::default()
        });
        let snap = d.snapshot();
        assert_eq!(snap.len(), 3 + 2 + 5);
        assert!(snap.iter().all(|m| m.op == PropertyOp::Initialized));
        let sub = d
            .subs
            .create(
                None,
                Utc::now() + chrono::Duration::seconds(60),
                None,
                vec![],
            )
            .unwrap();
        assert!(d.set_input(2, true));
        assert!(d.set_input(2, true)); // no edge, no event
        assert!(!d.set_input(0, true));
        assert!(!d.set_input(4, true));
        d.set_flag(Flag::Recording, true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let got = rt.block_on(sub.pull(10, std::time::Duration::from_millis(10)));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].source_value, "DigitalInput_2");
        assert_eq!(got[1].data_value, "Active");
    }

    #[test]
    fn clock_offset_moves_the_device_clock() {
        let d = Device::new(DeviceConfig {
            clock_offset_ms: 3_600_000,
            ..Default::default()
        });
        let diff = d.now() - Utc::now();
        assert!(diff > chrono::Duration::minutes(59));
    }
}
