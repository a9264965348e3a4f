//! Decoder configuration records: avcC (ISO/IEC 14496-15 §5.3.3.1) and hvcC
//! (§8.3.3.1), the `extra_data` retina gives us and what goes into the MP4
//! sample entry.

use super::bits::remove_emulation_prevention;
use super::nal::{h264_type, h265_type, nal_type};
use super::sps::{parse_h264_sps, parse_h265_sps, SpsInfo};
use super::{Codec, H26xError};

/// The parameter set NAL units (headers included) of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterSets {
    /// H.265 only.
    pub vps: Vec<Vec<u8>>,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl ParameterSets {
    /// Collects the first VPS/SPS/PPS of each kind found in `nals` (e.g. the
    /// first access unit of an Annex B stream).
    pub fn from_nals<'a>(codec: Codec, nals: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut ps = ParameterSets::default();
        for nal in nals {
            let list = match (codec, nal_type(codec, nal)) {
                (Codec::H264, Some(h264_type::SPS)) | (Codec::H265, Some(h265_type::SPS)) => {
                    &mut ps.sps
                }
                (Codec::H264, Some(h264_type::PPS)) | (Codec::H265, Some(h265_type::PPS)) => {
                    &mut ps.pps
                }
                (Codec::H265, Some(h265_type::VPS)) => &mut ps.vps,
                _ => continue,
            };
            if !list.iter().any(|n| n == nal) {
                list.push(nal.to_vec());
            }
        }
        ps
    }

    /// Parses the first SPS: the picture size every sample entry states.
    pub fn sps_info(&self, codec: Codec) -> Result<SpsInfo, H26xError> {
        let sps = self
            .sps
            .first()
            .ok_or(H26xError::MissingParameterSet("SPS"))?;
        match codec {
            Codec::H264 => parse_h264_sps(sps),
            Codec::H265 => parse_h265_sps(sps),
        }
    }
}

