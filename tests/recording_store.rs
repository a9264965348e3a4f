//! The recording store end to end: synthetic fragments (valid top-level
//! box framing, arbitrary payload) for two cameras, then what playback and
//! export would see; a SIGKILLed writer; a full disk.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vgw::video::store::{
    boxes, Fragment, RetentionConfig, Store, StoreConfig, StoreError, StreamWriter,
};

/// 2026-12-01T12:00:00Z
const T0: i64 = 1_796_126_400_000;
const SEC: u64 = 90_000;

fn bx(kind: &[u8; 4], payload: usize, fill: u8) -> Vec<u8> {
    let mut v = ((payload + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.resize(payload + 8, fill);
    v
}

fn init_segment(tag: u8) -> Vec<u8> {
    let mut v = bx(b"ftyp", 16, tag);
    v.extend(bx(b"moov", 200, tag));
    v
}

fn fragment_bytes(seq: u32, mdat: usize) -> Vec<u8> {
    let mut v = bx(b"moof", 40, seq as u8);
    v.extend(bx(b"mdat", mdat, (seq >> 8) as u8 ^ 0x5a));
    v
}

/// Head (moof + mdat header) and payload apart, the payload in several
/// buffers, as the recorder hands a fragment over (one buffer per frame);
/// the times are the caller's.
fn split(mut head: Vec<u8>) -> Fragment {
    let mut rest = head.split_off(48 + 8);
    let mut payload = Vec::new();
    while rest.len() > 700 {
        let tail = rest.split_off(700);
        payload.push(std::mem::replace(&mut rest, tail));
    }
    payload.push(rest);
    Fragment {
        head,
        payload,
        start_90k: 0,
        duration_90k: 0,
        wall_ms: 0,
        frames: 0,
        keyframe: true,
    }
}

/// A fragment numbered `seq` with `mdat` payload bytes.
fn frag(seq: u32, mdat: usize) -> Fragment {
    split(fragment_bytes(seq, mdat))
}

/// Second `i` from T0: one keyframe fragment of 25 frames.
fn second(i: u32, mdat: usize) -> Fragment {
    Fragment {
        start_90k: u64::from(i) * SEC,
        duration_90k: SEC as u32,
        wall_ms: T0 + i64::from(i) * 1000,
        frames: 25,
        keyframe: true,
        ..frag(i, mdat)
    }
}

/// Tests drive syncs themselves (`sync_now`), so nothing depends on timing.
fn manual_cfg(segment_secs: u32) -> StoreConfig {
    StoreConfig {
        segment_secs,
        sync_interval: Duration::from_secs(3600),
        retention_interval: Duration::from_secs(3600),
        retention: RetentionConfig::default(),
        ..StoreConfig::default()
    }
}

struct Feed {
    w: StreamWriter,
    sent: HashMap<i64, Vec<u8>>,
}

impl Feed {
    fn send(&mut self, i: u32, start_90k: u64, dur: u64, wall_ms: i64, keyframe: bool) {
        let bytes = fragment_bytes(i, 1000 + (i as usize % 7) * 100);
        self.sent.insert(wall_ms, bytes.clone());
        self.w
            .fragment(Fragment {
                start_90k,
                duration_90k: dur as u32,
                wall_ms,
                frames: 30,
                keyframe,
                ..split(bytes)
            })
            .unwrap();
    }
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

#[test]
fn two_cameras_runs_gaps_usage_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), manual_cfg(10)).unwrap();
    assert!(store.recovery().is_clean());
    // One writer per directory: a second store would "recover" our open
    // segments from under us.
    assert!(matches!(
        Store::open(dir.path(), manual_cfg(10)),
        Err(StoreError::InUse(_))
    ));

    // cam1: 60 s of 2 s fragments, keyframe every third; the stream breaks;
    // 20 s more from T0+100 s on a restarted 90k timeline.
    let mut c1 = Feed {
        w: store.stream("cam1", "main", 0, 2),
        sent: HashMap::new(),
    };
    c1.w.init(init_segment(1), "avc1.640028".into(), 1920, 1080)
        .unwrap();
    for i in 0..30u32 {
        let t = u64::from(i) * 2 * SEC;
        c1.send(i, t, 2 * SEC, T0 + i64::from(i) * 2000, i % 3 == 0);
    }
    c1.w.gap();
    for i in 0..10u32 {
        let t = u64::from(i) * 2 * SEC;
        c1.send(
            100 + i,
            t,
            2 * SEC,
            T0 + 100_000 + i64::from(i) * 2000,
            i % 3 == 0,
        );
    }

    // cam2: its clock runs 5 ms/s fast; the resolution changes after 10 s.
    let mut c2 = Feed {
        w: store.stream("cam2", "main", 1, 2),
        sent: HashMap::new(),
    };
    c2.w.init(init_segment(2), "hvc1".into(), 1280, 720)
        .unwrap();
    for i in 0..5u32 {
        c2.send(
            i,
            u64::from(i) * 2 * SEC,
            2 * SEC,
            T0 + i64::from(i) * 2010,
            true,
        );
    }
    c2.w.init(init_segment(3), "hvc1".into(), 640, 360).unwrap();
    for i in 5..10u32 {
        c2.send(
            i,
            u64::from(i) * 2 * SEC,
            2 * SEC,
            T0 + i64::from(i) * 2010,
            true,
        );
    }
    // cam1's sub stream is stream 1 of 2: its first segment is staggered by
    // half a segment (15 s, so 16 s at a 2 s fragment boundary).
    let mut sub = Feed {
        w: store.stream("cam1", "sub", 1, 2),
        sent: HashMap::new(),
    };
    sub.w
        .init(init_segment(4), "avc1.4d401e".into(), 640, 360)
        .unwrap();
    for i in 0..20u32 {
        sub.send(
            i,
            u64::from(i) * 2 * SEC,
            2 * SEC,
            T0 + i64::from(i) * 2000,
            true,
        );
    }
    store.sync_now().unwrap();
    let subs = store.recordings("cam1", "sub", T0, T0 + 100_000).unwrap();
    let lens: Vec<i64> = subs[0]
        .segments
        .iter()
        .map(|s| s.end_ms - s.start_ms)
        .collect();
    assert_eq!(lens, vec![16_000, 10_000, 10_000, 4_000]);
    // Every fragment so far is durable and indexed: the lag is measured.
    assert!(store.durability_lag_p99().is_some());

    // Files: dated directory, named after the first fragment, init first.
    let first = dir
        .path()
        .join(format!("recordings/cam1/20261201/cam1-main-{T0}.mp4"));
    let bytes = std::fs::read(&first).unwrap();
    assert_eq!(&bytes[..init_segment(1).len()], &init_segment(1)[..]);

    // Runs and gaps of cam1.
    let runs = store.recordings("cam1", "main", T0, T0 + 200_000).unwrap();
    let spans: Vec<(i64, i64)> = runs.iter().map(|r| (r.start_ms, r.end_ms)).collect();
    assert_eq!(spans, vec![(T0, T0 + 60_000), (T0 + 100_000, T0 + 120_000)]);
    // Stream 0 of 2 is not staggered: 10 s segments, rotated at the next
    // keyframe fragment (every 6 s here), so 12 s each; the run after the
    // gap is flagged so.
    assert_eq!(runs[0].segments.len(), 5);
    assert!(runs[0]
        .segments
        .iter()
        .all(|s| s.end_ms - s.start_ms == 12_000));
    assert!(runs[1].segments[0].after_gap);
    assert!(runs
        .iter()
        .flat_map(|r| &r.segments)
        .all(|s| s.codec == "avc1.640028"));
    let gaps = store.gaps("cam1", "main", T0 - 1000, T0 + 200_000).unwrap();
    let gaps: Vec<(i64, i64)> = gaps.iter().map(|g| (g.start_ms, g.end_ms)).collect();
    assert_eq!(
        gaps,
        vec![
            (T0 - 1000, T0),
            (T0 + 60_000, T0 + 100_000),
            (T0 + 120_000, T0 + 200_000)
        ]
    );

    // Stream 1 of 2 gets a first segment 50 % longer (15 s: 8 fragments of
    // 2 s before the init change cut it short at 5).
    let r2 = store.recordings("cam2", "main", T0, T0 + 100_000).unwrap();
    let segs2: Vec<_> = r2.iter().flat_map(|r| &r.segments).collect();
    assert_eq!(segs2.len(), 2);
    assert_eq!((segs2[0].width, segs2[1].width), (1280, 640));

    // Usage (all of a camera's streams) equals what is on disk.
    let u1 = store.usage("cam1").unwrap();
    let on_disk: u64 = runs
        .iter()
        .chain(&subs)
        .flat_map(|r| &r.segments)
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum();
    assert_eq!(u1.bytes, on_disk);
    assert_eq!((u1.oldest_ms, u1.newest_ms), (Some(T0), Some(T0 + 120_000)));
    let u2 = store.usage("cam2").unwrap();
    assert_eq!(store.total_usage().unwrap().bytes, u1.bytes + u2.bytes);

    // Export from 13 s starts at the keyframe at 12 s and ends before 27 s,
    // crossing a segment boundary (24 s) without a new init.
    let pieces = store
        .fragments_for_export("cam1", "main", T0 + 13_000, T0 + 27_000)
        .unwrap();
    let walls: Vec<i64> = pieces.iter().map(|p| p.wall_ms - T0).collect();
    assert_eq!(
        walls,
        vec![12_000, 14_000, 16_000, 18_000, 20_000, 22_000, 24_000, 26_000]
    );
    assert!(pieces[0].keyframe && pieces[0].new_init);
    assert!(pieces[1..].iter().all(|p| !p.new_init));
    assert_ne!(pieces[5].path, pieces[6].path);
    assert!(pieces[6].keyframe, "a segment starts with a keyframe");
    for p in &pieces {
        assert_eq!(read_at(&p.path, p.offset, p.len), c1.sent[&p.wall_ms]);
        assert_eq!(read_at(&p.path, 0, p.init_len), init_segment(1));
    }

    // cam2's export splits where the init segment changes.
    let pieces = store
        .fragments_for_export("cam2", "main", T0, T0 + 100_000)
        .unwrap();
    assert_eq!(pieces.len(), 10);
    let splits: Vec<usize> = (0..10).filter(|&i| pieces[i].new_init).collect();
    assert_eq!(splits, vec![0, 5]);
    assert_eq!(
        read_at(&pieces[7].path, 0, pieces[7].init_len),
        init_segment(3)
    );
    for p in &pieces {
        assert_eq!(read_at(&p.path, p.offset, p.len), c2.sent[&p.wall_ms]);
    }

    // Clock drift: 4 intervals of 2 s on the 90k timeline took 8040 ms.
    let drift = store.drift("cam2", T0, T0 + 100_000).unwrap();
    assert_eq!(drift[0].drift_ms, 40);

    // Locks.
    let id = store
        .lock("cam1", T0, T0 + 5000, "incident 42", "alice", None)
        .unwrap();
    assert_eq!(store.locks().unwrap()[0].reason, "incident 42");
    assert!(store.unlock(id).unwrap());
    assert!(store.locks().unwrap().is_empty());

    // A clean shutdown leaves nothing to repair and the same index.
    drop(store);
    let store = Store::open(dir.path(), manual_cfg(10)).unwrap();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert_eq!(
        store
            .recordings("cam1", "main", T0, T0 + 200_000)
            .unwrap()
            .len(),
        2
    );
    assert!(store.durability_lag_p99().is_none());
}

