//! Reading one movie fragment (moof + mdat, 14496-12 §8.8) back into sample
//! positions and times. Accepts fragments from other writers too (ffmpeg,
//! cameras' own fMP4), so it honours the optional fields and defaults, and it
//! treats the bytes as hostile: every length is checked.

use super::{Mp4Error, NON_SYNC_BIT};

/// One sample of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    /// 90 kHz ticks (or the track's timescale, for foreign files).
    pub duration: u32,
    pub size: u32,
    pub is_sync: bool,
    /// trun composition offset; 0 for our own fragments (no B-frames).
    pub composition_offset: i32,
    /// Position of the sample's first byte within the bytes given to
    /// [`read_fragment`].
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// mfhd sequence_number.
    pub sequence: u32,
    /// tfdt baseMediaDecodeTime: decode time of the first sample.
    pub base_decode_time: u64,
    pub samples: Vec<SampleInfo>,
    /// Bytes from the start of the input to the end of the mdat: where the
    /// next fragment would begin.
    pub len: usize,
}

impl FragmentInfo {
    /// Sum of the sample durations.
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

/// One box: its type, where it starts, and its body (after the header).
struct Box<'a> {
    fourcc: [u8; 4],
    start: usize,
    body: &'a [u8],
    body_start: usize,
}

impl Box<'_> {
    fn end(&self) -> usize {
        self.body_start + self.body.len()
    }
}

/// Reads the box at `pos` of `data` (positions are within `data`).
fn read_box(data: &[u8], pos: usize) -> Result<Box<'_>, Mp4Error> {
    let rest = data.get(pos..).ok_or(Mp4Error::Truncated)?;
    let mut r = Reader(rest);
    let size32 = r.u32()?;
    let fourcc: [u8; 4] = r.take(4)?.try_into().unwrap();
    let (size, header) = match size32 {
        0 => (rest.len() as u64, 8), // extends to the end of the data
        1 => (r.u64()?, 16),
        n => (u64::from(n), 8),
    };
    if size < header {
        return Err(Mp4Error::Invalid("box size smaller than its header"));
    }
    if size > rest.len() as u64 {
        return Err(Mp4Error::Truncated);
    }
    let size = size as usize;
    Ok(Box {
        fourcc,
        start: pos,
        body: &rest[header as usize..size],
        body_start: pos + header as usize,
    })
}

/// The child boxes of a container body.
fn children(body: &[u8]) -> Result<Vec<Box<'_>>, Mp4Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let b = read_box(body, pos)?;
        pos = b.end();
        out.push(b);
    }
    Ok(out)
}

