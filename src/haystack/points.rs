//! Ops on live points: `pointWrite` into the engine's priority array (the
//! one BACnet writes to) and `hisRead` from the point history.

use super::ops::OpError;
use super::wire::{self, Dict, Grid, Value};
use crate::app::App;
use crate::points::{Quality, Value as PValue};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::time::Duration;

fn first_row(req: &Grid) -> Result<&Dict, OpError> {
    req.rows
        .first()
        .ok_or_else(|| OpError::Bad("empty request: one row with `id` expected".into()))
}

/// A point of the site by Haystack id (`hq.nvr-1.alarm-out-1`).
fn point_of<'a>(
    app: &'a App,
    req_id: Option<&Value>,
) -> Result<(usize, &'a crate::model::Point), OpError> {
    let id = req_id
        .and_then(wire::ref_id)
        .ok_or_else(|| OpError::Bad("missing `id`".into()))?;
    let model_id = wire::model_id(&app.site.id, &id).unwrap_or(&id);
    let i = app
        .points
        .index_of(model_id)
        .ok_or_else(|| OpError::Bad(format!("`@{id}` is not a point")))?;
    Ok((i, &app.site.points[i]))
}

fn hs_value(v: PValue, unit: Option<&str>) -> Value {
    match v {
        PValue::Null => Value::Null,
        PValue::Bool(b) => Value::make_bool(b),
        PValue::Number(n) => match unit.and_then(libhaystack::units::get_unit) {
            Some(u) => Value::make_number_unit(n, u),
            None => Value::make_number(n),
        },
    }
}

/// Haystack `curStatus` for an engine quality.
pub fn cur_status(q: Quality) -> &'static str {
    match q {
        Quality::Ok | Quality::Overridden => "ok",
        Quality::Fault => "down",
        Quality::OutOfService => "disabled",
        Quality::Initial => "unknown",
    }
}

/// `curVal`, `curStatus` (and for writable points `writeVal`, `writeLevel`)
/// of a point entity, from the engine.
pub fn live_tags(app: &App, point: usize, d: &mut Dict) {
    let Some(s) = app.points.get(point) else {
        return;
    };
    let unit = app.site.points[point]
        .template
        .unit
        .and_then(|u| u.haystack);
    d.insert("curVal".into(), hs_value(s.value, unit));
    d.insert("curStatus".into(), Value::make_str(cur_status(s.quality)));
    if let Some(pa) = &s.priority {
        let (v, level) = pa.effective();
        d.insert("writeVal".into(), hs_value(v, unit));
        if let Some(l) = level {
            d.insert("writeLevel".into(), Value::make_number(f64::from(l)));
        }
    }
}

/// The engine point behind an entity, if it is one.
pub fn point_of_entity(app: &App, entity: usize) -> Option<usize> {
    let id = wire::ref_id(app.hs.index.dicts[entity].get("id")?)?;
    app.points.index_of(wire::model_id(&app.site.id, &id)?)
}

/// An entity's dict, points with their live tags (`curVal`, …) added.
/// Filters see only the model's tags, not these.
pub fn with_live_tags(app: &App, entity: usize) -> Dict {
    let mut d = app.hs.index.dicts[entity].clone();
    if let Some(p) = point_of_entity(app, entity) {
        live_tags(app, p, &mut d);
    }
    d
}

