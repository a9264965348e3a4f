//! Sequence and picture parameter set fields the recorder needs: picture
//! size (H.264 §7.3.2.1.1, H.265 §7.3.2.2) and what it takes to reach
//! slice_type in an H.265 slice header (H.265 §7.3.2.3.1).

use super::bits::{remove_emulation_prevention, BitReader};
use super::H26xError;

/// What a sequence parameter set says about the pictures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpsInfo {
    pub id: u32,
    /// Decoded picture size before cropping (whole macroblocks / CTB-aligned
    /// minimum coding blocks).
    pub coded_width: u32,
    pub coded_height: u32,
    /// Displayed size after frame cropping (H.264) / the conformance window
    /// (H.265): what the sample entry and the player show.
    pub width: u32,
    pub height: u32,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    /// H.265 only (0 for H.264): sps_max_sub_layers_minus1 + 1,
    /// sps_temporal_id_nesting_flag and PicSizeInCtbsY; the first two go into
    /// hvcC, the last sizes slice_segment_address.
    pub max_sub_layers: u32,
    pub temporal_id_nesting: bool,
    pub pic_size_in_ctbs: u32,
}

/// (SubWidthC, SubHeightC) of H.264 Table 6-1 / H.265 Table 6-1; monochrome
/// and separately coded planes crop in luma samples.
fn chroma_subsampling(chroma_array_type: u32) -> (u32, u32) {
    match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    }
}

fn checked_crop(size: u32, unit: u32, a: u32, b: u32) -> Result<u32, H26xError> {
    let crop = u64::from(unit) * (u64::from(a) + u64::from(b));
    u64::from(size)
        .checked_sub(crop)
        .filter(|&v| v > 0)
        .map(|v| v as u32)
        .ok_or(H26xError::Invalid("cropping removes the whole picture"))
}

