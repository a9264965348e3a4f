//! Crash recovery, run by `Store::open` before the writer starts.
//!
//! The index only ever points at fsynced bytes, so after a crash:
//! - a segment still marked open may have bytes past its last indexed
//!   fragment (written, maybe fsynced, but not yet indexed, or torn). It is
//!   cut back to the end of its last indexed fragment that is also a
//!   complete `moof`+`mdat` on disk; rows beyond that (or past the end of
//!   the file) are deleted; the segment is marked closed. The unindexed
//!   tail is dropped rather than indexed because the store treats fragment
//!   bytes as opaque: without their rows it knows neither their 90k times
//!   nor wall-clock times. That tail is at most one sync interval (1 s) plus
//!   what was queued.
//! - a segment left with no fragment at all is deleted (file and row): it
//!   holds no video.
//! - a segment file with no row at all (created less than one sync before
//!   the crash, so nothing in it was ever promised durable) is deleted, for
//!   the same reason. Only day directories at or after the camera's newest
//!   indexed day (minus one, for midnight) are searched: older files were
//!   indexed long ago, and listing months of directories would slow every
//!   start.
//! - paths parked in `trash` by retention are unlinked.

use super::boxes;
use super::layout;
use rusqlite::{params, Connection, OptionalExtension};
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// What recovery repaired; the caller logs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Segments found open (the writer did not close them).
    pub open_segments: u32,
    /// Files cut back: (path, length before, length after).
    pub truncated: Vec<(PathBuf, u64, u64)>,
    /// Index rows of fragments not (completely) on disk, deleted.
    pub fragment_rows_deleted: u64,
    /// Open segments without any complete fragment, deleted.
    pub empty_segments_deleted: Vec<PathBuf>,
    /// Segments whose file was missing: rows deleted.
    pub missing_files: Vec<PathBuf>,
    /// Files without index rows, deleted.
    pub orphans_deleted: Vec<PathBuf>,
    /// Files retention had deleted from the index but not yet unlinked.
    pub trash_deleted: u32,
}

impl RecoveryReport {
    pub fn is_clean(&self) -> bool {
        self.truncated.is_empty()
            && self.fragment_rows_deleted == 0
            && self.empty_segments_deleted.is_empty()
            && self.missing_files.is_empty()
            && self.orphans_deleted.is_empty()
            && self.trash_deleted == 0
    }
}

pub fn recover(db: &mut Connection, root: &Path) -> Result<RecoveryReport, super::StoreError> {
    let mut rep = RecoveryReport::default();
    empty_trash(db, root, &mut rep)?;
    let open: Vec<(i64, String, u64)> = db
        .prepare("SELECT id, path, init_len FROM segments WHERE open = 1")?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?
        .collect::<Result<_, _>>()?;
    rep.open_segments = open.len() as u32;
    for (id, rel, init_len) in open {
        repair_segment(db, root, id, &rel, init_len, &mut rep)?;
    }
    delete_orphans(db, root, &mut rep)?;
    Ok(rep)
}

fn empty_trash(db: &Connection, root: &Path, rep: &mut RecoveryReport) -> rusqlite::Result<()> {
    let paths: Vec<String> = db
        .prepare("SELECT path FROM trash")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for p in paths {
        match std::fs::remove_file(root.join(&p)) {
            Ok(()) => rep.trash_deleted += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!("recording recovery: {p}: {e}");
                continue;
            }
        }
        db.execute("DELETE FROM trash WHERE path = ?1", [&p])?;
    }
    Ok(())
}

