//! The embedded test clips, split once into access units (frames) and
//! packetized into RTP payloads that every session shares: a session only
//! adds its own RTP header, so 64+ streams cost little more than one.

use super::rtp;
use super::Codec;
use base64::Engine as _;
use std::sync::OnceLock;

/// Frame rate of the committed clips (scripts/make-test-clips). The
/// bitstreams carry no timing we rely on; the simulator paces by this.
pub const FPS: u32 = 25;
/// RTP clock ticks (90 kHz, RFC 6184 §8.2.1 / RFC 7798 §7.1) per frame.
pub const TICKS_PER_FRAME: u32 = 90_000 / FPS;

static H264_CLIP: &[u8] = include_bytes!("../../../tests/data/clip-h264.h264");
static H265_CLIP: &[u8] = include_bytes!("../../../tests/data/clip-h265.h265");

/// The committed clip for `codec` as an Annex B byte stream.
pub fn annex_b(codec: Codec) -> &'static [u8] {
    match codec {
        Codec::H264 => H264_CLIP,
        Codec::H265 => H265_CLIP,
    }
}

/// One access unit ready to send: its RTP payloads in order (the last
/// one gets the marker bit).
#[derive(Debug)]
pub struct Frame {
    pub key: bool,
    pub payloads: Vec<Vec<u8>>,
}

/// A clip ready to serve in a loop.
#[derive(Debug)]
pub struct Clip {
    pub codec: Codec,
    pub frames: Vec<Frame>,
    /// The SDP `a=fmtp:96` parameters (parameter sets, profile).
    pub fmtp: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("the clip contains no pictures")]
    Empty,
    #[error("the clip does not start with a keyframe")]
    NoLeadingKeyframe,
    #[error("the clip lacks a parameter set (SPS/PPS, or VPS for H.265)")]
    MissingParameterSets,
}

/// The embedded clip for `codec`, parsed on first use and shared by every
/// server in the process.
pub fn embedded(codec: Codec) -> Result<&'static Clip, &'static ClipError> {
    static H264: OnceLock<Result<Clip, ClipError>> = OnceLock::new();
    static H265: OnceLock<Result<Clip, ClipError>> = OnceLock::new();
    let cell = match codec {
        Codec::H264 => &H264,
        Codec::H265 => &H265,
    };
    cell.get_or_init(|| Clip::parse(codec, annex_b(codec)))
        .as_ref()
}

impl Clip {
    /// Splits an Annex B byte stream into access units and packetizes
    /// them. Keyframes without in-band parameter sets get them prepended,
    /// so a client may join at any keyframe of the loop.
    pub fn parse(codec: Codec, annex_b: &[u8]) -> Result<Clip, ClipError> {
        let nals = split_annex_b(annex_b);
        let mut params: Vec<Option<&[u8]>> = vec![None; param_kinds(codec)];
        for nal in &nals {
            if let Some(i) = param_index(codec, nal) {
                params[i].get_or_insert(nal);
            }
        }
        let params: Vec<&[u8]> = params
            .into_iter()
            .collect::<Option<_>>()
            .ok_or(ClipError::MissingParameterSets)?;

        let mut frames = Vec::new();
        for au in access_units(codec, &nals) {
            let key = au.iter().any(|n| is_keyframe(codec, n));
            let has_params = au.iter().any(|n| param_index(codec, n).is_some());
            let mut payloads = Vec::new();
            if key && !has_params {
                for p in &params {
                    rtp::packetize(codec, p, rtp::MAX_PAYLOAD, &mut payloads);
                }
            }
            for nal in &au {
                rtp::packetize(codec, nal, rtp::MAX_PAYLOAD, &mut payloads);
            }
            frames.push(Frame { key, payloads });
        }
        match frames.first() {
            None => return Err(ClipError::Empty),
            Some(f) if !f.key => return Err(ClipError::NoLeadingKeyframe),
            Some(_) => {}
        }
        Ok(Clip {
            codec,
            frames,
            fmtp: fmtp(codec, &params),
        })
    }

    /// The SDP `a=rtpmap` encoding name.
    pub fn encoding_name(&self) -> &'static str {
        match self.codec {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
        }
    }
}

