//! Recording end to end inside one process: the RTSP camera simulator
//! (src/sim/rtsp) → retina ingest → fMP4 fragments → the store → an
//! exported clip that ffprobe and ffmpeg accept with the expected duration
//! and frame count. ffmpeg is a Debian package `scripts/test` installs; a
//! missing ffprobe fails these tests.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vgw::sim::rtsp as sim;
use vgw::video::{export, ingest, service};

/// A one-camera site recording `url`.
fn site(url: &str) -> vgw::model::Site {
    site_with(url, "")
}

/// The same with more site-file text appended.
fn site_with(url: &str, extra: &str) -> vgw::model::Site {
    let text = format!(
        r#"[site]
id = "t"
name = "Recording test"
[[building]]
id = "b"
[[floor]]
id = "f"
building = "b"
level = 1
[[space]]
id = "r"
floor = "f"
kind = "room"
[[ip_camera]]
id = "cam-1"
space = "r"
rtsp = "{url}"
{extra}"#
    );
    let loaded = vgw::config::parse(Path::new("site.toml"), text).unwrap();
    vgw::model::build::build_with_registry(&loaded, None).unwrap()
}

fn timeouts() -> ingest::Timeouts {
    ingest::Timeouts {
        request: Duration::from_secs(5),
        frame: Duration::from_secs(3),
    }
}

