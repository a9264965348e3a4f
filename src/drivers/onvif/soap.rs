//! SOAP 1.2 over HTTP for ONVIF: envelopes, authentication (WS-Security
//! digest first, HTTP Digest when the device answers 401), a time limit on
//! every request, a size limit on every answer, and SOAP faults turned
//! into errors that say what the device said.

use super::auth;
use super::xml::{self, Element};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const NS_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
pub const NS_TMD: &str = "http://www.onvif.org/ver10/deviceIO/wsdl";
pub const NS_TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
pub const NS_TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
pub const NS_TT: &str = "http://www.onvif.org/ver10/schema";
pub const NS_WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";

/// Largest answer read from a device (an event batch of a busy NVR is
/// well below this; anything bigger is a broken or hostile device).
const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OnvifError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the device: {0}")]
    Unreachable(String),
    #[error("the device refused the credentials ({0})")]
    NotAuthorized(String),
    #[error("SOAP fault {code}/{subcode}: {reason} (HTTP {status})")]
    Fault {
        status: u16,
        code: String,
        subcode: String,
        reason: String,
    },
    #[error("HTTP {0} without a SOAP fault")]
    Http(u16),
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
}

impl OnvifError {
    /// The device is not there (as opposed to: it answered, with an error).
    pub fn is_offline(&self) -> bool {
        matches!(self, OnvifError::Timeout(_) | OnvifError::Unreachable(_))
    }
}

/// One device's SOAP connection state: credentials, the measured clock
/// skew and the HTTP Digest challenge in use.
pub struct Soap {
    http: reqwest::Client,
    user: String,
    password: String,
    /// Device clock minus ours, ms (from GetSystemDateAndTime).
    skew_ms: AtomicI64,
    digest: Mutex<Option<auth::DigestChallenge>>,
    nc: AtomicU32,
    pub timeout: Duration,
}

/// One request: where, which action, the body and extra SOAP headers.
pub struct Request<'a> {
    pub url: &'a str,
    pub action: &'a str,
    pub body: &'a str,
    /// Raw XML header blocks (WS-Addressing, reference parameters).
    pub headers: &'a str,
    /// Longer than the default for long-polls.
    pub timeout: Option<Duration>,
    pub authenticate: bool,
}

impl Soap {
    pub fn new(user: &str, password: &str, timeout: Duration) -> Soap {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_max_idle_per_host(2)
            .build()
            .unwrap_or_default();
        Soap {
            http,
            user: user.into(),
            password: password.into(),
            skew_ms: AtomicI64::new(0),
            digest: Mutex::new(None),
            nc: AtomicU32::new(0),
            timeout,
        }
    }

    pub fn set_skew_ms(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::Relaxed);
    }

    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }

    /// The device's time now, for WS-Security `Created`.
    fn device_now(&self) -> String {
        let now = chrono::Utc::now() + chrono::Duration::milliseconds(self.skew_ms());
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    fn envelope(&self, r: &Request<'_>) -> String {
        let security = if r.authenticate && !self.user.is_empty() {
            auth::wsse_header(&self.user, &self.password, &self.device_now())
        } else {
            String::new()
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS_ENV}" xmlns:tds="{NS_TDS}" xmlns:tmd="{NS_TMD}" xmlns:trt="{NS_TRT}" xmlns:tev="{NS_TEV}" xmlns:tt="{NS_TT}" xmlns:wsnt="{NS_WSNT}" xmlns:wsa="{NS_WSA}"><s:Header>{security}{}</s:Header><s:Body>{}</s:Body></s:Envelope>"#,
            r.headers, r.body
        )
    }

    /// Sends one request; returns the first element of the answer's Body.
    pub async fn call(&self, r: &Request<'_>) -> Result<Element, OnvifError> {
        let timeout = r.timeout.unwrap_or(self.timeout);
        let mut resp = self.post(r, timeout).await?;
        if resp.status().as_u16() == 401 && r.authenticate {
            // HTTP Digest: take the challenge and answer it (once per
            // request; a second 401 means the credentials are wrong).
            let challenge = resp
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(auth::parse_challenge)
                .ok_or_else(|| {
                    OnvifError::NotAuthorized("HTTP 401 without a Digest challenge".into())
                })?;
            *self.digest.lock().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
            resp = self.post(r, timeout).await?;
            if resp.status().as_u16() == 401 {
                return Err(OnvifError::NotAuthorized("HTTP Digest refused".into()));
            }
        }
        let status = resp.status().as_u16();
        let body = read_limited(&mut resp, timeout).await?;
        answer(status, &body)
    }

    async fn post(
        &self,
        r: &Request<'_>,
        timeout: Duration,
    ) -> Result<reqwest::Response, OnvifError> {
        let mut req = self
            .http
            .post(r.url)
            .timeout(timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!(
                    r#"application/soap+xml; charset=utf-8; action="{}""#,
                    r.action
                ),
            )
            .body(self.envelope(r));
        let challenge = self
            .digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (true, Some(c)) = (r.authenticate, challenge) {
            let uri = reqwest::Url::parse(r.url)
                .map(|u| u.path().to_string())
                .unwrap_or_else(|_| "/".into());
            let nc = self.nc.fetch_add(1, Ordering::Relaxed) + 1;
            req = req.header(
                reqwest::header::AUTHORIZATION,
                auth::digest_authorization(&c, &self.user, &self.password, &uri, nc),
            );
        }
        req.send().await.map_err(|e| transport_error(e, timeout))
    }
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> OnvifError {
    if e.is_timeout() {
        OnvifError::Timeout(timeout)
    } else {
        // The chain says why (refused, reset, DNS).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        OnvifError::Unreachable(msg)
    }
}