fn repair_segment(
    db: &mut Connection,
    root: &Path,
    id: i64,
    rel: &str,
    init_len: u64,
    rep: &mut RecoveryReport,
) -> Result<(), super::StoreError> {
    let path = root.join(rel);
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            db.execute("DELETE FROM segments WHERE id = ?1", [id])?;
            rep.missing_files.push(path);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    let boxes = if len >= init_len {
        boxes::scan(&mut file, init_len, len)?
    } else {
        Vec::new()
    };
    let starts: std::collections::HashSet<u64> = boxes.iter().map(|b| b.offset).collect();
    let ends = boxes::fragment_ends(&boxes);
    let complete_end = ends.last().copied().unwrap_or(init_len.min(len));
    // A row survives if it starts on a box boundary and ends exactly at the
    // end of a complete moof+mdat pair that is on disk.
    let rows: Vec<(u64, u64, u64, u32, i64)> = db
        .prepare("SELECT offset, len, start_90k, duration_90k, wall_ms FROM fragments WHERE segment = ?1 ORDER BY offset")?
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
                r.get(3)?,
                r.get(4)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut keep = 0;
    for (off, n, ..) in &rows {
        let end = off + n;
        if starts.contains(off) && end <= complete_end && ends.binary_search(&end).is_ok() {
            keep += 1;
        } else {
            // Fragments are appended in order: nothing after a bad one
            // can be trusted to be where its row says.
            break;
        }
    }
    let tx = db.transaction()?;
    let dropped = rows.len() - keep;
    if dropped > 0 {
        let first_bad = rows[keep].0;
        tx.execute(
            "DELETE FROM fragments WHERE segment = ?1 AND offset >= ?2",
            params![id, first_bad as i64],
        )?;
        rep.fragment_rows_deleted += dropped as u64;
    }
    if keep == 0 {
        tx.execute("DELETE FROM segments WHERE id = ?1", [id])?;
        tx.commit()?;
        drop(file);
        let _ = std::fs::remove_file(&path);
        rep.empty_segments_deleted.push(path);
        return Ok(());
    }
    let (off, n, start_90k, dur, wall_ms) = rows[keep - 1];
    let new_len = off + n;
    if len != new_len {
        file.set_len(new_len)?;
        file.sync_all()?;
        rep.truncated.push((path, len, new_len));
    }
    tx.execute(
        "UPDATE segments SET end_90k = ?2, end_ms = ?3, bytes = ?4, open = 0 WHERE id = ?1",
        params![
            id,
            (start_90k + u64::from(dur)) as i64,
            wall_ms + super::writer::ticks_to_ms(dur),
            new_len as i64
        ],
    )?;
    tx.commit()?;
    Ok(())
}

fn delete_orphans(
    db: &Connection,
    root: &Path,
    rep: &mut RecoveryReport,
) -> Result<(), super::StoreError> {
    let Ok(cams) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for cam in cams {
        let cam = cam?;
        if !cam.file_type()?.is_dir() {
            continue;
        }
        let cam_name = cam.file_name().to_string_lossy().into_owned();
        let prefix = format!("{cam_name}/");
        let newest: Option<i64> = db
            .query_row(
                "SELECT MAX(start_ms) FROM segments WHERE substr(path, 1, ?2) = ?1",
                params![prefix, prefix.len() as i64],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let from_day = newest.map(|ms| layout::day(ms - 86_400_000));
        for day in std::fs::read_dir(cam.path())? {
            let day = day?;
            let day_name = day.file_name().to_string_lossy().into_owned();
            if !day.file_type()?.is_dir() || from_day.as_ref().is_some_and(|f| &day_name < f) {
                continue;
            }
            for f in std::fs::read_dir(day.path())? {
                let f = f?;
                let rel = format!("{prefix}{day_name}/{}", f.file_name().to_string_lossy());
                let known: bool = db
                    .query_row("SELECT 1 FROM segments WHERE path = ?1", [&rel], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !known && f.file_type()?.is_file() {
                    std::fs::remove_file(f.path())?;
                    rep.orphans_deleted.push(f.path());
                }
            }
            let _ = std::fs::remove_dir(day.path());
        }
        let _ = std::fs::remove_dir(cam.path());
    }
    Ok(())
}
