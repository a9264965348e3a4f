//! Haystack ops on the gateway: each takes the request grid and answers a
//! grid, or an `OpError` that becomes an error grid.

use super::filter::FilterError;
use super::wire::{self, Dict, Grid, Value};
use crate::app::App;
use std::time::{Duration, Instant};

/// Rows a `read` by filter returns when the request gives no limit.
pub const DEFAULT_LIMIT: usize = 10_000;
/// A filter evaluation gives up after this long.
pub const FILTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// The ops this server implements: name, summary, and whether GET may
/// call it (no side effects).
pub const OPS: &[(&str, &str, bool)] = &[
    ("about", "Summary information for server", true),
    ("ops", "Operations supported by this server", true),
    (
        "formats",
        "Grid data formats supported by this server",
        true,
    ),
    (
        "filetypes",
        "Grid data formats supported by this server (Haystack 4 name)",
        true,
    ),
    ("read", "Read entity records by filter or by id", true),
    ("nav", "Navigate site, spaces, equipment and points", true),
    (
        "pointWrite",
        "Write or read the priority array of a writable point",
        false,
    ),
    ("hisRead", "Read the history of a point", true),
    (
        "hisWrite",
        "Write history (no point of this model takes it)",
        false,
    ),
    (
        "defs",
        "Defs of the tags used: the vgw lib in full, standard tags by reference",
        true,
    ),
    ("libs", "The libs those defs come from", true),
    (
        "invokeAction",
        "Run an action on an entity (relays: pulse)",
        false,
    ),
    ("watchSub", "Open or extend a watch on entities", false),
    ("watchPoll", "Poll a watch for changed points", false),
    (
        "watchUnsub",
        "Remove entities from a watch, or close it",
        false,
    ),
    ("close", "Close the session: revoke the bearer token", false),
];

pub fn op_allows_get(op: &str) -> Option<bool> {
    OPS.iter()
        .find(|(n, _, _)| *n == op)
        .map(|(_, _, get)| *get)
}

fn row(pairs: Vec<(&str, Value)>) -> Dict {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert(k.to_string(), v);
    }
    d
}

fn now_value(app: &App) -> Value {
    let tz = crate::graph::project::haystack_tz(&app.site.timezone);
    wire::date_time(chrono::Utc::now().timestamp_millis(), &tz)
}

pub fn about(app: &App, user: Option<&str>) -> Grid {
    let mut pairs = vec![
        ("haystackVersion", Value::make_str("4.0")),
        (
            "tz",
            Value::make_str(&crate::graph::project::haystack_tz(&app.site.timezone)),
        ),
        ("serverName", Value::make_str(&app.site.name)),
        ("serverTime", now_value(app)),
        ("productName", Value::make_str("vgw")),
        ("productUri", Value::make_uri("https://w3id.org/vgw")),
        ("productVersion", Value::make_str(env!("CARGO_PKG_VERSION"))),
        ("vendorName", Value::make_str("vgw")),
        ("vendorUri", Value::make_uri("https://w3id.org/vgw")),
        ("moduleName", Value::make_str("vgw")),
        ("moduleVersion", Value::make_str(env!("CARGO_PKG_VERSION"))),
    ];
    if let Some(u) = user {
        pairs.push(("whoami", Value::make_str(u)));
    }
    let r = row(pairs);
    wire::grid_of_dicts(None, vec![r])
}

pub fn ops() -> Grid {
    let rows = OPS
        .iter()
        .map(|(n, s, _)| {
            row(vec![
                ("name", Value::make_str(n)),
                ("summary", Value::make_str(s)),
            ])
        })
        .collect();
    wire::grid(None, &["name", "summary"], rows)
}

pub fn formats() -> Grid {
    let rows = ["text/zinc", "application/json"]
        .iter()
        .map(|m| {
            row(vec![
                ("mime", Value::make_str(m)),
                ("receive", Value::Marker),
                ("send", Value::Marker),
            ])
        })
        .collect();
    wire::grid(None, &["mime", "receive", "send"], rows)
}

