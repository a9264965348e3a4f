//! Optional RTSP authentication as cameras do it (RFC 2326 §16.7 and
//! §16.45 borrow HTTP's): a Digest challenge (RFC 2617, MD5, without
//! qop like most cameras, though a client answering with qop=auth is
//! accepted) followed by a Basic one for clients that only know Basic.

use crate::sim::digest::DigestAnswer;
use base64::Engine as _;
use rand::Rng;

pub const REALM: &str = "vgw-rtsp-sim";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A fresh server nonce (one per connection).
pub fn new_nonce() -> String {
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}

/// The `WWW-Authenticate` values of a 401, Digest first (clients such as
/// retina use the first one).
pub fn challenges(nonce: &str) -> [String; 2] {
    [
        format!(r#"Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5"#),
        format!(r#"Basic realm="{REALM}""#),
    ]
}

/// Whether `authorization` (the request's header) proves `creds` for
/// `method` on `uri`, Digest answers having to use our `nonce`.
pub fn verify(
    creds: &Credentials,
    authorization: Option<&str>,
    method: &str,
    uri: &str,
    nonce: &str,
) -> bool {
    let Some((scheme, rest)) = authorization.map(str::trim).and_then(|a| a.split_once(' ')) else {
        return false;
    };
    if scheme.eq_ignore_ascii_case("Basic") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return false;
        };
        return raw == format!("{}:{}", creds.username, creds.password).as_bytes();
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return false;
    }
    let Some(a) = DigestAnswer::parse(rest) else {
        return false;
    };
    a.user == creds.username
        && a.realm == REALM
        && a.nonce == nonce
        && a.uri == uri
        && a.proves(method, &creds.password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            username: "admin".into(),
            password: "secret".into(),
        }
    }

    #[test]
    fn digest_without_qop_matches_an_independent_computation() {
        // md5(md5("admin:vgw-rtsp-sim:secret") ":abc:"
        // md5("DESCRIBE:rtsp://h/cam/1")), computed with coreutils md5sum.
        let response = "b988fa9f1cb44e5274f31ae893e7d47f";
        let header = format!(
            r#"Digest username="admin", realm="vgw-rtsp-sim", nonce="abc", uri="rtsp://h/cam/1", response="{response}""#
        );
        assert!(verify(
            &creds(),
            Some(&header),
            "DESCRIBE",
            "rtsp://h/cam/1",
            "abc"
        ));
        assert!(!verify(
            &creds(),
            Some(&header),
            "DESCRIBE",
            "rtsp://h/cam/1",
            "other-nonce"
        ));
        assert!(!verify(
            &creds(),
            Some(&header),
            "SETUP",
            "rtsp://h/cam/1",
            "abc"
        ));
        assert!(!verify(
            &creds(),
            Some(&header),
            "DESCRIBE",
            "rtsp://h/cam/2",
            "abc"
        ));
    }

    #[test]
    fn basic_and_garbage() {
        assert!(verify(
            &creds(),
            Some("Basic YWRtaW46c2VjcmV0"),
            "PLAY",
            "u",
            "n"
        ));
        assert!(!verify(
            &creds(),
            Some("Basic YWRtaW46d3Jvbmc="),
            "PLAY",
            "u",
            "n"
        ));
        assert!(!verify(&creds(), Some("Basic !!!"), "PLAY", "u", "n"));
        assert!(!verify(&creds(), Some("Bearer x"), "PLAY", "u", "n"));
        assert!(!verify(&creds(), Some("Digest"), "PLAY", "u", "n"));
        assert!(!verify(&creds(), None, "PLAY", "u", "n"));
    }
}
