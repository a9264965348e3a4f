//! The server side of HTTP Digest (RFC 7616, MD5, with or without
//! qop=auth) shared by the simulated devices (ONVIF over HTTP, RTSP): one
//! parse of the client's answer and one computation of what it must be.
//! Each simulator keeps its own nonce policy.

pub use crate::drivers::onvif::auth::md5_hex;

/// A client's `Authorization: Digest ...` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestAnswer {
    pub user: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl DigestAnswer {
    /// The answer in `params` (after `Digest `); `None` when a required
    /// field is missing or the algorithm is not MD5.
    pub fn parse(params: &str) -> Option<DigestAnswer> {
        let p = crate::drivers::onvif::auth::auth_params(params);
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if !get("algorithm").is_none_or(|a| a.eq_ignore_ascii_case("MD5")) {
            return None;
        }
        Some(DigestAnswer {
            user: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            qop: get("qop"),
            nc: get("nc"),
            cnonce: get("cnonce"),
        })
    }

    /// Whether `response` is right for `method` and `password` (the realm,
    /// nonce and uri as the client sent them; the caller checks those).
    pub fn proves(&self, method: &str, password: &str) -> bool {
        let ha1 = md5_hex(&format!("{}:{}:{password}", self.user, self.realm));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        let expected = match self.qop.as_deref() {
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (&self.nc, &self.cnonce) else {
                    return false;
                };
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
            }
            Some(_) => return false,
        };
        self.response.eq_ignore_ascii_case(&expected)
    }
}
