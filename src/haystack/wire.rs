//! The one place that uses libhaystack (pinned `=2.0.8`): our entities as
//! Haystack values, grids on the wire (Zinc and Haystack 4 JSON), request
//! grids decoded, error grids.
//!
//! libhaystack's grid-level Zinc writer mangles grid and column meta and
//! drops the columns of an empty grid, so grids are written here, with the
//! library's scalar encoders for the values. Null cells are left out (a JSON
//! `null` crashes phable; Zinc writes an empty cell).

use crate::graph::HEntity;
use crate::graph::HVal;
use libhaystack::encoding::zinc::encode::ToZinc;
use libhaystack::val::{Column, Str, GRID_FORMAT_VERSION};
pub use libhaystack::val::{Dict, Grid, Value};

/// A wire format, chosen by Accept (responses) or Content-Type (requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zinc,
    Json,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Zinc => "text/zinc; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// From a media type (`text/zinc`, `application/json`, with parameters)
    /// or the short names phable sends during login (`zinc`, `json`).
    pub fn of_media(m: &str) -> Option<Format> {
        let base = m
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match base.as_str() {
            "text/zinc" | "zinc" | "text/plain" => Some(Format::Zinc),
            "application/json" | "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// `@<site>.<id>`: Haystack ids carry the site, as DESIGN.md says.
pub fn ref_of(site: &str, id: &str, dis: Option<&str>) -> Value {
    let r = format!("{site}.{id}");
    match dis {
        Some(d) => Value::make_ref_with_dis(&r, d),
        None => Value::make_ref(&r),
    }
}

/// The model id behind a Haystack id of this site (`hq.nvr-1` → `nvr-1`).
pub fn model_id<'a>(site: &str, hs_id: &'a str) -> Option<&'a str> {
    hs_id.strip_prefix(site)?.strip_prefix('.')
}

fn number(n: f64, unit: Option<&str>) -> Value {
    match unit.and_then(libhaystack::units::get_unit) {
        Some(u) => Value::make_number_unit(n, u),
        None => Value::make_number(n),
    }
}

/// One entity as a Haystack dict: `id` (with dis), `dis`, and its tags.
/// `dis_of` names ref targets.
pub fn entity_dict(site: &str, h: &HEntity, dis_of: &dyn Fn(&str) -> Option<String>) -> Dict {
    let mut d = Dict::new();
    d.insert("id".into(), ref_of(site, &h.id, Some(&h.dis)));
    d.insert("dis".into(), Value::make_str(&h.dis));
    for (tag, v) in &h.tags {
        let value = match v {
            HVal::Marker => Value::Marker,
            HVal::Str(s) => Value::make_str(s),
            HVal::Num(n, u) => number(*n, *u),
            HVal::Bool(b) => Value::make_bool(*b),
            HVal::Ref(r) => ref_of(site, r, dis_of(r).as_deref()),
            HVal::List(items) => {
                Value::make_list(items.iter().map(|s| Value::make_str(s)).collect())
            }
        };
        d.insert((*tag).to_string(), value);
    }
    d
}

/// A grid with the given column order (`id` first reads best) and rows.
pub fn grid(meta: Option<Dict>, columns: &[&str], rows: Vec<Dict>) -> Grid {
    Grid {
        meta,
        columns: columns
            .iter()
            .map(|c| Column {
                name: (*c).to_string(),
                meta: None,
            })
            .collect(),
        rows,
        ver: GRID_FORMAT_VERSION.into(),
    }
}

/// Rows with the union of their tags as columns: `id` and `dis` first,
/// then alphabetical.
pub fn grid_of_dicts(meta: Option<Dict>, rows: Vec<Dict>) -> Grid {
    let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for r in &rows {
        names.extend(r.keys().cloned());
    }
    let mut cols: Vec<String> = Vec::with_capacity(names.len());
    for first in ["id", "dis"] {
        if names.remove(first) {
            cols.push(first.into());
        }
    }
    cols.extend(names);
    if cols.is_empty() {
        cols.push("empty".into());
    }
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    grid(meta, &refs, rows)
}

/// Seconds as a Number with unit `s`.
pub fn seconds(s: f64) -> Value {
    number(s, Some("s"))
}

/// A dateTime at `ms` since the epoch in the Haystack time zone `tz`
/// (`Berlin`, `New_York`, `UTC`).
pub fn date_time(ms: i64, tz: &str) -> Value {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match libhaystack::timezone::make_date_time_with_tz(&utc.fixed_offset(), tz) {
        Ok(dt) => Value::make_datetime(libhaystack::val::DateTime::from(dt)),
        Err(_) => Value::make_datetime(libhaystack::val::DateTime::from(utc)),
    }
}

/// An error grid: meta `err`, `dis`, and `errTrace` only when asked for.
pub fn error_grid(dis: &str, trace: Option<&str>) -> Grid {
    let mut meta = Dict::new();
    meta.insert("err".into(), Value::Marker);
    meta.insert("dis".into(), Value::make_str(dis));
    if let Some(t) = trace {
        meta.insert("errTrace".into(), Value::make_str(t));
    }
    grid(Some(meta), &["empty"], Vec::new())
}

fn zinc_value(v: &Value) -> String {
    match v {
        // The library does not escape a ref's dis.
        Value::Ref(r) => match &r.dis {
            Some(d) => format!(
                "@{} {}",
                r.value,
                Str::from(d.as_str()).to_zinc_string().unwrap_or_default()
            ),
            None => format!("@{}", r.value),
        },
        Value::Grid(g) => format!("<<{}>>", zinc(g)),
        _ => v.to_zinc_string().unwrap_or_default(),
    }
}

