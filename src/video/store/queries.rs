//! Read-side queries for playback and export, on the reader connection.
//!
//! Time ranges are wall-clock ms, half-open `[from, to)`. A fragment covers
//! `[wall_ms, wall_ms + duration)`; a segment from its first fragment's
//! wall time to the end of its last indexed fragment. Only durable,
//! indexed data is ever returned.

use super::writer::ticks_to_ms;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// Consecutive segments of a stream whose wall times are this close (and
/// with no gap announced between them) belong to the same run: a camera's
/// clock jitters by a few ms from fragment to fragment.
pub const CONTIGUOUS_MS: i64 = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub id: i64,
    pub camera: String,
    pub stream: String,
    pub path: PathBuf,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// The init segment is bytes `[0, init_len)` of `path`.
    pub init_len: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub start_90k: u64,
    pub end_90k: u64,
    pub bytes: u64,
    pub open: bool,
    pub after_gap: bool,
}

/// Uninterrupted recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub start_ms: i64,
    pub end_ms: i64,
    pub segments: Vec<SegmentInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One fragment to copy into an export: bytes `[offset, offset + len)` of
/// `path`, decoded with the init segment `[0, init_len)` of the same file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPiece {
    pub path: PathBuf,
    pub init_len: u64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// True on the first piece and wherever the sample entry differs from
    /// the previous piece's: an export starts a new track/file there.
    pub new_init: bool,
    pub offset: u64,
    pub len: u64,
    pub start_90k: u64,
    pub duration_90k: u32,
    pub wall_ms: i64,
    pub keyframe: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub bytes: u64,
    pub segments: u64,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    /// newest - oldest, in days (what `max_days` is compared with).
    pub days: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lock {
    pub id: i64,
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// How far the camera's clock moved against its media timeline in one
/// segment (positive: the camera clock ran fast).
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub segment_id: i64,
    pub stream: String,
    pub start_ms: i64,
    pub span_ms: i64,
    pub drift_ms: i64,
}

const SEGMENT_COLS: &str = "id, camera, stream, path, codec, width, height, init_len, start_ms, end_ms, start_90k, end_90k, bytes, open, after_gap, init_sha";

fn segment_row(root: &Path, r: &rusqlite::Row) -> rusqlite::Result<(SegmentInfo, String)> {
    Ok((
        SegmentInfo {
            id: r.get(0)?,
            camera: r.get(1)?,
            stream: r.get(2)?,
            path: root.join(r.get::<_, String>(3)?),
            codec: r.get(4)?,
            width: r.get(5)?,
            height: r.get(6)?,
            init_len: r.get::<_, i64>(7)? as u64,
            start_ms: r.get(8)?,
            end_ms: r.get(9)?,
            start_90k: r.get::<_, i64>(10)? as u64,
            end_90k: r.get::<_, i64>(11)? as u64,
            bytes: r.get::<_, i64>(12)? as u64,
            open: r.get(13)?,
            after_gap: r.get(14)?,
        },
        r.get(15)?,
    ))
}