/// A recorder faster than the writer, through a queue that holds one
/// fragment: waiting for room loses nothing, and the recording has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_the_recorder_wait_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = manual_cfg(3600);
    cfg.queue_messages = 1;
    cfg.queue_bytes = 64 << 10;
    let store = Store::open(dir.path(), cfg).unwrap();
    let w = store.stream("cam", "main", 0, 1);
    w.init(init_segment(1), "avc1".into(), 640, 480).unwrap();
    const N: u32 = 300;
    // Built beforehand, so handing them over takes no time at all.
    let frags: Vec<Fragment> = (0..N).map(|i| second(i, 60_000)).collect();
    for f in frags {
        w.fragment_when_room(f, Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(store.dropped(), 0);
    let s2 = tokio::task::spawn_blocking(move || {
        store.sync_now().unwrap();
        store
    });
    let store = s2.await.unwrap();
    let u = store.usage("cam").unwrap();
    let frag_len = (48 + 8 + 60_000) as u64;
    assert_eq!(
        u.bytes,
        init_segment(1).len() as u64 + u64::from(N) * frag_len
    );
    let runs = store.recordings("cam", "main", T0, T0 + 400_000).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
}

/// The disk holds 200 kB: the oldest unlocked segments make room, the
/// locked range survives and the newest video is recorded.
#[test]
fn full_disk_deletes_oldest_unlocked_and_keeps_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = manual_cfg(4);
    cfg.retention.disk_budget_bytes = Some(200_000);
    cfg.retention.min_free_bytes = 30_000;
    let store = Store::open(dir.path(), cfg).unwrap();
    store
        .lock("cam", T0 + 8_000, T0 + 16_000, "evidence", "bob", None)
        .unwrap();
    let w = store.stream("cam", "main", 0, 1);
    w.init(init_segment(1), "avc1".into(), 640, 480).unwrap();
    for i in 0..100u32 {
        w.fragment(second(i, 10_000)).unwrap();
        store.sync_now().unwrap();
    }
    let u = store.usage("cam").unwrap();
    assert!(u.bytes <= 200_000, "{u:?}");
    // Still recording: the newest second is indexed.
    assert_eq!(u.newest_ms, Some(T0 + 100_000));
    // The locked 8 s are complete; what was before them is gone.
    assert!(store
        .gaps("cam", "main", T0 + 8_000, T0 + 16_000)
        .unwrap()
        .is_empty());
    let runs = store.recordings("cam", "main", T0, T0 + 100_000).unwrap();
    assert_eq!(runs[0].start_ms, T0 + 8_000);
    assert!(!store.retention_blocked());
}

