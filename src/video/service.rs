//! The recording service of a running gateway: one store per data dir,
//! one recorder per camera that records, and the recording-health points
//! (DESIGN.md §4: camera online, recording OK, last-frame age, bitrate,
//! fps, retention achieved and forecast; gateway disk usage, oldest
//! recording, storage write error), refreshed every `HEALTH_EVERY`.

use super::recorder::{self, Stats};
use super::store::{Store, StoreConfig};
use crate::app::App;
use crate::model::RecordMode;
use crate::points::{Quality, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Retention achieved, oldest recording and disk usage (index sums).
pub const USAGE_EVERY: Duration = Duration::from_secs(60);
/// A camera whose last frame is older than this is not recording OK.
pub const STALE_FRAME: Duration = Duration::from_secs(5);
/// How long a camera without an `rtsp` URL waits for ONVIF to report one.
const STREAM_URI_WAIT: Duration = Duration::from_secs(2);

/// One recorded camera.
struct Camera {
    id: String,
    stats: Arc<Stats>,
    /// The camera's `online` point is ours only when no ONVIF driver owns it.
    owns_online: bool,
    max_bytes: Option<u64>,
}

pub struct Recording {
    pub store: Arc<Store>,
    pub audit: super::audit::AuditLog,
    /// The limits in force (replaced by a reload).
    retention: std::sync::Mutex<super::store::RetentionConfig>,
    cameras: Vec<Camera>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Recording {
    /// Camera ids being recorded, with their live counters.
    pub fn stats(&self, camera: &str) -> Option<Arc<Stats>> {
        self.cameras
            .iter()
            .find(|c| c.id == camera)
            .map(|c| c.stats.clone())
    }

    pub fn cameras(&self) -> impl Iterator<Item = &str> {
        self.cameras.iter().map(|c| c.id.as_str())
    }

    pub fn retention(&self) -> std::sync::MutexGuard<'_, super::store::RetentionConfig> {
        self.retention.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// New retention limits from a reloaded site file: the store enforces
    /// them from now on; recording goes on untouched. Blocking (the
    /// store's queue): call off the async workers.
    pub fn set_retention(&self, r: super::store::RetentionConfig) -> anyhow::Result<()> {
        *self.retention() = r.clone();
        self.store
            .set_retention(r)
            .map_err(|e| anyhow::anyhow!("recording store: {e}"))
    }

    /// Stops every recorder and flushes the store (bounded by `limit`).
    pub async fn shutdown(&self, limit: Duration) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.sync_now()).await;
    }
}

/// The stream store configuration for a site.
pub fn store_config(site: &crate::model::Site) -> StoreConfig {
    let r = &site.settings.recording;
    let mut cfg = StoreConfig::default();
    cfg.retention.min_free_percent = r.min_free_percent;
    cfg.retention.disk_budget_bytes = r.disk_budget_bytes;
    cfg.retention.cameras = site
        .equipment
        .iter()
        .filter_map(|e| {
            let rec = e.recording.as_ref()?;
            Some((
                e.id.clone(),
                super::store::CameraRetention {
                    max_days: Some(rec.retention_days),
                    max_bytes: rec.max_bytes,
                },
            ))
        })
        .collect();
    cfg.queue_bytes = super::store::queue_bytes_for(cfg.retention.cameras.len());
    cfg
}

