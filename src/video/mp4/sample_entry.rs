//! The `avc1` / `hvc1` VisualSampleEntry (14496-12 §12.1.3, 14496-15 §5.4.2
//! and §8.4.1) for when retina's builder is not at hand: tests, the RTSP
//! simulator, or a stream whose parameters we learnt in band.

use super::boxes::BoxWriter;
use super::Mp4Error;
use crate::video::h26x::{parse_decoder_config, Codec};

/// Builds the sample entry box for `extra_data` (an avcC or hvcC record).
/// `width` and `height` are the displayed size; they must fit the entry's
/// 16-bit fields.
pub fn sample_entry_from(
    codec: Codec,
    extra_data: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, Mp4Error> {
    // A record that does not parse would give a file no player opens.
    parse_decoder_config(codec, extra_data)?;
    let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(Mp4Error::Invalid(
                "picture size does not fit a sample entry",
            ))
        }
    };
    let (entry, config) = match codec {
        Codec::H264 => (b"avc1", b"avcC"),
        Codec::H265 => (b"hvc1", b"hvcC"),
    };
    let mut w = BoxWriter::new();
    w.begin(entry);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index: the dref entry "this file"
    w.zeros(2 + 2 + 3 * 4); // pre_defined, reserved, pre_defined
    w.u16(w16);
    w.u16(h16);
    w.u32(0x0048_0000); // 72 dpi horizontally
    w.u32(0x0048_0000); // and vertically
    w.u32(0); // reserved
    w.u16(1); // frame_count
    w.zeros(32); // compressorname: empty Pascal string
    w.u16(0x0018); // depth: colour, no alpha
    w.u16(0xffff); // pre_defined = -1
    w.begin(config);
    w.bytes(extra_data);
    w.end();
    w.end();
    Ok(w.finish())
}

/// The codec a sample entry box is for, from its type (`avc1`/`avc3`,
/// `hvc1`/`hev1`).
pub fn codec_of_sample_entry(entry: &[u8]) -> Option<Codec> {
    match entry.get(4..8)? {
        b"avc1" | b"avc3" => Some(Codec::H264),
        b"hvc1" | b"hev1" => Some(Codec::H265),
        _ => None,
    }
}