/// Everything locked and the disk full: the store keeps trying, says so,
/// and records again as soon as a lock is released.
#[test]
fn only_locked_data_left_is_flagged_and_recording_resumes_after_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = manual_cfg(4);
    cfg.retention.disk_budget_bytes = Some(100_000);
    cfg.retention.min_free_bytes = 30_000;
    let store = Store::open(dir.path(), cfg).unwrap();
    let lock = store
        .lock("cam", T0, T0 + 1_000_000, "evidence", "bob", None)
        .unwrap();
    let w = store.stream("cam", "main", 0, 1);
    w.init(init_segment(1), "avc1".into(), 640, 480).unwrap();
    let send = |i: u32| {
        w.fragment(second(i, 10_000)).unwrap();
        store.sync_now().unwrap();
    };
    for i in 0..20 {
        send(i);
    }
    assert!(store.write_error());
    assert!(store.retention_blocked());
    let before = store.usage("cam").unwrap();
    assert!(before.newest_ms < Some(T0 + 20_000));
    assert!(store.unlock(lock).unwrap());
    store.run_retention_now().unwrap();
    send(20);
    assert!(!store.write_error());
    assert_eq!(store.usage("cam").unwrap().newest_ms, Some(T0 + 21_000));
}

/// `max_days` and `max_bytes` per camera; an expired lock protects nothing,
/// a live one does.
#[test]
fn per_camera_age_and_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = manual_cfg(10);
    cfg.retention.default.max_days = Some(2);
    cfg.retention.cameras.insert(
        "small".into(),
        vgw::video::store::CameraRetention {
            max_days: None,
            max_bytes: Some(30_000),
        },
    );
    let store = Store::open(dir.path(), cfg).unwrap();
    let now = vgw::video::store::now_ms();
    let day = 86_400_000;
    // Locks may be taken before (or while) the video is recorded.
    store
        .lock(
            "old",
            now - 3 * day,
            now - 3 * day + 5_000,
            "case 7",
            "eve",
            None,
        )
        .unwrap();
    store
        .lock(
            "old",
            now - 4 * day,
            now - 4 * day + 5_000,
            "stale",
            "eve",
            Some(now - 1),
        )
        .unwrap();
    let record = |camera: &str, start: i64, n: u32| {
        let w = store.stream(camera, "main", 0, 1);
        w.init(init_segment(1), "avc1".into(), 640, 480).unwrap();
        for i in 0..n {
            w.fragment(Fragment {
                start_90k: u64::from(i) * 2 * SEC,
                duration_90k: 2 * SEC as u32,
                wall_ms: start + i64::from(i) * 2000,
                frames: 50,
                keyframe: true,
                ..frag(i, 5_000)
            })
            .unwrap();
        }
        w.close().unwrap();
    };
    // "old": 20 s four days ago, 20 s three days ago, 20 s an hour ago.
    record("old", now - 4 * day, 10);
    record("old", now - 3 * day, 10);
    record("old", now - 3_600_000, 10);
    // "small": 60 s in six 10 s segments of ~25.5 kB.
    record("small", now - 3_600_000, 30);
    store.sync_now().unwrap();
    let out = store.run_retention_now().unwrap();
    assert!(!out.blocked);

    let runs = store.recordings("old", "main", 0, i64::MAX).unwrap();
    let starts: Vec<i64> = runs.iter().map(|r| r.start_ms).collect();
    // Four days ago: gone (its lock expired). Three days ago: only the
    // locked first segment is left. An hour ago: untouched.
    assert_eq!(starts, vec![now - 3 * day, now - 3_600_000]);
    assert_eq!(runs[0].segments.len(), 1);
    assert_eq!(runs[1].end_ms, now - 3_600_000 + 20_000);

    // "small" keeps its newest segment(s) within 30 kB.
    let u = store.usage("small").unwrap();
    assert!(u.bytes <= 30_000, "{u:?}");
    assert_eq!(u.newest_ms, Some(now - 3_600_000 + 60_000));
}

