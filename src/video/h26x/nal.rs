//! NAL unit framing: the 4-byte length prefixes of MP4 samples (what retina
//! hands us) and Annex B start codes (what ffmpeg and the RTSP simulator
//! produce), plus NAL unit types.

use super::{Codec, H26xError};

/// Iterator over the NAL units of one length-prefixed (AVCC-framed) frame.
/// A length that points past the end is reported once as an error and ends
/// the iteration: the frame came off the network and may lie.
pub struct LengthPrefixedNals<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// The NAL units of a frame framed with 4-byte big-endian lengths.
pub fn length_prefixed_nals(frame: &[u8]) -> LengthPrefixedNals<'_> {
    LengthPrefixedNals {
        rest: frame,
        failed: false,
    }
}

impl<'a> Iterator for LengthPrefixedNals<'a> {
    type Item = Result<&'a [u8], H26xError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let (len, body) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or(H26xError::Truncated)?;
            let len = u32::from_be_bytes(*len) as usize;
            if len == 0 {
                return Err(H26xError::Invalid("zero-length NAL unit"));
            }
            if len > body.len() {
                return Err(H26xError::Truncated);
            }
            let (nal, rest) = body.split_at(len);
            Ok((nal, rest))
        })();
        match parsed {
            Ok((nal, rest)) => {
                self.rest = rest;
                Some(Ok(nal))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over the NAL units of an Annex B byte stream (start codes
/// `00 00 01` / `00 00 00 01`). Bytes before the first start code and
/// trailing zero bytes are not part of any NAL unit and are dropped.
pub struct AnnexBNals<'a> {
    rest: &'a [u8],
}

pub fn annex_b_nals(stream: &[u8]) -> AnnexBNals<'_> {
    let rest = match find_start_code(stream) {
        Some((_, after)) => &stream[after..],
        None => &[],
    };
    AnnexBNals { rest }
}

/// Position of the next `00 00 01` and the index just after it.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    data.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (i, i + 3))
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start_code(self.rest) {
                Some((start, after)) => (&self.rest[..start], &self.rest[after..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // A 4-byte start code leaves its leading zero on the previous NAL.
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
    }
}

/// The nal_unit_type of a NAL unit (H.264 §7.3.1: 5 bits; H.265 §7.3.1.2:
/// 6 bits after the forbidden bit). `None` for a NAL too short for a header.
pub fn nal_type(codec: Codec, nal: &[u8]) -> Option<u8> {
    match codec {
        Codec::H264 => nal.first().map(|b| b & 0x1f),
        Codec::H265 => (nal.len() >= 2).then(|| (nal[0] >> 1) & 0x3f),
    }
}

pub mod h264_type {
    pub const NON_IDR_SLICE: u8 = 1;
    pub const IDR_SLICE: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

pub mod h265_type {
    /// IRAP pictures: BLA_W_LP, BLA_W_RADL, BLA_N_LP, IDR_W_RADL, IDR_N_LP,
    /// CRA_NUT. 22/23 are reserved IRAP types no encoder emits.
    pub const IRAP: std::ops::RangeInclusive<u8> = 16..=21;
    pub const CRA: u8 = 21;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const PREFIX_SEI: u8 = 39;
}

/// Whether a NAL unit carries slice data (the picture itself).
pub fn is_vcl(codec: Codec, nal_type: u8) -> bool {
    match codec {
        Codec::H264 => (h264_type::NON_IDR_SLICE..=h264_type::IDR_SLICE).contains(&nal_type),
        // 0..=9 are the trailing/leading picture types, 16..=21 IRAP; the
        // rest of 0..=31 is reserved VCL and carries no slice we can parse.
        Codec::H265 => nal_type <= 9 || h265_type::IRAP.contains(&nal_type),
    }
}

/// Whether this non-VCL NAL unit, seen after a picture's slices, must begin
/// the next access unit (H.264 §7.4.1.2.3, H.265 §7.4.2.4.4).
fn starts_access_unit(codec: Codec, nal_type: u8) -> bool {
    match codec {
        Codec::H264 => matches!(nal_type, 6..=9 | 14..=18),
        Codec::H265 => matches!(nal_type, 32..=35 | 39 | 41..=44 | 48..=55),
    }
}

/// Whether a slice NAL unit is the first slice of its picture: H.264
/// first_mb_in_slice == 0 (ue(v) "1" is a set first bit), H.265
/// first_slice_segment_in_pic_flag.
fn is_first_slice(codec: Codec, nal: &[u8]) -> bool {
    let header_len = match codec {
        Codec::H264 => 1,
        Codec::H265 => 2,
    };
    nal.get(header_len).is_some_and(|b| b & 0x80 != 0)
}

/// Splits an Annex B stream into access units (one picture each), each as a
/// list of NAL units in stream order. Used by tests and the RTSP simulator to
/// turn an encoder's elementary stream into frames.
pub fn annex_b_access_units(codec: Codec, stream: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut seen_vcl = false;
    for nal in annex_b_nals(stream) {
        let Some(t) = nal_type(codec, nal) else {
            continue;
        };
        let vcl = is_vcl(codec, t);
        let boundary = seen_vcl
            && ((vcl && is_first_slice(codec, nal)) || (!vcl && starts_access_unit(codec, t)));
        if boundary {
            units.push(std::mem::take(&mut current));
            seen_vcl = false;
        }
        seen_vcl |= vcl;
        current.push(nal);
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// Frames NAL units with 4-byte big-endian lengths, as in an MP4 sample.
pub fn to_length_prefixed<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        let len = u32::try_from(nal.len()).expect("a NAL unit larger than 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_round_trip() {
        let nals: [&[u8]; 2] = [&[0x65, 1, 2], &[0x41]];
        let frame = to_length_prefixed(nals);
        let got: Vec<&[u8]> = length_prefixed_nals(&frame).map(Result::unwrap).collect();
        assert_eq!(got, nals);
    }

    #[test]
    fn lying_lengths_are_errors_not_panics() {
        for frame in [
            &[0, 0, 0, 9, 0x65][..],
            &[0, 0, 0][..],
            &[0, 0, 0, 0][..],
            &[0xff, 0xff, 0xff, 0xff, 1][..],
            &[0, 0, 0, 1, 0x65, 0, 0][..],
        ] {
            let items: Vec<_> = length_prefixed_nals(frame).collect();
            assert!(items.last().unwrap().is_err(), "{frame:?}");
        }
    }

    #[test]
    fn annex_b_handles_3_and_4_byte_start_codes() {
        let stream = [
            9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 1, 0x65, 3, 0,
        ];
        let got: Vec<&[u8]> = annex_b_nals(&stream).collect();
        assert_eq!(got, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 3]]);
        assert_eq!(annex_b_nals(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn access_units_split_at_parameter_sets_and_first_slices() {
        // SPS, PPS, IDR (first slice), IDR (second slice), P (first slice).
        let stream = [
            0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88, 0, 0, 1, 0x65, 0x40, 0,
            0, 1, 0x41, 0x9a,
        ];
        let aus = annex_b_access_units(Codec::H264, &stream);
        assert_eq!(aus.len(), 2);
        assert_eq!(aus[0].len(), 4);
        assert_eq!(aus[1], vec![&[0x41, 0x9a][..]]);
    }
}
