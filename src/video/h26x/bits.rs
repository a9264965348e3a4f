//! Bit-level reading of H.26x RBSPs: emulation-prevention removal and the
//! Exp-Golomb codes of ITU-T H.264 §7.2 / §9.1 and H.265 §7.2 / §9.2.

use super::H26xError;

/// Returns the RBSP of `nal` (header included): every `00 00 03` becomes
/// `00 00`. Encoders insert the 03 so that the payload never contains a start
/// code; header syntax must be read without it or bit positions drift.
pub fn remove_emulation_prevention(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            // The 03 itself is dropped; the zero run restarts after it.
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader over an RBSP (emulation prevention already removed).
/// Every read past the end is an error, never a panic, because the bytes come
/// from cameras we do not control.
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    pub fn read_bit(&mut self) -> Result<bool, H26xError> {
        let byte = self.data.get(self.pos / 8).ok_or(H26xError::Truncated)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` (≤ 32) bits as an unsigned big-endian number: u(n).
    pub fn read_bits(&mut self, n: u32) -> Result<u32, H26xError> {
        if n > 32 {
            return Err(H26xError::Invalid("bit field wider than 32 bits"));
        }
        if (n as usize) > self.remaining() {
            return Err(H26xError::Truncated);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        Ok(v as u32)
    }

    pub fn skip_bits(&mut self, n: usize) -> Result<(), H26xError> {
        if n > self.remaining() {
            return Err(H26xError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// ue(v): unsigned Exp-Golomb. Codes longer than 32 bits do not occur in
    /// valid streams and would overflow u32, so they are rejected.
    pub fn read_ue(&mut self) -> Result<u32, H26xError> {
        let mut leading_zeros = 0u32;
        while !self.read_bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(H26xError::Invalid("Exp-Golomb code too long"));
            }
        }
        let suffix = self.read_bits(leading_zeros)?;
        // 2^lz - 1 + suffix fits in u32 for lz ≤ 31 only when computed in u64.
        let v = (1u64 << leading_zeros) - 1 + u64::from(suffix);
        u32::try_from(v).map_err(|_| H26xError::Invalid("Exp-Golomb value overflows"))
    }

    /// se(v): signed Exp-Golomb (k ↦ (−1)^(k+1) · ⌈k / 2⌉).
    pub fn read_se(&mut self) -> Result<i32, H26xError> {
        let k = i64::from(self.read_ue()?);
        let magnitude = (k + 1) / 2;
        Ok(if k % 2 == 1 { magnitude } else { -magnitude } as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_prevention_is_removed_only_after_two_zeros() {
        assert_eq!(
            remove_emulation_prevention(&[0, 0, 3, 1, 0, 3, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 3, 0, 0, 0, 0]
        );
    }

    #[test]
    fn exp_golomb_values() {
        // 1 | 010 | 011 | 00100 | 00101 | 0001000  → ue 0,1,2,3 ; se of 4 = -2; ue 7
        let bits = "1010011001000010100010000";
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        for (i, c) in bits.chars().enumerate() {
            if c == '1' {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_ue().unwrap(), 0);
        assert_eq!(r.read_ue().unwrap(), 1);
        assert_eq!(r.read_ue().unwrap(), 2);
        assert_eq!(r.read_ue().unwrap(), 3);
        assert_eq!(r.read_se().unwrap(), -2);
        assert_eq!(r.read_ue().unwrap(), 7);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0x00]);
        assert!(r.read_ue().is_err());
        let mut r = BitReader::new(&[0, 0, 0, 0, 0]);
        assert!(r.read_ue().is_err());
        let mut r = BitReader::new(&[0xff]);
        assert!(r.read_bits(9).is_err());
        assert!(r.skip_bits(9).is_err());
    }
}
