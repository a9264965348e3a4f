//! The Haystack SCRAM-SHA-256 handshake (Haystack "Auth" chapter, RFC 5802):
//! `HELLO username=…` → 401 with a handshake token → `SCRAM data=…`
//! (client-first) → 401 with the server-first message → `SCRAM data=…`
//! (client-final with proof) → 200 with `authToken=…` in
//! Authentication-Info, a bearer token of `auth::Auth`.
//!
//! Wire details real clients depend on (phable): handshake tokens are hex
//! (phable's parser stops at `-`/`_`), the salt is `=`-padded base64, base64
//! from the client may come unpadded and in either alphabet, and
//! `authToken=` comes first in Authentication-Info, followed by a comma.

use crate::auth::scram::{constant_time_eq, hmac, ScramCredential};
use crate::auth::{Auth, Principal};
use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NOPAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Handshakes in progress are forgotten after this long.
const HANDSHAKE_TTL: Duration = Duration::from_secs(60);
/// At most this many handshakes in progress (oldest dropped first).
const MAX_HANDSHAKES: usize = 1024;

/// What the server answers to one Authorization header.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// 401 with this WWW-Authenticate value.
    Challenge(String),
    /// 200 with this Authentication-Info value.
    Done { auth_info: String, token: String },
    /// 403: wrong password, unknown user or handshake.
    Forbidden(String),
    /// 400: not a HELLO/SCRAM message we can read.
    BadRequest(String),
}

struct Handshake {
    user: String,
    started: Instant,
    /// Set by the client-first message.
    first: Option<(String, String)>, // (client-first-bare, server-first)
}

#[derive(Default)]
pub struct Handshakes {
    live: Mutex<HashMap<String, Handshake>>,
}

/// Base64 as clients send it: either alphabet, padding optional.
fn b64_lenient(s: &str) -> Option<Vec<u8>> {
    let mut t: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    while t.len() % 4 != 0 {
        t.push('=');
    }
    B64.decode(t).ok()
}

