//! Raw Modbus words (or bits) → role values, following a map entry: word
//! order, signedness, scale and binary point, bit fields, "not available"
//! sentinels and status enums. A sentinel or an unknown state is not a
//! number to show: it is reported as unavailable so the point goes to
//! fault instead of displaying garbage.

use super::map::{DataType, Register, RegisterMap, Role, State, WordOrder};
use super::plan::Read;

/// What one register entry says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Bool(bool),
    Number(f64),
    State(State),
    /// A sentinel value, an unknown state, or a NaN float.
    Unavailable,
}

/// The data a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

/// The 32-bit value of two registers in address order.
pub fn join32(first: u16, second: u16, order: WordOrder) -> u32 {
    let (hi, lo) = match order {
        WordOrder::Big => (first, second),
        WordOrder::Little => (second, first),
    };
    (u32::from(hi) << 16) | u32::from(lo)
}

/// Decodes one entry from the words it occupies (1 or 2).
pub fn decode_words(r: &Register, words: &[u16]) -> Reading {
    let raw: i64 = match r.data_type {
        DataType::U16 | DataType::Bits => i64::from(words[0]),
        DataType::I16 => i64::from(words[0] as i16),
        DataType::U32 => i64::from(join32(words[0], words[1], r.word_order)),
        DataType::I32 => i64::from(join32(words[0], words[1], r.word_order) as i32),
        DataType::F32 => {
            let bits = join32(words[0], words[1], r.word_order);
            let f = f64::from(f32::from_bits(bits));
            if r.invalid.contains(&i64::from(bits)) || !f.is_finite() {
                return Reading::Unavailable;
            }
            return Reading::Number(scaled(r, f));
        }
    };
    if let Some(bit) = r.bit {
        return Reading::Bool(((raw >> bit) & 1 == 1) != r.active_low);
    }
    if r.invalid.contains(&raw) {
        return Reading::Unavailable;
    }
    if r.role == Role::Status {
        return r
            .states
            .get(&raw)
            .map_or(Reading::Unavailable, |s| Reading::State(*s));
    }
    if r.role.is_bool() {
        return Reading::Bool((raw != 0) != r.active_low);
    }
    Reading::Number(scaled(r, raw as f64))
}

fn scaled(r: &Register, v: f64) -> f64 {
    v * r.scale / f64::from(1u32 << r.binary_point.min(31))
}

/// Every entry of a successful read, with its reading.
pub fn decode_block(map: &RegisterMap, read: &Read, block: &Block) -> Vec<(Role, Reading)> {
    read.entries
        .iter()
        .map(|&i| {
            let r = &map.registers[i];
            let off = usize::from(r.address - read.start);
            let reading = match block {
                Block::Bits(bits) => match bits.get(off) {
                    Some(b) => Reading::Bool(*b != r.active_low),
                    None => Reading::Unavailable,
                },
                Block::Words(words) => match words.get(off..off + usize::from(r.width())) {
                    Some(w) => decode_words(r, w),
                    // A server that answers short is not to be believed.
                    None => Reading::Unavailable,
                },
            };
            (r.role, reading)
        })
        .collect()
}

