//! JSON the dashboard needs beyond the topology API: who is logged in
//! (the session cookie is HttpOnly, so a page cannot tell by itself), every
//! power/video/time edge at once for the topology view, and the storage
//! and retention summary.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::graph::vocab::sparql_prefixes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

type JsonResult = Result<Json<Value>, HttpError>;

fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// GET /api/session: the caller's user and role, or null; and whether
/// reading works without a login.
pub async fn session(State(app): State<AppState>, caller: Caller) -> Json<Value> {
    Json(json!({
        "user": caller.0.as_ref().map(|p| &p.user),
        "role": caller.0.as_ref().map(|p| p.role),
        "anonymous_read": app.site.settings.anonymous_read,
        "site": app.site.name,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyQuery {
    relation: Option<String>,
}

/// The downstream-oriented triple pattern of a relation (as the topology
/// queries orient them: a UPS feeds, a camera streams to its recorder, an
/// NTP server sets the clocks that synchronise with it).
fn edge_pattern(relation: &str) -> Option<&'static str> {
    match relation {
        "power" => Some("?from brick:feeds ?to"),
        "video" => Some("?from vgw:streamsVideoTo ?to"),
        "time" => Some("?to vgw:synchronizesTimeWith ?from"),
        _ => None,
    }
}

/// GET /api/topology?relation=power|video|time: every edge of that relation
/// in the store (user graph edits included) and the equipment it touches.
pub async fn topology(
    State(app): State<AppState>,
    caller: Caller,
    q: Result<Query<TopologyQuery>, axum::extract::rejection::QueryRejection>,
) -> JsonResult {
    super::api::require(&app, &caller)?;
    let Query(q) = q.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let relation = q.relation.unwrap_or_else(|| "power".into());
    let pattern = edge_pattern(&relation).ok_or_else(|| {
        HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("unknown relation `{relation}`: use power, video or time"),
        )
    })?;
    let query = format!(
        "{}SELECT ?from ?to WHERE {{ {pattern} }}",
        sparql_prefixes()
    );
    let worker = app.clone();
    let rows = tokio::task::spawn_blocking(move || worker.graph.select(&query))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let s = &app.site;
    let id_of = |t: &Option<oxigraph::model::Term>| match t {
        Some(oxigraph::model::Term::NamedNode(n)) => {
            Some(s.id_of_iri(n.as_str()).unwrap_or(n.as_str()).to_string())
        }
        _ => None,
    };
    let edges: BTreeSet<(String, String)> = rows
        .iter()
        .filter_map(|r| Some((id_of(r.first()?)?, id_of(r.get(1)?)?)))
        .collect();
    let ids: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    let nodes: Vec<Value> = ids
        .iter()
        .map(|id| match s.equipment(id) {
            Some(e) => json!({ "id": e.id, "name": e.name, "kind": e.kind }),
            None => json!({ "id": id, "name": id }),
        })
        .collect();
    Ok(Json(json!({
        "relation": relation,
        "nodes": nodes,
        "edges": edges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
    })))
}

/// GET /api/storage: recording disk, totals, health flags and per-camera
/// retention (configured and achieved).
pub async fn storage(State(app): State<AppState>, caller: Caller) -> JsonResult {
    super::api::require(&app, &caller)?;
    let Some(rec) = app.recording.get().cloned() else {
        return Ok(Json(json!({ "recording": false })));
    };
    let site = &app.site;
    let cameras: Vec<String> = rec.cameras().map(str::to_string).collect();
    let retention = crate::video::service::store_config(site).retention;
    let store = rec.store.clone();
    let (total, usage, disk, locks) = tokio::task::spawn_blocking(move || {
        let total = store.total_usage()?;
        let usage = cameras
            .into_iter()
            .map(|c| store.usage(&c).map(|u| (c, u)))
            .collect::<Result<Vec<_>, _>>()?;
        let disk =
            crate::video::store::retention::free_space(store.root(), &retention, total.bytes)
                .map(|(free, size)| (free, size, retention.floor(size)));
        let locks = store.locks()?;
        Ok::<_, crate::video::store::StoreError>((total, usage, disk, locks))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let now = crate::video::store::now_ms();
    let bookmark = super::video::BOOKMARK;
    let live_locks = locks
        .iter()
        .filter(|l| l.expires_at.is_none_or(|t| t > now))
        .collect::<Vec<_>>();
    let r = &site.settings.recording;
    let per_camera: Vec<Value> = usage
        .iter()
        .map(|(id, u)| {
            let e = site.equipment(id);
            let cfg = e.and_then(|e| e.recording.as_ref());
            let stats = rec.stats(id);
            let problem = stats
                .as_ref()
                .and_then(|s| s.problem.lock().ok().and_then(|p| p.clone()));
            json!({
                "id": id, "name": e.map(|e| e.name.as_str()),
                "mode": cfg.map(|c| c.mode),
                "retention_days": cfg.map(|c| c.retention_days),
                "max_bytes": cfg.and_then(|c| c.max_bytes),
                "bytes": u.bytes, "segments": u.segments, "days": u.days,
                "oldest": u.oldest_ms, "newest": u.newest_ms,
                "recording": stats.as_ref().map(|s| s.recording.load(Ordering::Relaxed)),
                "connected": stats.as_ref().map(|s| s.connected.load(Ordering::Relaxed)),
                "problem": problem,
                "locks": live_locks.iter().filter(|l| &l.camera == id).count(),
            })
        })
        .collect();
    Ok(Json(json!({
        "recording": true,
        "disk": disk.map(|(free, size, floor)| json!({ "free": free, "size": size, "keep_free": floor, "budget": r.disk_budget_bytes.is_some() })),
        "total": { "bytes": total.bytes, "segments": total.segments, "oldest": total.oldest_ms, "newest": total.newest_ms, "days": total.days },
        "health": {
            "write_error": rec.store.write_error(), "write_errors": rec.store.write_errors(),
            "retention_blocked": rec.store.retention_blocked(), "fragments_dropped": rec.store.dropped(),
        },
        "settings": {
            "retention_days": r.retention_days, "max_bytes_per_camera": r.max_bytes_per_camera,
            "min_free_percent": r.min_free_percent, "pre_alarm_s": r.pre_alarm_s,
            "post_alarm_s": r.post_alarm_s, "lock_days": r.lock_days,
        },
        "locks": {
            "bookmarks": live_locks.iter().filter(|l| l.reason.starts_with(bookmark)).count(),
            "evidence": live_locks.iter().filter(|l| !l.reason.starts_with(bookmark)).count(),
        },
        "cameras": per_camera,
    })))
}

#[cfg(test)]
mod tests {
    use super::edge_pattern;

    #[test]
    fn only_the_three_relations_have_edges() {
        for r in ["power", "video", "time"] {
            assert!(edge_pattern(r).is_some(), "{r}");
        }
        assert!(edge_pattern("all").is_none());
        assert!(edge_pattern("} DROP ALL {").is_none());
    }
}