/// Opens the store under `data_dir` and starts a recorder for every camera
/// that records. `credentials` gives each camera's RTSP login by name.
pub fn start(
    app: &Arc<App>,
    data_dir: &Path,
    credentials: &dyn Fn(&str) -> Option<crate::config::secrets::Credential>,
    timeouts: super::ingest::Timeouts,
) -> anyhow::Result<Recording> {
    let cfg = store_config(&app.site);
    let retention = cfg.retention.clone();
    let store = Store::open(data_dir, cfg)
        .map_err(|e| anyhow::anyhow!("recording store in {}: {e}", data_dir.display()))?;
    let r = store.recovery();
    if r.open_segments > 0 {
        tracing::warn!(
            open = r.open_segments,
            truncated = r.truncated.len(),
            rows_deleted = r.fragment_rows_deleted,
            "recording store repaired after an unclean stop"
        );
    }
    let store = Arc::new(store);
    let audit = super::audit::AuditLog::open(&data_dir.join("recordings"))?;
    let (stop, stop_rx) = watch::channel(false);
    let recorded: Vec<(&crate::model::Equipment, crate::model::CameraRecording)> = app
        .site
        .equipment
        .iter()
        .filter_map(|e| {
            let r = e.recording.clone()?;
            (r.mode != RecordMode::Off && (r.rtsp.is_some() || e.onvif.is_some())).then_some((e, r))
        })
        .collect();
    let n = recorded.len() as u32;
    let mut cameras = Vec::new();
    let mut tasks = Vec::new();
    for (k, (e, rec)) in recorded.into_iter().enumerate() {
        let stats = Arc::new(Stats::default());
        let writer = store.stream(&e.id, "main", k as u32, n);
        let creds = e
            .credential
            .as_deref()
            .and_then(credentials)
            .map(|c| (c.username, c.password));
        let app2 = app.clone();
        let id = e.id.clone();
        let stats2 = stats.clone();
        let stop = stop_rx.clone();
        let pre_alarm =
            (rec.mode == RecordMode::OnAlarm).then_some(app.site.settings.recording.pre_alarm_s);
        tasks.push(tokio::spawn(async move {
            let Some(url) = stream_url(&app2, &id, rec.rtsp.clone(), stop.clone()).await else {
                return;
            };
            recorder::run(url, creds, writer, stats2, timeouts, pre_alarm, stop).await;
        }));
        cameras.push(Camera {
            id: e.id.clone(),
            stats,
            owns_online: e.onvif.is_none(),
            max_bytes: rec.max_bytes,
        });
    }
    Ok(Recording {
        store,
        audit,
        retention: std::sync::Mutex::new(retention),
        cameras,
        stop,
        tasks: std::sync::Mutex::new(tasks),
    })
}

/// The configured URL, or the one the camera's ONVIF driver learned.
async fn stream_url(
    app: &App,
    id: &str,
    configured: Option<String>,
    mut stop: watch::Receiver<bool>,
) -> Option<String> {
    if configured.is_some() {
        return configured;
    }
    loop {
        if let Some(u) = app.onvif_facts.get(id).and_then(|f| f.stream_uri) {
            return Some(u);
        }
        tokio::select! {
            _ = tokio::time::sleep(STREAM_URI_WAIT) => {}
            _ = stop.changed() => return None,
        }
    }
}

