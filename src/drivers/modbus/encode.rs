//! Engineering values → raw register words, following a map entry: the
//! inverse of `decode`. The simulator builds its register image with it,
//! so any map a site can read, the simulator can serve.

use super::decode::Reading;
use super::map::{DataType, Register, State, WordOrder};
use std::collections::BTreeMap;

/// A register image: (table, address) → word; bit tables hold 0/1.
pub type Image = BTreeMap<(super::map::Table, u16), u16>;

/// Splits a 32-bit value into two registers in address order.
pub fn split32(v: u32, order: WordOrder) -> [u16; 2] {
    let (hi, lo) = ((v >> 16) as u16, v as u16);
    match order {
        WordOrder::Big => [hi, lo],
        WordOrder::Little => [lo, hi],
    }
}

/// Writes `value` for entry `r` into `image`. Bit entries change only
/// their bit, so several roles can share one register.
pub fn encode_into(image: &mut Image, r: &Register, value: Reading) {
    let key = |i: u16| (r.table, r.address + i);
    if r.table.is_bits() {
        let on = matches!(value, Reading::Bool(true));
        image.insert(key(0), u16::from(on != r.active_low));
        return;
    }
    let words = r.data_type.words();
    let current: Vec<u16> = (0..words)
        .map(|i| image.get(&key(i)).copied().unwrap_or(0))
        .collect();
    let raw: u32 = match (value, r.bit) {
        (Reading::Bool(b), Some(bit)) => {
            let whole = if words == 2 {
                super::decode::join32(current[0], current[1], r.word_order)
            } else {
                u32::from(current[0])
            };
            if b != r.active_low {
                whole | (1 << bit)
            } else {
                whole & !(1 << bit)
            }
        }
        (Reading::Bool(b), None) => u32::from(b != r.active_low),
        (Reading::State(s), _) => state_value(&r.states, s).unwrap_or(0) as u32,
        (Reading::Number(n), _) => {
            let raw = n / r.scale * f64::from(1u32 << r.binary_point.min(31));
            match r.data_type {
                DataType::F32 => ((n / r.scale) as f32).to_bits(),
                DataType::I16 => (raw.round() as i16) as u16 as u32,
                DataType::I32 => (raw.round() as i32) as u32,
                DataType::U16 | DataType::Bits => raw.round().clamp(0.0, 65534.0) as u32,
                DataType::U32 => raw.round().clamp(0.0, f64::from(u32::MAX - 1)) as u32,
            }
        }
        (Reading::Unavailable, _) => match r.invalid.first() {
            Some(v) => *v as u32,
            None => 0,
        },
    };
    if words == 2 {
        let [a, b] = split32(raw, r.word_order);
        image.insert(key(0), a);
        image.insert(key(1), b);
    } else {
        image.insert(key(0), raw as u16);
    }
}

/// The raw value the map gives a state (the first one, if several).
fn state_value(states: &BTreeMap<i64, State>, s: State) -> Option<i64> {
    states.iter().find(|(_, v)| **v == s).map(|(k, _)| *k)
}

/// The status a UPS in this condition reports, among those the map knows.
pub fn status_for(on_battery: bool, low_battery: bool, fault: bool) -> State {
    match (fault, on_battery, low_battery) {
        (true, _, _) => State::Fault,
        (_, true, true) => State::LowBattery,
        (_, true, false) => State::OnBattery,
        _ => State::Online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::modbus::decode::decode_block;
    use crate::drivers::modbus::map::{load, Role};
    use crate::drivers::modbus::plan::{plan, MAX_GAP};

    /// Every built-in map round-trips: what is encoded decodes the same.
    #[test]
    fn encode_then_decode_round_trips_for_built_in_maps() {
        for name in ["apc", "socomec"] {
            let m = load(name).unwrap();
            let mut image = Image::new();
            let want = |role: Role| match role {
                Role::OnBattery | Role::Fault => Reading::Bool(false),
                Role::LowBattery | Role::ReplaceBattery => Reading::Bool(true),
                Role::Status => Reading::State(State::LowBattery),
                Role::Runtime => Reading::Number(42.0),
                Role::BatteryCharge => Reading::Number(37.0),
                _ => Reading::Number(230.0),
            };
            for r in &m.registers {
                encode_into(&mut image, r, want(r.role));
            }
            for read in plan(&m, MAX_GAP) {
                let words = (read.start..read.start + read.count)
                    .map(|a| image.get(&(read.table, a)).copied().unwrap_or(0))
                    .collect();
                for (role, got) in
                    decode_block(&m, &read, &super::super::decode::Block::Words(words))
                {
                    match (got, want(role)) {
                        (Reading::Number(a), Reading::Number(b)) => {
                            assert!((a - b).abs() < 0.05, "{name} {role:?}: {a} vs {b}")
                        }
                        (a, b) => assert_eq!(a, b, "{name} {role:?}"),
                    }
                }
            }
        }
    }
}
