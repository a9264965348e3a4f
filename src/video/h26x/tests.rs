//! Bitstream tests against real encoder output (see `testclips`).

use super::testclips::{encode, h264_clip, h265_clip};
use super::*;

fn keyframe_indexes(codec: Codec, frames: &[Vec<u8>]) -> Vec<usize> {
    (0..frames.len())
        .filter(|&i| is_keyframe(codec, &frames[i]))
        .collect()
}

#[test]
fn h264_idr_every_gop() {
    let clip = h264_clip();
    assert_eq!(clip.frames.len(), 100);
    assert_eq!(keyframe_indexes(Codec::H264, &clip.frames), [0, 25, 50, 75]);
}

#[test]
fn h265_keyframe_every_gop() {
    let clip = h265_clip();
    assert_eq!(clip.frames.len(), 100);
    assert_eq!(keyframe_indexes(Codec::H265, &clip.frames), [0, 25, 50, 75]);
}

/// x265's open GOPs start with CRA pictures after the first IDR; those are
/// where a viewer can start, so they must count as keyframes.
#[test]
fn h265_open_gop_cra_is_a_keyframe() {
    let clip = encode(
        Codec::H265,
        320,
        240,
        &[
            "-x265-params",
            "bframes=0:keyint=25:min-keyint=25:scenecut=0:open-gop=1:log-level=error",
        ],
    );
    let cra_frames: Vec<usize> = (0..clip.frames.len())
        .filter(|&i| {
            length_prefixed_nals(&clip.frames[i])
                .any(|n| nal_type(Codec::H265, n.unwrap()) == Some(h265_type::CRA))
        })
        .collect();
    assert!(!cra_frames.is_empty(), "x265 made no CRA picture");
    for i in cra_frames {
        assert!(is_keyframe(Codec::H265, &clip.frames[i]), "CRA frame {i}");
    }
    // A hand-made CRA NAL (type 21 → header 0x2a 0x01) alone is enough.
    assert!(is_keyframe(
        Codec::H265,
        &to_length_prefixed([&[0x2a, 0x01, 0xaf][..]])
    ));
    // A trailing picture (TRAIL_R, type 1) is not.
    assert!(!is_keyframe(
        Codec::H265,
        &to_length_prefixed([&[0x02, 0x01, 0xd0][..]])
    ));
}

fn b_frame_count(clip: &testclips::Clip) -> usize {
    clip.frames
        .iter()
        .filter(|f| has_b_slices(clip.codec, f, &clip.params).unwrap())
        .count()
}

#[test]
fn h264_b_slices_detected_only_when_encoded() {
    assert_eq!(b_frame_count(&h264_clip()), 0);
    let with_b = encode(Codec::H264, 320, 240, &["-bf", "2", "-g", "25"]);
    assert!(b_frame_count(&with_b) > 10);
}

#[test]
fn h265_b_slices_detected_only_when_encoded() {
    assert_eq!(b_frame_count(&h265_clip()), 0);
    let with_b = encode(
        Codec::H265,
        320,
        240,
        &["-x265-params", "bframes=3:keyint=25:log-level=error"],
    );
    assert!(b_frame_count(&with_b) > 10);
}

/// Slices after the first of a picture need slice_segment_address, whose
/// width comes from the SPS; x265 makes several slices with `slices=4`.
#[test]
fn h265_multi_slice_pictures() {
    let clip = encode(
        Codec::H265,
        320,
        240,
        &[
            "-x265-params",
            "bframes=2:keyint=25:slices=4:log-level=error",
        ],
    );
    let slices = length_prefixed_nals(&clip.frames[1])
        .filter(|n| {
            is_vcl(
                Codec::H265,
                nal_type(Codec::H265, n.as_ref().unwrap()).unwrap(),
            )
        })
        .count();
    assert_eq!(slices, 4);
    assert!(b_frame_count(&clip) > 10);
}

#[test]
fn in_band_parameter_sets_suffice() {
    let clip = encode(
        Codec::H265,
        320,
        240,
        &["-x265-params", "bframes=3:keyint=25:log-level=error"],
    );
    // The first access unit carries VPS/SPS/PPS in band; no out-of-band sets.
    assert!(has_b_slices(Codec::H265, &clip.raw_frames[0], &ParameterSets::default()).is_ok());
    // Without any PPS, an H.265 slice header cannot be read: an error, not a guess.
    assert!(has_b_slices(Codec::H265, &clip.frames[1], &ParameterSets::default()).is_err());
}

/// Sizes that are not multiples of the macroblock / coding block size are
/// cropped by the SPS; the sample entry must state the cropped size.
#[test]
fn sps_dimensions_with_cropping() {
    let args264: &[&str] = &["-bf", "0", "-g", "25"];
    let args265: &[&str] = &["-x265-params", "bframes=0:log-level=error"];
    for (codec, args) in [(Codec::H264, args264), (Codec::H265, args265)] {
        let clip = encode(codec, 322, 242, args);
        let info = clip.params.sps_info(codec).unwrap();
        assert_eq!((info.width, info.height), (322, 242), "{codec:?}");
        assert!(
            info.coded_width > 322 && info.coded_height > 242,
            "{codec:?} {info:?}"
        );
        let clip = if codec == Codec::H264 {
            h264_clip()
        } else {
            h265_clip()
        };
        let info = clip.params.sps_info(codec).unwrap();
        assert_eq!((info.width, info.height), (320, 240), "{codec:?}");
    }
}

#[test]
fn decoder_config_round_trip() {
    for clip in [h264_clip(), h265_clip()] {
        let parsed = parse_decoder_config(clip.codec, &clip.record).unwrap();
        assert_eq!(parsed, clip.params);
        assert_eq!(parsed.vps.len(), usize::from(clip.codec == Codec::H265));
    }
}

/// Deterministic xorshift so the "fuzz" inputs are reproducible.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Corrupted frames and records (bit flips, truncation) must give errors or
/// answers, never panics.
#[test]
fn hostile_input_never_panics() {
    let mut seed = 0x9e3779b97f4a7c15u64;
    for clip in [h264_clip(), h265_clip()] {
        let codec = clip.codec;
        let inputs = [
            clip.raw_frames[0].clone(),
            clip.frames[1].clone(),
            clip.record.clone(),
        ];
        for input in inputs {
            for _ in 0..300 {
                let mut bytes = input.clone();
                for _ in 0..1 + xorshift(&mut seed) % 4 {
                    let i = (xorshift(&mut seed) as usize) % bytes.len();
                    bytes[i] ^= 1 << (xorshift(&mut seed) % 8);
                }
                bytes.truncate(1 + (xorshift(&mut seed) as usize) % bytes.len());
                let _ = is_keyframe(codec, &bytes);
                let _ = has_b_slices(codec, &bytes, &clip.params);
                let _ = parse_decoder_config(codec, &bytes);
                let _ = parse_h264_sps(&bytes);
                let _ = parse_h265_sps(&bytes);
                let _ = parse_h265_pps(&bytes);
                if let Ok(ps) = parse_decoder_config(codec, &bytes) {
                    let _ = ps.sps_info(codec);
                    let _ = has_b_slices(codec, &clip.frames[1], &ps);
                }
            }
        }
    }
}
