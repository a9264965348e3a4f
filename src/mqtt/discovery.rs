//! Home Assistant MQTT discovery: one retained config per point, so HA
//! shows every camera, recorder, UPS and alarm input as a device with its
//! sensors, and each relay the site lets MQTT switch as a switch.

use super::topics::Topics;
use crate::model::templates::ValueKind;
use crate::model::{Point, Site};
use serde_json::{json, Value};

/// The discovery topic and config of one point.
pub fn config(
    site: &Site,
    point: &Point,
    topics: &Topics,
    settable: bool,
    has_availability: bool,
) -> (String, Vec<u8>) {
    let node = format!("{}_{}", site.id, point.equip);
    let object = point.key.replace('-', "_");
    let unique_id = format!("vgw_{node}_{object}");
    let state_topic = topics.state(&point.id);
    let component = match (point.template.kind, settable) {
        (ValueKind::Bool, true) => "switch",
        (ValueKind::Bool, false) => "binary_sensor",
        (ValueKind::Number, _) => "sensor",
    };
    let mut availability = vec![json!({ "topic": topics.gateway_status() })];
    if has_availability {
        availability.push(json!({ "topic": topics.device_status(&point.equip) }));
    }
    let mut c = json!({
        "name": point.name,
        "unique_id": unique_id,
        "object_id": unique_id,
        "state_topic": state_topic,
        "availability": availability,
        "availability_mode": "all",
        "device": device(site, &point.equip),
    });
    let m = c.as_object_mut().expect("a JSON object");
    match point.template.kind {
        ValueKind::Bool => {
            // A point without a value yet (null) shows as unknown.
            m.insert(
                "value_template".into(),
                json!("{% if value_json.value is none %}None{% elif value_json.value %}ON{% else %}OFF{% endif %}"),
            );
            if let Some(class) = binary_class(&point.key) {
                m.insert("device_class".into(), json!(class));
            }
            if settable {
                m.insert("command_topic".into(), json!(topics.set(&point.id)));
                m.insert("state_on".into(), json!("ON"));
                m.insert("state_off".into(), json!("OFF"));
                m.insert("payload_on".into(), json!("true"));
                m.insert("payload_off".into(), json!("false"));
            }
        }
        ValueKind::Number => {
            m.insert("value_template".into(), json!("{{ value_json.value }}"));
            m.insert("state_class".into(), json!("measurement"));
            if let Some(unit) = point.template.unit.and_then(|u| u.haystack) {
                m.insert("unit_of_measurement".into(), json!(ha_unit(unit)));
            }
            if let Some(class) = sensor_class(&point.key) {
                m.insert("device_class".into(), json!(class));
            }
        }
    }
    if is_diagnostic(&point.key) {
        m.insert("entity_category".into(), json!("diagnostic"));
    }
    (
        topics.ha_config(component, &node, &object),
        c.to_string().into_bytes(),
    )
}

/// The HA device a point belongs to: its equipment, placed in its room.
fn device(site: &Site, equip: &str) -> Value {
    let e = site.equipment(equip);
    let mut d = json!({
        "identifiers": [format!("vgw_{}_{equip}", site.id)],
        "name": e.map_or(equip, |e| e.name.as_str()),
        "manufacturer": "vgw",
        "model": e.map_or("equipment", |e| kind_label(e.kind)),
    });
    if let Some(room) = e
        .and_then(|e| e.space.as_deref())
        .and_then(|s| site.location(s))
    {
        d["suggested_area"] = json!(room.name);
    }
    d
}

fn kind_label(k: crate::model::kinds::EquipKind) -> &'static str {
    let noun = k.noun();
    noun.split_once(' ').map_or(noun, |(_, rest)| rest)
}

/// HA's spelling of our Haystack units.
fn ha_unit(haystack: &str) -> &str {
    match haystack {
        "Mbps" => "Mbit/s",
        "day" => "d",
        other => other,
    }
}

fn binary_class(key: &str) -> Option<&'static str> {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    Some(match base {
        "online" => "connectivity",
        "motion" => "motion",
        "tamper" => "tamper",
        "on-battery" => "power",
        "low-battery" => "battery",
        "alarm-in" => "safety",
        "recording-ok" => return None,
        "disk-fault"
        | "video-loss"
        | "replace-battery"
        | "fault"
        | "time-sync-alarm"
        | "sync-alarm"
        | "storage-write-error" => "problem",
        _ => return None,
    })
}

fn sensor_class(key: &str) -> Option<&'static str> {
    Some(match key {
        "temp" => "temperature",
        "battery-charge" => "battery",
        "input-voltage" | "output-voltage" | "battery-voltage" => "voltage",
        "runtime" | "last-frame-age" | "time-offset" | "offset" | "root-distance" => "duration",
        "bitrate" | "ingest-bitrate" => "data_rate",
        _ => return None,
    })
}

/// Health and timing points go under the device's diagnostics in HA.
fn is_diagnostic(key: &str) -> bool {
    matches!(
        key,
        "time-offset"
            | "stratum"
            | "offset"
            | "root-distance"
            | "last-frame-age"
            | "fps"
            | "bitrate"
            | "ingest-bitrate"
            | "channels-in-use"
            | "retention-days"
            | "retention-forecast"
            | "oldest-recording"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Site {
        let loaded = crate::config::parse(
            std::path::Path::new("config/demo.toml"),
            crate::cli::serve::DEMO_SITE.to_string(),
        )
        .unwrap();
        crate::model::build::build_with_registry(&loaded, None).unwrap()
    }

    #[test]
    fn relays_become_switches_only_where_mqtt_may_set_them() {
        let site = demo();
        let topics = Topics::new("vgw", &site.id, "homeassistant");
        let relay = site
            .points
            .iter()
            .find(|p| p.key.starts_with("alarm-out-") && p.template.writable)
            .expect("the demo has a relay");
        let (topic, cfg) = config(&site, relay, &topics, true, true);
        assert!(topic.starts_with("homeassistant/switch/"), "{topic}");
        let cfg: Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(cfg["command_topic"], json!(topics.set(&relay.id)));
        assert_eq!(cfg["availability"].as_array().unwrap().len(), 2);
        let (topic, cfg) = config(&site, relay, &topics, false, false);
        assert!(topic.starts_with("homeassistant/binary_sensor/"), "{topic}");
        let cfg: Value = serde_json::from_slice(&cfg).unwrap();
        assert!(cfg.get("command_topic").is_none());
    }

    #[test]
    fn sensors_carry_units_and_classes() {
        let site = demo();
        let topics = Topics::new("vgw", &site.id, "homeassistant");
        let charge = site
            .points
            .iter()
            .find(|p| p.key == "battery-charge")
            .expect("the demo has a UPS");
        let (topic, cfg) = config(&site, charge, &topics, false, true);
        assert!(topic.starts_with("homeassistant/sensor/"));
        let cfg: Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(cfg["unit_of_measurement"], "%");
        assert_eq!(cfg["device_class"], "battery");
        assert_eq!(cfg["state_topic"], json!(topics.state(&charge.id)));
        assert!(cfg["device"]["identifiers"][0]
            .as_str()
            .unwrap()
            .ends_with(&charge.equip));
    }
}