/// High-profile H.264 SPSs carry chroma and scaling-list syntax before the
/// picture size (§7.3.2.1.1).
fn h264_has_chroma_info(profile_idc: u32) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips one scaling_list() (§7.3.2.1.1.1); only the delta coding matters.
fn skip_h264_scaling_list(r: &mut BitReader, size: usize) -> Result<(), H26xError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se()?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an H.264 SPS NAL unit (header byte included, emulation prevention
/// not yet removed).
pub fn parse_h264_sps(nal: &[u8]) -> Result<SpsInfo, H26xError> {
    let rbsp = remove_emulation_prevention(nal);
    let mut r = BitReader::new(rbsp.get(1..).ok_or(H26xError::Truncated)?);
    let profile_idc = r.read_bits(8)?;
    r.skip_bits(16)?; // constraint flags, level_idc
    let id = r.read_ue()?;
    let (mut chroma_format_idc, mut separate_planes) = (1, false);
    let (mut depth_luma, mut depth_chroma) = (8, 8);
    if h264_has_chroma_info(profile_idc) {
        chroma_format_idc = r.read_ue()?;
        if chroma_format_idc > 3 {
            return Err(H26xError::Invalid("chroma_format_idc > 3"));
        }
        if chroma_format_idc == 3 {
            separate_planes = r.read_bit()?;
        }
        depth_luma = 8 + r.read_ue()?.min(8);
        depth_chroma = 8 + r.read_ue()?.min(8);
        r.skip_bits(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.read_bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.read_bit()? {
                    skip_h264_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.read_ue()?; // log2_max_frame_num_minus4
    match r.read_ue()? {
        0 => {
            r.read_ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.skip_bits(1)?; // delta_pic_order_always_zero_flag
            r.read_se()?; // offset_for_non_ref_pic
            r.read_se()?; // offset_for_top_to_bottom_field
            let cycle = r.read_ue()?;
            if cycle > 255 {
                return Err(H26xError::Invalid(
                    "num_ref_frames_in_pic_order_cnt_cycle > 255",
                ));
            }
            for _ in 0..cycle {
                r.read_se()?;
            }
        }
        _ => {}
    }
    r.read_ue()?; // max_num_ref_frames
    r.skip_bits(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.read_ue()?.checked_add(1);
    let height_map_units = r.read_ue()?.checked_add(1);
    let frame_mbs_only = r.read_bit()?;
    if !frame_mbs_only {
        r.skip_bits(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip_bits(1)?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let coded_width = width_mbs
        .and_then(|w| w.checked_mul(16))
        .ok_or(H26xError::Invalid("picture width overflows"))?;
    let coded_height = height_map_units
        .and_then(|h| h.checked_mul(16 * field_factor))
        .ok_or(H26xError::Invalid("picture height overflows"))?;
    let (mut width, mut height) = (coded_width, coded_height);
    if r.read_bit()? {
        let (left, right, top, bottom) = (r.read_ue()?, r.read_ue()?, r.read_ue()?, r.read_ue()?);
        let chroma_array_type = if separate_planes {
            0
        } else {
            chroma_format_idc
        };
        let (unit_x, unit_y) = if chroma_array_type == 0 {
            (1, field_factor)
        } else {
            let (sw, sh) = chroma_subsampling(chroma_array_type);
            (sw, sh * field_factor)
        };
        width = checked_crop(coded_width, unit_x, left, right)?;
        height = checked_crop(coded_height, unit_y, top, bottom)?;
    }
    Ok(SpsInfo {
        id,
        coded_width,
        coded_height,
        width,
        height,
        chroma_format_idc,
        bit_depth_luma: depth_luma,
        bit_depth_chroma: depth_chroma,
        max_sub_layers: 0,
        temporal_id_nesting: false,
        pic_size_in_ctbs: 0,
    })
}

/// Skips profile_tier_level(1, max_sub_layers_minus1) (H.265 §7.3.3).
fn skip_h265_profile_tier_level(
    r: &mut BitReader,
    max_sub_layers_minus1: u32,
) -> Result<(), H26xError> {
    r.skip_bits(96)?; // general profile (88 bits) + general_level_idc
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.read_bit()?, r.read_bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip_bits(2 * (8 - max_sub_layers_minus1 as usize))?; // reserved_zero_2bits
    }
    for (profile, level) in present {
        r.skip_bits(if profile { 88 } else { 0 } + if level { 8 } else { 0 })?;
    }
    Ok(())
}

/// Parses an H.265 SPS NAL unit (2-byte header included, emulation
/// prevention not yet removed) up to the coding block sizes.
pub fn parse_h265_sps(nal: &[u8]) -> Result<SpsInfo, H26xError> {
    let rbsp = remove_emulation_prevention(nal);
    let mut r = BitReader::new(rbsp.get(2..).ok_or(H26xError::Truncated)?);
    r.skip_bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.read_bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(H26xError::Invalid("sps_max_sub_layers_minus1 > 6"));
    }
    let temporal_id_nesting = r.read_bit()?;
    skip_h265_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    let id = r.read_ue()?;
    let chroma_format_idc = r.read_ue()?;
    if chroma_format_idc > 3 {
        return Err(H26xError::Invalid("chroma_format_idc > 3"));
    }
    let separate_planes = chroma_format_idc == 3 && r.read_bit()?;
    let coded_width = r.read_ue()?;
    let coded_height = r.read_ue()?;
    if coded_width == 0 || coded_height == 0 {
        return Err(H26xError::Invalid("zero picture size"));
    }
    let (mut width, mut height) = (coded_width, coded_height);
    if r.read_bit()? {
        let (left, right, top, bottom) = (r.read_ue()?, r.read_ue()?, r.read_ue()?, r.read_ue()?);
        let chroma_array_type = if separate_planes {
            0
        } else {
            chroma_format_idc
        };
        let (sw, sh) = chroma_subsampling(chroma_array_type);
        width = checked_crop(coded_width, sw, left, right)?;
        height = checked_crop(coded_height, sh, top, bottom)?;
    }
    let bit_depth_luma = 8 + r.read_ue()?.min(8);
    let bit_depth_chroma = 8 + r.read_ue()?.min(8);
    r.read_ue()?; // log2_max_pic_order_cnt_lsb_minus4
    let ordering_all_layers = r.read_bit()?;
    let first = if ordering_all_layers {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.read_ue()?; // sps_max_dec_pic_buffering_minus1
        r.read_ue()?; // sps_max_num_reorder_pics
        r.read_ue()?; // sps_max_latency_increase_plus1
    }
    let log2_min_cb = r.read_ue()?.checked_add(3);
    let log2_ctb = log2_min_cb
        .zip(r.read_ue().ok())
        .and_then(|(a, b)| a.checked_add(b))
        .filter(|&v| (4..=6).contains(&v))
        .ok_or(H26xError::Invalid("CTB size out of range"))?;
    let ctb = 1u32 << log2_ctb;
    let pic_size_in_ctbs = coded_width
        .div_ceil(ctb)
        .saturating_mul(coded_height.div_ceil(ctb));
    Ok(SpsInfo {
        id,
        coded_width,
        coded_height,
        width,
        height,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        pic_size_in_ctbs,
    })
}

/// The H.265 PPS fields that sit before slice_type in every slice header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H265PpsInfo {
    pub id: u32,
    pub sps_id: u32,
    pub dependent_slice_segments_enabled: bool,
    pub num_extra_slice_header_bits: u32,
}

pub fn parse_h265_pps(nal: &[u8]) -> Result<H265PpsInfo, H26xError> {
    let rbsp = remove_emulation_prevention(nal);
    let mut r = BitReader::new(rbsp.get(2..).ok_or(H26xError::Truncated)?);
    let id = r.read_ue()?;
    let sps_id = r.read_ue()?;
    let dependent_slice_segments_enabled = r.read_bit()?;
    r.skip_bits(1)?; // output_flag_present_flag
    let num_extra_slice_header_bits = r.read_bits(3)?;
    Ok(H265PpsInfo {
        id,
        sps_id,
        dependent_slice_segments_enabled,
        num_extra_slice_header_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_sps_is_an_error() {
        assert!(parse_h264_sps(&[0x67, 0x4d, 0x00]).is_err());
        assert!(parse_h265_sps(&[0x42, 0x01, 0x01]).is_err());
        assert!(parse_h265_pps(&[0x44]).is_err());
    }
}