/// Segments of a stream overlapping `[from, to)` that hold at least one
/// indexed fragment, oldest first, with their init hash.
fn segments(
    c: &Connection,
    root: &Path,
    camera: &str,
    stream: &str,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(SegmentInfo, String)>> {
    c.prepare_cached(&format!(
        "SELECT {SEGMENT_COLS} FROM segments WHERE camera = ?1 AND stream = ?2
           AND start_ms < ?4 AND end_ms > ?3 AND bytes > init_len
         ORDER BY start_ms, id"
    ))?
    .query_map(params![camera, stream, from, to], |r| segment_row(root, r))?
    .collect()
}

pub fn recordings(
    c: &Connection,
    root: &Path,
    camera: &str,
    stream: &str,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<Run>> {
    let segs = segments(c, root, camera, stream, from, to)?;
    Ok(runs(segs.into_iter().map(|(s, _)| s).collect()))
}

/// Groups segments (oldest first) into runs.
pub fn runs(segs: Vec<SegmentInfo>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for s in segs {
        match out.last_mut() {
            Some(r) if !s.after_gap && s.start_ms - r.end_ms <= CONTIGUOUS_MS => {
                r.end_ms = r.end_ms.max(s.end_ms);
                r.segments.push(s);
            }
            _ => out.push(Run {
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                segments: vec![s],
            }),
        }
    }
    out
}

/// The parts of `[from, to)` not covered by a run.
pub fn gaps_between(runs: &[Run], from: i64, to: i64) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut at = from;
    for r in runs {
        if r.start_ms > at {
            out.push(Gap {
                start_ms: at,
                end_ms: r.start_ms.min(to),
            });
        }
        at = at.max(r.end_ms);
        if at >= to {
            break;
        }
    }
    if at < to {
        out.push(Gap {
            start_ms: at,
            end_ms: to,
        });
    }
    out.retain(|g| g.start_ms < g.end_ms);
    out
}

pub fn export(
    c: &Connection,
    root: &Path,
    camera: &str,
    stream: &str,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<ExportPiece>> {
    // Decoding must start at a keyframe: move `from` back to the last
    // keyframe fragment starting at or before it.
    let kf: Option<i64> = c
        .prepare_cached(
            "SELECT f.wall_ms FROM fragments f JOIN segments s ON s.id = f.segment
             WHERE s.camera = ?1 AND s.stream = ?2 AND s.start_ms <= ?3 AND f.keyframe = 1 AND f.wall_ms <= ?3
             ORDER BY s.start_ms DESC, f.wall_ms DESC LIMIT 1",
        )?
        .query_row(params![camera, stream, from], |r| r.get(0))
        .optional()?;
    let start = kf.map_or(from, |k| k.min(from));
    let mut out: Vec<ExportPiece> = Vec::new();
    let mut last_sha: Option<String> = None;
    for (s, sha) in segments(c, root, camera, stream, start, to)? {
        let mut q = c.prepare_cached(
            "SELECT offset, len, start_90k, duration_90k, wall_ms, keyframe FROM fragments
             WHERE segment = ?1 ORDER BY offset",
        )?;
        let rows = q.query_map([s.id], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        for row in rows {
            let (offset, len, start_90k, duration_90k, wall_ms, keyframe) = row?;
            if wall_ms + ticks_to_ms(duration_90k) <= start || wall_ms >= to || wall_ms < start {
                continue;
            }
            let new_init = last_sha.as_ref() != Some(&sha);
            // After an init change (or at the very start) nothing decodes
            // until a keyframe.
            if new_init && !keyframe {
                continue;
            }
            last_sha = Some(sha.clone());
            out.push(ExportPiece {
                path: s.path.clone(),
                init_len: s.init_len,
                codec: s.codec.clone(),
                width: s.width,
                height: s.height,
                new_init,
                offset,
                len,
                start_90k,
                duration_90k,
                wall_ms,
                keyframe,
            });
        }
    }
    Ok(out)
}

fn usage_where(
    c: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<Usage> {
    c.query_row(
        &format!(
            "SELECT COALESCE(SUM(bytes), 0), COUNT(*), MIN(start_ms), MAX(end_ms) FROM segments {filter}"
        ),
        args,
        |r| {
            let oldest: Option<i64> = r.get(2)?;
            let newest: Option<i64> = r.get(3)?;
            Ok(Usage {
                bytes: r.get::<_, i64>(0)? as u64,
                segments: r.get::<_, i64>(1)? as u64,
                oldest_ms: oldest,
                newest_ms: newest,
                days: match (oldest, newest) {
                    (Some(o), Some(n)) => (n - o) as f64 / 86_400_000.0,
                    _ => 0.0,
                },
            })
        },
    )
}

pub fn usage(c: &Connection, camera: &str) -> rusqlite::Result<Usage> {
    usage_where(c, "WHERE camera = ?1", &[&camera])
}

pub fn total_usage(c: &Connection) -> rusqlite::Result<Usage> {
    usage_where(c, "", &[])
}

pub fn locks(c: &Connection) -> rusqlite::Result<Vec<Lock>> {
    c.prepare_cached(
        "SELECT id, camera, start_ms, end_ms, reason, created_by, created_at, expires_at FROM locks ORDER BY camera, start_ms",
    )?
    .query_map([], |r| {
        Ok(Lock {
            id: r.get(0)?,
            camera: r.get(1)?,
            start_ms: r.get(2)?,
            end_ms: r.get(3)?,
            reason: r.get(4)?,
            created_by: r.get(5)?,
            created_at: r.get(6)?,
            expires_at: r.get(7)?,
        })
    })?
    .collect()
}

pub fn drift(c: &Connection, camera: &str, from: i64, to: i64) -> rusqlite::Result<Vec<Drift>> {
    c.prepare_cached(
        "SELECT s.id, s.stream, s.start_ms, d.last_wall_ms - d.first_wall_ms, d.drift_ms
         FROM clock_drift d JOIN segments s ON s.id = d.segment
         WHERE s.camera = ?1 AND s.start_ms < ?3 AND s.end_ms > ?2 ORDER BY s.start_ms",
    )?
    .query_map(params![camera, from, to], |r| {
        Ok(Drift {
            segment_id: r.get(0)?,
            stream: r.get(1)?,
            start_ms: r.get(2)?,
            span_ms: r.get(3)?,
            drift_ms: r.get(4)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: i64, end: i64, after_gap: bool) -> SegmentInfo {
        SegmentInfo {
            id: start,
            camera: "c".into(),
            stream: "main".into(),
            path: PathBuf::new(),
            codec: "avc1".into(),
            width: 1,
            height: 1,
            init_len: 0,
            start_ms: start,
            end_ms: end,
            start_90k: 0,
            end_90k: 0,
            bytes: 0,
            open: false,
            after_gap,
        }
    }

    #[test]
    fn runs_join_back_to_back_segments_and_split_at_gaps() {
        let r = runs(vec![
            seg(0, 60_000, false),
            seg(60_010, 120_000, false),  // jitter: same run
            seg(120_000, 130_000, true),  // announced gap, even if short
            seg(200_000, 260_000, false), // 70 s without video
        ]);
        let spans: Vec<(i64, i64, usize)> = r
            .iter()
            .map(|r| (r.start_ms, r.end_ms, r.segments.len()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 120_000, 2),
                (120_000, 130_000, 1),
                (200_000, 260_000, 1)
            ]
        );
        assert_eq!(
            gaps_between(&r, -5_000, 300_000),
            vec![
                Gap {
                    start_ms: -5_000,
                    end_ms: 0
                },
                Gap {
                    start_ms: 130_000,
                    end_ms: 200_000
                },
                Gap {
                    start_ms: 260_000,
                    end_ms: 300_000
                },
            ]
        );
        // Inside a run there is no gap; with no runs it is all gap.
        assert!(gaps_between(&r, 10_000, 50_000).is_empty());
        assert_eq!(
            gaps_between(&[], 1, 2),
            vec![Gap {
                start_ms: 1,
                end_ms: 2
            }]
        );
    }
}
