//! H.264 / H.265 bitstream facts the recorder decides on: NAL framing,
//! keyframes (including H.265 open-GOP CRA pictures), B-frames, picture size
//! and the avcC / hvcC decoder configuration records.
//!
//! Everything here parses bytes from cameras: malformed input yields an
//! [`H26xError`], never a panic.

mod bits;
mod nal;
mod params;
mod slice;
mod sps;

pub use bits::{remove_emulation_prevention, BitReader};
pub use nal::{
    annex_b_access_units, annex_b_nals, h264_type, h265_type, is_vcl, length_prefixed_nals,
    nal_type, to_length_prefixed, AnnexBNals, LengthPrefixedNals,
};
pub use params::{
    build_avcc, build_decoder_config, build_hvcc, parse_avcc, parse_decoder_config, parse_hvcc,
    ParameterSets,
};
pub use slice::has_b_slices;
pub use sps::{parse_h264_sps, parse_h265_pps, parse_h265_sps, H265PpsInfo, SpsInfo};

/// The video codecs we record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Codec {
    H264,
    H265,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H26xError {
    #[error("bitstream truncated")]
    Truncated,
    #[error("invalid bitstream: {0}")]
    Invalid(&'static str),
    #[error("unsupported bitstream: {0}")]
    Unsupported(&'static str),
    #[error("missing parameter set: {0}")]
    MissingParameterSet(&'static str),
}

/// Whether a length-prefixed frame is a random access point: an H.264 IDR
/// picture, or any H.265 IRAP picture (IDR, CRA, BLA). Cameras using open
/// GOPs start each GOP with a CRA, which retina does not flag as random
/// access, so we decide ourselves. A malformed frame is not a keyframe.
pub fn is_keyframe(codec: Codec, frame: &[u8]) -> bool {
    for nal in length_prefixed_nals(frame) {
        let Ok(nal) = nal else {
            return false;
        };
        let key = match (codec, nal_type(codec, nal)) {
            (Codec::H264, Some(t)) => t == h264_type::IDR_SLICE,
            (Codec::H265, Some(t)) => h265_type::IRAP.contains(&t),
            (_, None) => false,
        };
        if key {
            return true;
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod testclips;
#[cfg(test)]
mod tests;