/// Bounds-checked reader over a record; every short read is `Truncated`.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], H26xError> {
        if n > self.0.len() {
            return Err(H26xError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, H26xError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, H26xError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn nal(&mut self) -> Result<Vec<u8>, H26xError> {
        let len = self.u16()? as usize;
        if len == 0 {
            return Err(H26xError::Invalid("empty parameter set"));
        }
        Ok(self.take(len)?.to_vec())
    }
}

/// We only handle 4-byte NAL lengths (what retina and our writer use); a
/// record announcing another size would make every sample misparse.
fn check_length_size(length_size_minus_one: u8) -> Result<(), H26xError> {
    if length_size_minus_one & 3 != 3 {
        return Err(H26xError::Unsupported("NAL length size other than 4 bytes"));
    }
    Ok(())
}

pub fn parse_avcc(record: &[u8]) -> Result<ParameterSets, H26xError> {
    let mut c = Cursor(record);
    if c.u8()? != 1 {
        return Err(H26xError::Invalid("avcC configurationVersion is not 1"));
    }
    c.take(3)?; // profile, compatibility, level
    check_length_size(c.u8()?)?;
    let mut ps = ParameterSets::default();
    for _ in 0..(c.u8()? & 0x1f) {
        ps.sps.push(c.nal()?);
    }
    for _ in 0..c.u8()? {
        ps.pps.push(c.nal()?);
    }
    // Trailing High-profile fields (chroma format, bit depths) restate the SPS.
    Ok(ps)
}

pub fn parse_hvcc(record: &[u8]) -> Result<ParameterSets, H26xError> {
    let mut c = Cursor(record);
    if c.u8()? != 1 {
        return Err(H26xError::Invalid("hvcC configurationVersion is not 1"));
    }
    c.take(20)?; // profile/tier/level, chroma, bit depths, frame rate
    check_length_size(c.u8()?)?;
    let mut ps = ParameterSets::default();
    for _ in 0..c.u8()? {
        let array_type = c.u8()? & 0x3f;
        for _ in 0..c.u16()? {
            let nal = c.nal()?;
            match array_type {
                h265_type::VPS => ps.vps.push(nal),
                h265_type::SPS => ps.sps.push(nal),
                h265_type::PPS => ps.pps.push(nal),
                _ => {} // SEI arrays are allowed and irrelevant here
            }
        }
    }
    Ok(ps)
}

/// Parses `extra_data` as the record matching `codec`.
pub fn parse_decoder_config(codec: Codec, record: &[u8]) -> Result<ParameterSets, H26xError> {
    match codec {
        Codec::H264 => parse_avcc(record),
        Codec::H265 => parse_hvcc(record),
    }
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) -> Result<(), H26xError> {
    let len =
        u16::try_from(nal.len()).map_err(|_| H26xError::Invalid("parameter set over 64 KiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

fn count_u8(n: usize, mask: u8) -> Result<u8, H26xError> {
    u8::try_from(n)
        .ok()
        .filter(|&v| v <= mask)
        .ok_or(H26xError::Invalid("too many parameter sets"))
}

/// Builds an avcC record (4-byte NAL lengths) from parameter sets.
pub fn build_avcc(ps: &ParameterSets) -> Result<Vec<u8>, H26xError> {
    let sps = ps
        .sps
        .first()
        .ok_or(H26xError::MissingParameterSet("SPS"))?;
    if ps.pps.is_empty() {
        return Err(H26xError::MissingParameterSet("PPS"));
    }
    let info = parse_h264_sps(sps)?;
    let profile = sps.get(1..4).ok_or(H26xError::Truncated)?;
    let mut out = vec![1, profile[0], profile[1], profile[2], 0xfc | 3];
    out.push(0xe0 | count_u8(ps.sps.len(), 0x1f)?);
    for nal in &ps.sps {
        push_nal(&mut out, nal)?;
    }
    out.push(count_u8(ps.pps.len(), 0xff)?);
    for nal in &ps.pps {
        push_nal(&mut out, nal)?;
    }
    // 14496-15 asks High profiles to restate chroma format and bit depths.
    if matches!(profile[0], 100 | 110 | 122 | 144) {
        out.push(0xfc | info.chroma_format_idc as u8);
        out.push(0xf8 | (info.bit_depth_luma - 8) as u8);
        out.push(0xf8 | (info.bit_depth_chroma - 8) as u8);
        out.push(0); // numOfSequenceParameterSetExt
    }
    Ok(out)
}

/// Builds an hvcC record (4-byte NAL lengths, complete arrays as `hvc1`
/// requires) from parameter sets.
pub fn build_hvcc(ps: &ParameterSets) -> Result<Vec<u8>, H26xError> {
    let sps = ps
        .sps
        .first()
        .ok_or(H26xError::MissingParameterSet("SPS"))?;
    if ps.vps.is_empty() {
        return Err(H26xError::MissingParameterSet("VPS"));
    }
    if ps.pps.is_empty() {
        return Err(H26xError::MissingParameterSet("PPS"));
    }
    let info = parse_h265_sps(sps)?;
    // After the 2-byte header and one byte of ids, the SPS RBSP holds the
    // 12-byte general profile_tier_level, which hvcC copies verbatim.
    let rbsp = remove_emulation_prevention(sps);
    let general_ptl = rbsp.get(3..15).ok_or(H26xError::Truncated)?;
    let mut out = vec![1];
    out.extend_from_slice(general_ptl);
    out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc = 0
    out.push(0xfc); // parallelismType unknown
    out.push(0xfc | info.chroma_format_idc as u8);
    out.push(0xf8 | (info.bit_depth_luma - 8) as u8);
    out.push(0xf8 | (info.bit_depth_chroma - 8) as u8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate unknown
    out.push(((info.max_sub_layers as u8) << 3) | (u8::from(info.temporal_id_nesting) << 2) | 3);
    let arrays = [
        (h265_type::VPS, &ps.vps),
        (h265_type::SPS, &ps.sps),
        (h265_type::PPS, &ps.pps),
    ];
    out.push(arrays.len() as u8);
    for (kind, nals) in arrays {
        out.push(0x80 | kind); // array_completeness = 1
        let n =
            u16::try_from(nals.len()).map_err(|_| H26xError::Invalid("too many parameter sets"))?;
        out.extend_from_slice(&n.to_be_bytes());
        for nal in nals {
            push_nal(&mut out, nal)?;
        }
    }
    Ok(out)
}

/// Builds the record matching `codec`.
pub fn build_decoder_config(codec: Codec, ps: &ParameterSets) -> Result<Vec<u8>, H26xError> {
    match codec {
        Codec::H264 => build_avcc(ps),
        Codec::H265 => build_hvcc(ps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_records_are_errors() {
        for rec in [
            &[][..],
            &[1, 0x42, 0, 0x1e][..],
            &[1, 0x42, 0, 0x1e, 0xff, 0xe1, 0x00, 0x10, 0x67][..],
            &[2, 0x42, 0, 0x1e, 0xff, 0xe0, 0][..],
            &[1, 0x42, 0, 0x1e, 0xfd, 0xe0, 0][..],
        ] {
            assert!(parse_avcc(rec).is_err(), "{rec:?}");
        }
        let mut hvcc = vec![1u8; 22];
        hvcc[21] = 0x0f;
        assert!(parse_hvcc(&hvcc).is_err()); // no numOfArrays
        hvcc.extend_from_slice(&[1, 0xa0, 0, 5, 0, 40]);
        assert!(parse_hvcc(&hvcc).is_err()); // NAL length past the end
    }
}
