//! The ftyp and moov boxes shared by the fragmented init segment and the
//! progressive export (ISO/IEC 14496-12 §8.2–§8.7): one video track,
//! movie and media timescale both 90 kHz.

use super::boxes::{BoxWriter, UNITY_MATRIX};
use super::{Track, TIMESCALE};

pub const TRACK_ID: u32 = 1;

/// Durations in 90 kHz ticks; all zero in a fragmented init segment.
#[derive(Default)]
pub struct Timing {
    /// Presentation length: mvhd and tkhd duration.
    pub presentation: u64,
    /// Sum of the sample durations: mdhd duration.
    pub media: u64,
    /// An edit list entry (segment_duration, media_time): present the media
    /// from media_time on, for segment_duration.
    pub edit: Option<(u64, u64)>,
}

pub fn ftyp(w: &mut BoxWriter, major: &[u8; 4], compatible: &[&[u8; 4]]) {
    w.begin(b"ftyp");
    w.bytes(major);
    w.u32(0); // minor_version
    for brand in compatible {
        w.bytes(*brand);
    }
    w.end();
}

/// Writes the version-dependent creation/modification/timescale/duration
/// block of mvhd and mdhd (version 1 only when a duration needs 64 bits).
fn times_and_duration(w: &mut BoxWriter, fourcc: &[u8; 4], duration: u64) {
    match u32::try_from(duration) {
        Ok(d) => {
            w.begin_full(fourcc, 0, 0);
            w.u32(0); // creation_time: unknown; we do not leak wall time
            w.u32(0); // modification_time
            w.u32(TIMESCALE);
            w.u32(d);
        }
        Err(_) => {
            w.begin_full(fourcc, 1, 0);
            w.u64(0);
            w.u64(0);
            w.u32(TIMESCALE);
            w.u64(duration);
        }
    }
}

/// Writes moov. `stbl_tables` writes the sample tables after stsd (empty
/// ones for fragments); `fragmented` adds mvex so players look for moofs.
pub fn moov(
    w: &mut BoxWriter,
    track: &Track,
    timing: &Timing,
    fragmented: bool,
    stbl_tables: impl FnOnce(&mut BoxWriter),
) {
    w.begin(b"moov");

    times_and_duration(w, b"mvhd", timing.presentation);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    for v in UNITY_MATRIX {
        w.u32(v);
    }
    w.zeros(6 * 4); // pre_defined
    w.u32(TRACK_ID + 1); // next_track_ID
    w.end();

    w.begin(b"trak");
    tkhd(w, track, timing.presentation);
    if let Some((segment_duration, media_time)) = timing.edit {
        edts(w, segment_duration, media_time);
    }
    w.begin(b"mdia");
    times_and_duration(w, b"mdhd", timing.media);
    w.u16(0x55c4); // language "und" (ISO-639-2/T packed 5-bit letters)
    w.u16(0); // pre_defined
    w.end();

    w.begin_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(b"vide");
    w.zeros(3 * 4);
    w.bytes(b"vgw video\0");
    w.end();

    w.begin(b"minf");
    w.begin_full(b"vmhd", 0, 1); // flags 1 is mandated
    w.zeros(2 + 3 * 2); // graphicsmode copy, opcolor
    w.end();
    w.begin(b"dinf");
    w.begin_full(b"dref", 0, 0);
    w.u32(1);
    w.begin_full(b"url ", 0, 1); // flag 1: media is in this file
    w.end();
    w.end();
    w.end();
    w.begin(b"stbl");
    w.begin_full(b"stsd", 0, 0);
    w.u32(1);
    w.bytes(&track.sample_entry);
    w.end();
    stbl_tables(w);
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak

    if fragmented {
        w.begin(b"mvex");
        w.begin_full(b"trex", 0, 0);
        w.u32(TRACK_ID);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration: every trun states its own
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.end();
        w.end();
    }
    w.end(); // moov
}

fn tkhd(w: &mut BoxWriter, track: &Track, duration: u64) {
    const ENABLED_IN_MOVIE_IN_PREVIEW: u32 = 0x7;
    match u32::try_from(duration) {
        Ok(d) => {
            w.begin_full(b"tkhd", 0, ENABLED_IN_MOVIE_IN_PREVIEW);
            w.u32(0);
            w.u32(0);
            w.u32(TRACK_ID);
            w.u32(0); // reserved
            w.u32(d);
        }
        Err(_) => {
            w.begin_full(b"tkhd", 1, ENABLED_IN_MOVIE_IN_PREVIEW);
            w.u64(0);
            w.u64(0);
            w.u32(TRACK_ID);
            w.u32(0);
            w.u64(duration);
        }
    }
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(0); // volume: 0 for video
    w.u16(0); // reserved
    for v in UNITY_MATRIX {
        w.u32(v);
    }
    // 16.16 fixed point; sizes beyond 65535 cannot be expressed.
    w.u32(track.width.min(0xffff) << 16);
    w.u32(track.height.min(0xffff) << 16);
    w.end();
}

/// An edit list with one entry: skip `media_time` ticks of media (decoded
/// from the preceding keyframe but not shown) and show `segment_duration`.
fn edts(w: &mut BoxWriter, segment_duration: u64, media_time: u64) {
    w.begin(b"edts");
    match (u32::try_from(segment_duration), i32::try_from(media_time)) {
        (Ok(d), Ok(t)) => {
            w.begin_full(b"elst", 0, 0);
            w.u32(1);
            w.u32(d);
            w.u32(t as u32);
        }
        _ => {
            w.begin_full(b"elst", 1, 0);
            w.u32(1);
            w.u64(segment_duration);
            w.u64(media_time);
        }
    }
    w.u16(1); // media_rate_integer
    w.u16(0); // media_rate_fraction
    w.end();
    w.end();
}
