//! Durability lag: time from `StreamWriter::fragment()` to the commit of
//! that fragment's index row, i.e. how much recent video a crash can cost.
//! The last N samples are kept in a ring, so the p99 reflects now, not the
//! whole uptime.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

pub struct Lags {
    cap: usize,
    ring: Mutex<VecDeque<Duration>>,
}

impl Lags {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Lags {
            cap,
            ring: Mutex::new(VecDeque::with_capacity(cap)),
        }
    }

    pub fn record(&self, lags: impl IntoIterator<Item = Duration>) {
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        for l in lags {
            if r.len() == self.cap {
                r.pop_front();
            }
            r.push_back(l);
        }
    }

    /// The `q` quantile (0..=1) of the kept samples; None before any.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut v: Vec<Duration> = {
            let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            r.iter().copied().collect()
        };
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).max(1);
        Some(v[rank - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_the_last_n() {
        let l = Lags::new(100);
        assert_eq!(l.quantile(0.99), None);
        l.record((1..=100).map(Duration::from_millis));
        assert_eq!(l.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(l.quantile(1.0), Some(Duration::from_millis(100)));
        // Old samples fall out of the window.
        l.record((0..100).map(|_| Duration::from_millis(5)));
        assert_eq!(l.quantile(0.99), Some(Duration::from_millis(5)));
    }
}