/// `read`: by `filter` (+ `limit`), or by one `id` per row, in request
/// order, with an all-empty row for an unknown id.
pub fn read(app: &App, req: &Grid) -> Result<Grid, OpError> {
    let ix = &app.hs.index;
    let first = req.rows.first();
    if req.columns.iter().any(|c| c.name == "id") {
        let rows: Vec<Dict> = req
            .rows
            .iter()
            .map(|r| {
                r.get("id")
                    .and_then(wire::ref_id)
                    .and_then(|id| ix.position(&id))
                    .map(|i| super::points::with_live_tags(app, i))
                    .unwrap_or_default()
            })
            .collect();
        let mut g = wire::grid_of_dicts(None, rows);
        if g.columns.iter().all(|c| c.name != "id") {
            g = wire::grid(None, &["id"], g.rows);
        }
        return Ok(g);
    }
    let filter = first
        .and_then(|r| r.get("filter"))
        .and_then(wire::text)
        .ok_or_else(|| OpError::Bad("read needs a `filter` or `id` column".into()))?;
    let limit = first
        .and_then(|r| r.get("limit"))
        .and_then(wire::number_of)
        .filter(|n| *n >= 1.0)
        .map_or(DEFAULT_LIMIT, |n| n as usize);
    let f = super::filter::parse(&filter)?;
    let hits = ix.query(&f, limit, Instant::now() + FILTER_TIMEOUT)?;
    let rows = hits
        .iter()
        .map(|i| super::points::with_live_tags(app, *i))
        .collect();
    Ok(wire::grid_of_dicts(None, rows))
}

/// `nav`: site → buildings → floors → rooms → equipment → points. Rows
/// with children carry `navId`.
pub fn nav(app: &App, req: &Grid) -> Result<Grid, OpError> {
    let ix = &app.hs.index;
    let nav_id = req
        .rows
        .first()
        .and_then(|r| r.get("navId"))
        .and_then(wire::ref_id);
    let site_ref = format!("{}.{}", app.site.id, crate::graph::project::SITE_ENTITY_ID);
    let children: Vec<usize> = match nav_id {
        None => ix.position(&site_ref).into_iter().collect(),
        Some(id) => {
            let Some(d) = ix.get(&id) else {
                return Err(OpError::Bad(format!("unknown navId `{id}`")));
            };
            let has = |t: &str| d.get(t).is_some_and(|v| v.is_marker());
            let mut out: Vec<usize> = Vec::new();
            if has("site") {
                out.extend(ix.referrers("siteRef", &id).iter().filter(|i| {
                    let c = &ix.dicts[**i];
                    c.contains_key("space") && !c.contains_key("spaceRef")
                }));
            } else if has("space") {
                out.extend(ix.referrers("spaceRef", &id).iter().filter(|i| {
                    let c = &ix.dicts[**i];
                    c.contains_key("space")
                        || (c.contains_key("equip") && !c.contains_key("equipRef"))
                }));
            } else if has("equip") {
                out.extend(ix.referrers("equipRef", &id).iter().filter(|i| {
                    let c = &ix.dicts[**i];
                    c.contains_key("equip") || c.contains_key("point")
                }));
            }
            out
        }
    };
    let rows = children
        .iter()
        .map(|i| {
            let mut d = super::points::with_live_tags(app, *i);
            if !d.contains_key("point") {
                if let Some(id) = d.get("id").cloned() {
                    if let Some(r) = wire::ref_id(&id) {
                        d.insert("navId".into(), Value::make_str(&r));
                    }
                }
            }
            d
        })
        .collect();
    Ok(wire::grid_of_dicts(None, rows))
}

/// Standard libs the model's tags come from, then the vgw lib.
const LIBS: &[(&str, &str)] = &[
    ("ph", "3.9.15"),
    ("phScience", "3.9.15"),
    ("phIoT", "3.9.15"),
    ("phIct", "3.9.15"),
];