/// The roles a `status` reading supplies when the map has no entry of
/// their own.
pub fn derived_from_status(map: &RegisterMap) -> Vec<Role> {
    [Role::OnBattery, Role::LowBattery, Role::Fault]
        .into_iter()
        .filter(|r| map.register_for(*r).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::modbus::map::{load, parse};
    use crate::drivers::modbus::plan::{plan, MAX_GAP};

    fn one(text: &str) -> Register {
        parse("t", "t", text).unwrap().registers.remove(0)
    }

    #[test]
    fn word_order_decides_which_register_is_the_high_word() {
        let big = one("[[registers]]\nrole = \"runtime\"\naddress = 0\ntype = \"u32\"\n");
        let little = one("[[registers]]\nrole = \"runtime\"\naddress = 0\ntype = \"u32\"\nword_order = \"little\"\n");
        assert_eq!(
            decode_words(&big, &[0x0001, 0x0002]),
            Reading::Number(65538.0)
        );
        assert_eq!(
            decode_words(&little, &[0x0001, 0x0002]),
            Reading::Number(131073.0)
        );
    }

    #[test]
    fn signed_and_float_types() {
        let i16r = one("[[registers]]\nrole = \"load\"\naddress = 0\ntype = \"i16\"\n");
        assert_eq!(decode_words(&i16r, &[0xFFFE]), Reading::Number(-2.0));
        let i32r = one("[[registers]]\nrole = \"load\"\naddress = 0\ntype = \"i32\"\n");
        assert_eq!(
            decode_words(&i32r, &[0xFFFF, 0xFFFD]),
            Reading::Number(-3.0)
        );
        let f = one("[[registers]]\nrole = \"input_voltage\"\naddress = 0\ntype = \"f32\"\nword_order = \"little\"\n");
        let bits = 231.5f32.to_bits();
        assert_eq!(
            decode_words(&f, &[bits as u16, (bits >> 16) as u16]),
            Reading::Number(231.5)
        );
        let nan = f32::NAN.to_bits();
        assert_eq!(
            decode_words(&f, &[nan as u16, (nan >> 16) as u16]),
            Reading::Unavailable
        );
    }

    #[test]
    fn binary_point_and_scale() {
        // APC: charge with binary point 9, 100 % = 51200.
        let charge =
            one("[[registers]]\nrole = \"battery_charge\"\naddress = 0\nbinary_point = 9\n");
        assert_eq!(decode_words(&charge, &[51200]), Reading::Number(100.0));
        assert_eq!(decode_words(&charge, &[256]), Reading::Number(0.5));
        let volts = one("[[registers]]\nrole = \"input_voltage\"\naddress = 0\nscale = 0.1\n");
        assert_eq!(decode_words(&volts, &[2305]), Reading::Number(230.5));
        let runtime = one("[[registers]]\nrole = \"runtime\"\naddress = 0\ntype = \"u32\"\nscale = 0.016666666666666666\n");
        let Reading::Number(min) = decode_words(&runtime, &[0, 5400]) else {
            panic!()
        };
        assert!((min - 90.0).abs() < 1e-9, "{min}");
    }

    #[test]
    fn sentinels_mean_unavailable_not_a_number() {
        let r = one("[[registers]]\nrole = \"input_voltage\"\naddress = 0\nbinary_point = 6\ninvalid = [65535]\n");
        assert_eq!(decode_words(&r, &[0xFFFF]), Reading::Unavailable);
        assert_eq!(decode_words(&r, &[230 * 64]), Reading::Number(230.0));
        let s = one("[[registers]]\nrole = \"battery_voltage\"\naddress = 0\ntype = \"i16\"\ninvalid = [-32768]\n");
        assert_eq!(decode_words(&s, &[0x8000]), Reading::Unavailable);
    }

    #[test]
    fn bits_with_polarity() {
        let hi =
            one("[[registers]]\nrole = \"on_battery\"\naddress = 0\ntype = \"u32\"\nbit = 2\n");
        // Big word order: bit 2 of the 32-bit value is in the second register.
        assert_eq!(decode_words(&hi, &[0, 0b100]), Reading::Bool(true));
        assert_eq!(decode_words(&hi, &[0b100, 0]), Reading::Bool(false));
        let lo = one("[[registers]]\nrole = \"fault\"\naddress = 0\ntype = \"bits\"\nbit = 15\nactive_low = true\n");
        assert_eq!(decode_words(&lo, &[0x8000]), Reading::Bool(false));
        assert_eq!(decode_words(&lo, &[0x7FFF]), Reading::Bool(true));
    }

    #[test]
    fn enums_map_values_to_states_and_unknown_values_are_unavailable() {
        let m = load("socomec").unwrap();
        let status = m.register_for(Role::Status).unwrap();
        assert_eq!(decode_words(status, &[2]), Reading::State(State::OnBattery));
        assert_eq!(decode_words(status, &[99]), Reading::Unavailable);
        assert!(State::LowBattery.implies(Role::OnBattery));
        assert!(!State::Bypass.implies(Role::OnBattery));
        assert_eq!(
            derived_from_status(&m),
            vec![Role::OnBattery, Role::LowBattery, Role::Fault]
        );
    }

    #[test]
    fn a_whole_apc_block_decodes_by_offset() {
        let m = load("apc").unwrap();
        let reads = plan(&m, MAX_GAP);
        let dynamic = reads.iter().find(|r| r.start == 128).unwrap();
        let mut words = vec![0u16; usize::from(dynamic.count)];
        words[0] = 0x0001; // runtime high word: 65536 s …
        words[1] = 0x0E10; // … + 3600 s = 69136 s
        words[2] = 75 * 512; // 75 %
        words[3] = 27 * 32 + 16; // 27.5 V
        words[151 - 128] = 0xFFFF; // input voltage not available
        let got = decode_block(&m, dynamic, &Block::Words(words));
        let get = |role| got.iter().find(|(r, _)| *r == role).unwrap().1;
        let Reading::Number(rt) = get(Role::Runtime) else {
            panic!()
        };
        assert!((rt - 69136.0 / 60.0).abs() < 1e-9);
        assert_eq!(get(Role::BatteryCharge), Reading::Number(75.0));
        assert_eq!(get(Role::BatteryVoltage), Reading::Number(27.5));
        assert_eq!(get(Role::InputVoltage), Reading::Unavailable);
    }
}
