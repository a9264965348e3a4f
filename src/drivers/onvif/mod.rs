//! ONVIF driver: one task per NVR, camera or encoder with an `onvif` URL.
//!
//! A session measures the device's clock (GetSystemDateAndTime), finds its
//! services, inputs, relays and stream URI, opens a PullPoint subscription
//! for the topics we map and long-polls it; events become point values.
//! Writes to an alarm output (BACnet BO, Haystack pointWrite) become
//! SetRelayOutputState; the relay's own events drive `alarm-out-state-N`,
//! and the output shows `Fault` while the device has not followed.
//!
//! When a device stops answering, its points go to fault within
//! `REQUEST_TIMEOUT + PULL_WAIT` and the session restarts with backoff;
//! recovery needs nobody. Credentials come from the secrets file by the
//! equipment's `credential` name and never leave this module.

pub mod auth;
pub mod client;
pub mod discovery;
mod points;
pub mod soap;
pub mod xml;

use crate::app::App;
use crate::config::secrets::Credential;
use crate::points::Value;
use client::Notification;
use points::DevicePoints;
use soap::{OnvifError, Soap};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Every request but the long-poll.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one PullMessages waits on the device.
pub const PULL_WAIT: Duration = Duration::from_secs(10);
/// Subscription lifetime asked for; renewed when a third is left.
pub const SUBSCRIPTION_TTL: Duration = Duration::from_secs(60);
/// Clock offset measurement interval.
pub const CLOCK_EVERY: Duration = Duration::from_secs(60);
/// |device clock − gateway clock| beyond this raises the time-sync alarm.
/// ONVIF reports whole seconds, so anything finer would be noise; 2 s
/// catches the 3 s drift that makes video timestamps doubtful.
pub const CLOCK_ALARM_MS: f64 = 2000.0;
/// How long a relay may take to report the commanded state.
pub const RELAY_CONFIRM: Duration = Duration::from_secs(3);
/// Messages per PullMessages.
const PULL_LIMIT: u32 = 100;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The driver's intervals; `Default` is what the gateway runs with, tests
/// shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub request_timeout: Duration,
    pub pull_wait: Duration,
    pub subscription_ttl: Duration,
    pub clock_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            request_timeout: REQUEST_TIMEOUT,
            pull_wait: PULL_WAIT,
            subscription_ttl: SUBSCRIPTION_TTL,
            clock_every: CLOCK_EVERY,
        }
    }
}

/// One device the driver talks to.
#[derive(Clone)]
struct Device {
    id: String,
    url: String,
    user: String,
    password: String,
}

/// What the devices said about themselves (GetDeviceInformation,
/// GetStreamUri), by equipment id: shown by the equipment API, and the
/// RTSP URL for the recorder when the site file gives none.
#[derive(Default)]
pub struct DeviceFacts(Mutex<HashMap<String, Facts>>);

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Facts {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
    /// RTSP URI of the first media profile.
    pub stream_uri: Option<String>,
}

impl DeviceFacts {
    pub fn get(&self, equipment: &str) -> Option<Facts> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(equipment)
            .cloned()
    }
    fn set(&self, equipment: &str, facts: Facts) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(equipment.into(), facts);
    }
}

