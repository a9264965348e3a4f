//! SPARQL 1.1 Protocol: query (GET, POST form, POST sparql-query), update
//! (POST only, user graph only, needs the configured role) and Graph Store
//! Protocol GET. Every query runs on a blocking thread with a time limit
//! and a row limit, and at most a few run at once.

use super::access::{Caller, HttpError};
use super::AppState;
use crate::graph::formats;
use crate::graph::store::{CancellationToken, Dataset, QueryError, UpdateError};
use crate::model::kinds::Role;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a request may wait for a free query slot.
const SLOT_WAIT: Duration = Duration::from_secs(5);
/// How long past the time limit we wait for a cancelled query to stop.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

fn params(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn one(params: &[(String, String)], name: &str) -> Result<Option<String>, HttpError> {
    let mut it = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone());
    let first = it.next();
    if it.next().is_some() {
        return Err(HttpError::text(
            StatusCode::BAD_REQUEST,
            format!("more than one `{name}` parameter"),
        ));
    }
    Ok(first)
}

fn dataset(params: &[(String, String)]) -> Result<Dataset, HttpError> {
    let iris = |name: &str| -> Result<Vec<String>, HttpError> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                oxigraph::model::NamedNode::new(v.clone())
                    .map(|n| n.into_string())
                    .map_err(|e| {
                        HttpError::text(
                            StatusCode::BAD_REQUEST,
                            format!("`{name}` is not an IRI: {e}"),
                        )
                    })
            })
            .collect()
    };
    Ok(Dataset {
        default_graphs: iris("default-graph-uri")?,
        named_graphs: iris("named-graph-uri")?,
    })
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn accept(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub async fn query_get(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    caller.require(&app, Role::Viewer)?;
    let p = params(raw.as_deref());
    let Some(q) = one(&p, "query")? else {
        return Ok(service_description(&app));
    };
    run_query(app, q, dataset(&p)?, accept(&headers)).await
}

pub async fn query_post(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    caller.require(&app, Role::Viewer)?;
    let url_params = params(raw.as_deref());
    let (q, p) = match content_type(&headers).as_str() {
        "application/x-www-form-urlencoded" => {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            let q = one(&form, "query")?.ok_or_else(|| HttpError::text(StatusCode::BAD_REQUEST, "missing `query` form field"))?;
            (q, form)
        }
        "application/sparql-query" => {
            let q = String::from_utf8(body.to_vec()).map_err(|_| HttpError::text(StatusCode::BAD_REQUEST, "query body is not UTF-8"))?;
            (q, url_params)
        }
        other => {
            return Err(HttpError::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type `{other}` is not accepted; send application/sparql-query or application/x-www-form-urlencoded"),
            ))
        }
    };
    run_query(app, q, dataset(&p)?, accept(&headers)).await
}

async fn run_query(
    app: AppState,
    query: String,
    ds: Dataset,
    accept: Option<String>,
) -> Result<Response, HttpError> {
    // The permit travels into the worker: Oxigraph checks the cancel token
    // only when it reads the store, so a join evaluated in memory (e.g. a
    // cartesian product) can outlive the time limit; it then keeps its slot
    // until it really ends, and the slot limit bounds the damage.
    let slot = tokio::time::timeout(SLOT_WAIT, app.query_slots.clone().acquire_owned())
        .await
        .map_err(|_| {
            HttpError::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "all query slots are busy; retry later",
            )
        })?
        .map_err(|_| HttpError::text(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let limit = Duration::from_millis(app.site.settings.sparql_timeout_ms);
    let max = app.site.settings.sparql_max_results;
    let token = CancellationToken::new();
    let timer = {
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            t.cancel();
        })
    };
    let worker = app.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let answer = worker.graph.query(&query, &ds, max, token)?;
        let chosen = formats::negotiate(&answer, accept.as_deref());
        Ok::<_, QueryError>((answer, chosen))
    });
    // Oxigraph may notice the cancel token late (inside an in-memory join
    // or path closure); the client gets its answer at the limit regardless.
    let result = match tokio::time::timeout(limit + CANCEL_GRACE, job).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                "a SPARQL query outlived its {} ms limit; it keeps a query slot until it stops",
                limit.as_millis()
            );
            Ok(Err(QueryError::Timeout))
        }
    };
    timer.abort();
    let (answer, chosen) = match result {
        Ok(Ok(x)) => x,
        Ok(Err(QueryError::Timeout)) => {
            return Err(HttpError::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "query cancelled after the {} ms time limit",
                    limit.as_millis()
                ),
            ))
        }
        Ok(Err(e @ (QueryError::Syntax(_) | QueryError::TooLarge(_)))) => {
            return Err(HttpError::text(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Ok(Err(QueryError::Eval(e))) => {
            return Err(HttpError::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("query evaluation failed: {e}"),
            ))
        }
        Err(_) => {
            return Err(HttpError::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "query worker failed",
            ))
        }
    };
    let chosen = chosen.ok_or_else(|| {
        HttpError::text(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable format: results come as application/sparql-results+json, application/sparql-results+xml, text/csv, text/tab-separated-values; graphs as text/turtle, application/n-triples, application/ld+json, application/rdf+xml",
        )
    })?;
    let body = formats::serialize(&answer, chosen)
        .map_err(|e| HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, chosen.media_type())], body).into_response())
}

