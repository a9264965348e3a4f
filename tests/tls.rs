//! TLS when a certificate is configured: `vgw run` serves HTTPS, checked
//! with openssl (makes the certificate) and curl (the client).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serves_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed for this test (scripts/test installs it)");
    assert!(status.success());
    let site = std::fs::read_to_string("config/examples/small.toml")
        .unwrap()
        .replace(
            "[sparql]",
            "[http]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\n[sparql]",
        );
    std::fs::write(d.join("site.toml"), site).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_vgw"))
        .arg("run")
        .arg("--config")
        .arg(d.join("site.toml"))
        .arg("--data-dir")
        .arg(d.join("data"))
        .args(["--http", "127.0.0.1:0", "--bacnet", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = rx
        .iter()
        .take(20)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("https://"))
                .map(|u| u.trim_end_matches('/').to_string())
        })
        .expect("the banner prints an https URL");

    let mut body = String::new();
    for _ in 0..50 {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "5"])
            .arg(format!("{url}/health"))
            .output()
            .expect("curl is needed");
        body = String::from_utf8_lossy(&out.stdout).to_string();
        if body.contains("\"status\":\"ok\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Plain HTTP on the TLS port is refused.
    let plain = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(url.replace("https://", "http://") + "/health")
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        body.contains("\"status\":\"ok\""),
        "health over https: {body}"
    );
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"status\":\"ok\""));
}

#[test]
fn a_missing_certificate_fails_the_start_before_any_url_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let site = std::fs::read_to_string("config/examples/small.toml")
        .unwrap()
        .replace(
            "[sparql]",
            "[http]\ntls_cert = \"nope.pem\"\ntls_key = \"nope.key\"\n\n[sparql]",
        );
    std::fs::write(dir.path().join("site.toml"), site).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vgw"))
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("site.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--http", "127.0.0.1:0", "--bacnet", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("https://"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
