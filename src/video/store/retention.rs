//! Retention: which segments to delete, oldest first, so recording never
//! stops for lack of space.
//!
//! Limits, whichever is reached first: per camera `max_days` and
//! `max_bytes`, and for the whole disk a free-space floor. Only *closed*
//! segments are candidates (the writer may still append to open ones), and
//! a segment overlapping an unexpired evidence lock of its camera is never
//! deleted. When only locked or open data is left and the floor is still
//! not met, the store keeps writing and reports `blocked`, so health shows
//! it; the operator decides which evidence to release.

use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraRetention {
    pub max_days: Option<u32>,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionConfig {
    /// For cameras without an entry in `cameras`.
    pub default: CameraRetention,
    pub cameras: HashMap<String, CameraRetention>,
    /// Keep at least this much free on the recording file system...
    pub min_free_bytes: u64,
    /// ...and at least this percentage of it (the larger wins).
    pub min_free_percent: f64,
    /// Pretend the disk holds only this many bytes of recordings (tests,
    /// and a quota on a shared disk): free = budget - bytes of all segment
    /// files, and a write beyond it fails like ENOSPC.
    pub disk_budget_bytes: Option<u64>,
}

impl RetentionConfig {
    /// Free bytes to keep on a file system of `total` bytes.
    pub fn floor(&self, total: u64) -> u64 {
        let pct = (total as f64 * self.min_free_percent.clamp(0.0, 100.0) / 100.0) as u64;
        self.min_free_bytes.max(pct)
    }

    fn for_camera(&self, camera: &str) -> &CameraRetention {
        self.cameras.get(camera).unwrap_or(&self.default)
    }
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub deleted_segments: u32,
    pub freed_bytes: u64,
    /// A limit could not be met because only locked or open data is left.
    pub blocked: bool,
}

/// (free, total) bytes of the recording file system, or of the simulated
/// budget; None if statvfs fails (then only per-camera limits apply).
pub fn free_space(root: &Path, cfg: &RetentionConfig, used_bytes: u64) -> Option<(u64, u64)> {
    if let Some(b) = cfg.disk_budget_bytes {
        return Some((b.saturating_sub(used_bytes), b));
    }
    let s = nix::sys::statvfs::statvfs(root).ok()?;
    let frag = s.fragment_size() as u64;
    Some((s.blocks_available() as u64 * frag, s.blocks() as u64 * frag))
}

/// Closed segments not covered by an unexpired lock of their camera.
const DELETABLE: &str = "s.open = 0 AND NOT EXISTS (
    SELECT 1 FROM locks l WHERE l.camera = s.camera
      AND l.start_ms < s.end_ms AND l.end_ms > s.start_ms
      AND (l.expires_at IS NULL OR l.expires_at > ?1))";

struct Victim {
    id: i64,
    path: String,
    bytes: u64,
}

pub fn enforce(
    db: &mut Connection,
    root: &Path,
    cfg: &RetentionConfig,
    now_ms: i64,
    used_bytes: &mut u64,
) -> Outcome {
    match plan(db, root, cfg, now_ms, *used_bytes) {
        Ok((victims, blocked)) => {
            let mut out = delete(db, root, &victims, used_bytes);
            out.blocked = blocked;
            out
        }
        Err(e) => {
            tracing::error!("recording retention: {e}");
            Outcome::default()
        }
    }
}