const CRASH_DIR: &str = "VGW_STORE_CRASH_DIR";

/// Run by `crash_loses_at_most_the_last_sync_interval` in a child process:
/// records 100 ms fragments in real time until killed, printing each one
/// the store accepted.
#[test]
#[ignore]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let cfg = StoreConfig {
        segment_secs: 2,
        ..StoreConfig::default()
    };
    let store = Store::open(Path::new(&dir), cfg).unwrap();
    let w = store.stream("cam", "main", 0, 1);
    w.init(init_segment(1), "avc1".into(), 640, 480).unwrap();
    let t0 = vgw::video::store::now_ms();
    for i in 0u32.. {
        let wall = t0 + i64::from(i) * 100;
        let ok = w
            .fragment(Fragment {
                start_90k: u64::from(i) * 9000,
                duration_90k: 9000,
                wall_ms: wall,
                frames: 3,
                keyframe: i % 10 == 0,
                ..frag(i, 20_000 + (i as usize % 13) * 1000)
            })
            .is_ok();
        if ok {
            println!("frag {i} {}", wall + 100);
        }
        // Real-time pacing: one 100 ms fragment per 100 ms.
        let due = Duration::from_millis(u64::from(i + 1) * 100);
        let elapsed = Duration::from_millis((vgw::video::store::now_ms() - t0) as u64);
        std::thread::sleep(due.saturating_sub(elapsed));
    }
}