fn duration_of(v: &Value) -> Option<Duration> {
    let Value::Number(n) = v else { return None };
    let secs = match n.unit.map(|u| u.symbol()) {
        None | Some("s") | Some("sec") => n.value,
        Some("ms") => n.value / 1000.0,
        Some("min") => n.value * 60.0,
        Some("h") | Some("hr") => n.value * 3600.0,
        Some("day") => n.value * 86400.0,
        Some(_) => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `pointWrite`: with `level`, writes (or with no `val`, relinquishes) that
/// level; with `id` alone, answers the 17-row priority array.
pub fn point_write(app: &App, req: &Grid, user: &str) -> Result<Grid, OpError> {
    let r = first_row(req)?;
    let (i, p) = point_of(app, r.get("id"))?;
    if !p.template.writable {
        return Err(OpError::Bad(format!("`{}` is not writable", p.id)));
    }
    if let Some(level) = r.get("level") {
        let level = wire::number_of(level)
            .filter(|l| l.fract() == 0.0 && (1.0..=17.0).contains(l))
            .ok_or_else(|| OpError::Bad("level must be 1..17".into()))? as u8;
        let value = match r.get("val") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(PValue::Bool(b.value)),
            Some(Value::Number(n)) => Some(PValue::Number(n.value)),
            Some(other) => {
                return Err(OpError::Bad(format!(
                    "cannot write {} to `{}`",
                    wire::text(other).unwrap_or_default(),
                    p.id
                )))
            }
        };
        let who = match r.get("who").and_then(wire::text) {
            Some(w) => format!("haystack:{user}:{w}"),
            None => format!("haystack:{user}"),
        };
        let duration = match r.get("duration") {
            None | Some(Value::Null) => None,
            Some(d) => Some(duration_of(d).ok_or_else(|| {
                OpError::Bad("duration must be a positive number with a time unit".into())
            })?),
        };
        app.points
            .command(&p.id, level, value, &who, duration)
            .map_err(|e| OpError::Bad(e.to_string()))?;
    }
    let unit = p.template.unit.and_then(|u| u.haystack);
    let pa = app
        .points
        .get(i)
        .and_then(|s| s.priority)
        .ok_or_else(|| OpError::Bad("no priority array".into()))?;
    let rows = pa
        .levels()
        .iter()
        .enumerate()
        .map(|(n, slot)| {
            let mut d = Dict::new();
            d.insert("level".into(), Value::make_number((n + 1) as f64));
            d.insert("levelDis".into(), Value::make_str(&level_dis(n as u8 + 1)));
            if let Some(s) = slot {
                d.insert("val".into(), hs_value(s.value, unit));
                d.insert("who".into(), Value::make_str(&s.who));
                if let Some(exp) = s.expires {
                    let left = exp.saturating_duration_since(std::time::Instant::now());
                    d.insert("expires".into(), wire::seconds(left.as_secs_f64()));
                }
            }
            d
        })
        .collect();
    Ok(wire::grid(
        None,
        &["level", "levelDis", "val", "who", "expires"],
        rows,
    ))
}

fn level_dis(level: u8) -> String {
    match level {
        1 => "1 (Emergency)".into(),
        8 => "8 (Manual)".into(),
        16 => "16".into(),
        17 => "17 (Default)".into(),
        n => n.to_string(),
    }
}

/// A `hisRead` range in the point's time zone: start inclusive, end
/// exclusive, in ms since the epoch.
pub fn parse_range(range: &str, tz: Tz, now: DateTime<Utc>) -> Result<(i64, i64), String> {
    let day_start = |d: NaiveDate| -> Result<i64, String> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| format!("{d} has no midnight in {tz}"))
    };
    let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let today = now.with_timezone(&tz).date_naive();
    let next = |d: NaiveDate| d.succ_opt().unwrap_or(d);
    let range = range.trim();
    match range {
        "today" => return Ok((day_start(today)?, day_start(next(today))?)),
        "yesterday" => {
            let y = today.pred_opt().unwrap_or(today);
            return Ok((day_start(y)?, day_start(today)?));
        }
        _ => {}
    }
    let (a, b) = match range.split_once(',') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (range, None),
    };
    if let Some(d1) = date(a) {
        // Dates: whole days, the end date included.
        let d2 = match b {
            None => d1,
            Some(b) => date(b).ok_or_else(|| format!("`{b}` is not a date"))?,
        };
        return Ok((day_start(d1)?, day_start(next(d2))?));
    }
    let start = date_time(a)?;
    let end = match b {
        Some(b) => date_time(b)?,
        None => i64::MAX,
    };
    Ok((start, end))
}

/// `2024-01-01T00:00:00-05:00 New_York`, `…Z`, or `…Z UTC`.
fn date_time(s: &str) -> Result<i64, String> {
    let iso = s.split_whitespace().next().unwrap_or("");
    DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("`{s}` is not a date, date range or dateTime"))
}

