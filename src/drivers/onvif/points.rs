//! Which engine points one ONVIF device drives, and the mapping from the
//! device's input/relay tokens to the site model's numbers.

use crate::app::App;
use crate::model::Equipment;
use crate::points::{Quality, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The device's points by key (`alarm-in-3`, `online`), as engine indexes.
#[derive(Clone)]
pub struct DevicePoints {
    equip: Arc<str>,
    by_key: Arc<HashMap<String, usize>>,
    /// Engine index of `alarm-out-N` → N.
    outputs: Arc<HashMap<usize, u32>>,
}

impl DevicePoints {
    pub fn of(app: &App, e: &Equipment) -> DevicePoints {
        let by_key: HashMap<String, usize> = e
            .points
            .clone()
            .map(|i| (app.site.points[i].key.clone(), i))
            .collect();
        let outputs = by_key
            .iter()
            .filter_map(|(k, &i)| {
                let n = k.strip_prefix("alarm-out-")?.parse().ok()?;
                Some((i, n))
            })
            .collect();
        DevicePoints {
            equip: e.id.as_str().into(),
            by_key: Arc::new(by_key),
            outputs: Arc::new(outputs),
        }
    }

    fn idx(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub fn has_relays(&self) -> bool {
        !self.outputs.is_empty()
    }

    pub fn report(&self, app: &App, key: &str, v: Value) {
        if let Some(i) = self.idx(key) {
            app.points.report(i, v, Quality::Ok);
        }
    }

    pub fn online(&self, app: &App) {
        self.report(app, "online", Value::Bool(true));
    }

    pub fn online_now(&self, app: &App) -> bool {
        self.idx("online")
            .and_then(|i| app.points.get(i))
            .is_some_and(|s| s.value == Value::Bool(true))
    }

    /// The device is gone: `online` is false (a fact we know), every value
    /// it delivered goes to fault keeping its last value, and outputs show
    /// they cannot be carried out.
    pub fn offline(&self, app: &App) {
        for (key, &i) in self.by_key.iter() {
            if key == "online" {
                app.points.report(i, Value::Bool(false), Quality::Ok);
            } else if self.outputs.contains_key(&i) {
                app.points.set_output_fault(i, true);
            } else if is_driven(key) {
                let last = app.points.get(i).map_or(Value::Null, |s| s.value);
                app.points.report(i, last, Quality::Fault);
            }
        }
    }

    pub fn clock(&self, app: &App, skew_ms: i64) {
        let (offset, alarm) = super::clock_values(skew_ms);
        self.report(app, "time-offset", offset);
        self.report(app, "time-sync-alarm", alarm);
    }

    /// Signal loss of video source `source` (by its position among the
    /// numbered `video-loss-N` points, else the single `video-loss`).
    pub fn video_loss(&self, app: &App, source: Option<&str>, lost: bool) {
        let n = source.and_then(trailing_number);
        match n.map(|n| format!("video-loss-{n}")) {
            Some(k) if self.idx(&k).is_some() => self.report(app, &k, Value::Bool(lost)),
            _ => self.report(app, "video-loss", Value::Bool(lost)),
        }
    }

    pub fn output_number(&self, point: usize) -> Option<u32> {
        self.outputs.get(&point).copied()
    }

    pub fn output_id(&self, k: u32) -> String {
        format!("{}.alarm-out-{k}", self.equip)
    }

    /// The value in force on `alarm-out-k`.
    pub fn commanded(&self, app: &App, k: u32) -> Option<bool> {
        match app.points.get(self.idx(&format!("alarm-out-{k}"))?)?.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// What relay k last reported.
    pub fn feedback(&self, app: &App, k: u32) -> Option<bool> {
        let s = app.points.get(self.idx(&format!("alarm-out-state-{k}"))?)?;
        match (s.value, s.quality) {
            (Value::Bool(b), Quality::Ok) => Some(b),
            _ => None,
        }
    }

    pub fn set_output_fault(&self, app: &App, k: u32, fault: bool) {
        if let Some(i) = self.idx(&format!("alarm-out-{k}")) {
            app.points.set_output_fault(i, fault);
        }
    }

    /// Relay k reported `on`: the feedback point follows, and the output's
    /// fault clears once the relay is where the command wants it.
    pub fn relay_feedback(&self, app: &App, k: u32, on: bool) {
        self.report(app, &format!("alarm-out-state-{k}"), Value::Bool(on));
        if self.commanded(app, k) == Some(on) {
            self.set_output_fault(app, k, false);
        }
    }
}

/// Points this driver delivers (the rest — recording health, storage
/// usage, temperature — come from other drivers and are left alone).
fn is_driven(key: &str) -> bool {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    matches!(
        base,
        "alarm-in"
            | "alarm-out-state"
            | "motion"
            | "tamper"
            | "video-loss"
            | "disk-fault"
            | "time-offset"
            | "time-sync-alarm"
    )
}

fn trailing_number(s: &str) -> Option<u32> {
    let digits: String = s
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// The device's tokens in the order it lists them: the k-th digital input
/// is alarm input k, the k-th relay is alarm output k.
pub struct TokenMap {
    inputs: Vec<String>,
    relays: Vec<String>,
}

impl TokenMap {
    pub fn new(inputs: Vec<String>, relays: Vec<String>) -> TokenMap {
        TokenMap { inputs, relays }
    }
    pub fn input(&self, token: &str) -> Option<u32> {
        position(&self.inputs, token)
    }
    pub fn relay(&self, token: &str) -> Option<u32> {
        position(&self.relays, token)
    }
    pub fn relay_token(&self, k: u32) -> Option<&str> {
        self.relays
            .get(k.checked_sub(1)? as usize)
            .map(String::as_str)
    }
    pub fn relays(&self) -> u32 {
        self.relays.len() as u32
    }
}

fn position(tokens: &[String], token: &str) -> Option<u32> {
    tokens.iter().position(|t| t == token).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_by_listing_order_not_by_name() {
        let m = TokenMap::new(vec!["Z".into(), "A".into()], vec!["R9".into()]);
        assert_eq!(
            (m.input("Z"), m.input("A"), m.input("Q")),
            (Some(1), Some(2), None)
        );
        assert_eq!(
            (m.relay("R9"), m.relay_token(1), m.relay_token(2)),
            (Some(1), Some("R9"), None)
        );
        assert_eq!(m.relay_token(0), None);
    }

    #[test]
    fn numbered_keys_are_recognised() {
        assert!(is_driven("alarm-in-12"));
        assert!(is_driven("alarm-out-state-1"));
        assert!(!is_driven("storage-usage"));
        assert_eq!(trailing_number("VS_3"), Some(3));
        assert_eq!(trailing_number("main"), None);
    }
}
