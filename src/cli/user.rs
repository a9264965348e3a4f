//! `vgw user add|list|remove`: users live in the site file as SCRAM-SHA-256
//! credentials (never plaintext). Edits keep the file's comments and layout.

use crate::auth::scram::{ScramCredential, DEFAULT_ITERATIONS};
use crate::model::kinds::Role;
use anyhow::{bail, Context};
use clap::Subcommand;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (or replace one with --force). Prompts for the password unless --password-stdin.
    Add {
        /// The site file to edit.
        #[arg(long, short)]
        config: PathBuf,
        /// User name.
        name: String,
        /// viewer (read the model), operator (writes, video, locks) or admin (also graph edits).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Replace an existing user of that name.
        #[arg(long)]
        force: bool,
    },
    /// List users and roles.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Remove a user.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        name: String,
    },
}

pub fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            config,
            name,
            role,
            password_stdin,
            force,
        } => add(&config, &name, &role, password_stdin, force),
        UserCommand::List { config } => {
            let loaded = crate::config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            for u in &loaded.file.user {
                println!("{}\t{}", u.name, u.role);
            }
            Ok(())
        }
        UserCommand::Remove { config, name } => edit(&config, |users| {
            let before = users.len();
            users.retain(|t| t.get("name").and_then(|v| v.as_str()) != Some(&name));
            if users.len() == before {
                bail!("no user `{name}`");
            }
            Ok(())
        }),
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let a = rpassword::prompt_password("Password: ")
            .context("cannot read a password from the terminal; use --password-stdin")?;
        let b = rpassword::prompt_password("Again: ")?;
        if a != b {
            bail!("the passwords differ");
        }
        a
    };
    if pw.len() < 4 {
        bail!("the password is too short (at least 4 characters)");
    }
    Ok(pw)
}

fn add(
    config: &Path,
    name: &str,
    role: &str,
    password_stdin: bool,
    force: bool,
) -> anyhow::Result<()> {
    if Role::parse(role).is_none() {
        bail!("unknown role `{role}`: use viewer, operator or admin");
    }
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == ':' || c == ',') {
        bail!("a user name may not be empty or contain `:`, `,` or control characters");
    }
    let password = read_password(password_stdin)?;
    let cred = ScramCredential::from_password(&password, DEFAULT_ITERATIONS).to_config(name, role);
    edit(config, |users| {
        let existing = users
            .iter()
            .position(|t| t.get("name").and_then(|v| v.as_str()) == Some(name));
        if existing.is_some() && !force {
            bail!("user `{name}` exists; use --force to replace it");
        }
        let mut t = toml_edit::Table::new();
        t["name"] = toml_edit::value(&cred.name);
        t["role"] = toml_edit::value(&cred.role);
        t["salt"] = toml_edit::value(&cred.salt);
        t["iterations"] = toml_edit::value(i64::from(cred.iterations));
        t["stored_key"] = toml_edit::value(&cred.stored_key);
        t["server_key"] = toml_edit::value(&cred.server_key);
        match existing {
            Some(i) => *users.get_mut(i).expect("index from position") = t,
            None => users.push(t),
        }
        Ok(())
    })?;
    println!("user `{name}` ({role}) saved in {}", config.display());
    Ok(())
}

/// Applies `f` to the `[[user]]` array, checks the result is still a valid
/// site file, then replaces the file atomically.
fn edit(
    config: &Path,
    f: impl FnOnce(&mut toml_edit::ArrayOfTables) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", config.display()))?;
    if doc.get("user").is_none() {
        doc["user"] = toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new());
    }
    let users = doc["user"]
        .as_array_of_tables_mut()
        .ok_or_else(|| anyhow::anyhow!("`user` in {} must be [[user]] tables", config.display()))?;
    f(users)?;
    let new_text = doc.to_string();
    crate::config::parse(config, new_text.clone()).map_err(|e| {
        anyhow::anyhow!("the edited file would not be valid, nothing written:\n{e}")
    })?;
    crate::fsutil::write_atomic(config, new_text.as_bytes())
        .with_context(|| format!("writing {}", config.display()))
}
