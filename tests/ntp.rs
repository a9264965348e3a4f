//! The NTP monitor against chrony (Debian), a real NTP server started here
//! on loopback at a free port: synchronised (`local stratum 8`), not
//! synchronised (no sources), and stopped. chrony must be installed
//! (`scripts/test` installs it); without it these tests fail.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vgw::drivers::ntp;

fn chronyd() -> PathBuf {
    for p in ["/usr/sbin/chronyd", "/sbin/chronyd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("chronyd")
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chronyd in the foreground, not touching the system clock (-x); its
/// config lives in `_dir` as long as it runs.
struct Chrony {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chrony(port: u16, synchronised: bool) -> Chrony {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("chrony.conf");
    let mut text = format!(
        "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\npidfile {}\n",
        dir.path().join("chronyd.pid").display()
    );
    if synchronised {
        text.push_str("local stratum 8\n");
    }
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(chronyd())
        .args(["-x", "-d", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chronyd is not installed: scripts/test installs Debian's chrony");
    Chrony { child, _dir: dir }
}

fn addr(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// Bursts until chrony answers (it takes a moment to bind), bounded.
async fn first_answer(server: SocketAddr) -> ntp::sntp::Sample {
    for _ in 0..50 {
        if let Ok(s) = ntp::burst(server, 2).await {
            return s;
        }
    }
    panic!("chrony on {server} never answered");
}

#[tokio::test]
async fn a_synchronised_server_reports_its_stratum_and_a_small_offset() {
    let port = free_port();
    let _c = chrony(port, true);
    let s = first_answer(addr(port)).await;
    assert_eq!((s.stratum, s.leap), (8, 0));
    // Same host, same clock: the offset is tiny.
    assert!(s.offset_ms.abs() < 50.0, "{s:?}");
    assert_eq!(ntp::verdict(&s), ntp::Verdict::Ok);
}

#[tokio::test]
async fn an_unsynchronised_server_is_an_alarm() {
    let port = free_port();
    let _c = chrony(port, false);
    let s = first_answer(addr(port)).await;
    assert_eq!(s.leap, 3, "{s:?}");
    assert_eq!(ntp::verdict(&s), ntp::Verdict::Alarm);
}

#[tokio::test]
async fn a_silent_server_is_an_error_within_the_timeout() {
    let port = free_port();
    let started = Instant::now();
    let e = ntp::burst(addr(port), 1).await.unwrap_err();
    assert!(
        matches!(
            e,
            ntp::sntp::SntpError::Timeout(_) | ntp::sntp::SntpError::Io(_)
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "bounded wait");
}

/// The driver end to end: points follow the server up, then down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntp_points_follow_the_server_and_go_to_fault_when_it_stops() {
    let port = free_port();
    let chrony_proc = chrony(port, true);
    let mut site = vgw::model::load_site(Path::new("config/demo.toml"), None).unwrap();
    let ntp1 = site.equipment.iter_mut().find(|e| e.id == "ntp-1").unwrap();
    ntp1.driver_address = Some(format!("127.0.0.1:{port}"));
    let app = Arc::new(vgw::app::App::build(site, None).unwrap());
    ntp::spawn(&app, Duration::from_secs(1));
    let state = |k: &str| {
        let i = app.points.index_of(&format!("ntp-1.{k}")).unwrap();
        app.points.get(i).unwrap()
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    tokio::task::block_in_place(|| {
        wait_for("ntp-1 online", &|| {
            state("online").value == vgw::points::Value::Bool(true)
        });
    });
    assert_eq!(state("stratum").value, vgw::points::Value::Number(8.0));
    assert_eq!(state("sync-alarm").value, vgw::points::Value::Bool(false));
    drop(chrony_proc);
    tokio::task::block_in_place(|| {
        wait_for("ntp-1 offline", &|| {
            state("online").value == vgw::points::Value::Bool(false)
        });
    });
    assert_eq!(state("stratum").quality, vgw::points::Quality::Fault);
    assert_eq!(state("sync-alarm").value, vgw::points::Value::Bool(true));
}
