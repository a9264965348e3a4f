//! Clip export: an MP4 of any time range of a camera, assembled from the
//! index and the segment files without re-encoding. The plan (header plus
//! the file ranges of every sample) is computed first, so the clip's
//! length is known before a byte is sent and HTTP Range requests are
//! cheap; the body is then copied range by range.

use super::mp4::{self, ExportSample, Track};
use super::store::{ExportPiece, Store};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Longest clip one request may ask for.
pub const MAX_CLIP_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing recorded between the start and the end")]
    Empty,
    #[error("{0}")]
    BadRange(String),
    #[error("recording store: {0}")]
    Store(#[from] super::store::StoreError),
    #[error("reading a segment: {0}")]
    Io(#[from] std::io::Error),
    #[error("a recorded fragment is damaged: {0}")]
    Damaged(String),
}

/// Bytes `[offset, offset + len)` of a segment file.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// A clip ready to be served.
#[derive(Debug, Clone)]
pub struct Clip {
    pub header: Vec<u8>,
    pub parts: Vec<Part>,
    pub len: u64,
    /// What it shows, wall ms (the first frame may precede it: decoding
    /// starts at a keyframe, the edit list hides the lead-in).
    pub start_ms: i64,
    pub end_ms: i64,
    pub frames: usize,
    /// The range asked for went past a change of resolution or codec: the
    /// clip stops there (one track per file).
    pub cut_at_parameter_change: bool,
}

/// The sample entry inside an init segment (moov/trak/mdia/minf/stbl/stsd).
pub fn sample_entry_of_init(init: &[u8]) -> Option<Vec<u8>> {
    let mut body = init;
    for (name, full) in [
        (b"moov", false),
        (b"trak", false),
        (b"mdia", false),
        (b"minf", false),
        (b"stbl", false),
        (b"stsd", true),
    ] {
        body = child(body, name)?;
        if full {
            // version/flags + entry_count
            body = body.get(8..)?;
        }
    }
    let size = u32::from_be_bytes(body.get(0..4)?.try_into().ok()?) as usize;
    body.get(..size).map(<[u8]>::to_vec)
}

/// The body of the first child box `name` among the boxes in `data`.
fn child<'a>(data: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().ok()?) as usize;
        let (hdr, size) = match size {
            1 => (
                16,
                u64::from_be_bytes(data.get(pos + 8..pos + 16)?.try_into().ok()?) as usize,
            ),
            0 => (8, data.len() - pos),
            s => (8, s),
        };
        if size < hdr || pos + size > data.len() {
            return None;
        }
        if &data[pos + 4..pos + 8] == name {
            return Some(&data[pos + hdr..pos + size]);
        }
        pos += size;
    }
    None
}

fn read_range(path: &PathBuf, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Plans the clip `[from_ms, to_ms)` of `camera`'s main stream. Blocking
/// (file reads): call it off the async workers.
pub fn plan(store: &Store, camera: &str, from_ms: i64, to_ms: i64) -> Result<Clip, ExportError> {
    if to_ms <= from_ms {
        return Err(ExportError::BadRange(
            "the end must be after the start".into(),
        ));
    }
    if to_ms - from_ms > MAX_CLIP_MS {
        return Err(ExportError::BadRange(format!(
            "at most {} hours per clip",
            MAX_CLIP_MS / 3_600_000
        )));
    }
    let pieces = store.fragments_for_export(camera, "main", from_ms, to_ms)?;
    let Some(first) = pieces.first() else {
        return Err(ExportError::Empty);
    };
    let init = read_range(&first.path, 0, first.init_len)?;
    let sample_entry = sample_entry_of_init(&init)
        .ok_or_else(|| ExportError::Damaged("init segment without a sample entry".into()))?;
    let track = Track {
        sample_entry,
        width: first.width,
        height: first.height,
    };
    let mut samples: Vec<ExportSample> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut first_wall: Option<i64> = None;
    let mut last_end_ms = from_ms;
    let mut cut = false;
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 && p.new_init {
            cut = true;
            break;
        }
        if p.wall_ms >= to_ms {
            break;
        }
        add_piece(
            p,
            to_ms,
            &mut samples,
            &mut parts,
            &mut first_wall,
            &mut last_end_ms,
        )?;
    }
    let Some(first_wall) = first_wall else {
        return Err(ExportError::Empty);
    };
    let start_ms = from_ms.max(first_wall);
    let media_start = ((start_ms - first_wall).max(0) as u64) * 90;
    let header = mp4::export_header(&track, &samples, media_start);
    let len = mp4::export_len(&header, &samples);
    Ok(Clip {
        header,
        parts,
        len,
        start_ms,
        end_ms: last_end_ms.min(to_ms),
        frames: samples.len(),
        cut_at_parameter_change: cut,
    })
}