fn zinc_tags(d: &Dict, out: &mut String) {
    for (k, v) in d.iter() {
        if v.is_null() {
            continue;
        }
        out.push(' ');
        out.push_str(k);
        if !v.is_marker() {
            out.push(':');
            out.push_str(&zinc_value(v));
        }
    }
}

/// A grid as Zinc 3.0 text.
pub fn zinc(g: &Grid) -> String {
    let mut s = String::from("ver:\"3.0\"");
    if let Some(m) = &g.meta {
        zinc_tags(m, &mut s);
    }
    s.push('\n');
    let names: Vec<&str> = if g.columns.is_empty() {
        vec!["empty"]
    } else {
        g.columns.iter().map(|c| c.name.as_str()).collect()
    };
    s.push_str(&names.join(","));
    s.push('\n');
    for r in &g.rows {
        let cells: Vec<String> = names
            .iter()
            .map(|c| match r.get(*c) {
                Some(v) if !v.is_null() => zinc_value(v),
                _ => String::new(),
            })
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// A grid as Haystack 4 JSON, nulls left out.
pub fn json(g: &Grid) -> String {
    let mut clean = g.clone();
    for r in clean.rows.iter_mut() {
        r.retain(|_, v| !v.is_null());
    }
    serde_json::to_string(&clean).unwrap_or_else(|e| {
        format!(
            "{{\"_kind\":\"grid\",\"meta\":{{\"ver\":\"3.0\",\"err\":{{\"_kind\":\"marker\"}},\"dis\":{}}},\"cols\":[{{\"name\":\"empty\"}}],\"rows\":[]}}",
            serde_json::to_string(&e.to_string()).unwrap_or_default()
        )
    })
}

pub fn encode(g: &Grid, f: Format) -> String {
    match f {
        Format::Zinc => zinc(g),
        Format::Json => json(g),
    }
}

/// A request grid from a POST body.
pub fn decode(body: &str, f: Format) -> Result<Grid, String> {
    match f {
        Format::Zinc => {
            let v = libhaystack::encoding::zinc::decode::from_str(body)
                .map_err(|e| format!("invalid Zinc: {e}"))?;
            Grid::try_from(&v).map_err(|e| format!("invalid Zinc: {e}"))
        }
        Format::Json => {
            serde_json::from_str::<Grid>(body).map_err(|e| format!("invalid JSON grid: {e}"))
        }
    }
}

/// A grid of one row from GET query parameters (values in Zinc syntax,
/// bare words as strings, as the Haystack HTTP spec allows).
pub fn grid_of_query(pairs: &[(String, String)]) -> Grid {
    let mut row = Dict::new();
    for (k, v) in pairs {
        let value = libhaystack::encoding::zinc::decode::from_str(v)
            .ok()
            .filter(|x| !matches!(x, Value::Grid(_)))
            .unwrap_or_else(|| Value::make_str(v));
        row.insert(k.clone(), value);
    }
    grid_of_dicts(None, vec![row])
}

/// The records of a Trio file (the vgw lib's defs).
pub fn trio_dicts(text: &str) -> Result<Vec<Dict>, String> {
    libhaystack::encoding::trio::decode::TrioReader::dicts_from_str(text).map_err(|e| e.to_string())
}

pub fn symbol(s: &str) -> Value {
    Value::make_symbol(s)
}

/// Text of a Str cell, or the Zinc of anything else.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.value.clone()),
        Value::Null => None,
        other => Some(zinc_value(other)),
    }
}

pub fn number_of(v: &Value) -> Option<f64> {
    f64::try_from(v).ok()
}

pub fn ref_id(v: &Value) -> Option<String> {
    match v {
        Value::Ref(r) => Some(r.value.clone()),
        Value::Str(s) => Some(s.value.trim_start_matches('@').to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zinc_grids_keep_meta_and_columns() {
        let g = error_grid("bad \"filter\"", None);
        assert_eq!(
            zinc(&g),
            "ver:\"3.0\" dis:\"bad \\\"filter\\\"\" err\nempty\n"
        );
        let mut row = Dict::new();
        row.insert("id".into(), ref_of("hq", "nvr-1", Some("NVR \"1\"")));
        row.insert("temp".into(), number(41.5, Some("°C")));
        row.insert("nvr".into(), Value::Marker);
        let g = grid_of_dicts(None, vec![row, Dict::new()]);
        assert_eq!(
            zinc(&g),
            "ver:\"3.0\"\nid,nvr,temp\n@hq.nvr-1 \"NVR \\\"1\\\"\",M,41.5°C\n,,\n"
        );
        let empty = grid_of_dicts(None, Vec::new());
        assert_eq!(zinc(&empty), "ver:\"3.0\"\nempty\n");
    }

    #[test]
    fn json_has_no_nulls_and_requests_decode_in_both_formats() {
        let mut row = Dict::new();
        row.insert("a".into(), Value::Null);
        row.insert("b".into(), Value::make_str("x"));
        let j = json(&grid_of_dicts(None, vec![row]));
        assert!(!j.contains("null"), "{j}");
        let z = decode("ver:\"3.0\"\nfilter,limit\n\"site\",5\n", Format::Zinc).unwrap();
        assert_eq!(text(&z.rows[0]["filter"]).as_deref(), Some("site"));
        assert_eq!(number_of(&z.rows[0]["limit"]), Some(5.0));
        let j = decode(r#"{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"hq.nvr-1"}}]}"#, Format::Json).unwrap();
        assert_eq!(ref_id(&j.rows[0]["id"]).as_deref(), Some("hq.nvr-1"));
        assert!(decode("ver:\"3.0\"\nx\n@@@\n", Format::Zinc).is_err());
    }
}
