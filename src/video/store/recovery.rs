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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::store::schema;

    fn bx(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut v = ((payload + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(payload + 8, 7);
        v
    }

    fn frag(n: usize) -> Vec<u8> {
        [bx(b"moof", 16), bx(b"mdat", n)].concat()
    }

    fn segment(c: &Connection, path: &str, init_len: usize, open: bool) -> i64 {
        c.execute(
            "INSERT OR IGNORE INTO streams (camera, stream, first_seen_ms) VALUES ('cam', 'main', 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO segments (stream_id, camera, stream, path, codec, width, height, init_len, init_sha,
                 start_90k, end_90k, start_ms, end_ms, bytes, open, after_gap)
             VALUES (1, 'cam', 'main', ?1, 'avc1', 1, 1, ?2, '', 0, 0, 1000, 1000, ?2, ?3, 0)",
            params![path, init_len as i64, open],
        )
        .unwrap();
        c.last_insert_rowid()
    }

    fn fragment_row(c: &Connection, seg: i64, offset: usize, len: usize, i: i64) {
        c.execute(
            "INSERT INTO fragments VALUES (?1, ?2, ?3, ?4, 90000, ?5, 25, 1)",
            params![seg, offset as i64, len as i64, i * 90_000, 1000 + i * 1000],
        )
        .unwrap();
    }

    #[test]
    fn repairs_what_a_crash_leaves() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let day = root.join("cam/19700101");
        std::fs::create_dir_all(&day).unwrap();
        let mut c = schema::open(&root.join(schema::FILE_NAME)).unwrap();
        schema::migrate(&mut c).unwrap();
        let init = [bx(b"ftyp", 8), bx(b"moov", 50)].concat();
        let (f1, f2, f3) = (frag(100), frag(200), frag(300));

        // Open segment: two whole fragments, a torn third whose row was
        // committed anyway (cannot happen with fsync-before-index, but a
        // lying disk can), and a row pointing past the end of the file.
        let mut bytes = [init.clone(), f1.clone(), f2.clone()].concat();
        let good_len = bytes.len() as u64;
        bytes.extend_from_slice(&f3[..f3.len() - 10]);
        std::fs::write(day.join("a.mp4"), &bytes).unwrap();
        let a = segment(&c, "cam/19700101/a.mp4", init.len(), true);
        let mut off = init.len();
        for (i, f) in [&f1, &f2, &f3, &f1].iter().enumerate() {
            fragment_row(&c, a, off, f.len(), i as i64);
            off += f.len();
        }
        // Open segment holding only its init segment and a torn fragment.
        std::fs::write(day.join("b.mp4"), [&init[..], &f1[..20]].concat()).unwrap();
        segment(&c, "cam/19700101/b.mp4", init.len(), true);
        // Open segment whose file is gone.
        segment(&c, "cam/19700101/c.mp4", init.len(), true);
        // A file created just before the crash, never indexed.
        std::fs::write(day.join("d.mp4"), [&init[..], &f1[..]].concat()).unwrap();
        // Retention committed its delete but did not unlink yet.
        std::fs::write(day.join("e.mp4"), &init).unwrap();
        c.execute("INSERT INTO trash VALUES ('cam/19700101/e.mp4')", [])
            .unwrap();

        let rep = recover(&mut c, root).unwrap();
        assert_eq!(rep.open_segments, 3);
        assert_eq!(
            rep.truncated,
            vec![(day.join("a.mp4"), bytes.len() as u64, good_len)]
        );
        assert_eq!(rep.fragment_rows_deleted, 2);
        assert_eq!(rep.empty_segments_deleted, vec![day.join("b.mp4")]);
        assert_eq!(rep.missing_files, vec![day.join("c.mp4")]);
        assert_eq!(rep.orphans_deleted, vec![day.join("d.mp4")]);
        assert_eq!(rep.trash_deleted, 1);

        let files: Vec<_> = std::fs::read_dir(&day).unwrap().collect();
        assert_eq!(files.len(), 1);
        assert_eq!(
            std::fs::metadata(day.join("a.mp4")).unwrap().len(),
            good_len
        );
        let (open, len, end_ms): (bool, i64, i64) = c
            .query_row("SELECT open, bytes, end_ms FROM segments", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((open, len as u64, end_ms), (false, good_len, 3000));
        // A second recovery has nothing left to do.
        assert!(recover(&mut c, root).unwrap().is_clean());
    }
}