/// Refreshes the recording-health points until the app ends.
pub fn spawn_health(app: &Arc<App>, rec: &Arc<Recording>) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    let rec = rec.clone();
    tokio::spawn(async move {
        let mut prev: HashMap<String, (u64, u64, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        let mut usage: (Vec<(String, Option<Usage>)>, Option<Usage>) = Default::default();
        let mut usage_at: Option<Instant> = None;
        loop {
            tick.tick().await;
            // Retention and disk usage move slowly; summing the index for
            // every camera is not work for every 2 s tick.
            if usage_at.is_none_or(|t| t.elapsed() >= USAGE_EVERY) {
                let r = rec.clone();
                usage = tokio::task::spawn_blocking(move || {
                    let per: Vec<_> = r
                        .cameras
                        .iter()
                        .map(|c| (c.id.clone(), r.store.usage(&c.id).ok()))
                        .collect();
                    (per, r.store.total_usage().ok())
                })
                .await
                .unwrap_or_default();
                usage_at = Some(Instant::now());
                for (id, u) in &usage.0 {
                    if let (Some(st), Some(u)) = (rec.stats(id), u) {
                        st.stored_bytes
                            .store(u.bytes, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            health_once(&app, &rec, &mut prev, &usage.0, usage.1.as_ref());
        }
    })
}

type Usage = super::store::Usage;

fn health_once(
    app: &App,
    rec: &Recording,
    prev: &mut HashMap<String, (u64, u64, Instant)>,
    usage: &[(String, Option<Usage>)],
    total: Option<&Usage>,
) {
    let now = Instant::now();
    let now_ms = super::store::now_ms();
    let put = |id: &str, v: Value| {
        if let Some(i) = app.points.index_of(id) {
            app.points.report(i, v, Quality::Ok);
        }
    };
    let write_error = rec.store.write_error();
    let mut total_rate = 0.0;
    let mut rates: Vec<(usize, f64)> = Vec::new();
    for (ci, c) in rec.cameras.iter().enumerate() {
        let frames = c.stats.frames.load(Ordering::Relaxed);
        let bytes = c.stats.bytes.load(Ordering::Relaxed);
        let (f0, b0, t0) = prev
            .insert(c.id.clone(), (frames, bytes, now))
            .unwrap_or((frames, bytes, now));
        let dt = (now - t0).as_secs_f64();
        let (fps, bps) = if dt > 0.0 {
            ((frames - f0) as f64 / dt, (bytes - b0) as f64 * 8.0 / dt)
        } else {
            (0.0, 0.0)
        };
        let last = c.stats.last_frame_ms.load(Ordering::Relaxed);
        let age_s = if last > 0 {
            ((now_ms - last) as f64 / 1000.0).max(0.0)
        } else {
            f64::NAN
        };
        let fresh = age_s.is_finite() && age_s < STALE_FRAME.as_secs_f64();
        let connected = c.stats.connected.load(Ordering::Relaxed);
        if c.owns_online {
            put(&format!("{}.online", c.id), Value::Bool(connected));
        }
        put(
            &format!("{}.recording-ok", c.id),
            Value::Bool(fresh && c.stats.recording.load(Ordering::Relaxed) && !write_error),
        );
        if age_s.is_finite() {
            put(
                &format!("{}.last-frame-age", c.id),
                Value::Number(round1(age_s)),
            );
        }
        put(
            &format!("{}.bitrate", c.id),
            Value::Number(round2(bps / 1e6)),
        );
        put(&format!("{}.fps", c.id), Value::Number(round1(fps)));
        if let Some((_, Some(u))) = usage.iter().find(|(id, _)| *id == c.id) {
            put(
                &format!("{}.retention-days", c.id),
                Value::Number(round1(u.days)),
            );
        }
        total_rate += bps;
        rates.push((ci, bps));
    }
    // Forecast: the bytes this camera may use (its own cap, or its share
    // of the recording disk by bitrate) over what it writes per day now.
    let capacity = recording_capacity(app, rec);
    for (ci, bps) in rates {
        let c = &rec.cameras[ci];
        let per_day = bps / 8.0 * 86_400.0;
        if per_day <= 0.0 {
            continue;
        }
        let share = match (c.max_bytes, capacity) {
            (Some(m), _) => Some(m as f64),
            (None, Some(cap)) if total_rate > 0.0 => Some(cap as f64 * bps / total_rate),
            _ => None,
        };
        if let Some(s) = share {
            put(
                &format!("{}.retention-forecast", c.id),
                Value::Number(round1(s / per_day)),
            );
        }
    }
    if let Some(t) = total {
        if let Some(oldest) = t.oldest_ms {
            put(
                "gateway.oldest-recording",
                Value::Number(round1((now_ms - oldest) as f64 / 86_400_000.0)),
            );
        }
        if let Some(cap) = capacity {
            put(
                "gateway.disk-usage",
                Value::Number(round1(t.bytes as f64 * 100.0 / cap.max(1) as f64)),
            );
        }
    }
    put("gateway.storage-write-error", Value::Bool(write_error));
}

/// Bytes recordings may occupy: the configured budget, else the disk's
/// size less the free-space floor.
pub fn recording_capacity(app: &App, rec: &Recording) -> Option<u64> {
    let r = &app.site.settings.recording;
    if let Some(b) = r.disk_budget_bytes {
        return Some(b);
    }
    let retention = rec.retention().clone();
    let (_, total) = super::store::retention::free_space(rec.store.root(), &retention, 0)?;
    Some((total as f64 * (1.0 - r.min_free_percent / 100.0)) as u64)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
