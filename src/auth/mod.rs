//! Users, roles and bearer tokens shared by every HTTP surface (the
//! Haystack SCRAM login will issue tokens into the same table).

pub mod scram;

use crate::model::kinds::Role;
use scram::ScramCredential;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tokens kept at most; the oldest go first when full.
const MAX_TOKENS: usize = 10_000;
/// Failed logins per user before a lockout.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const LOCKOUT: Duration = Duration::from_secs(30);
/// Users whose failures are tracked at most (unknown names included).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub credential: ScramCredential,
}

/// Who is calling, once a token or password has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user or password (never says which).
    Invalid,
    /// Too many failures; retry after this long.
    Throttled(Duration),
}

struct Token {
    principal: Principal,
    expires: Instant,
    issued: Instant,
}

pub struct Auth {
    users: HashMap<String, User>,
    tokens: Mutex<HashMap<String, Token>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    token_ttl: Duration,
}

impl Auth {
    pub fn new(users: Vec<User>, token_ttl: Duration) -> Self {
        Auth {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            tokens: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            token_ttl,
        }
    }

    /// Users from the config (already validated).
    pub fn from_settings(s: &crate::model::Settings) -> Self {
        let users = s
            .users
            .iter()
            .filter_map(|u| {
                Some(User {
                    name: u.name.clone(),
                    role: Role::parse(&u.role)?,
                    credential: ScramCredential::from_config(u)?,
                })
            })
            .collect();
        Auth::new(users, Duration::from_secs(s.token_ttl_s))
    }

    pub fn add_user(&mut self, user: User) {
        self.users.insert(user.name.clone(), user);
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Checks a password, with a lockout after repeated failures.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Principal, LoginError> {
        self.throttle_check(name)?;
        match self.users.get(name) {
            Some(u) if u.credential.verify(password) => {
                lock(&self.failures).remove(name);
                Ok(Principal {
                    user: u.name.clone(),
                    role: u.role,
                })
            }
            _ => {
                self.record_failure(name);
                Err(LoginError::Invalid)
            }
        }
    }

    pub fn throttle_check(&self, name: &str) -> Result<(), LoginError> {
        let f = lock(&self.failures);
        if let Some((n, since)) = f.get(name) {
            if *n >= MAX_FAILURES && since.elapsed() < LOCKOUT {
                return Err(LoginError::Throttled(LOCKOUT - since.elapsed()));
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, name: &str) {
        let mut f = lock(&self.failures);
        if f.len() >= MAX_TRACKED && !f.contains_key(name) {
            f.retain(|_, (_, t)| t.elapsed() < FAILURE_WINDOW);
            if f.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = f.entry(name.to_string()).or_insert((0, Instant::now()));
        if e.1.elapsed() > FAILURE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.1 = Instant::now();
    }

    /// Issues a bearer token (64 hex chars).
    pub fn issue_token(&self, principal: Principal) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut t = lock(&self.tokens);
        if t.len() >= MAX_TOKENS {
            t.retain(|_, v| v.expires > now);
            if t.len() >= MAX_TOKENS {
                if let Some(oldest) = t
                    .iter()
                    .min_by_key(|(_, v)| v.issued)
                    .map(|(k, _)| k.clone())
                {
                    t.remove(&oldest);
                }
            }
        }
        t.insert(
            token.clone(),
            Token {
                principal,
                expires: now + self.token_ttl,
                issued: now,
            },
        );
        token
    }

    pub fn check_token(&self, token: &str) -> Option<Principal> {
        let mut t = lock(&self.tokens);
        match t.get(token) {
            Some(v) if v.expires > Instant::now() => Some(v.principal.clone()),
            Some(_) => {
                t.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn revoke(&self, token: &str) -> bool {
        lock(&self.tokens).remove(token).is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let u = User {
            name: "op".into(),
            role: Role::Operator,
            credential: ScramCredential::from_password("secret", 4096),
        };
        Auth::new(vec![u], Duration::from_secs(60))
    }

    #[test]
    fn tokens_authenticate_until_revoked() {
        let a = auth();
        let p = a.check_password("op", "secret").unwrap();
        let t = a.issue_token(p.clone());
        assert_eq!(a.check_token(&t), Some(p));
        assert!(a.revoke(&t));
        assert_eq!(a.check_token(&t), None);
    }

    #[test]
    fn repeated_failures_lock_the_user_out() {
        let a = auth();
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.check_password("op", "wrong"), Err(LoginError::Invalid));
        }
        assert!(matches!(
            a.check_password("op", "secret"),
            Err(LoginError::Throttled(_))
        ));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let u = User {
            name: "v".into(),
            role: Role::Viewer,
            credential: ScramCredential::from_password("x", 4096),
        };
        let a = Auth::new(vec![u], Duration::from_millis(0));
        let t = a.issue_token(Principal {
            user: "v".into(),
            role: Role::Viewer,
        });
        assert_eq!(a.check_token(&t), None);
    }
}
