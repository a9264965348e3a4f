//! The command line as an integrator uses it: users written to the site
//! file (never plaintext) and the model exported in every format.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn vgw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vgw"))
}

fn add_user(
    config: &Path,
    name: &str,
    role: &str,
    password: &str,
    force: bool,
) -> std::process::Output {
    let mut cmd = vgw();
    cmd.args(["user", "add", "--config"])
        .arg(config)
        .arg(name)
        .args(["--role", role, "--password-stdin"]);
    if force {
        cmd.arg("--force");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // vgw may refuse (e.g. an unknown role) and exit before reading stdin.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_stores_a_scram_credential_that_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    let original = std::fs::read_to_string("config/examples/small.toml").unwrap();
    std::fs::write(&config, &original).unwrap();

    let out = add_user(&config, "alice", "operator", "correct horse", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        !text.contains("correct horse"),
        "plaintext password written"
    );
    assert!(
        text.starts_with(&original[..200]),
        "the rest of the file (comments included) is kept"
    );
    for key in ["salt", "iterations", "stored_key", "server_key"] {
        assert!(text.contains(&format!("{key} = ")), "{key} missing");
    }

    // The same user again is refused without --force, accepted with it.
    let again = add_user(&config, "alice", "admin", "other", false);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(add_user(&config, "alice", "admin", "new secret", true)
        .status
        .success());
    assert!(
        !add_user(&config, "bob", "superuser", "pw12", false)
            .status
            .success(),
        "unknown role refused"
    );

    // The gateway built from the file accepts the password, and the role.
    let site = vgw::model::load_site(&config, None).unwrap();
    let auth = vgw::auth::Auth::from_settings(&site.settings);
    let p = auth
        .check_password("alice", "new secret")
        .expect("login with the stored credential");
    assert_eq!(p.role, vgw::model::kinds::Role::Admin);
    assert!(auth.check_password("alice", "correct horse").is_err());

    let list = vgw()
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "alice\tadmin");
}

#[test]
fn export_writes_every_format_with_the_same_triples() {
    use oxigraph::io::{JsonLdProfileSet, RdfFormat, RdfParser};
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for (name, format) in [
        ("ttl", RdfFormat::Turtle),
        ("nt", RdfFormat::NTriples),
        (
            "jsonld",
            RdfFormat::JsonLd {
                profile: JsonLdProfileSet::empty(),
            },
        ),
        ("rdfxml", RdfFormat::RdfXml),
    ] {
        let path = dir.path().join(format!("model.{name}"));
        let out = vgw()
            .args([
                "export",
                "--config",
                "config/demo.toml",
                "--format",
                name,
                "-o",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let n = RdfParser::from_format(format)
            .for_slice(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        counts.push((name, n));
    }
    assert!(counts[0].1 > 10_000, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == counts[0].1), "{counts:?}");

    let bad = vgw()
        .args(["export", "--config", "config/demo.toml", "--format", "xlsx"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("use ttl, nt, jsonld, rdfxml, ede or csv")
    );
}

#[test]
fn ede_export_writes_the_point_list_and_its_state_texts() {
    let dir = tempfile::tempdir().unwrap();
    let ede = dir.path().join("hq_EDE.csv");
    let out = vgw()
        .args([
            "export",
            "--config",
            "config/demo.toml",
            "--format",
            "ede",
            "-o",
        ])
        .arg(&ede)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&ede).unwrap();
    assert!(text.starts_with("#Engineering-Data-Exchange - B.I.G.-EU"));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.split(';').count() > 5)
        .map(|l| l.split(';').collect())
        .collect();
    // The relay of NVR 1 is a settable binary output (type 4) with state texts.
    let relay = rows.iter().find(|r| r[0] == "nvr-1.alarm-out-1").unwrap();
    assert_eq!((relay[3], relay[9]), ("4", "Y"));
    let texts = std::fs::read_to_string(dir.path().join("hq_StateTexts.csv")).unwrap();
    let state_ref = format!("{};", relay[13]);
    let line = texts.lines().find(|l| l.starts_with(&state_ref)).unwrap();
    assert!(line.ends_with(";off;on"), "{line}");
    // Inputs are not settable.
    assert!(rows.iter().filter(|r| r[3] == "3").all(|r| r[9] == "N"));

    // Without -o there is nowhere to put the second file: a clear error.
    let bad = vgw()
        .args(["export", "--config", "config/demo.toml", "--format", "ede"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("-o NAME_EDE.csv"));
}
