//! Our MP4 writer (ISO/IEC 14496-12, with 14496-15 for H.264/H.265):
//!
//! - recording: an init segment plus one fragment (moof + mdat) per GOP,
//!   appended to a segment file that players can read while it grows;
//! - reading a fragment back (for the index and for export);
//! - export: the header of a progressive MP4 whose sample bytes the caller
//!   streams afterwards, so its length is known before the first byte.
//!
//! All times are 90 kHz ticks, the RTP clock of H.264/H.265.

mod boxes;
mod export;
mod fmp4;
mod moov;
mod read;
mod sample_entry;

pub use export::{export_header, export_len, ExportSample};
pub use fmp4::{fragment, fragment_head, init_segment, Sample, SampleMeta};
pub use read::{read_fragment, FragmentInfo, SampleInfo};
pub use sample_entry::{codec_of_sample_entry, sample_entry_from};

use super::h26x::{parse_decoder_config, Codec, H26xError};

/// Movie and media timescale: the 90 kHz RTP video clock, so camera
/// timestamps need no conversion.
pub const TIMESCALE: u32 = 90_000;

/// The one video track of a recording or export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// A complete `avc1` / `hvc1` VisualSampleEntry box including its avcC /
    /// hvcC (from retina's `mp4_sample_entry().build()` or
    /// [`sample_entry_from`]).
    pub sample_entry: Vec<u8>,
    /// Displayed (cropped) size in pixels, for tkhd.
    pub width: u32,
    pub height: u32,
}

impl Track {
    /// The track for a stream known by its avcC / hvcC record (retina's
    /// `extra_data()`): displayed size from the SPS, sample entry built by
    /// [`sample_entry_from`]. Lets the simulator and tests do without
    /// retina's sample entry builder.
    pub fn from_decoder_config(codec: Codec, extra_data: &[u8]) -> Result<Track, Mp4Error> {
        let size = parse_decoder_config(codec, extra_data)?.sps_info(codec)?;
        Ok(Track {
            sample_entry: sample_entry_from(codec, extra_data, size.width, size.height)?,
            width: size.width,
            height: size.height,
        })
    }
}

/// trun/trex sample_flags (14496-12 §8.8.3.1): a sync sample depends on no
/// other sample (sample_depends_on = 2)…
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// …and any other sample depends on others (sample_depends_on = 1) and has
/// sample_is_non_sync_sample set, so players never seek to it.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;
/// The sample_is_non_sync_sample bit of sample_flags.
const NON_SYNC_BIT: u32 = 0x0001_0000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    #[error("MP4 data truncated")]
    Truncated,
    #[error("invalid MP4: {0}")]
    Invalid(&'static str),
    #[error("MP4 lacks a {0} box")]
    Missing(&'static str),
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    #[error(transparent)]
    Bitstream(#[from] H26xError),
}

#[cfg(test)]
mod tests;