/// `name=value` parameters of an auth header, split at commas.
fn params(s: &str) -> HashMap<String, String> {
    s.split(',')
        .filter_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A credential for users that do not exist, so an unknown name walks
/// the same handshake as a known one and fails only at the proof.
fn decoy(user: &str) -> ScramCredential {
    let salt: [u8; 16] = Sha256::digest(format!("vgw-decoy:{user}")).as_slice()[..16]
        .try_into()
        .unwrap_or([0; 16]);
    ScramCredential {
        salt: salt.to_vec(),
        iterations: crate::auth::scram::DEFAULT_ITERATIONS,
        stored_key: [0; 32],
        server_key: [0; 32],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Handshakes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handshake>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one `Authorization` header value (`HELLO …` or `SCRAM …`).
    pub fn step(&self, auth: &Auth, header: &str) -> Reply {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        match scheme.to_ascii_uppercase().as_str() {
            "HELLO" => self.hello(auth, rest),
            "SCRAM" => self.scram(auth, rest),
            _ => Reply::BadRequest(format!("unknown auth scheme `{scheme}`: start with HELLO")),
        }
    }

    fn hello(&self, auth: &Auth, rest: &str) -> Reply {
        let p = params(rest);
        let Some(user) = p
            .get("username")
            .and_then(|u| b64_lenient(u))
            .and_then(|u| String::from_utf8(u).ok())
        else {
            return Reply::BadRequest("HELLO needs username=<base64>".into());
        };
        if let Err(crate::auth::LoginError::Throttled(wait)) = auth.throttle_check(&user) {
            return Reply::Forbidden(format!(
                "too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            ));
        }
        let token = hex(&rand::random::<[u8; 16]>());
        let mut live = self.lock();
        let now = Instant::now();
        live.retain(|_, h| now.duration_since(h.started) < HANDSHAKE_TTL);
        if live.len() >= MAX_HANDSHAKES {
            if let Some(oldest) = live
                .iter()
                .min_by_key(|(_, h)| h.started)
                .map(|(k, _)| k.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(
            token.clone(),
            Handshake {
                user,
                started: now,
                first: None,
            },
        );
        Reply::Challenge(format!("SCRAM handshakeToken={token}, hash=SHA-256"))
    }

    fn scram(&self, auth: &Auth, rest: &str) -> Reply {
        let p = params(rest);
        let (Some(token), Some(data)) = (p.get("handshakeToken"), p.get("data")) else {
            return Reply::BadRequest("SCRAM needs data= and handshakeToken=".into());
        };
        let Some(msg) = b64_lenient(data).and_then(|d| String::from_utf8(d).ok()) else {
            return Reply::BadRequest("SCRAM data is not base64 text".into());
        };
        let mut live = self.lock();
        let Some(h) = live.get_mut(token) else {
            return Reply::Forbidden("unknown or expired handshake; start again with HELLO".into());
        };
        if h.started.elapsed() > HANDSHAKE_TTL {
            live.remove(token);
            return Reply::Forbidden("handshake expired; start again with HELLO".into());
        }
        let cred = auth
            .user(&h.user)
            .map(|u| u.credential.clone())
            .unwrap_or_else(|| decoy(&h.user));
        match h.first.clone() {
            None => {
                // client-first: "n,,n=user,r=cnonce"
                let Some(bare) = msg.strip_prefix("n,,") else {
                    return Reply::BadRequest(
                        "client-first must start with `n,,` (no channel binding)".into(),
                    );
                };
                let cp = params(bare);
                let Some(cnonce) = cp.get("r").filter(|r| !r.is_empty()) else {
                    return Reply::BadRequest("client-first has no nonce".into());
                };
                let nonce = format!("{cnonce}{}", hex(&rand::random::<[u8; 16]>()));
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&cred.salt),
                    cred.iterations
                );
                h.first = Some((bare.to_string(), server_first.clone()));
                Reply::Challenge(format!(
                    "SCRAM handshakeToken={token}, hash=SHA-256, data={}",
                    B64_NOPAD.encode(server_first)
                ))
            }
            Some((client_first_bare, server_first)) => {
                let user = h.user.clone();
                live.remove(token);
                drop(live);
                // client-final: "c=biws,r=nonce,p=proof"
                let Some((without_proof, proof)) = msg.rsplit_once(",p=") else {
                    return Reply::BadRequest("client-final has no proof".into());
                };
                let nonce_ok = params(&server_first).get("r") == params(without_proof).get("r");
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let client_signature = hmac(&cred.stored_key, auth_message.as_bytes());
                let proof_ok = b64_lenient(proof).is_some_and(|proof| {
                    proof.len() == 32 && {
                        let client_key: Vec<u8> = proof
                            .iter()
                            .zip(client_signature)
                            .map(|(a, b)| a ^ b)
                            .collect();
                        constant_time_eq(&Sha256::digest(&client_key), &cred.stored_key)
                    }
                });
                let known = auth.user(&user);
                match (nonce_ok && proof_ok, known) {
                    (true, Some(u)) => {
                        let token = auth.issue_token(Principal {
                            user: u.name.clone(),
                            role: u.role,
                        });
                        let signature = hmac(&cred.server_key, auth_message.as_bytes());
                        let data = B64_NOPAD.encode(format!("v={}", B64.encode(signature)));
                        Reply::Done {
                            auth_info: format!("authToken={token}, hash=SHA-256, data={data}"),
                            token,
                        }
                    }
                    _ => {
                        auth.record_failure(&user);
                        Reply::Forbidden("wrong user name or password".into())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::User;
    use crate::model::kinds::Role;

    /// A client doing what phable does, step by step.
    #[test]
    fn a_full_handshake_issues_a_token_and_proves_the_server() {
        let auth = Auth::new(Vec::new(), Duration::from_secs(60));
        auth.add_user(User {
            name: "op".into(),
            role: Role::Operator,
            credential: ScramCredential::from_password("pw", 4096),
        });
        let hs = Handshakes::default();
        let Reply::Challenge(c1) =
            hs.step(&auth, &format!("HELLO username={}", B64_NOPAD.encode("op")))
        else {
            panic!()
        };
        let token = params(c1.trim_start_matches("SCRAM "))["handshakeToken"].clone();
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        let cnonce = "0123456789abcdef01234567";
        let first_bare = format!("n=op,r={cnonce}");
        let Reply::Challenge(c2) = hs.step(
            &auth,
            &format!(
                "SCRAM data={}, handshakeToken={token}",
                B64_NOPAD.encode(format!("n,,{first_bare}"))
            ),
        ) else {
            panic!()
        };
        let server_first = String::from_utf8(
            b64_lenient(&params(c2.trim_start_matches("SCRAM "))["data"]).unwrap(),
        )
        .unwrap();
        let sp = params(&server_first);
        assert!(sp["r"].starts_with(cnonce));
        assert!(
            sp["s"].ends_with('=') || sp["s"].len() % 4 == 0,
            "salt is padded"
        );
        let salt = B64.decode(&sp["s"]).unwrap();
        let salted = crate::auth::scram::salted_password("pw", &salt, sp["i"].parse().unwrap());
        let without_proof = format!("c=biws,r={}", sp["r"]);
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let client_key = hmac(&salted, b"Client Key");
        let stored = Sha256::digest(client_key);
        let sig = hmac(&stored, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let final_msg = format!("{without_proof},p={}", B64_NOPAD.encode(&proof));
        let reply = hs.step(
            &auth,
            &format!(
                "SCRAM data={}, handshakeToken={token}",
                B64_NOPAD.encode(final_msg)
            ),
        );
        let Reply::Done {
            auth_info,
            token: bearer,
        } = reply
        else {
            panic!("{reply:?}")
        };
        assert!(auth_info.starts_with(&format!("authToken={bearer},")));
        assert!(auth.check_token(&bearer).is_some());
        let v = String::from_utf8(b64_lenient(&params(&auth_info)["data"]).unwrap()).unwrap();
        let expected = B64.encode(hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes()));
        assert_eq!(v, format!("v={expected}"));
        // The handshake is spent.
        assert!(matches!(
            hs.step(
                &auth,
                &format!(
                    "SCRAM data={}, handshakeToken={token}",
                    B64_NOPAD.encode("x")
                )
            ),
            Reply::Forbidden(_)
        ));
    }

    /// One full handshake for `user` with a wrong proof.
    fn fail_once(hs: &Handshakes, auth: &Auth, user: &str) -> Reply {
        let c1 = hs.step(auth, &format!("HELLO username={}", B64_NOPAD.encode(user)));
        let Reply::Challenge(c1) = c1 else { return c1 };
        let token = params(c1.trim_start_matches("SCRAM "))["handshakeToken"].clone();
        let first = B64_NOPAD.encode(format!("n,,n={user},r=abc"));
        hs.step(auth, &format!("SCRAM data={first}, handshakeToken={token}"));
        let fin = B64_NOPAD.encode(format!("c=biws,r=abc,p={}", B64.encode([0u8; 32])));
        hs.step(auth, &format!("SCRAM data={fin}, handshakeToken={token}"))
    }

    #[test]
    fn repeated_failures_lock_the_user_out_at_hello() {
        let auth = Auth::new(Vec::new(), Duration::from_secs(60));
        let hs = Handshakes::default();
        for _ in 0..5 {
            assert!(matches!(
                fail_once(&hs, &auth, "mallory"),
                Reply::Forbidden(_)
            ));
        }
        match hs.step(
            &auth,
            &format!("HELLO username={}", B64_NOPAD.encode("mallory")),
        ) {
            Reply::Forbidden(m) => assert!(m.contains("too many failed logins"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Another user is not affected.
        assert!(matches!(
            hs.step(
                &auth,
                &format!("HELLO username={}", B64_NOPAD.encode("alice"))
            ),
            Reply::Challenge(_)
        ));
    }

    #[test]
    fn a_wrong_proof_is_forbidden_and_garbage_is_a_bad_request() {
        let auth = Auth::new(Vec::new(), Duration::from_secs(60));
        let hs = Handshakes::default();
        assert!(matches!(hs.step(&auth, "HELLO"), Reply::BadRequest(_)));
        assert!(matches!(
            hs.step(&auth, "NEGOTIATE x"),
            Reply::BadRequest(_)
        ));
        let Reply::Challenge(c1) = hs.step(
            &auth,
            &format!("HELLO username={}", B64_NOPAD.encode("ghost")),
        ) else {
            panic!()
        };
        let token = params(c1.trim_start_matches("SCRAM "))["handshakeToken"].clone();
        let Reply::Challenge(_) = hs.step(
            &auth,
            &format!(
                "SCRAM data={}, handshakeToken={token}",
                B64_NOPAD.encode("n,,n=ghost,r=abc")
            ),
        ) else {
            panic!("an unknown user gets a challenge like anyone")
        };
        let fin = B64_NOPAD.encode(format!("c=biws,r=abc,p={}", B64.encode([0u8; 32])));
        assert!(matches!(
            hs.step(&auth, &format!("SCRAM data={fin}, handshakeToken={token}")),
            Reply::Forbidden(_)
        ));
    }
}
