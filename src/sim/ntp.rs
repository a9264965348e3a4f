//! A simulated NTP server (RFC 5905 server mode, answering client-mode
//! requests): its clock offset, stratum and leap indicator can be changed
//! while it runs, and it can fall silent — the demo's "NTP outage" and
//! "clock drift" scenes. Real NTP servers are tested with chrony
//! (tests/ntp.rs); this one exists so `vgw demo` needs no root and no
//! chrony.

use crate::drivers::ntp::sntp::{now_ntp, put_ts};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// What the server claims; shared with its task.
#[derive(Debug)]
pub struct NtpState {
    offset_ms: AtomicI64,
    stratum: AtomicU8,
    leap: AtomicU8,
    answering: AtomicBool,
}

/// A running simulated server.
#[derive(Clone)]
pub struct NtpSim {
    addr: SocketAddr,
    state: Arc<NtpState>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl NtpSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Server clock minus true time, ms.
    pub fn set_offset_ms(&self, ms: i64) {
        self.state.offset_ms.store(ms, Ordering::Relaxed);
    }
    pub fn set_stratum(&self, stratum: u8) {
        self.state.stratum.store(stratum, Ordering::Relaxed);
    }
    /// 0 = synchronised, 3 = not synchronised (alarm condition).
    pub fn set_leap(&self, leap: u8) {
        self.state.leap.store(leap & 3, Ordering::Relaxed);
    }
    /// A silent server drops every request (an outage, as clients see it).
    pub fn set_answering(&self, on: bool) {
        self.state.answering.store(on, Ordering::Relaxed);
    }
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Starts a server on `listen` (UDP), synchronised at stratum 2.
pub async fn start(listen: SocketAddr) -> std::io::Result<NtpSim> {
    let sock = UdpSocket::bind(listen).await?;
    let addr = sock.local_addr()?;
    let state = Arc::new(NtpState {
        offset_ms: AtomicI64::new(0),
        stratum: AtomicU8::new(2),
        leap: AtomicU8::new(0),
        answering: AtomicBool::new(true),
    });
    let shared = state.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            if !shared.answering.load(Ordering::Relaxed) {
                continue;
            }
            let t2 = now_ntp() + shared.offset_ms.load(Ordering::Relaxed) as f64 / 1000.0;
            if let Some(reply) = answer(&buf[..n], &shared, t2) {
                let _ = sock.send_to(&reply, from).await;
            }
        }
    });
    Ok(NtpSim {
        addr,
        state,
        task: Arc::new(task),
    })
}

/// The reply to one request received at server time `t2`, or `None` for
/// anything that is not a client-mode request of at least 48 bytes.
fn answer(req: &[u8], st: &NtpState, t2: f64) -> Option<[u8; 48]> {
    if req.len() < 48 || req[0] & 7 != 3 {
        return None;
    }
    let version = (req[0] >> 3) & 7;
    let leap = st.leap.load(Ordering::Relaxed);
    let mut r = [0u8; 48];
    r[0] = (leap << 6) | (version.clamp(1, 4) << 3) | 4;
    r[1] = st.stratum.load(Ordering::Relaxed);
    r[2] = req[2]; // poll: echo the client's
    r[3] = (-20i8) as u8; // precision ~1 µs
                          // Root delay 2 ms, root dispersion 1 ms (16.16 fixed point).
    r[4..8].copy_from_slice(&(65_536u32 / 500).to_be_bytes());
    r[8..12].copy_from_slice(&(65_536u32 / 1000).to_be_bytes());
    r[12..16].copy_from_slice(b"SIM\0");
    put_ts(&mut r[16..24], t2 - 16.0); // reference: last "update"
    r[24..32].copy_from_slice(&req[40..48]); // originate = client transmit
    put_ts(&mut r[32..40], t2);
    put_ts(&mut r[40..48], t2);
    Some(r)
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// UDP address to answer on.
    #[arg(long, default_value = "127.0.0.1:11123")]
    pub listen: SocketAddr,
    /// Clock offset to claim, ms (server clock minus true time).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub offset_ms: i64,
    /// Stratum to claim (16 = unsynchronised).
    #[arg(long, default_value_t = 2)]
    pub stratum: u8,
    /// Claim to be unsynchronised (leap indicator 3).
    #[arg(long)]
    pub unsynchronised: bool,
}

/// `vgw sim ntp`: serves until Ctrl-C.
pub fn run_cli(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sim = start(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on UDP {}: {e}", args.listen))?;
        sim.set_offset_ms(args.offset_ms);
        sim.set_stratum(args.stratum);
        sim.set_leap(if args.unsynchronised { 3 } else { 0 });
        println!("simulated NTP server on udp://{}", sim.addr());
        tokio::signal::ctrl_c().await?;
        sim.stop();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::ntp::{burst, verdict, Verdict};

    #[tokio::test]
    async fn a_client_sees_the_claimed_offset_stratum_and_leap() {
        let sim = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        sim.set_offset_ms(3000);
        sim.set_stratum(3);
        let s = burst(sim.addr(), 2).await.unwrap();
        assert!((s.offset_ms - 3000.0).abs() < 50.0, "{s:?}");
        assert_eq!(s.stratum, 3);
        assert_eq!(verdict(&s), Verdict::Alarm, "3 s off is an alarm");
        sim.set_offset_ms(0);
        sim.set_leap(3);
        let s = burst(sim.addr(), 1).await.unwrap();
        assert_eq!((s.leap, verdict(&s)), (3, Verdict::Alarm));
        sim.set_leap(0);
        assert_eq!(verdict(&burst(sim.addr(), 1).await.unwrap()), Verdict::Ok);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let sim = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        sim.set_answering(false);
        assert!(burst(sim.addr(), 1).await.is_err());
    }

    #[test]
    fn garbage_and_server_packets_get_no_answer() {
        let st = NtpState {
            offset_ms: AtomicI64::new(0),
            stratum: AtomicU8::new(2),
            leap: AtomicU8::new(0),
            answering: AtomicBool::new(true),
        };
        assert!(answer(&[0x23; 10], &st, 1.0).is_none());
        let mut server_mode = [0u8; 48];
        server_mode[0] = (4 << 3) | 4;
        assert!(answer(&server_mode, &st, 1.0).is_none());
    }
}