/// `defs`: every def of the vgw lib (from `haystack/vgw.trio`), and for
/// each standard tag the model uses, a def naming its lib.
pub fn defs(req: &Grid) -> Result<Grid, OpError> {
    let mut rows = wire::trio_dicts(crate::graph::haystack_lib::VGW_TRIO)
        .map_err(|e| OpError::Bad(format!("vgw lib: {e}")))?;
    for d in rows.iter_mut() {
        d.insert("lib".into(), wire::symbol("lib:vgw"));
    }
    for line in crate::graph::haystack_lib::STANDARD_TAGS_TSV
        .lines()
        .skip(1)
    {
        let mut cols = line.split('\t');
        let (Some(tag), Some(lib)) = (cols.next(), cols.next()) else {
            continue;
        };
        rows.push(row(vec![
            ("def", wire::symbol(tag)),
            ("lib", wire::symbol(&format!("lib:{lib}"))),
        ]));
    }
    // Optional `filter` on the defs themselves (e.g. `lib==^lib:vgw`).
    if let Some(f) = req
        .rows
        .first()
        .and_then(|r| r.get("filter"))
        .and_then(wire::text)
    {
        let f = super::filter::parse(&f)?;
        let ix = super::filter::Index::build(rows);
        let hits = ix.query(&f, usize::MAX, Instant::now() + FILTER_TIMEOUT)?;
        rows = hits.iter().map(|i| ix.dicts[*i].clone()).collect();
    }
    Ok(wire::grid_of_dicts(None, rows))
}

/// `libs`: the standard libs by version, and the vgw lib.
pub fn libs() -> Grid {
    let mut rows: Vec<Dict> = LIBS
        .iter()
        .map(|(n, v)| {
            row(vec![
                ("def", wire::symbol(&format!("lib:{n}"))),
                ("version", Value::make_str(v)),
                (
                    "baseUri",
                    Value::make_uri(&format!("https://project-haystack.org/def/{n}/")),
                ),
            ])
        })
        .collect();
    rows.push(row(vec![
        ("def", wire::symbol("lib:vgw")),
        ("version", Value::make_str("0.1.0")),
        ("baseUri", Value::make_uri("https://w3id.org/vgw/haystack/")),
    ]));
    wire::grid(None, &["def", "version", "baseUri"], rows)
}

/// `invokeAction`: `pulse` on a relay writes it on at level 8 for
/// `duration` (default 1 s), after which the write lapses by itself.
pub fn invoke_action(app: &App, req: &Grid, user: &str) -> Result<Grid, OpError> {
    let meta = req.meta.as_ref();
    let id = meta
        .and_then(|m| m.get("id"))
        .and_then(wire::ref_id)
        .ok_or_else(|| OpError::Bad("invokeAction needs `id` in the grid meta".into()))?;
    let action = meta
        .and_then(|m| m.get("action"))
        .and_then(wire::text)
        .ok_or_else(|| OpError::Bad("invokeAction needs `action` in the grid meta".into()))?;
    let model_id = wire::model_id(&app.site.id, &id).unwrap_or(&id);
    let point = app
        .site
        .point(model_id)
        .ok_or_else(|| OpError::Bad(format!("`@{id}` has no actions")))?;
    match action.as_str() {
        "pulse" if point.template.writable => {
            let secs = req
                .rows
                .first()
                .and_then(|r| r.get("duration"))
                .and_then(wire::number_of)
                .filter(|s| *s > 0.0 && *s <= 3600.0)
                .unwrap_or(1.0);
            app.points
                .command(
                    model_id,
                    8,
                    Some(crate::points::Value::Bool(true)),
                    &format!("haystack:{user}:pulse"),
                    Some(Duration::from_secs_f64(secs)),
                )
                .map_err(|e| OpError::Bad(e.to_string()))?;
            Ok(wire::grid_of_dicts(None, Vec::new()))
        }
        other => Err(OpError::Bad(format!(
            "`@{id}` has no action `{other}` (relays have `pulse`)"
        ))),
    }
}