/// `hisWrite`: no point of the model takes written history (every value
/// comes from a driver or a command), so each request is refused clearly.
pub fn his_write(app: &App, req: &Grid) -> Result<Grid, OpError> {
    let id = req
        .meta
        .as_ref()
        .and_then(|m| m.get("id"))
        .or_else(|| req.rows.first().and_then(|r| r.get("id")));
    let (_, p) = point_of(app, id)?;
    Err(OpError::Bad(format!(
        "`{}` does not take written history: its values come from its driver or commands",
        p.id
    )))
}

/// `hisRead`: `id` and `range` (see `parse_range`).
pub fn his_read(app: &App, req: &Grid) -> Result<Grid, OpError> {
    let r = first_row(req)?;
    let (_, p) = point_of(app, r.get("id"))?;
    if !p.template.his {
        return Err(OpError::Bad(format!("`{}` keeps no history", p.id)));
    }
    let history = app.history.as_ref().ok_or_else(|| {
        OpError::Bad("this gateway runs without a data dir, so it keeps no history".into())
    })?;
    let range = r
        .get("range")
        .or_else(|| req.meta.as_ref().and_then(|m| m.get("range")))
        .and_then(wire::text)
        .ok_or_else(|| OpError::Bad("missing `range`".into()))?;
    let tz: Tz = app.site.timezone.parse().unwrap_or(chrono_tz::UTC);
    let (start, end) = parse_range(&range, tz, Utc::now()).map_err(OpError::Bad)?;
    let as_bool = p.template.kind == crate::model::templates::ValueKind::Bool;
    let samples = history
        .read(&p.id, start, end, 100_000, as_bool)
        .map_err(OpError::Bad)?;
    let unit = p.template.unit.and_then(|u| u.haystack);
    let tz_name = crate::graph::project::haystack_tz(&app.site.timezone);
    let rows = samples
        .iter()
        .map(|s| {
            let mut d = Dict::new();
            d.insert("ts".into(), wire::date_time(s.ts_ms, &tz_name));
            d.insert("val".into(), hs_value(s.value, unit));
            d
        })
        .collect();
    let mut meta = Dict::new();
    meta.insert(
        "id".into(),
        wire::ref_of(&app.site.id, &p.id, Some(&p.name)),
    );
    meta.insert("hisStart".into(), wire::date_time(start, &tz_name));
    if end != i64::MAX {
        meta.insert("hisEnd".into(), wire::date_time(end, &tz_name));
    }
    Ok(wire::grid(Some(meta), &["ts", "val"], rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_whole_days_in_the_site_zone_and_end_exclusive() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let ms = |y, m, d, h| {
            tz.with_ymd_and_hms(y, m, d, h, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(
            parse_range("today", tz, now),
            Ok((ms(2026, 3, 10, 0), ms(2026, 3, 11, 0)))
        );
        assert_eq!(
            parse_range("yesterday", tz, now),
            Ok((ms(2026, 3, 9, 0), ms(2026, 3, 10, 0)))
        );
        assert_eq!(
            parse_range("2026-03-01", tz, now),
            Ok((ms(2026, 3, 1, 0), ms(2026, 3, 2, 0)))
        );
        assert_eq!(
            parse_range("2026-03-01,2026-03-03", tz, now),
            Ok((ms(2026, 3, 1, 0), ms(2026, 3, 4, 0)))
        );
        // The DST change day is 23 hours long.
        let (a, b) = parse_range("2026-03-29", tz, now).unwrap();
        assert_eq!(b - a, 23 * 3_600_000);
        let (a, b) = parse_range(
            "2026-03-01T00:00:00+01:00 Berlin,2026-03-01T06:00:00Z UTC",
            tz,
            now,
        )
        .unwrap();
        assert_eq!((a, b), (ms(2026, 3, 1, 0), ms(2026, 3, 1, 7)));
        let (a, b) = parse_range("2026-03-01T00:00:00+01:00 Berlin", tz, now).unwrap();
        assert_eq!((a, b), (ms(2026, 3, 1, 0), i64::MAX));
        assert!(parse_range("last tuesday", tz, now).is_err());
        assert!(parse_range("2026-03-01,later", tz, now).is_err());
    }
}