#[test]
fn crash_loses_at_most_the_last_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let last_sent: Arc<Mutex<Option<(u32, i64)>>> = Arc::default();
    let reader = {
        let out = child.stdout.take().unwrap();
        let last = last_sent.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut it = line.split_whitespace();
                if it.next() == Some("frag") {
                    let i = it.next().and_then(|s| s.parse().ok());
                    let end = it.next().and_then(|s| s.parse().ok());
                    if let (Some(i), Some(end)) = (i, end) {
                        *last.lock().unwrap() = Some((i, end));
                    }
                }
            }
        })
    };

    // Wait until at least 5 s of video are indexed, then SIGKILL.
    let index = dir.path().join("recordings/index.sqlite");
    let indexed_ms = || -> i64 {
        if !index.exists() {
            return 0;
        }
        let Ok(c) = rusqlite::Connection::open(&index) else {
            return 0;
        };
        c.query_row(
            "SELECT COALESCE(SUM(duration_90k), 0) / 90 FROM fragments",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while indexed_ms() < 5_000 {
        assert!(Instant::now() < deadline, "child never indexed 5 s");
        assert!(child.try_wait().unwrap().is_none(), "child exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Kill at an arbitrary point of the sync cycle, not just after a commit.
    let phase = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 1_000_000_000;
    std::thread::sleep(Duration::from_nanos(u64::from(phase)));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    let (last_i, last_end) = last_sent.lock().unwrap().expect("child sent fragments");

    let store = Store::open(dir.path(), manual_cfg(2)).unwrap();
    let rep = store.recovery().clone();
    eprintln!("recovery after SIGKILL: {rep:?}");

    // Every indexed fragment is at its offset, a complete moof+mdat, in a
    // closed segment whose file ends exactly at its indexed bytes.
    let runs = store.recordings("cam", "main", 0, i64::MAX).unwrap();
    let segs: Vec<_> = runs.iter().flat_map(|r| &r.segments).collect();
    assert!(!segs.is_empty());
    for s in &segs {
        assert!(!s.open, "{s:?}");
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), s.bytes, "{s:?}");
    }
    let pieces = store
        .fragments_for_export("cam", "main", 0, i64::MAX)
        .unwrap();
    for p in &pieces {
        let b = read_at(&p.path, p.offset, p.len);
        assert!(boxes::is_complete_fragment(&b), "{p:?}");
    }
    let newest = store.usage("cam").unwrap().newest_ms.unwrap();
    let lost_ms = last_end - newest;
    eprintln!(
        "child's last accepted fragment #{last_i} ended at {last_end}; index ends at {newest}: lost {lost_ms} ms"
    );
    // One sync interval (1 s) plus the fsync and commit; slack for a
    // loaded machine.
    assert!(lost_ms <= 2_500, "lost {lost_ms} ms of video");
    assert!(lost_ms >= 0);
}
