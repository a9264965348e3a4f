//! Read planning: the registers of a map grouped into as few Modbus reads
//! as possible. Each request costs a round trip (and on a serial gateway
//! behind the TCP card, far more), so neighbours are read together; big
//! gaps are not bridged, because undefined registers may answer with an
//! exception and reading them costs bandwidth for nothing.

use super::map::{RegisterMap, Table};

/// Modbus caps a register read at 125 words (PDU limit) and a bit read at
/// 2000 bits (application protocol spec 6.1-6.4).
pub const MAX_WORDS: u16 = 125;
pub const MAX_BITS: u16 = 2000;
/// Unused addresses a read may span to join two entries.
pub const MAX_GAP: u16 = 8;

/// One read request and the map entries it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub table: Table,
    pub start: u16,
    pub count: u16,
    /// Indexes into `RegisterMap::registers`.
    pub entries: Vec<usize>,
}

impl Read {
    fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

/// Groups the map's entries into reads, per table, in address order.
pub fn plan(map: &RegisterMap, max_gap: u16) -> Vec<Read> {
    let mut order: Vec<usize> = (0..map.registers.len()).collect();
    order.sort_by_key(|&i| (map.registers[i].table, map.registers[i].address));
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let r = &map.registers[i];
        let (start, end) = (
            u32::from(r.address),
            u32::from(r.address) + u32::from(r.width()),
        );
        let limit = if r.table.is_bits() {
            MAX_BITS
        } else {
            MAX_WORDS
        };
        if let Some(last) = reads.last_mut() {
            let joins = last.table == r.table
                && start <= last.end() + u32::from(max_gap)
                && end.max(last.end()) - u32::from(last.start) <= u32::from(limit);
            if joins {
                last.count = (end.max(last.end()) - u32::from(last.start)) as u16;
                last.entries.push(i);
                continue;
            }
        }
        reads.push(Read {
            table: r.table,
            start: r.address,
            count: r.width(),
            entries: vec![i],
        });
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::modbus::map::{load, parse};

    fn map(entries: &[(&str, &str, u16, &str)]) -> RegisterMap {
        let roles = [
            "load",
            "runtime",
            "battery_charge",
            "input_voltage",
            "output_voltage",
            "battery_voltage",
        ];
        let mut text = String::new();
        for (n, (table, _, addr, ty)) in entries.iter().enumerate() {
            text.push_str(&format!(
                "[[registers]]\nrole = \"{}\"\ntable = \"{table}\"\naddress = {addr}\ntype = \"{ty}\"\n",
                roles[n]
            ));
        }
        parse("t", "t", &text).unwrap()
    }

    fn spans(reads: &[Read]) -> Vec<(Table, u16, u16)> {
        reads.iter().map(|r| (r.table, r.start, r.count)).collect()
    }

    #[test]
    fn neighbours_are_read_together_and_big_gaps_are_not_bridged() {
        let m = map(&[
            ("holding", "", 10, "u16"),
            ("holding", "", 11, "u32"),
            ("holding", "", 20, "u16"), // gap of 7 after 11-12: joined
            ("holding", "", 40, "u16"), // gap of 19: new read
        ]);
        let reads = plan(&m, MAX_GAP);
        assert_eq!(
            spans(&reads),
            vec![(Table::Holding, 10, 11), (Table::Holding, 40, 1)]
        );
        assert_eq!(reads[0].entries, vec![0, 1, 2]);
    }

    #[test]
    fn tables_are_never_mixed_and_entries_are_sorted() {
        let m = map(&[
            ("input", "", 5, "u16"),
            ("holding", "", 6, "u16"),
            ("holding", "", 5, "u16"),
        ]);
        assert_eq!(
            spans(&plan(&m, MAX_GAP)),
            vec![(Table::Holding, 5, 2), (Table::Input, 5, 1)]
        );
    }

    #[test]
    fn a_read_never_exceeds_125_registers() {
        let m = map(&[("holding", "", 0, "u16"), ("holding", "", 124, "u32")]);
        // 0..126 would be 126 registers: split even though each gap is small
        // enough with a generous gap limit.
        let reads = plan(&m, 200);
        assert_eq!(
            spans(&reads),
            vec![(Table::Holding, 0, 1), (Table::Holding, 124, 2)]
        );
        let m = map(&[("holding", "", 0, "u16"), ("holding", "", 123, "u16")]);
        assert_eq!(spans(&plan(&m, 200)), vec![(Table::Holding, 0, 124)]);
    }

    #[test]
    fn overlapping_bit_fields_share_one_read() {
        // APC's on_battery and fault are two bits of the same 32-bit register.
        let m = load("apc").unwrap();
        let reads = plan(&m, MAX_GAP);
        assert_eq!(
            spans(&reads),
            vec![
                (Table::Holding, 0, 2),
                (Table::Holding, 18, 5),
                (Table::Holding, 128, 24)
            ]
        );
        assert_eq!(reads[0].entries.len(), 2);
        let total: usize = reads.iter().map(|r| r.entries.len()).sum();
        assert_eq!(total, m.registers.len(), "every entry is read once");
    }
}
