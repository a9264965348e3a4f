//! `/haystack/{op}`: the Haystack 4 HTTP rules around the ops — login
//! handshake, bearer tokens, GET only for side-effect-free ops (405),
//! Accept (406) and Content-Type (415), request grids (400), op errors as
//! error grids (200, as clients such as phable expect).

use super::AppState;
use crate::auth::Principal;
use crate::haystack::scram::Reply;
use crate::haystack::{ops, wire};
use crate::model::kinds::Role;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn grid_response(g: &wire::Grid, f: wire::Format) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, f.mime())],
        wire::encode(g, f),
    )
        .into_response()
}

/// The response format: Zinc unless Accept asks for JSON; 406 when Accept
/// names only formats we do not speak.
fn response_format(headers: &HeaderMap) -> Result<wire::Format, String> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(wire::Format::Zinc);
    };
    let mut any = false;
    for part in accept.split(',') {
        let m = part.split(';').next().unwrap_or("").trim();
        if m == "*/*" || m == "text/*" || m.is_empty() {
            any = true;
            continue;
        }
        if let Some(f) = wire::Format::of_media(m) {
            return Ok(f);
        }
    }
    if any {
        Ok(wire::Format::Zinc)
    } else {
        Err(format!(
            "cannot answer in `{accept}`: use text/zinc or application/json"
        ))
    }
}

enum Who {
    User(Principal, String),
    Anonymous,
}

pub async fn op(
    State(app): State<AppState>,
    Path(op): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string();
    let scheme = auth_header
        .split(' ')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if scheme == "HELLO" || scheme == "SCRAM" {
        return handshake(&app, &auth_header);
    }
    let who = if scheme == "BEARER" {
        let token = auth_header[6..].trim();
        let token = token.strip_prefix("authToken=").unwrap_or(token).trim();
        match app.auth.check_token(token) {
            Some(p) => Who::User(p, token.to_string()),
            None => return unauthorized("invalid or expired auth token: log in again"),
        }
    } else if app.site.settings.anonymous_read && ops::op_allows_get(&op) == Some(true) {
        Who::Anonymous
    } else {
        return unauthorized("log in first (HELLO, then SCRAM)");
    };

    let Some(get_ok) = ops::op_allows_get(&op) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no op `{op}`: see the `ops` op"),
        );
    };
    if method == Method::GET && !get_ok {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("`{op}` has side effects: use POST"),
        );
    }
    if method != Method::GET && method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST");
    }
    let format = match response_format(&headers) {
        Ok(f) => f,
        Err(m) => return plain(StatusCode::NOT_ACCEPTABLE, m),
    };
    let request = if method == Method::GET {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        wire::grid_of_query(&pairs)
    } else {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(in_format) = wire::Format::of_media(ct) else {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("request body `{ct}`: send text/zinc or application/json"),
            );
        };
        let text = String::from_utf8_lossy(&body);
        if text.trim().is_empty() {
            wire::grid_of_dicts(None, Vec::new())
        } else {
            match wire::decode(&text, in_format) {
                Ok(g) => g,
                Err(e) => return plain(StatusCode::BAD_REQUEST, e),
            }
        }
    };
    // Writes and actions need an operator; everything else any login.
    let needs_operator = match op.as_str() {
        "invokeAction" => true,
        "pointWrite" => request
            .rows
            .first()
            .is_some_and(|r| r.contains_key("level")),
        _ => false,
    };
    let (user, token) = match who {
        Who::User(p, token) => {
            if needs_operator && p.role < Role::Operator {
                return plain(StatusCode::FORBIDDEN, format!("`{op}` needs an operator"));
            }
            (Some(p.user), Some(token))
        }
        Who::Anonymous if needs_operator => {
            return unauthorized("log in first (HELLO, then SCRAM)")
        }
        Who::Anonymous => (None, None),
    };
    // hisRead reads SQLite: tell the runtime this worker blocks, so other
    // requests move on. The other ops are in-memory and bounded (filters
    // by a limit and a 5 s timeout); marking them blocking too cost a fifth
    // of the read throughput and a third more p99 (benches/haystack_bench.py).
    let run = || dispatch(&app, &op, &request, user.as_deref(), token.as_deref());
    let result = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread if op == "hisRead" => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    };
    match result {
        Ok(g) => grid_response(&g, format),
        Err(e) => {
            let mut r = grid_response(&wire::error_grid(&e.to_string(), None), format);
            r.extensions_mut().insert(super::metrics::HaystackErrorGrid);
            r
        }
    }
}

fn unauthorized(msg: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "HELLO".to_string())],
        msg.to_string(),
    )
        .into_response()
}

fn handshake(app: &AppState, header_value: &str) -> Response {
    match app.hs.handshakes.step(&app.auth, header_value) {
        Reply::Challenge(c) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, c)],
            "",
        )
            .into_response(),
        Reply::Done { auth_info, .. } => (
            StatusCode::OK,
            [(
                header::HeaderName::from_static("authentication-info"),
                auth_info,
            )],
            "",
        )
            .into_response(),
        Reply::Forbidden(m) => plain(StatusCode::FORBIDDEN, m),
        Reply::BadRequest(m) => plain(StatusCode::BAD_REQUEST, m),
    }
}

/// Runs one op; `user` and `token` are the caller's, when logged in.
fn dispatch(
    app: &AppState,
    op: &str,
    request: &wire::Grid,
    user: Option<&str>,
    token: Option<&str>,
) -> Result<wire::Grid, ops::OpError> {
    let who = user.unwrap_or("anonymous");
    match op {
        "about" => Ok(ops::about(app, user)),
        "ops" => Ok(ops::ops()),
        "formats" | "filetypes" => Ok(ops::formats()),
        "read" => ops::read(app, request),
        "nav" => ops::nav(app, request),
        "hisRead" => crate::haystack::points::his_read(app, request),
        "hisWrite" => crate::haystack::points::his_write(app, request),
        "defs" => ops::defs(request),
        "libs" => Ok(ops::libs()),
        "invokeAction" => ops::invoke_action(app, request, who),
        "watchSub" => app.hs.watches.sub(app, request),
        "watchPoll" => app.hs.watches.poll(app, request),
        "watchUnsub" => app.hs.watches.unsub(app, request),
        "pointWrite" => crate::haystack::points::point_write(app, request, who),
        "close" => {
            if let Some(t) = token {
                app.auth.revoke(t);
            }
            Ok(wire::grid_of_dicts(None, Vec::new()))
        }
        _ => Err(ops::OpError::Bad(format!(
            "op `{op}` is listed but not served"
        ))),
    }
}
