//! `vgw clip`: exports a camera's video for a time range to an MP4 file,
//! through the running gateway's API (the gateway owns the recording
//! store; a second process must not open it). Logs in, downloads
//! `/api/cameras/{id}/clip.mp4` with a progress bar, and the export lands
//! in the gateway's audit log under the user's name.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Times are RFC 3339 (2026-12-01T10:00:00Z, or with an offset) or \
milliseconds since 1970. The password comes from --password-stdin or VGW_PASSWORD; \
it is never taken on the command line."
)]
pub struct ClipArgs {
    /// Camera id (as in the site file), e.g. cam-012.
    #[arg(long)]
    pub camera: String,
    /// Start of the clip.
    #[arg(long)]
    pub start: String,
    /// End of the clip.
    #[arg(long)]
    pub end: String,
    /// Output file.
    #[arg(long, short)]
    pub output: PathBuf,
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// User to log in as (a viewer may export).
    #[arg(long, short, default_value = "admin")]
    pub user: String,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn run(a: &ClipArgs) -> anyhow::Result<()> {
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else {
        std::env::var("VGW_PASSWORD").map_err(|_| {
            anyhow::anyhow!("give the password with --password-stdin or VGW_PASSWORD")
        })?
    };
    let http = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(None)
        .build()?;
    let base = a.url.trim_end_matches('/');
    let login = http
        .post(format!("{base}/api/login"))
        .basic_auth(&a.user, Some(&password))
        .timeout(Duration::from_secs(30))
        .send()
        .map_err(|e| anyhow::anyhow!("cannot reach the gateway at {base}: {e}"))?;
    if !login.status().is_success() {
        anyhow::bail!("login as `{}` failed: HTTP {}", a.user, login.status());
    }
    let token = login.json::<serde_json::Value>()?["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut resp = http
        .get(format!("{base}/api/cameras/{}/clip.mp4", a.camera))
        .query(&[("start", &a.start), ("end", &a.end)])
        .bearer_auth(token)
        .send()?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().unwrap_or_default();
        anyhow::bail!("export refused: HTTP {status}: {}", body.trim());
    }
    let total = resp.content_length().unwrap_or(0);
    // Write beside the target and rename at the end: a cut-off download
    // never looks like a finished clip.
    let tmp = a.output.with_extension("mp4.part");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal();
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    loop {
        let n = resp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        done += n as u64;
        if bar && last_draw.elapsed() >= Duration::from_millis(100) {
            draw(done, total, started.elapsed());
            last_draw = Instant::now();
        }
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    if total > 0 && done != total {
        anyhow::bail!(
            "the download stopped at {done} of {total} bytes; {} kept",
            tmp.display()
        );
    }
    std::fs::rename(&tmp, &a.output)?;
    if bar {
        draw(done, total, started.elapsed());
        eprintln!();
    }
    eprintln!(
        "wrote {} ({:.1} MB in {:.1} s)",
        a.output.display(),
        done as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn draw(done: u64, total: u64, elapsed: Duration) {
    const WIDTH: usize = 30;
    let frac = if total > 0 {
        done as f64 / total as f64
    } else {
        0.0
    };
    let filled = (frac * WIDTH as f64) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001) / 1e6;
    eprint!(
        "\r[{}{}] {:>3.0}%  {:.1}/{:.1} MB  {:.1} MB/s ",
        "#".repeat(filled.min(WIDTH)),
        ".".repeat(WIDTH - filled.min(WIDTH)),
        frac * 100.0,
        done as f64 / 1e6,
        total as f64 / 1e6,
        rate
    );
}