fn plan(
    db: &Connection,
    root: &Path,
    cfg: &RetentionConfig,
    now_ms: i64,
    used_bytes: u64,
) -> rusqlite::Result<(Vec<Victim>, bool)> {
    let mut victims = Vec::new();
    let mut chosen = HashSet::new();
    let mut blocked = false;
    let row = |r: &rusqlite::Row| -> rusqlite::Result<Victim> {
        Ok(Victim {
            id: r.get(0)?,
            path: r.get(1)?,
            bytes: r.get::<_, i64>(2)? as u64,
        })
    };
    let cameras: Vec<String> = db
        .prepare("SELECT DISTINCT camera FROM streams")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for camera in &cameras {
        let rule = cfg.for_camera(camera);
        if let Some(days) = rule.max_days {
            let cutoff = now_ms - i64::from(days) * 86_400_000;
            let mut q = db.prepare(&format!(
                "SELECT id, path, bytes FROM segments s WHERE camera = ?2 AND end_ms < ?3 AND {DELETABLE}"
            ))?;
            for v in q.query_map(params![now_ms, camera, cutoff], row)? {
                let v = v?;
                if chosen.insert(v.id) {
                    victims.push(v);
                }
            }
        }
        if let Some(max) = rule.max_bytes {
            let total: i64 = db.query_row(
                "SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE camera = ?1",
                [camera],
                |r| r.get(0),
            )?;
            let already: u64 = victims.iter().map(|v| v.bytes).sum();
            let mut excess = (total as u64).saturating_sub(already).saturating_sub(max);
            let mut q = db.prepare(&format!(
                "SELECT id, path, bytes FROM segments s WHERE camera = ?2 AND {DELETABLE} ORDER BY start_ms"
            ))?;
            let mut rows = q.query_map(params![now_ms, camera], row)?;
            while excess > 0 {
                let Some(v) = rows.next().transpose()? else {
                    tracing::warn!("recording retention: {camera} is over max_bytes with only locked or open data left");
                    blocked = true;
                    break;
                };
                if chosen.insert(v.id) {
                    excess = excess.saturating_sub(v.bytes);
                    victims.push(v);
                }
            }
        }
    }
    if let Some((free, total)) = free_space(root, cfg, used_bytes) {
        let planned: u64 = victims.iter().map(|v| v.bytes).sum();
        let mut deficit = cfg.floor(total).saturating_sub(free + planned);
        if deficit > 0 {
            let mut q = db.prepare(&format!(
                "SELECT id, path, bytes FROM segments s WHERE {DELETABLE} ORDER BY start_ms"
            ))?;
            let mut rows = q.query_map(params![now_ms], row)?;
            while deficit > 0 {
                let Some(v) = rows.next().transpose()? else {
                    blocked = true;
                    break;
                };
                if chosen.insert(v.id) {
                    deficit = deficit.saturating_sub(v.bytes);
                    victims.push(v);
                }
            }
        }
    }
    Ok((victims, blocked))
}

/// Rows first (with the paths parked in `trash` in the same transaction),
/// then the files: a crash in between leaves no row pointing at a missing
/// file, and recovery finishes the unlinks from `trash`.
fn delete(db: &mut Connection, root: &Path, victims: &[Victim], used_bytes: &mut u64) -> Outcome {
    let mut out = Outcome::default();
    if victims.is_empty() {
        return out;
    }
    let tx = (|| -> rusqlite::Result<()> {
        let tx = db.transaction()?;
        for v in victims {
            tx.execute("INSERT OR IGNORE INTO trash (path) VALUES (?1)", [&v.path])?;
            tx.execute("DELETE FROM segments WHERE id = ?1", [v.id])?;
        }
        tx.commit()
    })();
    if let Err(e) = tx {
        tracing::error!("recording retention: deleting rows failed: {e}");
        return out;
    }
    for v in victims {
        let file = root.join(&v.path);
        let size = std::fs::metadata(&file).map_or(v.bytes, |m| m.len());
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!("recording retention: {}: {e}", file.display());
                continue;
            }
        }
        let _ = db.execute("DELETE FROM trash WHERE path = ?1", [&v.path]);
        // Empty day and camera directories go too (fails harmlessly if not empty).
        if let Some(day) = file.parent() {
            if std::fs::remove_dir(day).is_ok() {
                if let Some(cam) = day.parent() {
                    let _ = std::fs::remove_dir(cam);
                }
            }
        }
        *used_bytes = used_bytes.saturating_sub(size);
        out.deleted_segments += 1;
        out.freed_bytes += size;
    }
    tracing::info!(
        "recording retention: deleted {} segments, {} bytes",
        out.deleted_segments,
        out.freed_bytes
    );
    out
}
