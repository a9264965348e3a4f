//! Export: a progressive (non-fragmented) MP4 of recorded samples, built
//! without re-encoding. We write only the header (ftyp, moov, mdat header);
//! the caller streams the sample bytes after it, so the file's length is
//! known up front and HTTP Range requests can be served.

use super::boxes::{mdat_header, BoxWriter};
use super::moov::{ftyp, moov, Timing};
use super::sample_entry::codec_of_sample_entry;
use super::Track;
use crate::video::h26x::Codec;

/// One sample of an export, in decode order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSample {
    /// 90 kHz ticks.
    pub duration: u32,
    /// Bytes of the sample as it will be streamed after the header.
    pub size: u32,
    pub is_sync: bool,
}

/// The MP4 header for `samples`: ftyp, moov and the mdat header; sample `i`
/// then follows at `header.len() + Σ size[..i]`.
///
/// `samples` should start at a keyframe; `media_start` is how many ticks
/// into the first sample's decode time the requested range begins. An edit
/// list makes players decode from the keyframe but start showing at
/// `media_start`, so the export begins exactly where asked. The shown
/// duration is the sum of the durations minus `media_start` (trim the end by
/// choosing the last sample). A `media_start` past the end shows nothing.
pub fn export_header(track: &Track, samples: &[ExportSample], media_start: u64) -> Vec<u8> {
    let payload: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let chunks = chunks(samples);
    // 32-bit chunk offsets unless the last chunk starts past 4 GiB; the
    // header (a few bytes per sample) is bounded generously by 64 MiB.
    let last_chunk = chunks.last().map_or(0, |c| c.offset);
    let co64 = last_chunk + (64 << 20) > u64::from(u32::MAX);
    // Box sizes do not depend on the offset values, so one pass with base 0
    // measures the header and the second writes the real offsets.
    let probe = header(track, samples, &chunks, media_start, payload, co64, 0);
    let out = header(
        track,
        samples,
        &chunks,
        media_start,
        payload,
        co64,
        probe.len() as u64,
    );
    debug_assert_eq!(out.len(), probe.len());
    out
}

/// Total length of the export file: the header plus every sample.
pub fn export_len(header: &[u8], samples: &[ExportSample]) -> u64 {
    header.len() as u64 + samples.iter().map(|s| u64::from(s.size)).sum::<u64>()
}

/// A chunk (14496-12 §8.7.4): a run of samples contiguous in the file. One
/// per GOP, so a player seeking to a keyframe finds its chunk directly.
struct Chunk {
    /// Offset of the first byte from the start of the mdat payload.
    offset: u64,
    samples: u32,
}

fn chunks(samples: &[ExportSample]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut offset = 0u64;
    for (i, s) in samples.iter().enumerate() {
        match out.last_mut() {
            Some(c) if !(s.is_sync && i > 0) => c.samples += 1,
            _ => out.push(Chunk { offset, samples: 1 }),
        }
        offset += u64::from(s.size);
    }
    out
}

/// Runs of equal values, for stts and stsc.
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn header(
    track: &Track,
    samples: &[ExportSample],
    chunks: &[Chunk],
    media_start: u64,
    payload: u64,
    co64: bool,
    payload_start: u64,
) -> Vec<u8> {
    let media: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
    let media_start = media_start.min(media);
    let shown = media - media_start;
    let mut w = BoxWriter::new();
    let mut brands: Vec<&[u8; 4]> = vec![b"isom", b"iso2", b"mp41"];
    if codec_of_sample_entry(&track.sample_entry) == Some(Codec::H264) {
        brands.push(b"avc1");
    }
    ftyp(&mut w, b"isom", &brands);
    let timing = Timing {
        presentation: shown,
        media,
        edit: Some((shown, media_start)),
    };
    moov(&mut w, track, &timing, false, |w| {
        // stts: decode-time deltas, run-length coded.
        let durations = runs(samples.iter().map(|s| s.duration));
        w.begin_full(b"stts", 0, 0);
        w.u32(durations.len() as u32);
        for (count, delta) in durations {
            w.u32(count);
            w.u32(delta);
        }
        w.end();

        // stss: 1-based numbers of the keyframes (seek points).
        let sync: Vec<u32> = (1..)
            .zip(samples)
            .filter(|(_, s)| s.is_sync)
            .map(|(n, _)| n)
            .collect();
        w.begin_full(b"stss", 0, 0);
        w.u32(sync.len() as u32);
        for n in sync {
            w.u32(n);
        }
        w.end();

        // stsc: chunks with the same sample count share an entry.
        let per_chunk = runs(chunks.iter().map(|c| c.samples));
        w.begin_full(b"stsc", 0, 0);
        w.u32(per_chunk.len() as u32);
        let mut first_chunk = 1;
        for (count, samples_per_chunk) in per_chunk {
            w.u32(first_chunk);
            w.u32(samples_per_chunk);
            w.u32(1); // sample_description_index
            first_chunk += count;
        }
        w.end();

        w.begin_full(b"stsz", 0, 0);
        w.u32(0); // sizes differ: one entry per sample
        w.u32(samples.len() as u32);
        for s in samples {
            w.u32(s.size);
        }
        w.end();

        let mdat_payload_at = payload_start;
        if co64 {
            w.begin_full(b"co64", 0, 0);
            w.u32(chunks.len() as u32);
            for c in chunks {
                w.u64(mdat_payload_at + c.offset);
            }
        } else {
            w.begin_full(b"stco", 0, 0);
            w.u32(chunks.len() as u32);
            for c in chunks {
                // Fits: co64 is chosen whenever the last offset might not.
                w.u32((mdat_payload_at + c.offset) as u32);
            }
        }
        w.end();
    });
    let mut out = w.finish();
    out.extend_from_slice(&mdat_header(payload));
    out
}