async fn recorded_ms(rec: &service::Recording) -> i64 {
    let runs = rec.store.recordings("cam-1", "main", 0, i64::MAX).unwrap();
    runs.iter().map(|r| r.end_ms - r.start_ms).sum()
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Probe {
    duration: f64,
    frames: u64,
    codec: String,
    width: u64,
}

/// ffprobe's view of a file, and ffmpeg's decode must print no error.
fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=codec_name,width,nb_read_frames:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is not installed (scripts/test installs Debian's ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.stderr.is_empty(),
        "ffmpeg decode errors: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    Probe {
        duration: v["format"]["duration"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap(),
        frames: s["nb_read_frames"].as_str().unwrap_or("0").parse().unwrap(),
        codec: s["codec_name"].as_str().unwrap_or("").into(),
        width: s["width"].as_u64().unwrap_or(0),
    }
}

async fn record_and_export(codec: sim::Codec, want_codec: &str) {
    let cam = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        sim::RtspSimConfig { streams: 1, codec },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(vgw::app::App::build(site(&cam.url(1)), None).unwrap());
    let rec = Arc::new(service::start(&app, dir.path(), &|_| None, timeouts()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded_ms(&rec).await < 7000 {
        assert!(Instant::now() < deadline, "7 s never got recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs = rec.store.recordings("cam-1", "main", 0, i64::MAX).unwrap();
    let t0 = runs[0].start_ms;
    // 4 s starting between keyframes: the clip must start exactly there.
    let (from, to) = (t0 + 1500, t0 + 5500);
    let store = rec.store.clone();
    let clip = tokio::task::spawn_blocking(move || export::plan(&store, "cam-1", from, to))
        .await
        .unwrap()
        .unwrap();
    let path = dir.path().join("clip.mp4");
    let mut f = std::fs::File::create(&path).unwrap();
    clip.copy_range(0, clip.len, &mut f).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), clip.len);
    let p = probe(&path);
    assert_eq!(p.codec, want_codec);
    assert_eq!(p.width, 640);
    assert!((p.duration - 4.0).abs() < 0.25, "duration {}", p.duration);
    // 25 fps: 100 frames shown, give or take the frame at each edge.
    assert!((97..=103).contains(&p.frames), "{} frames", p.frames);
    rec.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_from_the_simulator_exports_a_clip_that_plays() {
    record_and_export(sim::Codec::H264, "h264").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_with_open_gop_keyframes_exports_a_clip_that_plays() {
    record_and_export(sim::Codec::H265, "hevc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_goes_away_leaves_a_gap_and_recording_resumes() {
    let cam = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        sim::RtspSimConfig {
            streams: 1,
            codec: sim::Codec::H264,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(vgw::app::App::build(site(&cam.url(1)), None).unwrap());
    let rec = Arc::new(service::start(&app, dir.path(), &|_| None, timeouts()).unwrap());
    service::spawn_health(&app, &rec);
    let point = |k: &str| {
        app.points
            .get(app.points.index_of(&format!("cam-1.{k}")).unwrap())
            .unwrap()
            .value
    };
    wait_for("recording", Duration::from_secs(30), || {
        point("recording-ok") == vgw::points::Value::Bool(true)
            && point("online") == vgw::points::Value::Bool(true)
    })
    .await;
    cam.set_online(false);
    wait_for("recording-ok false", Duration::from_secs(30), || {
        point("recording-ok") == vgw::points::Value::Bool(false)
    })
    .await;
    assert_eq!(point("online"), vgw::points::Value::Bool(false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    cam.set_online(true);
    wait_for("recording again", Duration::from_secs(60), || {
        point("recording-ok") == vgw::points::Value::Bool(true)
    })
    .await;
    // Wait for the resumed part to be indexed, then look for the gap.
    let mut gaps = Vec::new();
    wait_for("a gap between two runs", Duration::from_secs(30), || {
        gaps = rec
            .store
            .gaps("cam-1", "main", 0, i64::MAX)
            .unwrap_or_default();
        rec.store
            .recordings("cam-1", "main", 0, i64::MAX)
            .map(|r| r.len() >= 2)
            .unwrap_or(false)
    })
    .await;
    assert!(!gaps.is_empty(), "the outage is a gap in the index");
    assert!(
        gaps.iter().any(|g| g.end_ms - g.start_ms >= 1500),
        "{gaps:?}"
    );
    rec.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_alarm_bookmarks_and_locks_its_linked_camera() {
    let cam = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        sim::RtspSimConfig {
            streams: 1,
            codec: sim::Codec::H264,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"[recording]
pre_alarm_s = 5
post_alarm_s = 20
lock_days = 60
[[nvr]]
id = "nvr-1"
space = "r"
channels = 4
alarm_inputs = 1
[[point]]
id = "nvr-1.alarm-in-1"
brick_class = "Contact_Sensor"
cameras = ["cam-1"]
"#;
    let app = Arc::new(vgw::app::App::build(site_with(&cam.url(1), extra), None).unwrap());
    app.spawn_background();
    let rec = Arc::new(service::start(&app, dir.path(), &|_| None, timeouts()).unwrap());
    assert!(app.recording.set(rec.clone()).is_ok());
    let before = vgw::video::store::now_ms();
    app.points
        .override_input("nvr-1.alarm-in-1", Some(vgw::points::Value::Bool(true)))
        .unwrap();
    let mut locks = Vec::new();
    wait_for("a bookmark on cam-1", Duration::from_secs(10), || {
        locks = rec.store.locks().unwrap_or_default();
        !locks.is_empty()
    })
    .await;
    let l = &locks[0];
    assert_eq!(l.camera, "cam-1");
    assert!(l.reason.ends_with("nvr-1.alarm-in-1"), "{}", l.reason);
    // 5 s before to 20 s after the alarm, locked for 60 days.
    assert!((before - 5000 - l.start_ms).abs() < 2000, "{l:?}");
    assert!((l.end_ms - l.start_ms - 25_000).abs() < 100, "{l:?}");
    let days = (l.expires_at.unwrap() - l.created_at) as f64 / 86_400_000.0;
    assert!((days - 60.0).abs() < 0.01, "{days}");
    rec.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_alarm_camera_writes_only_the_window_around_an_alarm() {
    let cam = sim::start(
        "127.0.0.1:0".parse().unwrap(),
        sim::RtspSimConfig {
            streams: 1,
            codec: sim::Codec::H264,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"record = "on_alarm"
[recording]
pre_alarm_s = 3
post_alarm_s = 3
[[nvr]]
id = "nvr-1"
space = "r"
channels = 4
alarm_inputs = 1
[[point]]
id = "nvr-1.alarm-in-1"
cameras = ["cam-1"]
"#;
    let app = Arc::new(vgw::app::App::build(site_with(&cam.url(1), extra), None).unwrap());
    app.spawn_background();
    let rec = Arc::new(service::start(&app, dir.path(), &|_| None, timeouts()).unwrap());
    assert!(app.recording.set(rec.clone()).is_ok());
    let stats = rec.stats("cam-1").unwrap();
    wait_for("6 s of video ingested", Duration::from_secs(30), || {
        stats.frames.load(std::sync::atomic::Ordering::Relaxed) >= 150
    })
    .await;
    assert_eq!(
        recorded_ms(&rec).await,
        0,
        "nothing written before an alarm"
    );
    let alarm_ms = vgw::video::store::now_ms();
    app.points
        .override_input("nvr-1.alarm-in-1", Some(vgw::points::Value::Bool(true)))
        .unwrap();
    // The window (3 s before to 3 s after) is written, then nothing more.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let runs = rec.store.recordings("cam-1", "main", 0, i64::MAX).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    assert!(
        (r.start_ms - (alarm_ms - 3000)).abs() <= 1500,
        "starts {} ms from alarm",
        r.start_ms - alarm_ms
    );
    assert!(
        (r.end_ms - (alarm_ms + 3000)).abs() <= 1500,
        "ends {} ms from alarm",
        r.end_ms - alarm_ms
    );
    rec.shutdown(Duration::from_secs(5)).await;
}
