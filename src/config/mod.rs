//! Site configuration: TOML → checked `SiteFile` → `model::Site`.
//!
//! Every problem is reported as a [`ConfigError`] naming file, line and key,
//! and all of them are reported at once where the file could be read at all.

mod introspect;
pub mod locate;
pub mod schema;
pub mod secrets;
mod validate;
pub use validate::equipment_decls as validate_decls;
pub use validate::valid_id;
pub use validate::NOTIFICATION_CLASSES;

use locate::{KeyPath, Locator, Seg};
pub use schema::*;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

/// All problems found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        write!(f, "{} error(s)", self.0.len())
    }
}

impl std::error::Error for ConfigErrors {}

/// A parsed site file plus what is needed to point back into it.
pub struct Loaded {
    pub file: SiteFile,
    pub path: PathBuf,
    pub source: String,
    pub locator: Locator,
}

impl Loaded {
    /// Builds an error at `path` inside this file.
    pub fn error(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.display().to_string(),
            line: self.locator.line(path),
            key: path.to_string(),
            message: message.into(),
        }
    }
}

/// Reads, parses and validates a site file; the model is built from the result.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: String::new(),
            message: format!("cannot read the site file: {e}"),
        }])
    })?;
    parse(path, source)
}

/// Parses `source` as if read from `path` (used for the built-in demo site).
pub fn parse(path: &Path, source: String) -> Result<Loaded, ConfigErrors> {
    let file_name = path.display().to_string();
    let doc = toml_edit::ImDocument::parse(source.clone()).map_err(|e| {
        let starts = locate::line_starts(&source);
        let line = e
            .span()
            .map(|s| locate::line_of(&starts, s.start))
            .unwrap_or(1);
        ConfigErrors(vec![ConfigError {
            file: file_name.clone(),
            line,
            key: String::new(),
            message: format!("TOML syntax error: {}", e.message().trim()),
        }])
    })?;
    let locator = Locator::new(doc);

    let mut unknown: Vec<KeyPath> = Vec::new();
    let de = toml::Deserializer::new(&source);
    let parsed: Result<SiteFile, toml::de::Error> =
        serde_ignored::deserialize(de, |p| unknown.push(ignored_path(&p)));
    let mut errors: Vec<ConfigError> = unknown
        .iter()
        .map(|p| ConfigError {
            file: file_name.clone(),
            line: locator.line(p),
            key: p.to_string(),
            message: unknown_key_message(p),
        })
        .collect();
    let file = match parsed {
        Ok(f) => f,
        Err(e) => {
            // serde reports a missing top-level table at the whole document.
            let missing_site = e.message().starts_with("missing field `site`");
            let (line, key) = match e.span() {
                Some(_) if missing_site => (1, String::new()),
                Some(s) => (
                    locator.line_of(s.start),
                    locator
                        .path_at(s.start)
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                ),
                None => (1, String::new()),
            };
            errors.push(ConfigError {
                file: file_name.clone(),
                line,
                key,
                message: e.message().trim().to_string(),
            });
            errors.sort_by_key(|e| e.line);
            return Err(ConfigErrors(errors));
        }
    };
    let loaded = Loaded {
        file,
        path: path.to_path_buf(),
        source,
        locator,
    };
    errors.extend(validate::check(&loaded));
    if errors.is_empty() {
        Ok(loaded)
    } else {
        errors.sort_by(|a, b| a.line.cmp(&b.line).then(a.key.cmp(&b.key)));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> KeyPath {
    use serde_ignored::Path as P;
    match p {
        P::Root => KeyPath::root(),
        P::Seq { parent, index } => ignored_path(parent).index(*index),
        P::Map { parent, key } => ignored_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// "unknown key `chanels` in [[nvr]]; did you mean `channels`?"
fn unknown_key_message(p: &KeyPath) -> String {
    let Some(Seg::Key(bad)) = p.0.last() else {
        return "unknown key".into();
    };
    let tables = p.table_names();
    let parent = &tables[..tables.len().saturating_sub(1)];
    let known = introspect::keys_of_table(parent);
    let where_ = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{}]", parent.join("."))
    };
    let mut msg = format!("unknown key `{bad}` {where_}");
    if matches!(
        bad.as_str(),
        "password" | "username" | "user" | "pass" | "secret"
    ) {
        msg.push_str("; credentials never go in the site file: put them in the secrets file and reference them with `credential = \"NAME\"`");
        return msg;
    }
    if let Some(best) = did_you_mean(bad, known) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    } else if !known.is_empty() {
        msg.push_str(&format!("; expected one of: {}", known.join(", ")));
    }
    msg
}

/// The closest known name, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(bad: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(bad, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
