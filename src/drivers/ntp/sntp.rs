//! A minimal SNTP client (RFC 4330 / RFC 5905 packet format): one request,
//! one validated reply, offset and round-trip delay from the four
//! timestamps.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;

/// Seconds from 1900-01-01 (NTP era 0) to the Unix epoch.
const NTP_UNIX_OFFSET: f64 = 2_208_988_800.0;

/// One answered query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Server clock minus ours, ms.
    pub offset_ms: f64,
    /// Round trip, ms.
    pub delay_ms: f64,
    pub stratum: u8,
    /// Leap indicator; 3 means the server is not synchronised.
    pub leap: u8,
    /// Root distance as RFC 5905 defines it (root delay / 2 + root
    /// dispersion + delay / 2), ms: the bound on the server's error.
    pub root_distance_ms: f64,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SntpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(String),
    #[error("malformed reply: {0}")]
    Malformed(&'static str),
    #[error("kiss-o'-death `{0}`")]
    Kiss(String),
}

/// Now, in NTP seconds (since 1900).
pub fn now_ntp() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
        + NTP_UNIX_OFFSET
}

fn ts(bytes: &[u8]) -> f64 {
    let secs = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let frac = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    f64::from(secs) + f64::from(frac) / 4_294_967_296.0
}

fn short(bytes: &[u8]) -> f64 {
    f64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) / 65_536.0
}

/// Writes NTP timestamp `t` (seconds since 1900) into 8 bytes.
pub fn put_ts(out: &mut [u8], t: f64) {
    let secs = t.trunc() as u32;
    let frac = (t.fract() * 4_294_967_296.0) as u32;
    out[0..4].copy_from_slice(&secs.to_be_bytes());
    out[4..8].copy_from_slice(&frac.to_be_bytes());
}

/// A client request (version 4, mode 3) whose transmit timestamp is `t1`.
pub fn request(t1: f64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = (4 << 3) | 3;
    put_ts(&mut p[40..48], t1);
    p
}

/// Validates a reply to `req` received at `t4` and computes the sample.
pub fn parse(reply: &[u8], req: &[u8; 48], t4: f64) -> Result<Sample, SntpError> {
    if reply.len() < 48 {
        return Err(SntpError::Malformed("shorter than 48 bytes"));
    }
    let leap = reply[0] >> 6;
    let mode = reply[0] & 7;
    let stratum = reply[1];
    if mode != 4 {
        return Err(SntpError::Malformed("not a server reply (mode 4)"));
    }
    // The originate timestamp must echo our transmit timestamp: anything
    // else is a stray or spoofed packet.
    if reply[24..32] != req[40..48] {
        return Err(SntpError::Malformed(
            "originate timestamp does not match the request",
        ));
    }
    if stratum == 0 && leap != 3 {
        return Err(SntpError::Kiss(
            String::from_utf8_lossy(&reply[12..16]).into_owned(),
        ));
    }
    let t1 = ts(&req[40..48]);
    let t2 = ts(&reply[32..40]);
    let t3 = ts(&reply[40..48]);
    if t3 == 0.0 {
        return Err(SntpError::Malformed("no transmit timestamp"));
    }
    let offset = ((t2 - t1) + (t3 - t4)) / 2.0;
    let delay = ((t4 - t1) - (t3 - t2)).max(0.0);
    let root_delay = short(&reply[4..8]);
    let root_dispersion = short(&reply[8..12]);
    Ok(Sample {
        offset_ms: offset * 1000.0,
        delay_ms: delay * 1000.0,
        stratum,
        leap,
        root_distance_ms: (root_delay / 2.0 + root_dispersion + delay / 2.0) * 1000.0,
    })
}

/// One query to `server`, bounded by `timeout`.
pub async fn query(server: SocketAddr, timeout: Duration) -> Result<Sample, SntpError> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| SntpError::Io("bad bind address".into()))?;
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| SntpError::Io(e.to_string()))?;
    let req = request(now_ntp());
    sock.send_to(&req, server)
        .await
        .map_err(|e| SntpError::Io(e.to_string()))?;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        match got {
            Err(_) => return Err(SntpError::Timeout(timeout)),
            Ok(Err(e)) => return Err(SntpError::Io(e.to_string())),
            Ok(Ok((n, from))) if from == server => {
                let t4 = now_ntp();
                match parse(&buf[..n], &req, t4) {
                    // A stray packet: keep waiting for ours.
                    Err(SntpError::Malformed(_)) => continue,
                    other => return other,
                }
            }
            Ok(Ok(_)) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(req: &[u8; 48], leap: u8, stratum: u8, t2: f64, t3: f64) -> [u8; 48] {
        let mut r = [0u8; 48];
        r[0] = (leap << 6) | (4 << 3) | 4;
        r[1] = stratum;
        r[4..8].copy_from_slice(&(65_536u32 / 100).to_be_bytes()); // root delay 10 ms
        r[8..12].copy_from_slice(&(65_536u32 / 200).to_be_bytes()); // root dispersion 5 ms
        r[24..32].copy_from_slice(&req[40..48]);
        r[32..40].copy_from_slice(&request(t2)[40..48]);
        r[40..48].copy_from_slice(&request(t3)[40..48]);
        r
    }

    #[test]
    fn offset_and_delay_from_the_four_timestamps() {
        let t1 = 3_900_000_000.0;
        let req = request(t1);
        // Server 2 s ahead, 40 ms each way, 10 ms processing.
        let r = reply(&req, 0, 2, t1 + 2.040, t1 + 2.050);
        let s = parse(&r, &req, t1 + 0.090).unwrap();
        assert!((s.offset_ms - 2000.0).abs() < 0.01, "{s:?}");
        assert!((s.delay_ms - 80.0).abs() < 0.01, "{s:?}");
        assert_eq!((s.stratum, s.leap), (2, 0));
        assert!(
            (s.root_distance_ms - (5.0 + 5.0 + 40.0)).abs() < 0.1,
            "{s:?}"
        );
    }

    #[test]
    fn hostile_replies_are_rejected() {
        let req = request(3_900_000_000.0);
        let good = reply(&req, 0, 2, 3_900_000_000.1, 3_900_000_000.2);
        assert!(parse(&good[..47], &req, 3_900_000_000.3).is_err());
        let mut wrong_origin = good;
        wrong_origin[31] ^= 1;
        assert_eq!(
            parse(&wrong_origin, &req, 3_900_000_000.3),
            Err(SntpError::Malformed(
                "originate timestamp does not match the request"
            ))
        );
        let mut client_mode = good;
        client_mode[0] = (4 << 3) | 3;
        assert!(parse(&client_mode, &req, 3_900_000_000.3).is_err());
        let mut kiss = reply(&req, 0, 0, 3_900_000_000.1, 3_900_000_000.2);
        kiss[12..16].copy_from_slice(b"RATE");
        assert_eq!(
            parse(&kiss, &req, 3_900_000_000.3),
            Err(SntpError::Kiss("RATE".into()))
        );
        // Unsynchronised (leap 3, stratum 0) is an answer, not an error.
        let unsync = reply(&req, 3, 0, 3_900_000_000.1, 3_900_000_000.2);
        assert_eq!(parse(&unsync, &req, 3_900_000_000.3).unwrap().leap, 3);
    }
}
