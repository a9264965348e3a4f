//! Fragmented MP4 for recording (14496-12 §8.8): an init segment, then one
//! moof + mdat per GOP. A file of init + fragments plays while it grows.

use super::boxes::{mdat_header, BoxWriter};
use super::moov::{ftyp, moov, Timing, TRACK_ID};
use super::sample_entry::codec_of_sample_entry;
use super::{Track, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS};
use crate::video::h26x::Codec;

/// One frame of a fragment.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// 90 kHz ticks until the next frame.
    pub duration: u32,
    pub is_sync: bool,
    /// The frame as length-prefixed NAL units, exactly the MP4 sample bytes.
    pub data: &'a [u8],
}

/// ftyp + moov for a fragmented recording: empty sample tables, and mvex
/// announcing that samples follow in movie fragments.
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut w = BoxWriter::new();
    // iso6 covers tfdt and default-base-is-moof; browsers' MSE and ffmpeg
    // accept it. avc1 is the AVC file brand; HEVC has none of its own.
    let mut brands: Vec<&[u8; 4]> = vec![b"iso6", b"iso5", b"isom", b"mp41"];
    if codec_of_sample_entry(&track.sample_entry) == Some(Codec::H264) {
        brands.push(b"avc1");
    }
    ftyp(&mut w, b"iso6", &brands);
    moov(&mut w, track, &Timing::default(), true, |w| {
        for table in [b"stts", b"stsc", b"stco"] {
            w.begin_full(table, 0, 0);
            w.u32(0); // entry_count
            w.end();
        }
        w.begin_full(b"stsz", 0, 0);
        w.u32(0); // sample_size: per sample
        w.u32(0); // sample_count
        w.end();
    });
    w.finish()
}

/// tfhd flag: data offsets are relative to this moof, so a fragment is
/// self-contained and can be copied anywhere (required by iso5/iso6 and MSE).
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// trun flags: data-offset, per-sample duration, size and flags present.
const TRUN_FLAGS: u32 = 0x0001 | 0x0100 | 0x0200 | 0x0400;

/// What a fragment's moof says of one sample; the sample's bytes are in
/// the mdat that follows.
#[derive(Clone, Copy, Debug)]
pub struct SampleMeta {
    /// 90 kHz ticks until the next frame.
    pub duration: u32,
    pub size: u32,
    pub is_sync: bool,
}

/// The head of one movie fragment: moof (mfhd, traf with tfhd, tfdt and
/// trun) and the header of the mdat that must follow it, holding the
/// samples' bytes in order. The recorder appends frames to that payload as
/// they arrive and builds only this head at the cut, so no video is copied.
/// `sequence` should grow by one per fragment; `base_decode_time` is the
/// first sample's decode time in ticks since the start of the recording's
/// timeline.
///
/// # Panics
/// If there are more than 2^32 samples (a GOP never has).
pub fn fragment_head(sequence: u32, base_decode_time: u64, samples: &[SampleMeta]) -> Vec<u8> {
    let payload: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let mdat = mdat_header(payload);
    let mut w = BoxWriter::new();
    w.begin(b"moof");
    w.begin_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.end();
    w.begin(b"traf");
    w.begin_full(b"tfhd", 0, DEFAULT_BASE_IS_MOOF);
    w.u32(TRACK_ID);
    w.end();
    w.begin_full(b"tfdt", 1, 0);
    w.u64(base_decode_time);
    w.end();
    w.begin_full(b"trun", 0, TRUN_FLAGS);
    w.u32(u32::try_from(samples.len()).expect("more than 2^32 samples"));
    let data_offset_at = w.buf.len();
    w.u32(0); // data_offset, patched below once the moof size is known
    for s in samples {
        w.u32(s.duration);
        w.u32(s.size);
        w.u32(if s.is_sync {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        });
    }
    w.end();
    w.end();
    w.end();
    let mut out = w.finish();
    // The first sample starts right after the mdat header.
    let data_offset = i32::try_from(out.len() + mdat.len()).expect("moof larger than 2 GiB");
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    out.extend_from_slice(&mdat);
    out
}

/// One whole movie fragment in one buffer: [`fragment_head`] followed by
/// the samples' bytes (for tests and tools; the recorder keeps the two
/// apart).
///
/// # Panics
/// If a sample exceeds 4 GiB.
pub fn fragment(sequence: u32, base_decode_time: u64, samples: &[Sample]) -> Vec<u8> {
    let meta: Vec<SampleMeta> = samples
        .iter()
        .map(|s| SampleMeta {
            duration: s.duration,
            size: u32::try_from(s.data.len()).expect("sample larger than 4 GiB"),
            is_sync: s.is_sync,
        })
        .collect();
    let mut out = fragment_head(sequence, base_decode_time, &meta);
    for s in samples {
        out.extend_from_slice(s.data);
    }
    out
}
