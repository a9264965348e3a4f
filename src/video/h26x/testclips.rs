//! Test clips made by ffmpeg (libx264 / libx265 from the lavfi test source),
//! split into length-prefixed frames the way retina would hand them to us.
//! A missing ffmpeg fails the test: the test script installs it.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use super::{annex_b_access_units, h264_type, h265_type, nal_type, to_length_prefixed};
use super::{build_decoder_config, Codec, ParameterSets};

pub struct Clip {
    pub codec: Codec,
    /// One length-prefixed access unit per picture, decode order, without
    /// parameter sets or access unit delimiters (those live in `record`).
    pub frames: Vec<Vec<u8>>,
    /// The same access units with every NAL unit, as the encoder emitted them.
    pub raw_frames: Vec<Vec<u8>>,
    pub params: ParameterSets,
    /// avcC / hvcC.
    pub record: Vec<u8>,
}

/// Runs a tool from the test script's ffmpeg install, panicking (failing the
/// test) when it is missing or fails.
pub fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} is required for this test (scripts/test installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_out_of_band(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => matches!(t, h264_type::SPS | h264_type::PPS | h264_type::AUD),
        (Codec::H265, Some(t)) => matches!(
            t,
            h265_type::VPS | h265_type::SPS | h265_type::PPS | h265_type::AUD
        ),
        (_, None) => true,
    }
}

/// Encodes 4 s of 25 fps test pattern at `width`x`height`. `codec_args` are
/// the encoder options (e.g. B-frame count, GOP length).
pub fn encode(codec: Codec, width: u32, height: u32, codec_args: &[&str]) -> Arc<Clip> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Clip>>>> = OnceLock::new();
    let key = format!("{codec:?} {width}x{height} {codec_args:?}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(clip) = cache.lock().unwrap().get(&key) {
        return clip.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let (encoder, format, file) = match codec {
        Codec::H264 => ("libx264", "h264", "clip.h264"),
        Codec::H265 => ("libx265", "hevc", "clip.hevc"),
    };
    let path = dir.path().join(file);
    let source = format!("testsrc=size={width}x{height}:rate=25");
    let mut args = vec![
        "-v", "error", "-f", "lavfi", "-i", &source, "-t", "4", "-pix_fmt", "yuv420p", "-c:v",
        encoder,
    ];
    args.extend_from_slice(codec_args);
    args.extend_from_slice(&["-f", format, "-y", path.to_str().unwrap()]);
    run_tool("ffmpeg", &args);
    let stream = std::fs::read(&path).unwrap();
    let units = annex_b_access_units(codec, &stream);
    let params = ParameterSets::from_nals(codec, units.iter().flatten().copied());
    let record = build_decoder_config(codec, &params).unwrap();
    let frames = units
        .iter()
        .map(|au| to_length_prefixed(au.iter().copied().filter(|n| !is_out_of_band(codec, n))))
        .collect();
    let raw_frames = units
        .iter()
        .map(|au| to_length_prefixed(au.iter().copied()))
        .collect();
    let clip = Arc::new(Clip {
        codec,
        frames,
        raw_frames,
        params,
        record,
    });
    cache.lock().unwrap().insert(key, clip.clone());
    clip
}

/// 320x240, no B-frames, one IDR every 25 frames (1 s GOPs).
pub fn h264_clip() -> Arc<Clip> {
    encode(Codec::H264, 320, 240, &["-bf", "0", "-g", "25"])
}

/// 320x240, no B-frames, a keyframe every 25 frames.
pub fn h265_clip() -> Arc<Clip> {
    encode(
        Codec::H265,
        320,
        240,
        &[
            "-x265-params",
            "bframes=0:keyint=25:min-keyint=25:scenecut=0:log-level=error",
        ],
    )
}
