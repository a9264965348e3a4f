//! The files we write are checked by ffprobe/ffmpeg (what a player would
//! accept): frame counts, durations, sizes, and a clean decode.

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::video::h26x::testclips::{h264_clip, h265_clip, run_tool, Clip};
use crate::video::h26x::{is_keyframe, Codec};

/// 25 fps in 90 kHz ticks.
const FRAME: u32 = 3600;

fn track_for(clip: &Clip, width: u32, height: u32) -> Track {
    let track = Track::from_decoder_config(clip.codec, &clip.record).unwrap();
    assert_eq!((track.width, track.height), (width, height));
    track
}

/// Writes the clip as a recording would: init segment, then one fragment
/// per GOP. Returns the file and the start offsets of the fragments.
fn record(clip: &Clip) -> (Vec<u8>, Vec<usize>) {
    let size = clip.params.sps_info(clip.codec).unwrap();
    let mut file = init_segment(&track_for(clip, size.width, size.height));
    let mut starts = Vec::new();
    let mut gop: Vec<Sample> = Vec::new();
    let mut gop_start = 0u64;
    let mut flush = |gop: &mut Vec<Sample>, start: u64, file: &mut Vec<u8>| {
        if !gop.is_empty() {
            starts.push(file.len());
            file.extend(fragment(starts.len() as u32, start, gop));
            gop.clear();
        }
    };
    for (i, frame) in clip.frames.iter().enumerate() {
        let key = is_keyframe(clip.codec, frame);
        if key {
            flush(&mut gop, gop_start, &mut file);
            gop_start = i as u64 * u64::from(FRAME);
        }
        gop.push(Sample {
            duration: FRAME,
            is_sync: key,
            data: frame,
        });
    }
    flush(&mut gop, gop_start, &mut file);
    (file, starts)
}

/// ffprobe's view of a file: stream and format entries as key → value.
fn probe(path: &Path) -> HashMap<String, String> {
    let out = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,codec_name,width,height:format=duration",
            "-of",
            "default=noprint_wrappers=1",
            path.to_str().unwrap(),
        ],
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Decodes every frame with ffmpeg; a player-visible problem shows up as an
/// error message.
fn assert_decodes_cleanly(path: &Path) {
    let out = run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        out.stderr.is_empty(),
        "decode errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn seconds(p: &HashMap<String, String>) -> f64 {
    p["duration"].parse().unwrap()
}

/// A size that is not a multiple of the coding block size is cropped in the
/// SPS; players must show the cropped size.
#[test]
fn cropped_recordings_show_the_cropped_size() {
    let args264: &[&str] = &["-bf", "0", "-g", "25"];
    let args265: &[&str] = &["-x265-params", "bframes=0:keyint=25:log-level=error"];
    for (codec, args) in [(Codec::H264, args264), (Codec::H265, args265)] {
        let clip = crate::video::h26x::testclips::encode(codec, 322, 242, args);
        let (file, _) = record(&clip);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cropped.mp4");
        std::fs::write(&path, &file).unwrap();
        let p = probe(&path);
        assert_eq!(
            (p["width"].as_str(), p["height"].as_str()),
            ("322", "242"),
            "{codec:?}"
        );
        assert_eq!(p["nb_read_frames"], "100");
        assert_decodes_cleanly(&path);
    }
}

fn check_recording(clip: &Clip, codec_name: &str) {
    let (file, starts) = record(clip);
    assert_eq!(starts.len(), 4, "one fragment per 1 s GOP");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.mp4");
    std::fs::write(&path, &file).unwrap();
    let p = probe(&path);
    assert_eq!(p["codec_name"], codec_name);
    assert_eq!(p["width"], "320");
    assert_eq!(p["height"], "240");
    assert_eq!(p["nb_read_frames"], "100");
    assert!((seconds(&p) - 4.0).abs() < 1e-3, "{p:?}");
    assert_decodes_cleanly(&path);
}

#[test]
fn h264_recording_plays() {
    check_recording(&h264_clip(), "h264");
}

#[test]
fn h265_recording_plays() {
    check_recording(&h265_clip(), "hevc");
}

/// A segment file holds whatever fragments are complete so far (the store
/// serves and recovers up to the last complete fragment): such a prefix must
/// play on its own. ffmpeg refuses a file whose last box is cut short, which
/// is why a half-written fragment must never be served.
#[test]
fn recording_prefix_of_complete_fragments_plays() {
    let (file, starts) = record(&h264_clip());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefix.mp4");
    std::fs::write(&path, &file[..starts[3]]).unwrap();
    let p = probe(&path);
    assert_eq!(p["nb_read_frames"], "75");
    assert!((seconds(&p) - 3.0).abs() < 1e-3, "{p:?}");
    assert_decodes_cleanly(&path);
}

