//! Slice types, read from the first slice header of each picture: the
//! recorder refuses B-frames because our segments carry no composition
//! offsets (decode order must equal presentation order).

use std::collections::HashMap;

use super::bits::{remove_emulation_prevention, BitReader};
use super::nal::{h265_type, is_vcl, length_prefixed_nals, nal_type};
use super::params::ParameterSets;
use super::sps::{parse_h265_pps, parse_h265_sps, H265PpsInfo};
use super::{Codec, H26xError};

/// Slice headers fields before slice_type fit comfortably in this many bytes
/// (ids, flags, a ≤ 16-bit address, ≤ 7 extra bits); reading only a prefix
/// keeps emulation-prevention removal from copying whole frames.
const HEADER_PREFIX: usize = 64;

/// H.264 slice_type (Table 7-6): 1 and 6 are B.
const H264_B: u32 = 1;
/// H.265 slice_type (Table 7-7): 0 is B.
const H265_B: u32 = 0;

/// The H.265 parameter-set facts slice headers depend on, by id.
#[derive(Default)]
struct H265Context {
    pps: HashMap<u32, H265PpsInfo>,
    /// PicSizeInCtbsY by SPS id.
    sps_ctbs: HashMap<u32, u32>,
}

impl H265Context {
    fn learn(&mut self, nal: &[u8]) -> Result<(), H26xError> {
        match nal_type(Codec::H265, nal) {
            Some(h265_type::SPS) => {
                let sps = parse_h265_sps(nal)?;
                self.sps_ctbs.insert(sps.id, sps.pic_size_in_ctbs);
            }
            Some(h265_type::PPS) => {
                let pps = parse_h265_pps(nal)?;
                self.pps.insert(pps.id, pps);
            }
            _ => {}
        }
        Ok(())
    }

    /// slice_type of an H.265 slice segment (§7.3.6.1), or `None` for a
    /// dependent slice segment, which inherits its slice's type.
    fn slice_type(&self, nal: &[u8], t: u8) -> Result<Option<u32>, H26xError> {
        let rbsp = remove_emulation_prevention(&nal[..nal.len().min(HEADER_PREFIX)]);
        let mut r = BitReader::new(rbsp.get(2..).ok_or(H26xError::Truncated)?);
        let first_in_pic = r.read_bit()?;
        if h265_type::IRAP.contains(&t) || (22..=23).contains(&t) {
            r.skip_bits(1)?; // no_output_of_prior_pics_flag
        }
        let pps_id = r.read_ue()?;
        let pps = self
            .pps
            .get(&pps_id)
            .ok_or(H26xError::MissingParameterSet("PPS named by a slice"))?;
        if !first_in_pic {
            if pps.dependent_slice_segments_enabled && r.read_bit()? {
                return Ok(None);
            }
            let ctbs = *self
                .sps_ctbs
                .get(&pps.sps_id)
                .ok_or(H26xError::MissingParameterSet("SPS named by a PPS"))?;
            // slice_segment_address is u(v) of Ceil(Log2(PicSizeInCtbsY)) bits.
            let address_bits = u32::BITS - ctbs.saturating_sub(1).leading_zeros();
            r.skip_bits(address_bits as usize)?;
        }
        r.skip_bits(pps.num_extra_slice_header_bits as usize)?;
        Ok(Some(r.read_ue()?))
    }
}

/// slice_type of an H.264 slice (§7.3.3): the second ue(v) of the header.
fn h264_slice_type(nal: &[u8]) -> Result<u32, H26xError> {
    let rbsp = remove_emulation_prevention(&nal[..nal.len().min(HEADER_PREFIX)]);
    let mut r = BitReader::new(rbsp.get(1..).ok_or(H26xError::Truncated)?);
    r.read_ue()?; // first_mb_in_slice
    r.read_ue()
}

/// Whether the length-prefixed `frame` contains a B slice. `params` are the
/// stream's out-of-band parameter sets (H.265 slice headers cannot be read
/// without the PPS and SPS); parameter sets inside the frame take precedence,
/// as they would for a decoder.
pub fn has_b_slices(codec: Codec, frame: &[u8], params: &ParameterSets) -> Result<bool, H26xError> {
    let mut ctx = H265Context::default();
    if codec == Codec::H265 {
        for nal in params.sps.iter().chain(&params.pps) {
            ctx.learn(nal)?;
        }
    }
    for nal in length_prefixed_nals(frame) {
        let nal = nal?;
        let Some(t) = nal_type(codec, nal) else {
            return Err(H26xError::Truncated);
        };
        match codec {
            Codec::H264 => {
                if is_vcl(codec, t) && h264_slice_type(nal)? % 5 == H264_B {
                    return Ok(true);
                }
            }
            Codec::H265 => {
                if is_vcl(codec, t) {
                    if ctx.slice_type(nal, t)? == Some(H265_B) {
                        return Ok(true);
                    }
                } else {
                    ctx.learn(nal)?;
                }
            }
        }
    }
    Ok(false)
}