/// NAL units of an Annex B stream, without start codes and without the
/// trailing zero bytes that belong to the next start code.
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        let mut nal = &data[s..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

fn nal_type(codec: Codec, nal: &[u8]) -> u8 {
    match codec {
        Codec::H264 => nal[0] & 0x1f,
        Codec::H265 => (nal[0] >> 1) & 0x3f,
    }
}

fn is_vcl(codec: Codec, nal: &[u8]) -> bool {
    let t = nal_type(codec, nal);
    match codec {
        Codec::H264 => (1..=5).contains(&t),
        Codec::H265 => t <= 31,
    }
}

/// IDR for H.264; any IRAP (BLA, IDR, CRA) for H.265 — a decoder can start
/// at each of them.
fn is_keyframe(codec: Codec, nal: &[u8]) -> bool {
    let t = nal_type(codec, nal);
    match codec {
        Codec::H264 => t == 5,
        Codec::H265 => (16..=21).contains(&t),
    }
}

/// The slice starts a new picture: first_mb_in_slice == 0 (H.264) or
/// first_slice_segment_in_pic_flag (H.265) — either way the first bit of
/// the slice header, right after the NAL header, is 1.
fn is_first_slice(codec: Codec, nal: &[u8]) -> bool {
    let header_len = match codec {
        Codec::H264 => 1,
        Codec::H265 => 2,
    };
    nal.get(header_len).is_some_and(|b| b & 0x80 != 0)
}

/// Non-VCL NAL types that may only come before the first slice of an
/// access unit, so seeing one after a slice opens the next unit
/// (H.264 §7.4.1.2.3, H.265 §7.4.2.4.4).
fn opens_access_unit(codec: Codec, nal: &[u8]) -> bool {
    let t = nal_type(codec, nal);
    match codec {
        Codec::H264 => matches!(t, 6..=9 | 14..=18),
        Codec::H265 => matches!(t, 32..=35 | 39 | 41..=44 | 48..=55),
    }
}

fn param_kinds(codec: Codec) -> usize {
    match codec {
        Codec::H264 => 2,
        Codec::H265 => 3,
    }
}

/// Index in SDP order (H.264: SPS, PPS; H.265: VPS, SPS, PPS).
fn param_index(codec: Codec, nal: &[u8]) -> Option<usize> {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, 7) => Some(0),
        (Codec::H264, 8) => Some(1),
        (Codec::H265, t @ 32..=34) => Some(usize::from(t - 32)),
        _ => None,
    }
}

fn access_units<'a>(codec: Codec, nals: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut units = Vec::new();
    let mut cur: Vec<&[u8]> = Vec::new();
    let mut cur_has_vcl = false;
    for &nal in nals {
        let vcl = is_vcl(codec, nal);
        let boundary = cur_has_vcl
            && if vcl {
                is_first_slice(codec, nal)
            } else {
                opens_access_unit(codec, nal)
            };
        if boundary {
            units.push(std::mem::take(&mut cur));
            cur_has_vcl = false;
        }
        cur_has_vcl |= vcl;
        cur.push(nal);
    }
    if cur_has_vcl {
        units.push(cur);
    }
    units
}

fn fmtp(codec: Codec, params: &[&[u8]]) -> String {
    let b64 = |p: &[u8]| base64::engine::general_purpose::STANDARD.encode(p);
    match codec {
        // RFC 6184 §8.1: profile-level-id is the SPS's profile_idc,
        // constraint flags and level_idc bytes, in hex.
        Codec::H264 => {
            let sps = params[0];
            let pli: String = sps
                .iter()
                .skip(1)
                .take(3)
                .map(|b| format!("{b:02X}"))
                .collect();
            format!(
                "packetization-mode=1;profile-level-id={pli};sprop-parameter-sets={},{}",
                b64(sps),
                b64(params[1])
            )
        }
        // RFC 7798 §7.1.
        Codec::H265 => format!(
            "sprop-vps={};sprop-sps={};sprop-pps={}",
            b64(params[0]),
            b64(params[1]),
            b64(params[2])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_clips_are_four_seconds_with_a_keyframe_each_second() {
        for codec in [Codec::H264, Codec::H265] {
            let clip = embedded(codec).expect("embedded clip parses");
            assert_eq!(clip.frames.len(), 100, "{codec:?}");
            let keys: Vec<usize> = (0..clip.frames.len())
                .filter(|&i| clip.frames[i].key)
                .collect();
            assert_eq!(keys, vec![0, 25, 50, 75], "{codec:?}");
        }
    }

    #[test]
    fn sdp_parameters_carry_the_parameter_sets() {
        let h264 = embedded(Codec::H264).unwrap();
        assert!(h264.fmtp.contains("packetization-mode=1"));
        // Main profile (0x4D) from the SPS.
        assert!(h264.fmtp.contains("profile-level-id=4D"), "{}", h264.fmtp);
        assert!(h264.fmtp.contains("sprop-parameter-sets=Z"));
        let h265 = embedded(Codec::H265).unwrap();
        for key in ["sprop-vps=", "sprop-sps=", "sprop-pps="] {
            assert!(h265.fmtp.contains(key), "{}", h265.fmtp);
        }
    }

    #[test]
    fn keyframes_without_parameter_sets_get_them_in_band() {
        // SPS, PPS, IDR, P, then an IDR without parameter sets.
        let stream = [
            &[0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x1e][..],
            &[0, 0, 1, 0x68, 0xee],
            &[0, 0, 1, 0x65, 0x88, 1],
            &[0, 0, 1, 0x41, 0x9a, 2],
            &[0, 0, 1, 0x65, 0x88, 3],
        ]
        .concat();
        let clip = Clip::parse(Codec::H264, &stream).unwrap();
        assert_eq!(clip.frames.len(), 3);
        let last = &clip.frames[2];
        assert!(last.key);
        let types: Vec<u8> = last.payloads.iter().map(|p| p[0] & 0x1f).collect();
        assert_eq!(types, vec![7, 8, 5]);
    }

    #[test]
    fn garbage_is_refused_not_served() {
        assert!(matches!(
            Clip::parse(Codec::H264, b"not video"),
            Err(ClipError::MissingParameterSets)
        ));
        let no_key = [
            &[0, 0, 1, 0x67, 0x4d][..],
            &[0, 0, 1, 0x68, 0xee],
            &[0, 0, 1, 0x41, 0x9a],
        ]
        .concat();
        assert!(matches!(
            Clip::parse(Codec::H264, &no_key),
            Err(ClipError::NoLeadingKeyframe)
        ));
    }
}
