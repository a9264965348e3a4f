//! JSON payloads: a point's retained state, and what a `/set` may carry.

use crate::points::{PointState, Value};
use serde_json::json;
use std::time::{Duration, SystemTime};

/// `{"value": …, "unit": …, "quality": …, "ts": RFC 3339 UTC}`.
pub fn state(s: &PointState, unit: Option<&str>) -> Vec<u8> {
    let ts: chrono::DateTime<chrono::Utc> = s.changed.into();
    json!({
        "value": s.value,
        "unit": unit,
        "quality": s.quality,
        "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
    .to_string()
    .into_bytes()
}

/// A `/set` request: a value (`None` relinquishes the level) and how long
/// it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRequest {
    pub value: Option<Value>,
    pub duration: Option<Duration>,
}

/// Longest accepted `/set` payload; a point value is a few bytes.
pub const MAX_SET_PAYLOAD: usize = 1024;

/// Reads a `/set` payload: a bare `true`/`false`/`ON`/`OFF`/number/`null`,
/// or `{"value": …, "duration_s": N}`.
pub fn parse_set(payload: &[u8]) -> Result<SetRequest, String> {
    if payload.len() > MAX_SET_PAYLOAD {
        return Err(format!("payload of {} bytes is too long", payload.len()));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| "payload is not UTF-8".to_string())?
        .trim();
    let plain = |value| SetRequest {
        value,
        duration: None,
    };
    match text.to_ascii_lowercase().as_str() {
        "on" => return Ok(plain(Some(Value::Bool(true)))),
        "off" => return Ok(plain(Some(Value::Bool(false)))),
        _ => {}
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        format!(
            "`{}`: expected true, false, ON, OFF, a number, null or {{\"value\": …}}",
            shorten(text)
        )
    })?;
    match v {
        serde_json::Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| *k != "value" && *k != "duration_s") {
                return Err(format!(
                    "unknown key `{}`: use value, duration_s",
                    shorten(k)
                ));
            }
            let value = scalar(m.get("value").ok_or("missing `value`")?)?;
            let duration = match m.get("duration_s") {
                None | Some(serde_json::Value::Null) => None,
                Some(d) => {
                    let s = d
                        .as_f64()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0 * 366.0)
                        .ok_or(
                            "`duration_s` must be a positive number of seconds (at most a year)",
                        )?;
                    Some(Duration::from_secs_f64(s))
                }
            };
            Ok(SetRequest { value, duration })
        }
        other => Ok(plain(scalar(&other)?)),
    }
}

fn scalar(v: &serde_json::Value) -> Result<Option<Value>, String> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Bool(b) => Ok(Some(Value::Bool(*b))),
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(Value::Number(f)))
            .ok_or_else(|| "the number is out of range".to_string()),
        _ => Err("the value must be true, false, a number or null".to_string()),
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Milliseconds since 1970 as RFC 3339, for event payloads.
pub fn rfc3339_ms(at: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = at.into();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_payloads_in_every_accepted_shape() {
        let v = |p: &str| parse_set(p.as_bytes()).map(|r| r.value);
        assert_eq!(v("true"), Ok(Some(Value::Bool(true))));
        assert_eq!(v(" OFF\n"), Ok(Some(Value::Bool(false))));
        assert_eq!(v("21.5"), Ok(Some(Value::Number(21.5))));
        assert_eq!(v("null"), Ok(None));
        let r = parse_set(br#"{"value": true, "duration_s": 60}"#).unwrap();
        assert_eq!(r.value, Some(Value::Bool(true)));
        assert_eq!(r.duration, Some(Duration::from_secs(60)));
    }

    #[test]
    fn hostile_set_payloads_get_a_reason() {
        for bad in [
            &b"maybe"[..],
            b"\xff\xfe",
            br#"{"value": "x"}"#,
            br#"{"val": true}"#,
            br#"{"value": true, "duration_s": -1}"#,
            br#"[true]"#,
            b"1e999",
        ] {
            let e = parse_set(bad).unwrap_err();
            assert!(!e.is_empty());
        }
        assert!(parse_set(&vec![b' '; MAX_SET_PAYLOAD + 1])
            .unwrap_err()
            .contains("too long"));
    }
}