/// GET /sparql without a query: a short description of the endpoint.
fn service_description(app: &AppState) -> Response {
    let text = format!(
        "vgw SPARQL 1.1 endpoint for site `{}` ({} triples).\n\
         Query: GET /sparql?query=... or POST (application/sparql-query, or form field `query`).\n\
         Default graph: union of <{}> (model), <{}> (ontology) and <{}> (user edits).\n\
         Updates: POST /sparql/update ({}).\n\
         Whole graph: GET /sparql/graph (model), ?graph=IRI, or ?default (union).\n",
        app.site.id,
        app.graph.len(),
        crate::graph::vocab::GRAPH_MODEL,
        crate::graph::vocab::GRAPH_ONTOLOGY,
        crate::graph::vocab::GRAPH_USER,
        match app.site.settings.sparql_update_role {
            Some(r) => format!("needs role {r:?}"),
            None => "disabled; set [sparql] update_role".into(),
        }
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

pub async fn update_post(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let Some(role) = app.site.settings.sparql_update_role else {
        return Err(HttpError::text(StatusCode::FORBIDDEN, "SPARQL updates are disabled on this gateway; set [sparql] update_role in the site file"));
    };
    caller.require(&app, role)?;
    let update = match content_type(&headers).as_str() {
        "application/x-www-form-urlencoded" => {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            one(&form, "update")?.ok_or_else(|| HttpError::text(StatusCode::BAD_REQUEST, "missing `update` form field"))?
        }
        "application/sparql-update" => String::from_utf8(body.to_vec()).map_err(|_| HttpError::text(StatusCode::BAD_REQUEST, "update body is not UTF-8"))?,
        other => {
            return Err(HttpError::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type `{other}` is not accepted; send application/sparql-update or application/x-www-form-urlencoded"),
            ))
        }
    };
    let worker = app.clone();
    let result = tokio::task::spawn_blocking(move || worker.graph.update_user_graph(&update))
        .await
        .map_err(|_| HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, "update worker failed"))?;
    match result {
        Ok(n) => Ok((
            StatusCode::OK,
            format!("ok: the user graph now has {n} triples\n"),
        )
            .into_response()),
        Err(e @ (UpdateError::Syntax(_) | UpdateError::Rejected(_))) => {
            Err(HttpError::text(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(UpdateError::Failed(e)) => Err(HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

/// Graph Store Protocol (read side): the model graph by default,
/// `?graph=IRI` for one named graph, `?default` for the union.
pub async fn graph_get(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    caller.require(&app, Role::Viewer)?;
    let p = params(raw.as_deref());
    let graph = match (one(&p, "graph")?, p.iter().any(|(k, _)| k == "default")) {
        (Some(_), true) => {
            return Err(HttpError::text(
                StatusCode::BAD_REQUEST,
                "use either `graph` or `default`, not both",
            ))
        }
        (Some(g), false) => {
            if ![
                crate::graph::vocab::GRAPH_MODEL,
                crate::graph::vocab::GRAPH_ONTOLOGY,
                crate::graph::vocab::GRAPH_USER,
            ]
            .contains(&g.as_str())
            {
                return Err(HttpError::text(
                    StatusCode::NOT_FOUND,
                    format!("no graph <{g}>"),
                ));
            }
            Some(g)
        }
        (None, true) => None,
        (None, false) => Some(crate::graph::vocab::GRAPH_MODEL.to_string()),
    };
    let chosen = formats::negotiate_graph(accept(&headers).as_deref())
        .ok_or_else(|| HttpError::text(StatusCode::NOT_ACCEPTABLE, "graphs come as text/turtle, application/n-triples, application/ld+json or application/rdf+xml"))?;
    let formats::Chosen::Graph(media, format) = chosen else {
        unreachable!("graph negotiation yields graph formats")
    };
    let worker = app.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        worker
            .graph
            .dump(graph.as_deref(), format, &mut out)
            .map(|_| out)
    })
    .await
    .map_err(|_| HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, "export worker failed"))?
    .map_err(|e| HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, media)], body).into_response())
}
