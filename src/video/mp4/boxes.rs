//! Writing ISO BMFF boxes (ISO/IEC 14496-12 §4.2): a size-prefixed buffer
//! where each box's 32-bit size is patched in when the box is closed.

pub struct BoxWriter {
    pub buf: Vec<u8>,
    /// Start offsets of the boxes still open, innermost last.
    open: Vec<usize>,
}

impl BoxWriter {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Opens a box; its size is written by the matching [`Self::end`].
    pub fn begin(&mut self, fourcc: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(fourcc);
    }

    /// Opens a FullBox: a box with a version byte and 24 bits of flags.
    pub fn begin_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) {
        self.begin(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box. Boxes we write stay far below 4 GiB
    /// except mdat, which is written by hand with a largesize.
    pub fn end(&mut self) {
        let start = self.open.pop().expect("end() without begin()");
        let size = u32::try_from(self.buf.len() - start).expect("box larger than 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    pub fn finish(self) -> Vec<u8> {
        assert!(self.open.is_empty(), "unclosed box");
        self.buf
    }
}

/// The header of an mdat box holding `payload_len` bytes: 8 bytes, or 16
/// with a 64-bit largesize when the box would not fit a 32-bit size.
pub fn mdat_header(payload_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    match u32::try_from(payload_len + 8) {
        Ok(size) => out.extend_from_slice(&size.to_be_bytes()),
        Err(_) => {
            out.extend_from_slice(&1u32.to_be_bytes());
        }
    }
    out.extend_from_slice(b"mdat");
    if out[..4] == 1u32.to_be_bytes() {
        out.extend_from_slice(&(payload_len + 16).to_be_bytes());
    }
    out
}

/// The identity transformation matrix of mvhd/tkhd (16.16 and 2.30 fixed).
pub const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes() {
        let mut w = BoxWriter::new();
        w.begin(b"moov");
        w.begin_full(b"mvhd", 1, 2);
        w.u16(7);
        w.end();
        w.end();
        let b = w.finish();
        assert_eq!(&b[..8], &[0, 0, 0, 22, b'm', b'o', b'o', b'v']);
        assert_eq!(
            &b[8..20],
            &[0, 0, 0, 14, b'm', b'v', b'h', b'd', 1, 0, 0, 2]
        );
    }

    #[test]
    fn mdat_uses_largesize_past_4_gib() {
        assert_eq!(mdat_header(10), [0, 0, 0, 18, b'm', b'd', b'a', b't']);
        let big = mdat_header(u64::from(u32::MAX));
        assert_eq!(big.len(), 16);
        assert_eq!(&big[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
        assert_eq!(
            u64::from_be_bytes(big[8..].try_into().unwrap()),
            u64::from(u32::MAX) + 16
        );
    }
}
