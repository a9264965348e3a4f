//! The 17-level command priority array (BACnet priorities 1–16 plus the
//! relinquish default as level 17, which is also Haystack's level 17).
//! One array per writable point; BACnet WriteProperty and Haystack
//! pointWrite write into the same one.

use super::Value;
use std::time::Instant;

pub const LEVELS: usize = 17;
/// Level 17 holds the relinquish default.
pub const DEFAULT_LEVEL: u8 = 17;

/// One occupied level: the value, who wrote it, and when it lapses.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub value: Value,
    pub who: String,
    /// Haystack pointWrite with a duration; BACnet writes never lapse.
    pub expires: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriorityArray {
    /// Index 0 is level 1 (highest), index 16 is level 17 (the default).
    slots: [Option<Slot>; LEVELS],
}

impl PriorityArray {
    pub fn new(relinquish_default: Value) -> Self {
        let mut slots: [Option<Slot>; LEVELS] = Default::default();
        slots[LEVELS - 1] = Some(Slot {
            value: relinquish_default,
            who: "default".into(),
            expires: None,
        });
        PriorityArray { slots }
    }

    /// Writes (`Some`) or relinquishes (`None`) one level, 1..=17.
    /// Relinquishing level 17 resets the default to Null.
    pub fn set(&mut self, level: u8, slot: Option<Slot>) {
        let i = usize::from(level.clamp(1, DEFAULT_LEVEL)) - 1;
        self.slots[i] = slot;
    }

    /// The value in force: the highest occupied level, else Null.
    pub fn effective(&self) -> (Value, Option<u8>) {
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| s.value != Value::Null)
                    .map(|s| (s.value, Some(i as u8 + 1)))
            })
            .unwrap_or((Value::Null, None))
    }

    pub fn level(&self, level: u8) -> Option<&Slot> {
        self.slots.get(usize::from(level).checked_sub(1)?)?.as_ref()
    }

    pub fn levels(&self) -> &[Option<Slot>; LEVELS] {
        &self.slots
    }

    /// Relinquishes timed writes that have lapsed; true if any did.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for s in self.slots.iter_mut() {
            if s.as_ref().and_then(|s| s.expires).is_some_and(|t| t <= now) {
                *s = None;
                changed = true;
            }
        }
        changed
    }
}
