//! `record = "on_alarm"`: fragments of the last `pre_alarm_s` are held in
//! memory; when an alarm of a linked point arms the camera, they are
//! written first, then everything until the post-alarm time runs out.
//! Between windows nothing reaches the disk.

use super::store::Fragment;
use std::collections::VecDeque;

/// Memory one camera's pre-alarm buffer may hold, whatever its bitrate.
pub const MAX_BUFFER_BYTES: usize = 32 << 20;

pub struct AlarmGate {
    pre_ms: i64,
    buffer: VecDeque<Fragment>,
    bytes: usize,
    open: bool,
}

/// What to do with a fragment.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    /// Write these, in order (the buffered pre-alarm ones first).
    pub write: Vec<Fragment>,
    /// A window just closed: the next one must start after a gap.
    pub closed: bool,
}

impl AlarmGate {
    pub fn new(pre_alarm_s: u32) -> AlarmGate {
        AlarmGate {
            pre_ms: i64::from(pre_alarm_s) * 1000,
            buffer: VecDeque::new(),
            bytes: 0,
            open: false,
        }
    }

    /// The stream's parameters changed: buffered pre-alarm fragments belong
    /// to the old init segment and could not be written after the new one,
    /// so they are dropped.
    pub fn discard_buffer(&mut self) {
        self.buffer.clear();
        self.bytes = 0;
    }

    /// Takes the next fragment. The alarm window runs from `armed_from_ms`
    /// (the alarm) to `armed_until_ms` (0: never armed); what is written
    /// starts `pre_alarm_s` before the alarm, at the keyframe before that.
    pub fn pass(&mut self, f: Fragment, armed_from_ms: i64, armed_until_ms: i64) -> Pass {
        let end_ms = |f: &Fragment| f.wall_ms + i64::from(f.duration_90k / 90);
        let armed = armed_until_ms > 0
            && f.wall_ms <= armed_until_ms
            && end_ms(&f) > armed_from_ms - self.pre_ms;
        if armed {
            self.open = true;
            self.bytes = 0;
            let start = armed_from_ms - self.pre_ms;
            while self.buffer.front().is_some_and(|b| end_ms(b) <= start) {
                self.buffer.pop_front();
            }
            let mut write: Vec<Fragment> = self.buffer.drain(..).collect();
            write.push(f);
            return Pass {
                write,
                closed: false,
            };
        }
        let closed = std::mem::replace(&mut self.open, false);
        self.bytes += f.len();
        let newest = f.wall_ms;
        self.buffer.push_back(f);
        // Keep what covers the pre-alarm time: a fragment is needed while
        // the one after it starts later than `pre` before now.
        while self.buffer.len() > 1
            && (self.buffer[1].wall_ms <= newest - self.pre_ms || self.bytes > MAX_BUFFER_BYTES)
        {
            if let Some(old) = self.buffer.pop_front() {
                self.bytes -= old.len();
            }
        }
        Pass {
            write: Vec::new(),
            closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(wall_ms: i64) -> Fragment {
        Fragment {
            head: vec![0; 20],
            payload: vec![vec![0; 50], vec![0; 30]],
            start_90k: wall_ms as u64 * 90,
            duration_90k: 90_000,
            wall_ms,
            frames: 25,
            keyframe: true,
        }
    }

    #[test]
    fn nothing_is_written_until_an_alarm_then_the_pre_alarm_seconds_come_first() {
        let mut g = AlarmGate::new(3);
        for t in 1..10 {
            assert_eq!(g.pass(frag(t * 1000), 0, 0), Pass::default(), "t={t}");
        }
        // Alarm at 10.5 s, armed until 15.5 s: from the keyframe before
        // 7.5 s, i.e. the fragments of 7..9 s, come first.
        let p = g.pass(frag(10_000), 10_500, 15_500);
        let times: Vec<i64> = p.write.iter().map(|f| f.wall_ms).collect();
        assert_eq!(times, [7000, 8000, 9000, 10_000]);
        for t in 11..=15 {
            assert_eq!(g.pass(frag(t * 1000), 10_500, 15_500).write.len(), 1);
        }
        // The window ends: a gap, then buffering again.
        let p = g.pass(frag(16_000), 10_500, 15_500);
        assert!(p.closed && p.write.is_empty());
        assert!(!g.pass(frag(17_000), 10_500, 15_500).closed);
    }

    /// Fragments buffered under the old parameters must not be written
    /// after the new init segment: an alarm after a change writes only new
    /// ones.
    #[test]
    fn a_parameter_change_discards_the_pre_alarm_buffer() {
        let mut g = AlarmGate::new(5);
        for t in 1..=3 {
            g.pass(frag(t * 1000), 0, 0);
        }
        g.discard_buffer();
        g.pass(frag(4000), 0, 0);
        let p = g.pass(frag(5000), 5_500, 9_000);
        let times: Vec<i64> = p.write.iter().map(|f| f.wall_ms).collect();
        assert_eq!(times, [4000, 5000]);
    }
}
