//! Wall-clock times for a session's frames from their 90 kHz timestamps.
//!
//! A frame's receive time is late whenever the recorder was not reading
//! (it waits for room in the store's queue, and the video waits in the
//! socket) or the network delayed it; stamping frames with it would shift
//! the index's times, playback seeks and alarm windows, then bunch frames
//! up as a backlog drains. So each frame's wall time is its media time plus
//! the smallest offset (receive time − media time) seen over the last
//! minute: frames that arrive promptly set the offset, late ones do not
//! move it, and a camera clock that drifts against ours is followed within
//! a minute.

/// Offsets are kept as two half-windows of this many ms each.
const HALF_WINDOW_MS: i64 = 30_000;

#[derive(Debug, Default)]
pub struct WallClock {
    /// Smallest offset (ms) in the current and the previous half-window.
    current: Option<i64>,
    previous: Option<i64>,
    /// Receive time (ms) at which the current half-window began.
    since_ms: i64,
}

impl WallClock {
    /// The wall time (ms since the epoch) of a frame with media time
    /// `ts_90k`, received at `received_ms`.
    pub fn stamp(&mut self, ts_90k: i64, received_ms: i64) -> i64 {
        let media_ms = ts_90k.div_euclid(90);
        let offset = received_ms - media_ms;
        if self.current.is_none() || received_ms - self.since_ms >= HALF_WINDOW_MS {
            self.previous = self.current;
            self.current = None;
            self.since_ms = received_ms;
        }
        let current = self.current.map_or(offset, |c| c.min(offset));
        self.current = Some(current);
        media_ms + self.previous.map_or(current, |p| p.min(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_126_400_000;

    #[test]
    fn frames_read_late_from_a_backlog_keep_their_real_times() {
        let mut c = WallClock::default();
        // 30 fps for 10 s, received on time (a few ms of jitter).
        for i in 0..300 {
            let ts = i * 3000;
            assert_eq!(c.stamp(ts, T0 + ts / 90 + (i % 3)), T0 + ts / 90);
        }
        // The recorder waited 4 s: the next 120 frames are read in a burst.
        for i in 300..420 {
            let ts = i * 3000;
            assert_eq!(c.stamp(ts, T0 + 14_000), T0 + ts / 90, "frame {i}");
        }
    }

    #[test]
    fn a_drifting_camera_clock_is_followed_within_a_minute() {
        let mut c = WallClock::default();
        // The camera's clock runs 1 % slow: its media time falls behind.
        let mut last = 0;
        for i in 0..3000 {
            let real_ms = i * 40;
            let ts = real_ms * 90 * 99 / 100;
            last = c.stamp(ts, T0 + real_ms) - (T0 + real_ms);
        }
        // Two minutes in, stamps lag by at most the drift over one window
        // (1 % of 60 s).
        assert!(last.abs() <= 700, "{last} ms off");
    }
}
