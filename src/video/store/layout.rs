//! Where segment files live and when a segment is rotated.
//!
//! `recordings/<camera>/<YYYYMMDD>/<camera>-<stream>-<start_ms>.mp4`, the
//! day being the UTC date of the segment's first fragment (UTC so a DST
//! change never makes two directories claim the same hour). Paths in the
//! index are relative to `recordings/` with `/` separators, so the data
//! directory can be moved.

use chrono::{DateTime, Utc};

/// 90 kHz ticks per second: the MP4 timescale of every stream.
pub const TICKS_PER_SEC: u64 = 90_000;

/// Camera and stream ids come from the site configuration; only a safe
/// subset of characters reaches the file system (no `/`, no `..`).
pub fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// `YYYYMMDD` (UTC) of a wall-clock time in ms.
pub fn day(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y%m%d")
        .to_string()
}

/// Directory of a camera's segments of one day, relative to `recordings/`.
pub fn day_dir(camera: &str, start_ms: i64) -> String {
    format!("{}/{}", sanitize(camera), day(start_ms))
}

/// File name of a segment; `attempt` > 0 disambiguates two segments that
/// would start in the same millisecond (a reconnect right after a gap).
pub fn file_name(camera: &str, stream: &str, start_ms: i64, attempt: u32) -> String {
    let (c, s) = (sanitize(camera), sanitize(stream));
    if attempt == 0 {
        format!("{c}-{s}-{start_ms}.mp4")
    } else {
        format!("{c}-{s}-{start_ms}-{attempt}.mp4")
    }
}

/// Length of a stream's segment in ticks. The first segment of a session
/// (after start or a gap) of stream `k` of `n` is longer by `k/n` of a
/// segment, so `n` streams that (re)started together rotate, and fsync
/// their closing files, spread evenly over the segment length rather than
/// all in the same second.
pub fn segment_ticks(segment_secs: u32, first_of_session: bool, k: u32, n: u32) -> u64 {
    let base = u64::from(segment_secs.max(1)) * TICKS_PER_SEC;
    if !first_of_session || n <= 1 {
        return base;
    }
    base + base * u64::from(k % n) / u64::from(n)
}

/// A fragment starting at `frag_start` goes into a new segment when the
/// current one already holds `target` ticks (rotation happens only at a
/// fragment boundary), or when the stream's timeline went backwards (a new
/// session the ingest did not announce as a gap).
pub fn needs_rotation(
    seg_start: u64,
    seg_end: u64,
    target: u64,
    frag_start: u64,
    keyframe: bool,
) -> bool {
    // A segment must start with a keyframe to play on its own: a long
    // segment waits for the next keyframe fragment (cameras with GOPs
    // longer than a fragment send fragments that start without one).
    frag_start < seg_end || (keyframe && frag_start - seg_start >= target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_dated_and_safe() {
        // 2026-12-01T12:00:00Z
        let ms = 1_796_126_400_000;
        assert_eq!(day_dir("cam1", ms), "cam1/20261201");
        assert_eq!(
            file_name("../etc", "main", ms, 0),
            "___etc-main-1796126400000.mp4"
        );
        assert_eq!(file_name("c", "sub", 5, 2), "c-sub-5-2.mp4");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn staggered_first_segments_spread_rotation_over_a_minute() {
        let n = 64;
        let lens: Vec<u64> = (0..n).map(|k| segment_ticks(60, true, k, n)).collect();
        assert_eq!(lens[0], 60 * TICKS_PER_SEC);
        assert_eq!(lens[32], 90 * TICKS_PER_SEC);
        // Every stream rotates at a different time, ~0.94 s apart.
        let mut sorted = lens.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), n as usize);
        assert!(lens.windows(2).all(|w| w[1] - w[0] == 84_375));
        // Later segments are all the nominal length.
        assert_eq!(segment_ticks(60, false, 32, n), 60 * TICKS_PER_SEC);
    }

    #[test]
    fn rotation_happens_at_a_fragment_boundary_after_the_target() {
        let t = 60 * TICKS_PER_SEC;
        // 2 s fragments: the one starting at 58 s still fits, at 60 s rotates.
        assert!(!needs_rotation(
            0,
            58 * TICKS_PER_SEC,
            t,
            58 * TICKS_PER_SEC,
            true
        ));
        assert!(needs_rotation(
            0,
            60 * TICKS_PER_SEC,
            t,
            60 * TICKS_PER_SEC,
            true
        ));
        // Past the target but without a keyframe: the segment goes on until
        // one comes, so every segment starts with a keyframe.
        assert!(!needs_rotation(
            0,
            61 * TICKS_PER_SEC,
            t,
            61 * TICKS_PER_SEC,
            false
        ));
        // Timeline restarted.
        assert!(needs_rotation(1000, 5000, t, 10, true));
    }
}
