//! Top-level ISO-BMFF box framing, just enough for crash recovery: where
//! does the last complete `moof`+`mdat` pair of a segment file end?
//!
//! Fragment payloads are opaque to the store; only the 8-byte (or 16-byte
//! with a 64-bit largesize) headers of top-level boxes are read, by seeking
//! from header to header, so a 60 s segment costs a few hundred small reads
//! rather than reading the whole file. Anything that does not frame
//! cleanly (a size smaller than its header, a box running past the end of
//! the file) ends the scan: bytes from there on are treated as torn.

use std::io::{self, Read, Seek, SeekFrom};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub offset: u64,
    /// Whole box, header included.
    pub size: u64,
    pub kind: [u8; 4],
}

impl BoxHeader {
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Every whole top-level box from `start` up to the first one that is
/// truncated or malformed (or `len`).
pub fn scan<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> io::Result<Vec<BoxHeader>> {
    let mut boxes = Vec::new();
    let mut at = start;
    while let Some(h) = read_header(r, at, len)? {
        at = h.end();
        boxes.push(h);
    }
    Ok(boxes)
}

/// The same, over bytes in memory (tests, checking one fragment).
pub fn scan_slice(bytes: &[u8]) -> Vec<BoxHeader> {
    let mut c = io::Cursor::new(bytes);
    // A cursor over memory cannot fail to read or seek within its length.
    scan(&mut c, 0, bytes.len() as u64).unwrap_or_default()
}

fn read_header<R: Read + Seek>(r: &mut R, offset: u64, len: u64) -> io::Result<Option<BoxHeader>> {
    if len.saturating_sub(offset) < 8 {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(offset))?;
    let mut h = [0u8; 8];
    if !read_full(r, &mut h)? {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let kind = [h[4], h[5], h[6], h[7]];
    let size = match size32 {
        // ISO 14496-12: the box extends to the end of the file.
        0 => len - offset,
        1 => {
            let mut l = [0u8; 8];
            if len - offset < 16 || !read_full(r, &mut l)? {
                return Ok(None);
            }
            let large = u64::from_be_bytes(l);
            if large < 16 {
                return Ok(None);
            }
            large
        }
        s if s < 8 => return Ok(None),
        s => u64::from(s),
    };
    match offset.checked_add(size) {
        Some(end) if end <= len => Ok(Some(BoxHeader { offset, size, kind })),
        _ => Ok(None),
    }
}

/// Reads exactly `buf.len()` bytes; false when the file ended first.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// End offsets of every complete `moof` followed by its `mdat`. Boxes that
/// may precede a `moof` (`styp`, `prft`, `sidx`, `emsg`) are skipped; an
/// `mdat` without a `moof` before it does not complete a fragment.
pub fn fragment_ends(boxes: &[BoxHeader]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut saw_moof = false;
    for b in boxes {
        match &b.kind {
            b"moof" => saw_moof = true,
            b"mdat" if saw_moof => {
                ends.push(b.end());
                saw_moof = false;
            }
            _ => {}
        }
    }
    ends
}

/// True when `bytes` is exactly whole top-level boxes ending with a
/// `moof`+`mdat` pair: what the store expects a fragment to be.
pub fn is_complete_fragment(bytes: &[u8]) -> bool {
    let boxes = scan_slice(bytes);
    fragment_ends(&boxes).last() == Some(&(bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut v = ((payload + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(payload + 8, 0xAB);
        v
    }

    fn fragment(payload: usize) -> Vec<u8> {
        let mut v = bx(b"moof", 40);
        v.extend(bx(b"mdat", payload));
        v
    }

    #[test]
    fn finds_the_end_of_each_complete_pair() {
        let mut f = bx(b"ftyp", 16);
        f.extend(bx(b"moov", 100));
        let init = f.len() as u64;
        f.extend(fragment(1000));
        let first = f.len() as u64;
        f.extend(fragment(10));
        let second = f.len() as u64;
        let boxes = scan_slice(&f);
        assert_eq!(boxes.len(), 6);
        assert_eq!(fragment_ends(&boxes), vec![first, second]);
        assert_eq!(boxes[2].offset, init);
    }

    #[test]
    fn truncated_tail_is_not_counted() {
        let mut f = fragment(100);
        let good = f.len() as u64;
        let next = fragment(5000);
        // Torn in the middle of the second mdat, then right after its moof,
        // then inside the moof header itself.
        for cut in [next.len() - 1, 48, 3] {
            let mut g = f.clone();
            g.extend_from_slice(&next[..cut]);
            assert_eq!(fragment_ends(&scan_slice(&g)), vec![good], "cut at {cut}");
        }
        f.extend(bx(b"moof", 8));
        assert_eq!(fragment_ends(&scan_slice(&f)), vec![good]);
    }

    #[test]
    fn largesize_and_size_zero() {
        let mut f = bx(b"moof", 8);
        // mdat with a 64-bit size: 16 bytes header + 4 payload.
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(b"mdat");
        f.extend_from_slice(&20u64.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        assert!(is_complete_fragment(&f));
        // size 0: the last box runs to the end of the file.
        let mut g = bx(b"moof", 8);
        g.extend_from_slice(&0u32.to_be_bytes());
        g.extend_from_slice(b"mdat");
        g.extend_from_slice(&[0; 100]);
        assert!(is_complete_fragment(&g));
    }

    #[test]
    fn hostile_sizes_stop_the_scan_without_panicking() {
        let good = fragment(10);
        for bad in [
            // size smaller than a header
            [0, 0, 0, 7, b'm', b'o', b'o', b'f'].to_vec(),
            // size far past the end
            [0xff, 0xff, 0xff, 0xff, b'm', b'd', b'a', b't'].to_vec(),
            // largesize smaller than its own header, and one overflowing u64
            [&[0, 0, 0, 1][..], b"mdat", &8u64.to_be_bytes()].concat(),
            [&[0, 0, 0, 1][..], b"mdat", &u64::MAX.to_be_bytes()].concat(),
            // zero-filled block (what a torn write can leave behind)
            vec![0; 64],
        ] {
            let mut f = good.clone();
            f.extend_from_slice(&bad);
            assert_eq!(fragment_ends(&scan_slice(&f)), vec![good.len() as u64]);
            assert!(!is_complete_fragment(&f));
        }
        assert!(scan_slice(&[]).is_empty());
        assert!(!is_complete_fragment(&bx(b"mdat", 4)));
    }
}
