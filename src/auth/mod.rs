//! Users, roles and bearer tokens shared by every HTTP surface (the
//! Haystack SCRAM login will issue tokens into the same table).

pub mod scram;

use crate::model::kinds::Role;
use scram::ScramCredential;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
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
    /// Replaced as a whole when the site file is reloaded.
    users: RwLock<HashMap<String, User>>,
    tokens: Mutex<HashMap<String, Token>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    token_ttl: Duration,
}

impl Auth {
    pub fn new(users: Vec<User>, token_ttl: Duration) -> Self {
        Auth {
            users: RwLock::new(users.into_iter().map(|u| (u.name.clone(), u)).collect()),
            tokens: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            token_ttl,
        }
    }

    /// Users from the config (already validated).
    pub fn from_settings(s: &crate::model::Settings) -> Self {
        Auth::new(users_of(s), Duration::from_secs(s.token_ttl_s))
    }

    pub fn add_user(&self, user: User) {
        write(&self.users).insert(user.name.clone(), user);
    }

    pub fn user(&self, name: &str) -> Option<User> {
        read(&self.users).get(name).cloned()
    }

    /// The users of a reloaded site file, plus `keep` (users that exist
    /// only in memory, such as the demo's). A user removed, or whose role
    /// or password changed, loses every token at once. Returns the names
    /// added, changed and removed.
    pub fn replace_users(&self, users: Vec<User>, keep: &[&str]) -> UserChanges {
        let mut current = write(&self.users);
        let mut next: HashMap<String, User> =
            users.into_iter().map(|u| (u.name.clone(), u)).collect();
        for k in keep {
            if let Some(u) = current.get(*k) {
                next.insert(u.name.clone(), u.clone());
            }
        }
        let mut changes = UserChanges::default();
        for (name, old) in current.iter() {
            match next.get(name) {
                None => changes.removed.push(name.clone()),
                Some(new) if new.role != old.role || new.credential != old.credential => {
                    changes.changed.push(name.clone())
                }
                Some(_) => {}
            }
        }
        changes.added = next
            .keys()
            .filter(|n| !current.contains_key(*n))
            .cloned()
            .collect();
        *current = next;
        // Revoked while the users are still locked: a login that checked
        // the old password cannot slip a token in between (see issue_token).
        let gone: Vec<&String> = changes.removed.iter().chain(&changes.changed).collect();
        lock(&self.tokens).retain(|_, t| !gone.contains(&&t.principal.user));
        drop(current);
        for list in [
            &mut changes.added,
            &mut changes.changed,
            &mut changes.removed,
        ] {
            list.sort();
        }
        changes
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Checks a password, with a lockout after repeated failures.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Principal, LoginError> {
        self.throttle_check(name)?;
        let user = self.user(name);
        match user {
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

    /// Issues a bearer token (64 hex chars). A user removed, or whose role
    /// changed, since the password was checked gets a token that is never
    /// valid (the users stay locked until the token is stored, so a reload
    /// cannot come in between).
    pub fn issue_token(&self, principal: Principal) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let users = read(&self.users);
        if users.get(&principal.user).map(|u| u.role) != Some(principal.role) {
            return token;
        }
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

/// The `[[user]]`s of a site file (validated by config, so none is lost).
pub fn users_of(s: &crate::model::Settings) -> Vec<User> {
    s.users
        .iter()
        .filter_map(|u| {
            Some(User {
                name: u.name.clone(),
                role: Role::parse(&u.role)?,
                credential: ScramCredential::from_config(u)?,
            })
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// What a reload did to the users (names only).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
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

    #[test]
    fn a_reload_revokes_the_tokens_of_removed_and_changed_users_only() {
        let a = auth();
        let user = |name: &str, role, pw: &str| User {
            name: name.into(),
            role,
            credential: ScramCredential::from_password(pw, 4096),
        };
        a.add_user(user("viewer", Role::Viewer, "v"));
        a.add_user(user("demo", Role::Operator, "d"));
        let op = a.issue_token(a.check_password("op", "secret").unwrap());
        let viewer = a.issue_token(a.check_password("viewer", "v").unwrap());
        let demo = a.issue_token(a.check_password("demo", "d").unwrap());
        let kept_op = a.user("op").unwrap();
        let changes = a.replace_users(
            vec![
                kept_op,
                user("viewer", Role::Operator, "v"),
                user("new", Role::Viewer, "n"),
            ],
            &["demo"],
        );
        assert_eq!(changes.added, vec!["new".to_string()]);
        assert_eq!(changes.changed, vec!["viewer".to_string()]);
        assert!(changes.removed.is_empty());
        assert!(
            a.check_token(&op).is_some(),
            "unchanged user keeps the token"
        );
        assert!(a.check_token(&demo).is_some(), "kept in-memory user stays");
        assert_eq!(a.check_token(&viewer), None, "role changed: log in again");
        assert!(a.check_password("new", "n").is_ok());
        let changes = a.replace_users(vec![], &[]);
        assert_eq!(changes.removed, vec!["demo", "new", "op", "viewer"]);
        assert_eq!(a.check_token(&op), None);
        assert_eq!(a.check_password("op", "secret"), Err(LoginError::Invalid));
    }
}
