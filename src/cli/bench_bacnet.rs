//! `vgw bench bacnet-rp`: a ReadProperty load generator for any BACnet/IP
//! device (vgw's own or a peer such as a bacpypes3 server), so both are
//! measured with the same client in one run. It keeps `--in-flight`
//! confirmed requests outstanding on one UDP socket and reports
//! throughput and latency percentiles. The requests are hand-encoded
//! (ReadProperty of Present_Value), independent of the server's stack.

use clap::Args;
use std::collections::HashMap;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BenchBacnetArgs {
    /// The device's BACnet/IP address.
    #[arg(long)]
    pub target: SocketAddrV4,
    /// Objects to read, `TYPE:INSTANCE` with TYPE a number (0 analog-input,
    /// 3 binary-input), comma-separated; read round-robin.
    #[arg(long, default_value = "3:1")]
    pub objects: String,
    /// Requests kept outstanding.
    #[arg(long, default_value_t = 32)]
    pub in_flight: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

/// A confirmed ReadProperty(Present_Value) request in BVLC/NPDU/APDU.
fn read_property(invoke: u8, object_type: u32, instance: u32) -> Vec<u8> {
    let oid = (object_type << 22) | (instance & 0x3F_FFFF);
    let mut apdu = vec![0x00, 0x05, invoke, 0x0C, 0x0C];
    apdu.extend_from_slice(&oid.to_be_bytes());
    apdu.extend_from_slice(&[0x19, 85]);
    let mut pkt = vec![0x81, 0x0A, 0, 0, 0x01, 0x04];
    pkt.extend_from_slice(&apdu);
    let len = pkt.len() as u16;
    pkt[2..4].copy_from_slice(&len.to_be_bytes());
    pkt
}

/// The invoke id of a ComplexACK/Error/Reject/Abort in a B/IP datagram.
fn answer_invoke(d: &[u8]) -> Option<(u8, bool)> {
    // BVLC (4) + NPDU version/control (2, no addresses in replies we ask for)
    let npdu = d.get(4..)?;
    let control = *npdu.get(1)?;
    let mut i = 2;
    if control & 0x08 != 0 {
        // SNET, SLEN, SADR
        let slen = *npdu.get(i + 2)? as usize;
        i += 3 + slen;
    }
    let apdu = npdu.get(i..)?;
    let kind = apdu.first()? >> 4;
    let ok = kind == 3; // ComplexACK
    let invoke = match kind {
        3 | 5 | 6 => *apdu.get(1)?,
        7 => *apdu.get(1)?,
        _ => return None,
    };
    Some((invoke, ok))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(a: &BenchBacnetArgs) -> anyhow::Result<()> {
    let objects: Vec<(u32, u32)> = a
        .objects
        .split(',')
        .map(|s| {
            let (t, i) = s
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--objects: `{s}` is not TYPE:INSTANCE"))?;
            Ok((t.trim().parse()?, i.trim().parse()?))
        })
        .collect::<anyhow::Result<_>>()?;
    if objects.is_empty() || a.in_flight == 0 || a.in_flight > 255 {
        anyhow::bail!("need at least one object and 1..=255 requests in flight");
    }
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut outstanding: HashMap<u8, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(1 << 20);
    let (mut errors, mut lost) = (0u64, 0u64);
    let mut next_invoke: u8 = 0;
    let mut next_object = 0usize;
    let mut buf = [0u8; 1500];
    let end = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    while Instant::now() < end {
        while outstanding.len() < a.in_flight {
            while outstanding.contains_key(&next_invoke) {
                next_invoke = next_invoke.wrapping_add(1);
            }
            let (t, i) = objects[next_object % objects.len()];
            next_object += 1;
            sock.send_to(&read_property(next_invoke, t, i), a.target)?;
            outstanding.insert(next_invoke, Instant::now());
            next_invoke = next_invoke.wrapping_add(1);
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some((invoke, ok)) = answer_invoke(&buf[..n]) {
                    if let Some(sent) = outstanding.remove(&invoke) {
                        if ok {
                            latencies.push(sent.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Nothing for 500 ms: count what is outstanding as lost.
                lost += outstanding.len() as u64;
                outstanding.clear();
            }
            Err(e) => return Err(e.into()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "target {} in-flight {} objects {}: {} answers in {:.1} s = {:.0}/s; latency ms p50 {:.3} p99 {:.3} max {:.3}; errors {errors}, lost {lost}",
        a.target,
        a.in_flight,
        objects.len(),
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_well_formed_read_property() {
        let p = read_property(7, 3, 1);
        // BVLC length covers the whole datagram.
        assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len());
        // binary-input,1 → 0x00C00001; Present_Value is property 85.
        assert_eq!(&p[10..16], &[0x0C, 0x00, 0xC0, 0x00, 0x01, 0x19]);
        assert_eq!(p[16], 85);
        // A ComplexACK for invoke 7 is recognised as an answer.
        assert_eq!(
            answer_invoke(&[0x81, 0x0A, 0, 9, 0x01, 0x00, 0x30, 7, 0x0C]),
            Some((7, true))
        );
        assert_eq!(
            answer_invoke(&[0x81, 0x0A, 0, 9, 0x01, 0x00, 0x50, 7, 0x0C]),
            Some((7, false))
        );
    }
}
