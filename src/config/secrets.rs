//! Credentials referenced by name from the site file. They live in a
//! separate secrets file or the environment and never enter the model,
//! the RDF store, the APIs or logs (Debug is redacted).

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

#[derive(Clone, Deserialize)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credential {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    credentials: HashMap<String, Credential>,
}

/// Named credentials from the secrets file, with environment overrides
/// `VGW_CRED_<NAME>_USERNAME` / `VGW_CRED_<NAME>_PASSWORD` (NAME upper-cased,
/// `-` as `_`).
#[derive(Debug, Default)]
pub struct Secrets {
    file: HashMap<String, Credential>,
}

impl Secrets {
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read secrets file {}: {e}", path.display()))?;
        let parsed: SecretsFile =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        Ok(Secrets {
            file: parsed.credentials,
        })
    }

    pub fn get(&self, name: &str) -> Option<Credential> {
        let env_name = name.to_uppercase().replace('-', "_");
        let user = std::env::var(format!("VGW_CRED_{env_name}_USERNAME")).ok();
        let pass = std::env::var(format!("VGW_CRED_{env_name}_PASSWORD")).ok();
        match (user, pass) {
            (Some(username), Some(password)) => Some(Credential { username, password }),
            _ => self.file.get(name).cloned(),
        }
    }
}

/// A URL fit for the log: a `user:password@` written into it (site files
/// refuse passwords in URLs, devices may still report them) stays out.
pub fn url_for_log(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_the_log_lose_their_credentials() {
        assert_eq!(
            url_for_log("http://admin:secret@10.0.0.5/onvif/device_service"),
            "http://10.0.0.5/onvif/device_service"
        );
        assert_eq!(url_for_log("http://10.0.0.5/x"), "http://10.0.0.5/x");
    }
}