/// Adds the samples of one fragment that start before `to_ms`.
fn add_piece(
    p: &ExportPiece,
    to_ms: i64,
    samples: &mut Vec<ExportSample>,
    parts: &mut Vec<Part>,
    first_wall: &mut Option<i64>,
    last_end_ms: &mut i64,
) -> Result<(), ExportError> {
    let bytes = read_range(&p.path, p.offset, p.len)?;
    let info = mp4::read_fragment(&bytes)
        .map_err(|e| ExportError::Damaged(format!("{}: {e}", p.path.display())))?;
    let mut t = 0u64;
    for s in &info.samples {
        let wall = p.wall_ms + (t / 90) as i64;
        if wall >= to_ms {
            break;
        }
        first_wall.get_or_insert(wall);
        samples.push(ExportSample {
            duration: s.duration,
            size: s.size,
            is_sync: s.is_sync,
        });
        let offset = p.offset + s.offset as u64;
        // Samples of a fragment are contiguous: extend the last part.
        match parts.last_mut() {
            Some(last) if last.path == p.path && last.offset + last.len == offset => {
                last.len += u64::from(s.size)
            }
            _ => parts.push(Part {
                path: p.path.clone(),
                offset,
                len: u64::from(s.size),
            }),
        }
        t += u64::from(s.duration);
        *last_end_ms = p.wall_ms + (t / 90) as i64;
    }
    Ok(())
}

impl Clip {
    /// Copies bytes `[start, end)` of the clip into `out` (blocking).
    pub fn copy_range(
        &self,
        start: u64,
        end: u64,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let end = end.min(self.len);
        let mut pos = 0u64;
        let h = self.header.len() as u64;
        if start < h {
            out.write_all(&self.header[start as usize..end.min(h) as usize])?;
        }
        pos += h;
        let mut buf = vec![0u8; 1 << 20];
        for part in &self.parts {
            let (a, b) = (pos, pos + part.len);
            pos = b;
            if b <= start {
                continue;
            }
            if a >= end {
                break;
            }
            let from = start.max(a) - a;
            let to = end.min(b) - a;
            let mut f = std::fs::File::open(&part.path)?;
            f.seek(SeekFrom::Start(part.offset + from))?;
            let mut left = to - from;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                f.read_exact(&mut buf[..n])?;
                out.write_all(&buf[..n])?;
                left -= n as u64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_entry_is_found_in_our_init_segment() {
        let entry = mp4::sample_entry_from(crate::video::h26x::Codec::H264, &[], 320, 240);
        // An empty avcC is refused by the builder; use a box by hand.
        let _ = entry;
        let mut se = Vec::new();
        se.extend_from_slice(&16u32.to_be_bytes());
        se.extend_from_slice(b"avc1");
        se.extend_from_slice(&[0u8; 8]);
        let init = mp4::init_segment(&Track {
            sample_entry: se.clone(),
            width: 320,
            height: 240,
        });
        assert_eq!(sample_entry_of_init(&init), Some(se));
        assert_eq!(sample_entry_of_init(b"junk"), None);
    }
}
