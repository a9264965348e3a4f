//! Topology API (`/api/...`): equipment lists, one equipment with its points
//! and relations, transitive upstream/downstream, and failure impact.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::graph::queries::{self, Direction, Relation};
use crate::graph::vocab::sparql_prefixes;
use crate::model::kinds::{EquipKind, Role};
use crate::model::{Equipment, LocationKind, Site};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

type ApiResult = Result<Json<Value>, HttpError>;

fn not_found(id: &str) -> HttpError {
    HttpError::json(StatusCode::NOT_FOUND, format!("no equipment `{id}`"))
}

/// Viewer access (or anonymous read), refused as JSON.
pub(crate) fn require(app: &AppState, caller: &Caller) -> Result<(), HttpError> {
    caller
        .require(app, Role::Viewer)
        .map_err(HttpError::as_json)
}

/// `{id, name, kind}` of an equipment id (or just the id for IRIs that
/// name nothing in the model, e.g. from user-graph edits).
fn brief(site: &Site, id: &str) -> Value {
    match site.equipment(id) {
        Some(e) => json!({ "id": e.id, "name": e.name, "kind": e.kind }),
        None => match site.point(id) {
            Some(p) => json!({ "id": p.id, "name": p.name, "kind": "point" }),
            None => json!({ "id": id }),
        },
    }
}

fn floor_and_building<'a>(site: &'a Site, e: &Equipment) -> (Option<&'a str>, Option<&'a str>) {
    let chain = site.location_chain(e.space.as_deref());
    let floor = chain
        .iter()
        .find(|l| matches!(l.kind, LocationKind::Floor { .. }))
        .map(|l| l.id.as_str());
    let building = chain
        .iter()
        .find(|l| l.kind == LocationKind::Building)
        .map(|l| l.id.as_str());
    (floor, building)
}