#[test]
fn read_fragment_round_trip() {
    let clip = h264_clip();
    let (file, starts) = record(&clip);
    let mut next_frame = 0;
    for (n, &start) in starts.iter().enumerate() {
        let info = read_fragment(&file[start..]).unwrap();
        assert_eq!(info.sequence, n as u32 + 1);
        assert_eq!(info.base_decode_time, next_frame as u64 * u64::from(FRAME));
        assert_eq!(info.samples.len(), 25);
        assert_eq!(info.duration(), 25 * u64::from(FRAME));
        assert_eq!(
            start + info.len,
            starts.get(n + 1).copied().unwrap_or(file.len())
        );
        for (i, s) in info.samples.iter().enumerate() {
            let frame = &clip.frames[next_frame];
            assert_eq!(s.is_sync, i == 0);
            assert_eq!(s.duration, FRAME);
            assert_eq!(&file[start + s.offset..][..s.size as usize], &frame[..]);
            next_frame += 1;
        }
    }
    assert_eq!(next_frame, 100);
}

/// Fragments from ffmpeg's muxer use tfhd defaults and first_sample_flags
/// rather than per-sample fields; we must read them the same.
#[test]
fn read_fragment_of_ffmpeg_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ff.mp4");
    run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "4",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "25",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
            path.to_str().unwrap(),
        ],
    );
    let file = std::fs::read(&path).unwrap();
    // Walk the top-level boxes only to find where each moof starts.
    let mut pos = 0;
    let (mut samples, mut syncs, mut fragments, mut ticks) = (0, 0, 0, 0u64);
    while pos < file.len() {
        let size = u32::from_be_bytes(file[pos..pos + 4].try_into().unwrap()) as usize;
        if &file[pos + 4..pos + 8] == b"moof" {
            let info = read_fragment(&file[pos..]).unwrap();
            assert_eq!(info.base_decode_time, ticks);
            ticks += info.duration();
            samples += info.samples.len();
            syncs += info.samples.iter().filter(|s| s.is_sync).count();
            fragments += 1;
            for s in &info.samples {
                // Each sample is a length-prefixed frame: its first NAL's
                // length must fit in the sample.
                let first = u32::from_be_bytes(file[pos + s.offset..][..4].try_into().unwrap());
                assert!(first as usize + 4 <= s.size as usize);
            }
            pos += info.len;
        } else {
            pos += size;
        }
    }
    assert_eq!((samples, syncs, fragments), (100, 4, 4));
    assert!(ticks > 0);
}

#[test]
fn read_fragment_rejects_hostile_input() {
    let data = [vec![0u8; 10], vec![1u8; 7]];
    let samples = [
        Sample {
            duration: FRAME,
            is_sync: true,
            data: &data[0],
        },
        Sample {
            duration: FRAME,
            is_sync: false,
            data: &data[1],
        },
    ];
    let frag = fragment(7, 1 << 40, &samples);
    let info = read_fragment(&frag).unwrap();
    assert_eq!(info.base_decode_time, 1 << 40);
    assert_eq!(info.samples.len(), 2);
    assert_eq!(info.len, frag.len());

    // Every truncation is an error.
    for len in 0..frag.len() {
        assert!(read_fragment(&frag[..len]).is_err(), "truncated to {len}");
    }
    // A sample size that reaches past the mdat is an error.
    let trun = frag.windows(4).position(|w| w == b"trun").unwrap();
    let mut lying = frag.clone();
    let second_size = trun + 4 + 4 + 4 + 4 + 12 + 4; // past header, count, offset, sample 1, duration
    lying[second_size..second_size + 4].copy_from_slice(&100u32.to_be_bytes());
    assert_eq!(
        read_fragment(&lying),
        Err(Mp4Error::Invalid("sample data outside the mdat"))
    );
    // A huge sample count is refused before allocating.
    let mut lying = frag.clone();
    lying[trun + 8..trun + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(read_fragment(&lying).is_err());
    // A box size smaller than its header.
    let mut lying = frag.clone();
    lying[..4].copy_from_slice(&3u32.to_be_bytes());
    assert!(read_fragment(&lying).is_err());
    // Not a fragment at all.
    assert_eq!(
        read_fragment(&init_segment(&track_for(&h264_clip(), 320, 240))),
        Err(Mp4Error::Missing("moof"))
    );
    // Bit flips anywhere: an answer or an error, never a panic.
    let mut seed = 0x2545f4914f6cdd1du64;
    for _ in 0..5000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bytes = frag.clone();
        let i = (seed as usize) % bytes.len();
        bytes[i] ^= 1 << ((seed >> 32) % 8);
        if let Ok(info) = read_fragment(&bytes) {
            for s in info.samples {
                assert!(s.offset + s.size as usize <= bytes.len());
            }
        }
    }
}

