//! Who may do what over HTTP. Reading the model needs a viewer unless the
//! site opts into anonymous read; everything else needs its role. A bad
//! token is a 401, never a silent fall-back to anonymous.

use super::AppState;
use crate::auth::{LoginError, Principal};
use crate::model::kinds::Role;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The browser session cookie: the same bearer token `/api/login` returns,
/// for requests a page cannot add a header to (`<video src>`, EventSource).
pub const SESSION_COOKIE: &str = "vgw_session";

/// An HTTP error with a plain-text or JSON body.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
    pub json: bool,
    pub retry_after: Option<u64>,
}

impl HttpError {
    pub fn text(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            json: false,
            retry_after: None,
        }
    }
    pub fn json(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            json: true,
            retry_after: None,
        }
    }
    pub fn as_json(mut self) -> Self {
        self.json = true;
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = if self.json {
            (
                self.status,
                axum::Json(serde_json::json!({ "error": self.message })),
            )
                .into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", self.message),
            )
                .into_response()
        };
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vgw\", Basic realm=\"vgw\""),
            );
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The authenticated caller, if any credentials were sent.
pub struct Caller(pub Option<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return session_caller(parts, app);
        };
        let value = value.to_str().unwrap_or("");
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let unauthorized = |m: &str| HttpError::text(StatusCode::UNAUTHORIZED, m);
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => match app.auth.check_token(rest.trim()) {
                Some(p) => Ok(Caller(Some(p))),
                None => Err(unauthorized("invalid or expired token")),
            },
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
                let (user, pass) = decoded
                    .split_once(':')
                    .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
                let app = app.clone();
                let (user, pass) = (user.to_string(), pass.to_string());
                // PBKDF2 is deliberately slow: keep it off the async workers.
                let result =
                    tokio::task::spawn_blocking(move || app.auth.check_password(&user, &pass))
                        .await
                        .map_err(|_| {
                            HttpError::text(StatusCode::INTERNAL_SERVER_ERROR, "login failed")
                        })?;
                match result {
                    Ok(p) => Ok(Caller(Some(p))),
                    Err(LoginError::Invalid) => Err(unauthorized("wrong user name or password")),
                    Err(LoginError::Throttled(d)) => Err(HttpError {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        message: format!("too many failed logins; retry in {} s", d.as_secs() + 1),
                        json: false,
                        retry_after: Some(d.as_secs() + 1),
                    }),
                }
            }
            _ => Err(unauthorized(
                "unsupported Authorization scheme; use Bearer or Basic",
            )),
        }
    }
}

impl Caller {
    /// Allows the call if the caller has `role` (viewers also pass when the
    /// site allows anonymous read).
    pub fn require(&self, app: &AppState, role: Role) -> Result<(), HttpError> {
        match &self.0 {
            Some(p) if p.role >= role => Ok(()),
            Some(p) => Err(HttpError::text(StatusCode::FORBIDDEN, format!("user `{}` is a {:?}; this needs {:?}", p.user, p.role, role))),
            None if role == Role::Viewer && app.site.settings.anonymous_read => Ok(()),
            None => Err(HttpError::text(StatusCode::UNAUTHORIZED, "log in first: POST /api/login with Basic credentials, then send Authorization: Bearer <token>")),
        }
    }
}

/// The token in the `vgw_session` cookie, if any.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A caller identified by the session cookie. A stale cookie (expired, or
/// from before a restart: tokens live in memory) counts as no login rather
/// than a 401, so the dashboard falls back to anonymous read and offers the
/// login form instead of locking the browser out. A cookie never carries a
/// cross-site write: besides SameSite=Strict, a state-changing request
/// whose Origin names another host is refused.
fn session_caller(parts: &Parts, app: &AppState) -> Result<Caller, HttpError> {
    let Some(token) = session_token(&parts.headers) else {
        return Ok(Caller(None));
    };
    let Some(p) = app.auth.check_token(token) else {
        return Ok(Caller(None));
    };
    if !matches!(parts.method, Method::GET | Method::HEAD) && !same_origin(&parts.headers) {
        return Err(HttpError::text(
            StatusCode::FORBIDDEN,
            "cross-origin request with a session cookie refused",
        ));
    }
    Ok(Caller(Some(p)))
}

/// True when the request has no Origin (same-origin navigation, non-browser
/// clients) or its Origin's host:port equals the Host header.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// `Set-Cookie` for a new session: HttpOnly (page scripts cannot read the
/// token), SameSite=Strict (no cross-site sends), expiring with the token.
pub fn session_cookie(token: &str, ttl: std::time::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        ttl.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("vgw_session=; Path=/"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("vgw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let h = headers(&[(header::COOKIE, "a=1; vgw_session=abc ; b=2")]);
        assert_eq!(session_token(&h), Some("abc"));
        let h = headers(&[(header::COOKIE, "a=1"), (header::COOKIE, "vgw_session=x")]);
        assert_eq!(session_token(&h), Some("x"));
        assert_eq!(
            session_token(&headers(&[(header::COOKIE, "vgw_session=")])),
            None
        );
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&headers(&[(header::HOST, "gw:8080")])));
        assert!(same_origin(&headers(&[
            (header::HOST, "gw:8080"),
            (header::ORIGIN, "http://gw:8080")
        ])));
        assert!(!same_origin(&headers(&[
            (header::HOST, "gw:8080"),
            (header::ORIGIN, "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[(
            header::ORIGIN,
            "http://gw:8080"
        )])));
    }

    #[test]
    fn session_cookie_is_http_only_and_strict() {
        let c = session_cookie("t0k", std::time::Duration::from_secs(60));
        let c = c.to_str().unwrap();
        assert!(c.starts_with("vgw_session=t0k;"));
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age=60")
        );
    }
}