pub async fn site(State(app): State<AppState>, caller: Caller) -> ApiResult {
    require(&app, &caller)?;
    let s = &app.site;
    let mut equipment_in: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in s.equipment.iter().filter(|e| e.part_of.is_none()) {
        if let Some(sp) = &e.space {
            equipment_in.entry(sp.as_str()).or_default().push(&e.id);
        }
    }
    let children = |parent: &str| -> Vec<&crate::model::Location> {
        s.locations
            .iter()
            .filter(|l| l.parent.as_deref() == Some(parent))
            .collect()
    };
    let space_json = |l: &crate::model::Location| {
        let kind = match l.kind {
            LocationKind::Space { kind } => kind,
            _ => "space",
        };
        json!({ "id": l.id, "name": l.name, "kind": kind, "equipment": equipment_in.get(l.id.as_str()).cloned().unwrap_or_default() })
    };
    let buildings: Vec<Value> = s
        .locations
        .iter()
        .filter(|l| l.kind == LocationKind::Building)
        .map(|b| {
            let mut floors = Vec::new();
            let mut outdoor = Vec::new();
            for c in children(&b.id) {
                match c.kind {
                    LocationKind::Floor { level } => floors.push(json!({
                        "id": c.id, "name": c.name, "level": level,
                        "spaces": children(&c.id).into_iter().map(space_json).collect::<Vec<_>>(),
                    })),
                    _ => outdoor.push(space_json(c)),
                }
            }
            json!({ "id": b.id, "name": b.name, "floors": floors, "spaces": outdoor })
        })
        .collect();
    Ok(Json(json!({
        "id": s.id, "name": s.name, "timezone": s.timezone, "base_iri": s.base_iri,
        "counts": { "equipment": s.equipment.len(), "points": s.points.len(), "triples": app.graph.len() },
        "buildings": buildings,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    kind: Option<String>,
    space: Option<String>,
    floor: Option<String>,
    building: Option<String>,
    /// Include parts (disks, relays, batteries); default false.
    parts: Option<bool>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub async fn equipment_list(
    State(app): State<AppState>,
    caller: Caller,
    filter: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    require(&app, &caller)?;
    let Query(f) = filter.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let kind = match &f.kind {
        Some(k) => Some(kind_by_name(k).ok_or_else(|| {
            HttpError::json(StatusCode::BAD_REQUEST, format!("unknown kind `{k}`"))
        })?),
        None => None,
    };
    let s = &app.site;
    let limit = f.limit.unwrap_or(1000).min(10_000);
    let mut total = 0usize;
    let mut items = Vec::new();
    for e in &s.equipment {
        if (e.part_of.is_some() && !f.parts.unwrap_or(false)) || kind.is_some_and(|k| k != e.kind) {
            continue;
        }
        if f.space
            .as_ref()
            .is_some_and(|sp| e.space.as_ref() != Some(sp))
        {
            continue;
        }
        let (floor, building) = floor_and_building(s, e);
        if f.floor.as_deref().is_some_and(|x| floor != Some(x))
            || f.building.as_deref().is_some_and(|x| building != Some(x))
        {
            continue;
        }
        total += 1;
        if total > f.offset.unwrap_or(0) && items.len() < limit {
            items.push(json!({
                "id": e.id, "name": e.name, "kind": e.kind,
                "class": crate::graph::project::equip_class(e.kind),
                "space": e.space, "floor": floor, "building": building,
            }));
        }
    }
    Ok(Json(json!({ "total": total, "items": items })))
}

fn kind_by_name(name: &str) -> Option<EquipKind> {
    const KINDS: &[EquipKind] = &[
        EquipKind::Nvr,
        EquipKind::HybridRecorder,
        EquipKind::Dvr,
        EquipKind::IpCamera,
        EquipKind::AnalogCamera,
        EquipKind::Encoder,
        EquipKind::Ups,
        EquipKind::Pdu,
        EquipKind::PoeSwitch,
        EquipKind::NtpServer,
        EquipKind::VmsServer,
        EquipKind::Workstation,
        EquipKind::Gateway,
        EquipKind::StorageDrive,
        EquipKind::Relay,
        EquipKind::Battery,
    ];
    KINDS.iter().copied().find(|k| {
        serde_json::to_value(k)
            .ok()
            .and_then(|v| v.as_str().map(|s| s == name))
            .unwrap_or(false)
    })
}

/// One-hop relations of `iri` in both directions, from the store (so user
/// graph edits show too).
fn relations_query(iri: &str) -> String {
    format!(
        "{}SELECT ?rel ?other WHERE {{
          {{ <{iri}> brick:feeds ?other BIND(\"feeds\" AS ?rel) }} UNION {{ ?other brick:feeds <{iri}> BIND(\"fed_by\" AS ?rel) }}
          UNION {{ <{iri}> vgw:streamsVideoTo ?other BIND(\"streams_to\" AS ?rel) }} UNION {{ ?other vgw:streamsVideoTo <{iri}> BIND(\"video_sources\" AS ?rel) }}
          UNION {{ <{iri}> vgw:synchronizesTimeWith ?other BIND(\"time_source\" AS ?rel) }} UNION {{ ?other vgw:synchronizesTimeWith <{iri}> BIND(\"time_clients\" AS ?rel) }}
          UNION {{ <{iri}> vgw:isManagedBy ?other BIND(\"managed_by\" AS ?rel) }} UNION {{ ?other vgw:isManagedBy <{iri}> BIND(\"manages\" AS ?rel) }}
          UNION {{ <{iri}> brick:hasPart ?other BIND(\"parts\" AS ?rel) }} UNION {{ ?other brick:hasPart <{iri}> BIND(\"part_of\" AS ?rel) }}
        }}",
        sparql_prefixes()
    )
}

pub async fn equipment_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    require(&app, &caller)?;
    let s = &app.site;
    let e = s.equipment(&id).ok_or_else(|| not_found(&id))?;
    let rows = app
        .graph
        .select(&relations_query(&s.iri(&id)))
        .map_err(|e| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut relations: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in rows {
        if let (
            Some(oxigraph::model::Term::Literal(rel)),
            Some(oxigraph::model::Term::NamedNode(other)),
        ) = (&row[0], &row[1])
        {
            let other_id = s.id_of_iri(other.as_str()).unwrap_or(other.as_str());
            relations
                .entry(rel.value().to_string())
                .or_default()
                .push(brief(s, other_id));
        }
    }
    let points: Vec<Value> = s.points_of(e).iter().map(|p| point_json(s, p)).collect();
    let location: Vec<Value> = s
        .location_chain(e.space.as_deref())
        .iter()
        .map(|l| json!({ "id": l.id, "name": l.name, "type": l.kind }))
        .collect();
    let props: BTreeMap<&str, &crate::model::PropValue> =
        e.props.iter().map(|(k, v)| (*k, v)).collect();
    let tags = app.haystack_tags(&e.id);
    Ok(Json(json!({
        "id": e.id, "name": e.name, "kind": e.kind, "class": crate::graph::project::equip_class(e.kind),
        "iri": s.iri(&e.id), "haystack_id": format!("@{}.{}", s.id, e.id),
        "location": location, "properties": props, "relations": relations, "haystack": tags, "points": points,
        "device": app.onvif_facts.get(&e.id),
    })))
}

fn point_json(s: &Site, p: &crate::model::Point) -> Value {
    let t = p.template;
    json!({
        "id": p.id, "name": p.name,
        "class": p.class.curie(),
        "kind": t.kind, "unit": t.unit.and_then(|u| u.haystack), "writable": t.writable, "his": t.his,
        "bacnet": { "object": format!("{},{}", p.object_type.bacnet_name(), p.instance), "object_name": p.object_name(), "device": s.gateway_device_instance },
        "limits": p.limits.map(|(lo, hi)| json!({ "low": lo, "high": hi })),
    })
}

pub async fn point_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    require(&app, &caller)?;
    let p = app
        .site
        .point(&id)
        .ok_or_else(|| HttpError::json(StatusCode::NOT_FOUND, format!("no point `{id}`")))?;
    let mut v = point_json(&app.site, p);
    v["equipment"] = brief(&app.site, &p.equip);
    add_live(&app, &id, &mut v);
    Ok(Json(v))
}

/// Adds the live value, quality and (for writable points) the 17-level
/// priority array from the point engine.
fn add_live(app: &AppState, id: &str, v: &mut Value) {
    let Some(state) = app.points.index_of(id).and_then(|i| app.points.get(i)) else {
        return;
    };
    v["value"] = json!(state.value);
    v["quality"] = json!(state.quality);
    if let Some(pa) = &state.priority {
        let levels: Vec<Value> = pa
            .levels()
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Some(s) => json!({ "level": i + 1, "value": s.value, "who": s.who, "expires_in_s": s.expires.map(|t| t.saturating_duration_since(std::time::Instant::now()).as_secs()) }),
                None => json!({ "level": i + 1, "value": null }),
            })
            .collect();
        v["priority_array"] = json!(levels);
        v["active_level"] = json!(pa.effective().1);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// 1 (highest) ..= 17 (relinquish default).
    level: u8,
    /// true/false/number to write, null to relinquish the level.
    value: Option<serde_json::Value>,
    /// Seconds after which the write lapses (omit for permanent).
    duration_s: Option<u64>,
}

/// POST /api/points/{id}/command: write or relinquish one priority level
/// (the same array BACnet and Haystack write to). Needs an operator.
pub async fn point_command(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CommandBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    caller
        .require(&app, Role::Operator)
        .map_err(HttpError::as_json)?;
    let Json(b) = body.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let value = engine_value(b.value)?;
    let who = caller_name(&caller);
    let duration = b.duration_s.map(std::time::Duration::from_secs);
    let effective = app
        .points
        .command(&id, b.level, value, &format!("api:{who}"), duration)
        .map_err(write_error)?;
    tracing::info!(point = %id, level = b.level, user = %who, "point command");
    let mut v = json!({ "id": id, "value": effective });
    add_live(&app, &id, &mut v);
    Ok(Json(v))
}

fn write_error(e: crate::points::WriteError) -> HttpError {
    use crate::points::WriteError;
    let status = match e {
        WriteError::UnknownPoint(_) => StatusCode::NOT_FOUND,
        WriteError::NotWritable(_) => StatusCode::FORBIDDEN,
        WriteError::Commandable(_) => StatusCode::CONFLICT,
        WriteError::BadLevel(_) | WriteError::WrongType { .. } => StatusCode::BAD_REQUEST,
    };
    HttpError::json(status, e.to_string())
}

/// A JSON point value: true/false, a number, or null (relinquish / release).
fn engine_value(v: Option<Value>) -> Result<Option<crate::points::Value>, HttpError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(x)) => Ok(Some(crate::points::Value::Bool(x))),
        Some(Value::Number(n)) => Ok(Some(crate::points::Value::Number(
            n.as_f64().unwrap_or(f64::NAN),
        ))),
        Some(other) => Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("value must be true, false, a number or null, not {other}"),
        )),
    }
}

fn caller_name(caller: &Caller) -> String {
    caller
        .0
        .as_ref()
        .map_or("anonymous", |p| p.user.as_str())
        .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    value: Option<Value>,
}

/// POST /api/points/{id}/override: an operator's manual value for an input
/// point (commissioning, alarm tests); `null` releases it.
pub async fn point_override(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<OverrideBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    caller
        .require(&app, Role::Operator)
        .map_err(HttpError::as_json)?;
    let Json(b) = body.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let value = engine_value(b.value)?;
    let who = caller_name(&caller);
    let now = app.points.override_input(&id, value).map_err(write_error)?;
    tracing::info!(point = %id, user = %who, value = ?now, "input override");
    let mut v = json!({ "id": id, "value": now });
    add_live(&app, &id, &mut v);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationParam {
    relation: Option<String>,
}

async fn traverse(
    app: AppState,
    caller: Caller,
    id: String,
    param: Result<Query<RelationParam>, axum::extract::rejection::QueryRejection>,
    dir: Direction,
) -> ApiResult {
    require(&app, &caller)?;
    let Query(p) = param.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let name = p.relation.unwrap_or_else(|| "all".into());
    let rel = Relation::parse(&name).ok_or_else(|| {
        HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("unknown relation `{name}`: use power, video, time or all"),
        )
    })?;
    if app.site.equipment(&id).is_none() {
        return Err(not_found(&id));
    }
    let worker = app.clone();
    let id2 = id.clone();
    let ids = tokio::task::spawn_blocking(move || {
        queries::traverse(&worker.graph, &worker.site, &id2, rel, dir)
    })
    .await
    .map_err(|_| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, "query worker failed"))?
    .map_err(|e| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let items: Vec<Value> = ids.iter().map(|i| brief(&app.site, i)).collect();
    Ok(Json(json!({
        "id": id, "relation": rel,
        "direction": if dir == Direction::Downstream { "downstream" } else { "upstream" },
        "count": items.len(), "equipment": items,
    })))
}

pub async fn downstream(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<RelationParam>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    traverse(app, caller, id, q, Direction::Downstream).await
}

pub async fn upstream(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<RelationParam>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    traverse(app, caller, id, q, Direction::Upstream).await
}

pub async fn impact(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    require(&app, &caller)?;
    if app.site.equipment(&id).is_none() {
        return Err(not_found(&id));
    }
    let worker = app.clone();
    let id2 = id.clone();
    let imp =
        tokio::task::spawn_blocking(move || queries::impact(&worker.graph, &worker.site, &id2))
            .await
            .map_err(|_| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, "query worker failed"))?
            .map_err(|e| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let s = &app.site;
    let list = |ids: &[String]| ids.iter().map(|i| brief(s, i)).collect::<Vec<_>>();
    // Every point of dark equipment is lost; unrecorded sources lose their
    // recording points; unsynced clocks their time points.
    let mut points: Vec<Value> = Vec::new();
    let mut add_points = |ids: &[String], why: &str, only: Option<&[&str]>| {
        for e in ids.iter().filter_map(|i| s.equipment(i)) {
            for p in s.points_of(e) {
                if only.is_none_or(|keys| keys.iter().any(|k| p.key.starts_with(k))) {
                    points.push(json!({ "id": p.id, "name": p.name, "cause": why }));
                }
            }
        }
    };
    add_points(&imp.unpowered, "unpowered", None);
    add_points(
        &imp.not_recorded,
        "not_recorded",
        Some(&["recording-ok", "retention"]),
    );
    add_points(&imp.time_unsynced, "time_unsynced", Some(&["time-"]));
    Ok(Json(json!({
        "id": id,
        "summary": { "unpowered": imp.unpowered.len(), "not_recorded": imp.not_recorded.len(), "time_unsynced": imp.time_unsynced.len(), "points": points.len() },
        "unpowered": list(&imp.unpowered), "not_recorded": list(&imp.not_recorded), "time_unsynced": list(&imp.time_unsynced),
        "points": points,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    user: String,
    password: String,
}

/// POST /api/login with Basic credentials or `{"user", "password"}` →
/// a bearer token.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    let creds = if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        decoded.and_then(|d| {
            d.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        })
    } else {
        serde_json::from_slice::<LoginBody>(&body)
            .ok()
            .map(|b| (b.user, b.password))
    };
    let Some((user, pass)) = creds else {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            "send Basic credentials or a JSON body {\"user\": ..., \"password\": ...}",
        ));
    };
    let worker = app.clone();
    let result = tokio::task::spawn_blocking(move || worker.auth.check_password(&user, &pass))
        .await
        .map_err(|_| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, "login failed"))?;
    match result {
        Ok(p) => {
            let role = p.role;
            let token = app.auth.issue_token(p);
            let ttl = app.auth.token_ttl();
            // The same token as a session cookie, for the dashboard.
            let cookie = super::access::session_cookie(&token, ttl);
            Ok((
                [(header::SET_COOKIE, cookie)],
                Json(json!({ "token": token, "token_type": "Bearer", "expires_in": ttl.as_secs(), "role": role })),
            )
                .into_response())
        }
        Err(crate::auth::LoginError::Invalid) => Err(HttpError::json(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        )),
        Err(crate::auth::LoginError::Throttled(d)) => Err(HttpError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many failed logins; retry in {} s", d.as_secs() + 1),
            json: true,
            retry_after: Some(d.as_secs() + 1),
        }),
    }
}

/// POST /api/logout: revokes the bearer token, or the session cookie's
/// token (and clears the cookie).
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        return if app.auth.revoke(t.trim()) {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(HttpError::json(
                StatusCode::UNAUTHORIZED,
                "no valid bearer token to revoke",
            ))
        };
    }
    match super::access::session_token(&headers) {
        // A stale cookie is cleared too: the browser is logged out either way.
        Some(t) => {
            app.auth.revoke(t);
            Ok((
                StatusCode::NO_CONTENT,
                [(header::SET_COOKIE, super::access::clear_session_cookie())],
            )
                .into_response())
        }
        None => Err(HttpError::json(
            StatusCode::UNAUTHORIZED,
            "no valid bearer token to revoke",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRange {
    /// Milliseconds since the Unix epoch, inclusive (default: 24 h ago).
    start: Option<i64>,
    /// Milliseconds since the Unix epoch, exclusive (default: now).
    end: Option<i64>,
    /// At most this many samples (default 10 000, max 100 000).
    limit: Option<usize>,
}

/// GET /api/points/{id}/history?start=&end=: recorded samples, oldest first.
pub async fn point_history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<HistoryRange>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    require(&app, &caller)?;
    let Query(r) = q.map_err(|e| HttpError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let p = app
        .site
        .point(&id)
        .ok_or_else(|| HttpError::json(StatusCode::NOT_FOUND, format!("no point `{id}`")))?;
    if !p.template.his {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            format!("point `{id}` is not historised"),
        ));
    }
    if app.history.is_none() {
        return Err(HttpError::json(
            StatusCode::SERVICE_UNAVAILABLE,
            "this gateway runs without a data dir, so it keeps no history",
        ));
    }
    let end = r.end.unwrap_or_else(crate::points::history::now_ms);
    let start = r.start.unwrap_or(end - 24 * 3600 * 1000);
    if start > end {
        return Err(HttpError::json(
            StatusCode::BAD_REQUEST,
            "start is after end",
        ));
    }
    let limit = r.limit.unwrap_or(10_000).min(100_000);
    let as_bool = p.template.kind == crate::model::templates::ValueKind::Bool;
    let worker = app.clone();
    let id2 = id.clone();
    let samples = tokio::task::spawn_blocking(move || {
        worker
            .history
            .as_ref()
            .map(|h| h.read(&id2, start, end, limit, as_bool))
    })
    .await
    .map_err(|_| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, "history worker failed"))?
    .unwrap_or_else(|| Ok(Vec::new()))
    .map_err(|e| HttpError::json(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let rows: Vec<Value> = samples
        .iter()
        .map(|s| json!({ "ts": s.ts_ms, "value": s.value, "quality": s.quality }))
        .collect();
    Ok(Json(
        json!({ "id": id, "start": start, "end": end, "unit": p.template.unit.and_then(|u| u.haystack), "count": rows.len(), "samples": rows }),
    ))
}

/// The BACnet point list, built from the same plan the device serves.
fn bacnet_plan(app: &AppState) -> crate::bacnet::plan::Plan {
    crate::bacnet::plan::plan(&app.site, &app.haystack)
}

fn csv_download(name: &str, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// GET /api/bacnet/ede.csv: the EDE point list (state texts beside it).
pub async fn bacnet_ede(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::response::Response, HttpError> {
    require(&app, &caller)?;
    let plan = bacnet_plan(&app);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let name = format!("{}_EDE.csv", app.site.id);
    Ok(csv_download(
        &name,
        crate::bacnet::ede::ede(&plan, &app.site.name, &today),
    ))
}

/// GET /api/bacnet/state-texts.csv: the EDE state-text file.
pub async fn bacnet_state_texts(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::response::Response, HttpError> {
    require(&app, &caller)?;
    let name = format!("{}_StateTexts.csv", app.site.id);
    Ok(csv_download(
        &name,
        crate::bacnet::ede::state_texts(&bacnet_plan(&app)),
    ))
}

/// GET /api/bacnet/points.csv: the point list as plain CSV.
pub async fn bacnet_points_csv(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::response::Response, HttpError> {
    require(&app, &caller)?;
    let name = format!("{}_points.csv", app.site.id);
    Ok(csv_download(
        &name,
        crate::bacnet::ede::plain_csv(&bacnet_plan(&app)),
    ))
}

/// One alarm as the API shows it.
pub(crate) fn alarm_json(
    app: &AppState,
    point: usize,
    a: &crate::points::alarms::AlarmState,
) -> Value {
    let p = &app.site.points[point];
    let since = a
        .since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "id": p.id,
        "name": p.name,
        "equipment": p.equip,
        "state": a.state,
        "since": since,
        "acked": a.acked,
        "acked_by": a.acked_by,
        "class": app.alarms.definition(point).map(|d| d.class()),
        "value": app.points.get(point).map(|s| s.value),
    })
}

/// GET /api/alarms: every alarm point that is not normal or not acknowledged.
pub async fn alarms_active(State(app): State<AppState>, caller: Caller) -> ApiResult {
    require(&app, &caller)?;
    let list: Vec<Value> = app
        .alarms
        .active()
        .iter()
        .map(|(i, a)| alarm_json(&app, *i, a))
        .collect();
    Ok(Json(json!({ "count": list.len(), "alarms": list })))
}

/// POST /api/alarms/{id}/ack: acknowledges the point's latest transition.
pub async fn alarm_ack(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller
        .require(&app, Role::Operator)
        .map_err(HttpError::as_json)?;
    let point = app
        .points
        .index_of(&id)
        .ok_or_else(|| HttpError::json(StatusCode::NOT_FOUND, format!("no point `{id}`")))?;
    let who = format!("api:{}", caller_name(&caller));
    let a = app.alarms.acknowledge(point, &who).map_err(|e| {
        let status = match e {
            crate::points::alarms::AckError::NoAlarm(_) => StatusCode::NOT_FOUND,
            crate::points::alarms::AckError::NothingToAck(_) => StatusCode::CONFLICT,
        };
        HttpError::json(status, e.to_string())
    })?;
    tracing::info!(point = %id, user = %who, "alarm acknowledged");
    app.note_ack(point, &who);
    // The BMS sees it acknowledged too.
    if let Some(stack) = app.bacnet.get().and_then(std::sync::Weak::upgrade) {
        if let Err(e) = stack.acknowledge(point).await {
            tracing::warn!(point = %id, "BACnet acknowledgement failed: {e}");
        }
    }
    Ok(Json(alarm_json(&app, point, &a)))
}
