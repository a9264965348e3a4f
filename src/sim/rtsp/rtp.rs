//! RTP packetization of H.264 (RFC 6184) and H.265 (RFC 7798) NAL units,
//! the RTP fixed header and RTCP sender reports (RFC 3550).

use super::Codec;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest RTP payload we produce: what fits a 1500-byte Ethernet MTU
/// with IP/UDP/RTP headers, as cameras do even over TCP (some clients
/// size their buffers for it).
pub const MAX_PAYLOAD: usize = 1400;
/// Dynamic payload type announced in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;

/// Appends the RTP payloads carrying one NAL unit: the NAL itself when
/// it fits (single NAL unit packet), else fragmentation units (FU-A,
/// RFC 6184 §5.8; FU, RFC 7798 §4.4.3).
pub fn packetize(codec: Codec, nal: &[u8], max: usize, out: &mut Vec<Vec<u8>>) {
    if nal.len() <= max {
        out.push(nal.to_vec());
        return;
    }
    // What precedes each fragment, and the NAL bytes after its header.
    let (prefix, nal_type, body): (Vec<u8>, u8, &[u8]) = match codec {
        Codec::H264 => {
            // FU indicator: F and NRI from the NAL header, type 28.
            (vec![(nal[0] & 0xe0) | 28], nal[0] & 0x1f, &nal[1..])
        }
        Codec::H265 => {
            // PayloadHdr: the NAL header with type 49 (F, LayerId and
            // TID kept).
            (
                vec![(nal[0] & 0x81) | (49 << 1), nal[1]],
                (nal[0] >> 1) & 0x3f,
                &nal[2..],
            )
        }
    };
    let room = max - prefix.len() - 1;
    let count = body.len().div_ceil(room);
    for (i, chunk) in body.chunks(room).enumerate() {
        let mut fu_header = nal_type;
        if i == 0 {
            fu_header |= 0x80; // S
        }
        if i + 1 == count {
            fu_header |= 0x40; // E
        }
        let mut p = Vec::with_capacity(prefix.len() + 1 + chunk.len());
        p.extend_from_slice(&prefix);
        p.push(fu_header);
        p.extend_from_slice(chunk);
        out.push(p);
    }
}

/// The 12-byte RTP fixed header (RFC 3550 §5.1), version 2, no CSRCs.
pub fn header(marker: bool, seq: u16, timestamp: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[1] = PAYLOAD_TYPE | if marker { 0x80 } else { 0 };
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

/// A compound RTCP packet: sender report (RFC 3550 §6.4.1) followed by
/// the SDES CNAME every compound packet must carry (§6.1).
pub fn sender_report(
    ssrc: u32,
    ntp: u64,
    rtp_time: u32,
    packets: u32,
    octets: u32,
    cname: &str,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&[0x80, 200, 0, 6]); // V=2, RC=0, PT=SR, 7 words
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&ntp.to_be_bytes());
    p.extend_from_slice(&rtp_time.to_be_bytes());
    p.extend_from_slice(&packets.to_be_bytes());
    p.extend_from_slice(&octets.to_be_bytes());

    let cname = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC + item (type, length, text) + at least one terminating zero,
    // padded to a 32-bit boundary.
    let chunk_len = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let words = (4 + chunk_len) / 4 - 1;
    p.extend_from_slice(&[0x81, 202]); // V=2, SC=1, PT=SDES
    p.extend_from_slice(&(words as u16).to_be_bytes());
    let start = p.len();
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.push(1); // CNAME
    p.push(cname.len() as u8);
    p.extend_from_slice(cname);
    p.resize(start + chunk_len, 0);
    p
}

/// Wall-clock time as a 64-bit NTP timestamp (seconds since 1900 in the
/// high 32 bits, binary fraction in the low 32), for sender reports.
pub fn ntp_now() -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + UNIX_TO_NTP;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes FU fragmentation as a receiver would.
    fn reassemble(codec: Codec, payloads: &[Vec<u8>]) -> Vec<u8> {
        let (hdr, fu_type) = match codec {
            Codec::H264 => (1, 28),
            Codec::H265 => (2, 49),
        };
        let first = &payloads[0];
        let ty = match codec {
            Codec::H264 => first[0] & 0x1f,
            Codec::H265 => (first[0] >> 1) & 0x3f,
        };
        assert_eq!(ty, fu_type);
        let fu = first[hdr];
        let mut nal = match codec {
            Codec::H264 => vec![(first[0] & 0xe0) | (fu & 0x1f)],
            Codec::H265 => vec![(first[0] & 0x81) | ((fu & 0x3f) << 1), first[1]],
        };
        for (i, p) in payloads.iter().enumerate() {
            let fu = p[hdr];
            assert_eq!(fu & 0x80 != 0, i == 0, "start bit only on the first");
            assert_eq!(
                fu & 0x40 != 0,
                i + 1 == payloads.len(),
                "end bit only on the last"
            );
            nal.extend_from_slice(&p[hdr + 1..]);
        }
        nal
    }

    #[test]
    fn small_nal_units_go_in_one_packet() {
        let mut out = Vec::new();
        packetize(Codec::H264, &[0x67, 1, 2, 3], MAX_PAYLOAD, &mut out);
        assert_eq!(out, vec![vec![0x67, 1, 2, 3]]);
    }

    #[test]
    fn large_nal_units_are_fragmented_and_reassemble_exactly() {
        let mut h264 = vec![0x65u8];
        h264.extend((0..5000u32).map(|i| i as u8));
        let mut h265 = vec![0x26u8, 0x01]; // IDR_W_RADL
        h265.extend((0..5000u32).map(|i| (i * 7) as u8));
        for (codec, nal) in [(Codec::H264, h264), (Codec::H265, h265)] {
            let mut out = Vec::new();
            packetize(codec, &nal, MAX_PAYLOAD, &mut out);
            assert_eq!(out.len(), 4, "{codec:?}");
            assert!(out.iter().all(|p| p.len() <= MAX_PAYLOAD));
            assert_eq!(reassemble(codec, &out), nal, "{codec:?}");
        }
    }

    #[test]
    fn rtp_header_fields() {
        let h = header(true, 0xabcd, 0x01020304, 0xdeadbeef);
        assert_eq!(h[0] >> 6, 2);
        assert_eq!(h[1], 0x80 | 96);
        assert_eq!(&h[2..4], &[0xab, 0xcd]);
        assert_eq!(&h[4..8], &[1, 2, 3, 4]);
        assert_eq!(&h[8..12], &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn sender_report_lengths_match_the_content() {
        let p = sender_report(7, 1 << 32, 90_000, 10, 1000, "cam1@vgw-sim");
        assert_eq!(p.len() % 4, 0);
        let sr_len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        assert_eq!(sr_len, 28);
        let sdes = &p[sr_len..];
        assert_eq!(sdes[1], 202);
        let sdes_len = (usize::from(u16::from_be_bytes([sdes[2], sdes[3]])) + 1) * 4;
        assert_eq!(sdes_len, sdes.len());
        assert_eq!(&sdes[10..10 + 12], b"cam1@vgw-sim");
    }
}