async fn read_limited(
    resp: &mut reqwest::Response,
    timeout: Duration,
) -> Result<String, OnvifError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > MAX_BODY {
                    return Err(OnvifError::BadAnswer(format!(
                        "answer larger than {MAX_BODY} bytes"
                    )));
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(e, timeout)),
        }
    }
    String::from_utf8(body).map_err(|_| OnvifError::BadAnswer("answer is not UTF-8".into()))
}

/// Turns an HTTP answer into the Body's first element or an error.
pub fn answer(status: u16, body: &str) -> Result<Element, OnvifError> {
    let env = match xml::parse(body) {
        Ok(e) => e,
        Err(e) if status == 200 => return Err(OnvifError::BadAnswer(e.to_string())),
        Err(_) => return Err(OnvifError::Http(status)),
    };
    let first = env
        .child(NS_ENV, "Body")
        .and_then(|b| b.children.first())
        .cloned()
        .ok_or_else(|| OnvifError::BadAnswer("no SOAP 1.2 Body".into()))?;
    if first.ns == NS_ENV && first.name == "Fault" {
        let code = first
            .path(&["Code", "Value"])
            .map(|v| v.text().to_string())
            .unwrap_or_default();
        // The innermost subcode is the most specific (ter:NotAuthorized...).
        let mut sub = first.path(&["Code", "Subcode"]);
        let mut subcode = String::new();
        while let Some(s) = sub {
            if let Some(v) = s.child_named("Value") {
                subcode = v.text().to_string();
            }
            sub = s.child_named("Subcode");
        }
        let reason = first
            .path(&["Reason", "Text"])
            .map(|t| t.text().to_string())
            .unwrap_or_default();
        if subcode.ends_with("NotAuthorized") || subcode.ends_with("FailedAuthentication") {
            return Err(OnvifError::NotAuthorized(reason));
        }
        return Err(OnvifError::Fault {
            status,
            code,
            subcode,
            reason,
        });
    }
    if status != 200 {
        return Err(OnvifError::Http(status));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_name_the_innermost_subcode() {
        let body = format!(
            r#"<e:Envelope xmlns:e="{NS_ENV}" xmlns:ter="http://www.onvif.org/ver10/error"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>ter:InvalidArgVal</e:Value><e:Subcode><e:Value>ter:NoSuchRelay</e:Value></e:Subcode></e:Subcode></e:Code><e:Reason><e:Text xml:lang="en">no relay 9</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>"#
        );
        match answer(400, &body) {
            Err(OnvifError::Fault {
                status,
                subcode,
                reason,
                ..
            }) => {
                assert_eq!(
                    (status, subcode.as_str(), reason.as_str()),
                    (400, "ter:NoSuchRelay", "no relay 9")
                )
            }
            other => panic!("{other:?}"),
        }
        let na = body.replace("ter:NoSuchRelay", "ter:NotAuthorized");
        assert!(matches!(
            answer(400, &na),
            Err(OnvifError::NotAuthorized(_))
        ));
    }

    #[test]
    fn non_soap_answers_are_errors() {
        assert_eq!(answer(500, "<html>oops"), Err(OnvifError::Http(500)));
        assert!(matches!(
            answer(200, "not xml"),
            Err(OnvifError::BadAnswer(_))
        ));
        assert!(matches!(answer(200, "<a/>"), Err(OnvifError::BadAnswer(_))));
    }
}
