//! NTP monitoring: every NTP server of the site with an `address` is
//! polled with SNTP bursts; the lowest-delay answer of a burst gives its
//! stratum, offset and root distance; an 8-poll reachability register
//! says whether it answers; a verdict (ok / degraded / alarm) drives its
//! sync-alarm point. A server that stops answering shows offline and its
//! other points go to fault within one poll.

pub mod sntp;

use crate::app::App;
use crate::points::{Quality, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often each server is polled.
pub const POLL: Duration = Duration::from_secs(16);
/// Queries per burst, their spacing, and the wait for each answer.
pub const BURST: usize = 4;
const SPACING: Duration = Duration::from_millis(100);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// Offsets beyond these are degraded / an alarm (video timestamps are
/// evidence: a second off is already too much).
pub const DEGRADED_MS: f64 = 100.0;
pub const ALARM_MS: f64 = 1000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Degraded,
    Alarm,
}

/// The best (lowest-delay) answer of a burst, or the last error.
pub async fn burst(server: SocketAddr, n: usize) -> Result<sntp::Sample, sntp::SntpError> {
    let mut best: Option<sntp::Sample> = None;
    let mut last_err = sntp::SntpError::Timeout(ANSWER_TIMEOUT);
    for i in 0..n {
        if i > 0 {
            tokio::time::sleep(SPACING).await;
        }
        match sntp::query(server, ANSWER_TIMEOUT).await {
            Ok(s) if best.as_ref().is_none_or(|b| s.delay_ms < b.delay_ms) => best = Some(s),
            Ok(_) => {}
            Err(e) => last_err = e,
        }
    }
    best.ok_or(last_err)
}

/// Unsynchronised servers (leap 3, stratum 0 or 16) are an alarm whatever
/// their offset.
pub fn verdict(s: &sntp::Sample) -> Verdict {
    let off = s.offset_ms.abs().max(s.root_distance_ms);
    if s.leap == 3 || s.stratum == 0 || s.stratum >= 16 || off >= ALARM_MS {
        Verdict::Alarm
    } else if off >= DEGRADED_MS {
        Verdict::Degraded
    } else {
        Verdict::Ok
    }
}

/// One NTP server's points, by engine index.
struct Server {
    addr: SocketAddr,
    online: Option<usize>,
    stratum: Option<usize>,
    offset: Option<usize>,
    root_distance: Option<usize>,
    sync_alarm: Option<usize>,
    /// Bit 0 = the latest poll answered (RFC 5905's reach register).
    reach: u8,
    /// The outage has been logged.
    warned: bool,
}

/// Starts one polling task per NTP server that has an `address`, polling
/// every `every` (`POLL` in service).
pub fn spawn(app: &Arc<App>, every: Duration) {
    for e in app
        .site
        .equipment
        .iter()
        .filter(|e| e.kind == crate::model::kinds::EquipKind::NtpServer)
    {
        let Some(addr) = e.driver_address.as_deref() else {
            continue;
        };
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            tracing::warn!(equipment = %e.id, "NTP monitor: `{addr}` is not an IP:port; not polled");
            continue;
        };
        let point = |k: &str| app.points.index_of(&format!("{}.{k}", e.id));
        let mut s = Server {
            addr,
            online: point("online"),
            stratum: point("stratum"),
            offset: point("offset"),
            root_distance: point("root-distance"),
            sync_alarm: point("sync-alarm"),
            reach: 0,
            warned: false,
        };
        let app = app.clone();
        let id = e.id.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                poll_once(&app, &id, &mut s).await;
            }
        });
    }
}

async fn poll_once(app: &App, id: &str, s: &mut Server) {
    let result = burst(s.addr, BURST).await;
    s.reach = (s.reach << 1) | u8::from(result.is_ok());
    let put = |p: Option<usize>, v: Value, q: Quality| {
        if let Some(p) = p {
            app.points.report(p, v, q);
        }
    };
    match result {
        Ok(sample) => {
            s.warned = false;
            let v = verdict(&sample);
            put(s.online, Value::Bool(true), Quality::Ok);
            put(
                s.stratum,
                Value::Number(f64::from(sample.stratum)),
                Quality::Ok,
            );
            put(s.offset, Value::Number(sample.offset_ms), Quality::Ok);
            put(
                s.root_distance,
                Value::Number(sample.root_distance_ms),
                Quality::Ok,
            );
            put(s.sync_alarm, Value::Bool(v == Verdict::Alarm), Quality::Ok);
            tracing::debug!(server = %id, ?v, offset_ms = sample.offset_ms, stratum = sample.stratum, reach = s.reach, "NTP poll");
        }
        Err(e) => {
            // Offline is a fact the gateway knows; the measurements are
            // not available, so they go to fault.
            put(s.online, Value::Bool(false), Quality::Ok);
            for p in [s.stratum, s.offset, s.root_distance].into_iter().flatten() {
                let last = app.points.get(p).map_or(Value::Null, |st| st.value);
                app.points.report(p, last, Quality::Fault);
            }
            put(s.sync_alarm, Value::Bool(true), Quality::Ok);
            // Say it once when it goes silent (and at the first poll), not
            // every poll of an outage.
            if !s.warned {
                tracing::warn!(server = %id, "NTP server does not answer: {e}");
                s.warned = true;
            } else {
                tracing::debug!(server = %id, reach = s.reach, "NTP server still silent: {e}");
            }
        }
    }
}
