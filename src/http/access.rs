//! Who may do what over HTTP. Reading the model needs a viewer unless the
//! site opts into anonymous read; everything else needs its role. A bad
//! token is a 401, never a silent fall-back to anonymous.

use super::AppState;
use crate::auth::{LoginError, Principal};
use crate::model::kinds::Role;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

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
            return Ok(Caller(None));
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