/// The running driver: stops (and unsubscribes) on `shutdown`.
pub struct OnvifDrivers {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl OnvifDrivers {
    /// Devices driven.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
    /// Ends every session, unsubscribing where the device still answers;
    /// waits at most `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        let _ = tokio::time::timeout(limit, all).await;
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Starts a task for every device with an `onvif` URL; `credentials`
/// gives the login named by each device's `credential` (the secrets file
/// in service, the simulators' in the demo and tests).
pub fn spawn(
    app: &Arc<App>,
    credentials: &dyn Fn(&str) -> Option<Credential>,
    timing: Timing,
) -> OnvifDrivers {
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for e in &app.site.equipment {
        let Some(url) = e.onvif.clone() else { continue };
        let cred = e.credential.as_deref().and_then(credentials);
        if e.credential.is_some() && cred.is_none() {
            tracing::warn!(equipment = %e.id, "ONVIF: credential `{}` not found; trying without", e.credential.as_deref().unwrap_or(""));
        }
        let dev = Device {
            id: e.id.clone(),
            url,
            user: cred
                .as_ref()
                .map(|c| c.username.clone())
                .unwrap_or_default(),
            password: cred.map(|c| c.password).unwrap_or_default(),
        };
        let pts = DevicePoints::of(app, e);
        let app = app.clone();
        let stop = stop_rx.clone();
        let facts = app.onvif_facts.clone();
        tasks.push(tokio::spawn(async move {
            run_device(app, dev, pts, stop, facts, timing).await;
        }));
    }
    OnvifDrivers { stop, tasks }
}

/// Sessions, forever: each ends on an error; the next starts after a
/// backoff (1 s doubling to 30 s, with jitter so 200 devices that dropped
/// together do not come back in lockstep).
async fn run_device(
    app: Arc<App>,
    dev: Device,
    pts: DevicePoints,
    mut stop: watch::Receiver<bool>,
    facts: Arc<DeviceFacts>,
    timing: Timing,
) {
    let mut backoff = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let started = Instant::now();
        let result = session(&app, &dev, &pts, &mut stop, &facts, timing).await;
        if *stop.borrow() {
            return;
        }
        pts.offline(&app);
        match result {
            Ok(()) => {}
            Err(e) if !warned => {
                tracing::warn!(device = %dev.id, url = %crate::config::secrets::url_for_log(&dev.url), "ONVIF device unavailable: {e}");
                warned = true;
            }
            Err(e) => tracing::debug!(device = %dev.id, "ONVIF device still unavailable: {e}"),
        }
        if started.elapsed() > BACKOFF_MAX * 2 {
            backoff = Duration::from_secs(1);
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 500);
        tokio::select! {
            _ = tokio::time::sleep(backoff + jitter) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if warned && pts.online_now(&app) {
            warned = false;
        }
    }
}

/// One connected period of a device. Returns when it fails or on stop.
async fn session(
    app: &Arc<App>,
    dev: &Device,
    pts: &DevicePoints,
    stop: &mut watch::Receiver<bool>,
    facts: &DeviceFacts,
    t: Timing,
) -> Result<(), OnvifError> {
    let soap = Arc::new(Soap::new(&dev.user, &dev.password, t.request_timeout));
    let skew = client::measure_skew_ms(&soap, &dev.url).await?;
    soap.set_skew_ms(skew);
    pts.clock(app, skew);
    let svc = client::services(&soap, &dev.url).await?;
    let info = client::device_information(&soap, &dev.url).await?;
    let inputs = match &svc.deviceio {
        Some(x) => client::digital_inputs(&soap, x).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let relays = if pts.has_relays() {
        client::relay_outputs(&soap, &dev.url).await?
    } else {
        Vec::new()
    };
    let stream_uri = match &svc.media {
        Some(media) => match client::first_stream_uri(&soap, media).await {
            Ok(uri) => uri,
            Err(e) => {
                tracing::debug!(device = %dev.id, "GetStreamUri: {e}");
                None
            }
        },
        None => None,
    };
    facts.set(
        &dev.id,
        Facts {
            manufacturer: info.manufacturer.clone(),
            model: info.model.clone(),
            firmware: info.firmware.clone(),
            serial: info.serial.clone(),
            stream_uri,
        },
    );
    tracing::info!(device = %dev.id, manufacturer = %info.manufacturer, model = %info.model, firmware = %info.firmware, skew_ms = skew, inputs = inputs.len(), relays = relays.len(), "ONVIF device connected");
    pts.online(app);
    let map = Arc::new(points::TokenMap::new(inputs, relays));

    // Relays follow the gateway's priority arrays: push the values in
    // force now, then every change.
    let relay_task = tokio::spawn(relay_commands(
        app.clone(),
        soap.clone(),
        dev.url.clone(),
        pts.clone(),
        map.clone(),
    ));
    let _guard = AbortOnDrop(relay_task);

    let Some(events) = svc.events.clone() else {
        // No event service: keep the clock measured, nothing else to do.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(t.clock_every) => {}
                _ = stop.changed() => return Ok(()),
            }
            let skew = client::measure_skew_ms(&soap, &dev.url).await?;
            pts.clock(app, skew);
        }
    };
    // A new subscription brings a fresh Initialized snapshot.
    let subscribe =
        || client::create_pull_point(&soap, &events, client::TOPIC_FILTER, t.subscription_ttl);
    let mut sub = subscribe().await?;
    let mut renew_at = Instant::now() + t.subscription_ttl / 3;
    let mut clock_at = Instant::now() + t.clock_every;
    loop {
        if Instant::now() >= clock_at {
            let skew = client::measure_skew_ms(&soap, &dev.url).await?;
            soap.set_skew_ms(skew);
            pts.clock(app, skew);
            clock_at = Instant::now() + t.clock_every;
        }
        if Instant::now() >= renew_at {
            if let Err(e) = client::renew(&soap, &sub, t.subscription_ttl).await {
                if e.is_offline() {
                    return Err(e);
                }
                tracing::info!(device = %dev.id, "Renew refused ({e}); subscribing again");
                sub = subscribe().await?;
            }
            renew_at = Instant::now() + t.subscription_ttl / 3;
        }
        let pulled = tokio::select! {
            r = client::pull_messages(&soap, &sub, t.pull_wait, PULL_LIMIT) => r,
            _ = stop.changed() => {
                let _ = client::unsubscribe(&soap, &sub).await;
                return Ok(());
            }
        };
        match pulled {
            Ok((msgs, _)) => {
                for m in &msgs {
                    apply(app, pts, &map, m);
                }
            }
            Err(e) if e.is_offline() => return Err(e),
            Err(OnvifError::NotAuthorized(m)) => {
                // Most often our idea of the device clock is stale.
                let skew = client::measure_skew_ms(&soap, &dev.url).await?;
                soap.set_skew_ms(skew);
                pts.clock(app, skew);
                tracing::debug!(device = %dev.id, "PullMessages not authorised ({m}); clock re-measured");
            }
            Err(e) => {
                // The subscription is gone (expired, device restarted):
                // a new one brings a fresh Initialized snapshot.
                tracing::info!(device = %dev.id, "PullMessages failed ({e}); subscribing again");
                sub = subscribe().await?;
                renew_at = Instant::now() + t.subscription_ttl / 3;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies one event to the device's points.
fn apply(app: &App, pts: &DevicePoints, map: &points::TokenMap, n: &Notification) {
    let state = |name: &str| n.data(name).and_then(parse_bool);
    match n.topic.as_str() {
        "Device/Trigger/DigitalInput" => {
            if let (Some(k), Some(v)) = (
                n.source("InputToken").and_then(|t| map.input(t)),
                state("LogicalState"),
            ) {
                pts.report(app, &format!("alarm-in-{k}"), Value::Bool(v));
            }
        }
        "Device/Trigger/Relay" => {
            if let (Some(k), Some(v)) = (
                n.source("RelayToken").and_then(|t| map.relay(t)),
                state("LogicalState"),
            ) {
                pts.relay_feedback(app, k, v);
            }
        }
        "VideoSource/MotionAlarm" => {
            if let Some(v) = state("State") {
                pts.report(app, "motion", Value::Bool(v));
            }
        }
        "VideoSource/GlobalSceneChange/ImagingService" => {
            if let Some(v) = state("State") {
                pts.report(app, "tamper", Value::Bool(v));
            }
        }
        "VideoSource/SignalLoss" => {
            if let Some(v) = state("State") {
                pts.video_loss(app, n.source("Source").or(n.source("VideoSourceToken")), v);
            }
        }
        "Device/HardwareFailure/StorageFailure" => {
            if let Some(v) = state("Failed") {
                pts.report(app, "disk-fault", Value::Bool(v));
            }
        }
        "RecordingConfig/JobState" => {
            if let Some(s) = n.data("State") {
                pts.report(
                    app,
                    "recording-ok",
                    Value::Bool(s.eq_ignore_ascii_case("Active")),
                );
            }
        }
        other => tracing::trace!("ONVIF topic {other} not mapped"),
    }
}

/// ONVIF writes booleans as xs:boolean, relay states as active/inactive.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "active" | "on" => Some(true),
        "false" | "0" | "inactive" | "off" => Some(false),
        _ => None,
    }
}

/// Carries the value in force of each alarm output to the device, now and
/// on every change, and checks the relay's feedback follows.
async fn relay_commands(
    app: Arc<App>,
    soap: Arc<Soap>,
    url: String,
    pts: DevicePoints,
    map: Arc<points::TokenMap>,
) {
    let mut rx = app.points.subscribe();
    for k in 1..=map.relays() {
        send_relay(&app, &soap, &url, &pts, &map, k).await;
    }
    loop {
        let Some(c) = app.points.next_change(&mut rx).await else {
            if rx.is_closed() {
                return;
            }
            // Lagged: resend every relay (idempotent on the device).
            for k in 1..=map.relays() {
                send_relay(&app, &soap, &url, &pts, &map, k).await;
            }
            continue;
        };
        if let Some(k) = pts.output_number(c.point) {
            send_relay(&app, &soap, &url, &pts, &map, k).await;
        }
    }
}

async fn send_relay(
    app: &Arc<App>,
    soap: &Soap,
    url: &str,
    pts: &DevicePoints,
    map: &points::TokenMap,
    k: u32,
) {
    let (Some(token), Some(want)) = (map.relay_token(k), pts.commanded(app, k)) else {
        return;
    };
    if pts.feedback(app, k) == Some(want) {
        pts.set_output_fault(app, k, false);
        return;
    }
    match client::set_relay_output_state(soap, url, token, want).await {
        Ok(()) => {
            // The device said yes; its Relay event must follow.
            let app = app.clone();
            let pts = pts.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RELAY_CONFIRM).await;
                if pts.commanded(&app, k) == Some(want) && pts.feedback(&app, k) != Some(want) {
                    tracing::warn!(point = %pts.output_id(k), "relay did not report the commanded state within {RELAY_CONFIRM:?}");
                    pts.set_output_fault(&app, k, true);
                }
            });
        }
        Err(e) => {
            tracing::warn!(point = %pts.output_id(k), "SetRelayOutputState failed: {e}");
            pts.set_output_fault(app, k, true);
        }
    }
}

/// The offset and time-sync-alarm values for a measured clock skew.
pub(crate) fn clock_values(skew_ms: i64) -> (Value, Value) {
    let ms = skew_ms as f64;
    (Value::Number(ms), Value::Bool(ms.abs() > CLOCK_ALARM_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_spelling_devices_use() {
        for (s, v) in [
            ("true", true),
            ("Active", true),
            ("0", false),
            ("inactive", false),
        ] {
            assert_eq!(parse_bool(s), Some(v), "{s}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn three_seconds_of_drift_is_an_alarm_one_is_not() {
        assert_eq!(clock_values(3000).1, Value::Bool(true));
        assert_eq!(clock_values(-3000).1, Value::Bool(true));
        assert_eq!(clock_values(900).1, Value::Bool(false));
    }
}