/// Big-endian reads that fail with `Truncated` instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        if n > self.0.len() {
            return Err(Mp4Error::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, Mp4Error> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Mp4Error> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// FullBox version and flags.
    fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// tfhd: where sample data is counted from and the fragment's defaults.
#[derive(Default)]
struct TrackFragmentHeader {
    base_data_offset: Option<u64>,
    default_duration: u32,
    default_size: u32,
    default_flags: u32,
}

fn parse_tfhd(body: &[u8]) -> Result<TrackFragmentHeader, Mp4Error> {
    let mut r = Reader(body);
    let (_, flags) = r.version_flags()?;
    r.u32()?; // track_ID
    let mut h = TrackFragmentHeader::default();
    if flags & 0x01 != 0 {
        h.base_data_offset = Some(r.u64()?);
    }
    if flags & 0x02 != 0 {
        r.u32()?; // sample_description_index
    }
    if flags & 0x08 != 0 {
        h.default_duration = r.u32()?;
    }
    if flags & 0x10 != 0 {
        h.default_size = r.u32()?;
    }
    if flags & 0x20 != 0 {
        h.default_flags = r.u32()?;
    }
    Ok(h)
}

fn parse_tfdt(body: &[u8]) -> Result<u64, Mp4Error> {
    let mut r = Reader(body);
    match r.version_flags()?.0 {
        0 => Ok(u64::from(r.u32()?)),
        1 => r.u64(),
        _ => Err(Mp4Error::Unsupported("tfdt version")),
    }
}

/// Appends a trun's samples; `data_pos` is where its data starts unless the
/// trun states a data_offset, and on return where the next trun's would.
fn parse_trun(
    body: &[u8],
    tfhd: &TrackFragmentHeader,
    base: u64,
    data_pos: &mut u64,
    out: &mut Vec<SampleInfo>,
) -> Result<(), Mp4Error> {
    let mut r = Reader(body);
    let (version, flags) = r.version_flags()?;
    let count = r.u32()? as usize;
    if flags & 0x001 != 0 {
        let offset = r.u32()? as i32;
        *data_pos = base
            .checked_add_signed(i64::from(offset))
            .ok_or(Mp4Error::Invalid("data offset before the start"))?;
    }
    let first_flags = if flags & 0x004 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let fields = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    // Refuse counts the box cannot hold before allocating for them.
    if count.checked_mul(4 * fields).is_none_or(|n| n > r.0.len()) {
        return Err(Mp4Error::Truncated);
    }
    if fields == 0 && count > 1 << 20 {
        return Err(Mp4Error::Invalid("implausible sample count"));
    }
    out.reserve(count);
    for i in 0..count {
        let duration = if flags & 0x100 != 0 {
            r.u32()?
        } else {
            tfhd.default_duration
        };
        let size = if flags & 0x200 != 0 {
            r.u32()?
        } else {
            tfhd.default_size
        };
        let mut sample_flags = if flags & 0x400 != 0 {
            r.u32()?
        } else {
            tfhd.default_flags
        };
        if i == 0 {
            sample_flags = first_flags.unwrap_or(sample_flags);
        }
        let composition_offset = if flags & 0x800 != 0 {
            let v = r.u32()?;
            // Version 0 offsets are unsigned; no real file reaches 2^31.
            if version == 0 {
                v.min(i32::MAX as u32) as i32
            } else {
                v as i32
            }
        } else {
            0
        };
        let offset = usize::try_from(*data_pos).map_err(|_| Mp4Error::Truncated)?;
        *data_pos = data_pos
            .checked_add(u64::from(size))
            .ok_or(Mp4Error::Invalid("sample data past any file"))?;
        out.push(SampleInfo {
            duration,
            size,
            is_sync: sample_flags & NON_SYNC_BIT == 0,
            composition_offset,
            offset,
        });
    }
    Ok(())
}

/// Boxes that may precede a moof in a segment (DASH/CMAF) and carry nothing
/// we need.
const SKIPPABLE: [&[u8; 4]; 7] = [
    b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"free", b"skip",
];

/// Parses the first movie fragment in `bytes` (optionally preceded by
/// styp/sidx/prft/emsg/free boxes): the first track fragment's samples with
/// their positions in `bytes`. Only the first traf is read; our recordings
/// have one track. A tfhd base_data_offset is taken as a position in `bytes`.
/// Every sample must lie inside the mdat that follows the moof.
pub fn read_fragment(bytes: &[u8]) -> Result<FragmentInfo, Mp4Error> {
    let mut pos = 0;
    let moof = loop {
        if pos >= bytes.len() {
            return Err(Mp4Error::Missing("moof"));
        }
        let b = read_box(bytes, pos)?;
        pos = b.end();
        match &b.fourcc {
            b"moof" => break b,
            t if SKIPPABLE.contains(&t) => continue,
            _ => return Err(Mp4Error::Missing("moof")),
        }
    };
    let mdat = loop {
        if pos >= bytes.len() {
            return Err(Mp4Error::Missing("mdat"));
        }
        let b = read_box(bytes, pos)?;
        pos = b.end();
        match &b.fourcc {
            b"mdat" => break b,
            b"free" | b"skip" => continue,
            _ => return Err(Mp4Error::Missing("mdat")),
        }
    };

    let mut sequence = None;
    let mut traf = None;
    for child in children(moof.body)? {
        match &child.fourcc {
            b"mfhd" => {
                let mut r = Reader(child.body);
                r.version_flags()?;
                sequence = Some(r.u32()?);
            }
            b"traf" if traf.is_none() => traf = Some(child),
            _ => {}
        }
    }
    let sequence = sequence.ok_or(Mp4Error::Missing("mfhd"))?;
    let traf = traf.ok_or(Mp4Error::Missing("traf"))?;
    let traf_children = children(traf.body)?;
    let tfhd_box = traf_children
        .iter()
        .find(|b| &b.fourcc == b"tfhd")
        .ok_or(Mp4Error::Missing("tfhd"))?;
    let tfhd = parse_tfhd(tfhd_box.body)?;
    let base_decode_time = parse_tfdt(
        traf_children
            .iter()
            .find(|b| &b.fourcc == b"tfdt")
            .ok_or(Mp4Error::Missing("tfdt"))?
            .body,
    )?;
    // Without base_data_offset, offsets count from the moof: that is what
    // default-base-is-moof says, and also the rule for the first traf when
    // neither flag is set.
    let base = tfhd.base_data_offset.unwrap_or(moof.start as u64);
    let mut data_pos = base;
    let mut samples = Vec::new();
    for trun in traf_children.iter().filter(|b| &b.fourcc == b"trun") {
        parse_trun(trun.body, &tfhd, base, &mut data_pos, &mut samples)?;
    }
    for s in &samples {
        let end = s.offset.checked_add(s.size as usize);
        if s.offset < mdat.body_start || end.is_none_or(|e| e > mdat.end()) {
            return Err(Mp4Error::Invalid("sample data outside the mdat"));
        }
    }
    Ok(FragmentInfo {
        sequence,
        base_decode_time,
        samples,
        len: mdat.end(),
    })
}