/// Export of 1.3 s – 2.9 s from the recording: decoding starts at the
/// keyframe at 1.0 s, the edit list hides 0.3 s, and the last sample shown
/// is the one covering 2.9 s (2.88 s – 2.92 s), so 1.62 s are shown.
fn check_export(clip: &Clip) {
    let (file, starts) = record(clip);
    let mut all = Vec::new();
    for &start in &starts {
        let info = read_fragment(&file[start..]).unwrap();
        let mut t = info.base_decode_time;
        for s in info.samples {
            all.push((t, s, start + s.offset));
            t += u64::from(s.duration);
        }
    }
    let (from, to) = (
        13 * u64::from(TIMESCALE) / 10,
        29 * u64::from(TIMESCALE) / 10,
    );
    let first = all
        .iter()
        .rposition(|(t, s, _)| s.is_sync && *t <= from)
        .unwrap();
    let last = all.iter().rposition(|(t, _, _)| *t < to).unwrap();
    let picked = &all[first..=last];
    let samples: Vec<ExportSample> = picked
        .iter()
        .map(|(_, s, _)| ExportSample {
            duration: s.duration,
            size: s.size,
            is_sync: s.is_sync,
        })
        .collect();
    let track = track_for(clip, 320, 240);
    let header = export_header(&track, &samples, from - picked[0].0);
    let mut out = header.clone();
    for (_, s, at) in picked {
        out.extend_from_slice(&file[*at..*at + s.size as usize]);
    }
    assert_eq!(export_len(&header, &samples), out.len() as u64);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.mp4");
    std::fs::write(&path, &out).unwrap();
    let p = probe(&path);
    assert!((seconds(&p) - 1.62).abs() < 0.005, "{p:?}");
    assert_eq!(p["width"], "320");
    // Frames before the edit start are decoded but not output: ffmpeg 5.1
    // shows the 40 frames starting at or after 1.3 s (1.32 s … 2.88 s); a
    // player may also show the one spanning 1.3 s.
    let shown: u32 = p["nb_read_frames"].parse().unwrap();
    assert!((40..=41).contains(&shown), "{p:?}");
    assert_decodes_cleanly(&path);
}

#[test]
fn h264_export_of_middle_range_plays() {
    check_export(&h264_clip());
}

#[test]
fn h265_export_of_middle_range_plays() {
    check_export(&h265_clip());
}

/// Exports past 4 GiB need co64 chunk offsets and a 64-bit mdat size; the
/// header must say so and stay consistent with export_len.
#[test]
fn export_header_for_huge_exports() {
    let track = track_for(&h264_clip(), 320, 240);
    let gib = 1u64 << 30;
    let samples: Vec<ExportSample> = (0..6)
        .map(|i| ExportSample {
            duration: FRAME,
            size: gib as u32,
            is_sync: i % 5 == 0,
        })
        .collect();
    let header = export_header(&track, &samples, 0);
    let len = header.len() as u64;
    assert_eq!(export_len(&header, &samples), len + 6 * gib);
    assert!(header.windows(4).any(|w| w == b"co64"));
    assert!(!header.windows(4).any(|w| w == b"stco"));
    let mdat = &header[header.len() - 16..];
    assert_eq!(&mdat[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
    assert_eq!(
        u64::from_be_bytes(mdat[8..].try_into().unwrap()),
        16 + 6 * gib
    );
    // Two chunks (one per GOP), the second starting 5 GiB after the first.
    let co64 = header.windows(4).position(|w| w == b"co64").unwrap();
    let entry = |i: usize| u64::from_be_bytes(header[co64 + 12 + 8 * i..][..8].try_into().unwrap());
    assert_eq!(
        u32::from_be_bytes(header[co64 + 8..co64 + 12].try_into().unwrap()),
        2
    );
    assert_eq!(entry(0), len);
    assert_eq!(entry(1), len + 5 * gib);

    // Small exports keep 32-bit offsets and an 8-byte mdat header.
    let small = [ExportSample {
        duration: FRAME,
        size: 100,
        is_sync: true,
    }];
    let header = export_header(&track, &small, 0);
    assert!(header.windows(4).any(|w| w == b"stco"));
    assert_eq!(
        &header[header.len() - 8..],
        &[0, 0, 0, 108, b'm', b'd', b'a', b't']
    );
}

#[test]
fn sample_entry_rejects_bad_input() {
    let clip = h264_clip();
    assert!(sample_entry_from(Codec::H264, &clip.record[..5], 320, 240).is_err());
    assert!(sample_entry_from(Codec::H264, &clip.record, 70_000, 240).is_err());
    let entry = sample_entry_from(Codec::H265, &h265_clip().record, 320, 240).unwrap();
    assert_eq!(&entry[4..8], b"hvc1");
    assert_eq!(codec_of_sample_entry(&entry), Some(Codec::H265));
}
