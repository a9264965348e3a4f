//! Register-map files: which Modbus register holds which UPS quantity, and
//! how to turn its raw words into an engineering value. Maps are TOML,
//! checked when loaded; every problem names the file, line and key, so a
//! site engineer can fix a vendor map without reading our source.
//!
//! The format is described with a worked example in docs/ups-maps.md.

use crate::config::locate::{KeyPath, Locator, Seg};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Built-in maps, compiled in so a site needs no file for common UPSes.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("apc", include_str!("../../../config/ups-maps/apc.toml")),
    (
        "socomec",
        include_str!("../../../config/ups-maps/socomec.toml"),
    ),
];

/// A vendor-neutral UPS quantity; each one feeds one UPS point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    OnBattery,
    BatteryCharge,
    /// Minutes of runtime left (maps in seconds say so with `scale`).
    Runtime,
    Load,
    InputVoltage,
    OutputVoltage,
    BatteryVoltage,
    LowBattery,
    ReplaceBattery,
    Fault,
    /// An enumerated operating state; `states` says what each value means
    /// and it supplies `on_battery`, `low_battery` and `fault` where the map
    /// has no register of their own.
    Status,
}

impl Role {
    /// The name as written in map files.
    pub fn name(self) -> &'static str {
        match self {
            Role::OnBattery => "on_battery",
            Role::BatteryCharge => "battery_charge",
            Role::Runtime => "runtime",
            Role::Load => "load",
            Role::InputVoltage => "input_voltage",
            Role::OutputVoltage => "output_voltage",
            Role::BatteryVoltage => "battery_voltage",
            Role::LowBattery => "low_battery",
            Role::ReplaceBattery => "replace_battery",
            Role::Fault => "fault",
            Role::Status => "status",
        }
    }

    /// Roles whose value is true/false rather than a number.
    pub fn is_bool(self) -> bool {
        matches!(
            self,
            Role::OnBattery | Role::LowBattery | Role::ReplaceBattery | Role::Fault
        )
    }
}

/// The Modbus data table a register lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Function 03; what most UPS maps use.
    #[default]
    Holding,
    /// Function 04.
    Input,
    /// Function 01; one bit per address.
    Coil,
    /// Function 02; one bit per address.
    Discrete,
}

impl Table {
    /// Coils and discrete inputs hold bits, not 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }
}

/// How the raw words are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    #[default]
    U16,
    I16,
    U32,
    I32,
    F32,
    /// A 16-bit bit field; the entry takes one `bit` of it.
    Bits,
}

impl DataType {
    /// Registers occupied.
    pub fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bits => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }
}

/// Order of the two registers of a 32-bit value. `big`: the register at
/// the lower address holds the high word (Modbus convention, APC);
/// `little`: it holds the low word (many meters and some UPS cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    #[default]
    Big,
    Little,
}

/// What a value of an enumerated status register means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Online,
    OnBattery,
    /// On battery and about to run out.
    LowBattery,
    Bypass,
    Off,
    Fault,
}

impl State {
    /// The boolean roles this state sets (the others are false).
    pub fn implies(self, role: Role) -> bool {
        match role {
            Role::OnBattery => matches!(self, State::OnBattery | State::LowBattery),
            Role::LowBattery => self == State::LowBattery,
            Role::Fault => self == State::Fault,
            _ => false,
        }
    }
}

/// One register entry as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    role: Role,
    #[serde(default)]
    table: Table,
    address: u16,
    #[serde(rename = "type")]
    data_type: Option<DataType>,
    word_order: Option<WordOrder>,
    scale: Option<f64>,
    binary_point: Option<u8>,
    bit: Option<u8>,
    #[serde(default)]
    active_low: bool,
    #[serde(default)]
    invalid: Vec<i64>,
    states: Option<BTreeMap<String, State>>,
    /// Free text for people; ignored.
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    /// Free text for people; ignored.
    #[allow(dead_code)]
    description: Option<String>,
    /// Default word order of this map's 32-bit values.
    word_order: Option<WordOrder>,
    registers: Vec<RawRegister>,
}

/// One checked register entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub role: Role,
    pub table: Table,
    pub address: u16,
    pub data_type: DataType,
    pub word_order: WordOrder,
    /// Engineering value = raw × scale ÷ 2^binary_point.
    pub scale: f64,
    pub binary_point: u8,
    /// For a role taken from one bit of a register.
    pub bit: Option<u8>,
    /// The bit (or coil) means true when it is 0.
    pub active_low: bool,
    /// Raw values that mean "not available" (compared before scaling).
    pub invalid: Vec<i64>,
    /// For `status`: raw value → meaning.
    pub states: BTreeMap<i64, State>,
}

impl Register {
    /// Addresses occupied in its table.
    pub fn width(&self) -> u16 {
        if self.table.is_bits() {
            1
        } else {
            self.data_type.words()
        }
    }
}

/// A checked register map.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterMap {
    /// The built-in name or the file path it came from.
    pub source: String,
    pub registers: Vec<Register>,
}

impl RegisterMap {
    /// The entry that supplies `role`, if any.
    pub fn register_for(&self, role: Role) -> Option<&Register> {
        self.registers.iter().find(|r| r.role == role)
    }
}

/// A problem in a map file, located like site-file errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub file: String,
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (l, true) => write!(f, "{}:{l}: {}", self.file, self.message),
            (l, false) => write!(f, "{}:{l}: {}: {}", self.file, self.key, self.message),
        }
    }
}

impl std::error::Error for MapError {}

/// Loads a built-in map by name (`apc`, `socomec`) or a map file by path.
pub fn load(spec: &str) -> Result<RegisterMap, MapError> {
    if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == spec) {
        return parse(&format!("{name}.toml"), spec, text);
    }
    let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
    if !looks_like_path {
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        return Err(MapError {
            file: spec.into(),
            line: 0,
            key: String::new(),
            message: format!(
                "no built-in register map `{spec}` (built-in: {}; or give a path to a .toml map file)",
                names.join(", ")
            ),
        });
    }
    let text = std::fs::read_to_string(Path::new(spec)).map_err(|e| MapError {
        file: spec.into(),
        line: 0,
        key: String::new(),
        message: format!("cannot read the register map: {e}"),
    })?;
    parse(spec, spec, &text)
}

/// Parses and checks map text; `file` names it in errors.
pub fn parse(file: &str, source: &str, text: &str) -> Result<RegisterMap, MapError> {
    let err = |line: usize, key: String, message: String| MapError {
        file: file.into(),
        line,
        key,
        message,
    };
    let doc = toml_edit::ImDocument::parse(text.to_string()).map_err(|e| {
        let starts = crate::config::locate::line_starts(text);
        let line = e
            .span()
            .map_or(1, |s| crate::config::locate::line_of(&starts, s.start));
        err(
            line,
            String::new(),
            format!("TOML syntax error: {}", e.message().trim()),
        )
    })?;
    let locator = Locator::new(doc);
    let raw: RawMap = toml::from_str(text).map_err(|e| {
        let (line, key) = e.span().map_or((1, String::new()), |s| {
            (
                locator.line_of(s.start),
                locator
                    .path_at(s.start)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            )
        });
        err(line, key, e.message().trim().to_string())
    })?;
    let at =
        |i: usize, key: &str| KeyPath(vec![Seg::Key("registers".into()), Seg::Index(i)]).key(key);
    let fail = |i: usize, key: &str, message: String| {
        let p = at(i, key);
        err(locator.line(&p), p.to_string(), message)
    };
    if raw.registers.is_empty() {
        return Err(err(
            1,
            "registers".into(),
            "a map needs at least one [[registers]] entry".into(),
        ));
    }
    let default_order = raw.word_order.unwrap_or_default();
    let mut out = Vec::with_capacity(raw.registers.len());
    let mut seen: BTreeMap<Role, usize> = BTreeMap::new();
    for (i, r) in raw.registers.into_iter().enumerate() {
        if let Some(first) = seen.insert(r.role, i) {
            return Err(fail(
                i,
                "role",
                format!(
                    "role `{}` is already given by registers[{first}]",
                    r.role.name()
                ),
            ));
        }
        let data_type = match (r.table.is_bits(), r.data_type) {
            (true, Some(_)) => {
                return Err(fail(
                    i,
                    "type",
                    "coils and discrete inputs are single bits: leave `type` out".into(),
                ))
            }
            (true, None) => DataType::U16,
            (false, t) => t.unwrap_or_default(),
        };
        let width = if r.table.is_bits() {
            1
        } else {
            data_type.words()
        };
        if u32::from(r.address) + u32::from(width) > 0x1_0000 {
            return Err(fail(
                i,
                "address",
                format!("{} registers from {} run past 65535", width, r.address),
            ));
        }
        if r.table.is_bits() && !r.role.is_bool() {
            return Err(fail(
                i,
                "table",
                format!(
                    "`{}` is a number but coils and discrete inputs hold single bits",
                    r.role.name()
                ),
            ));
        }
        if let Some(b) = r.bit {
            if r.table.is_bits() {
                return Err(fail(
                    i,
                    "bit",
                    "coils and discrete inputs are single bits: leave `bit` out".into(),
                ));
            }
            if !r.role.is_bool() {
                return Err(fail(
                    i,
                    "bit",
                    "only on_battery, low_battery, replace_battery and fault can be one bit".into(),
                ));
            }
            let bits = match data_type {
                DataType::U16 | DataType::Bits => 16,
                DataType::U32 => 32,
                other => {
                    return Err(fail(
                        i,
                        "bit",
                        format!("a bit field needs type u16, u32 or bits, not {other:?}")
                            .to_lowercase(),
                    ))
                }
            };
            if b >= bits {
                return Err(fail(
                    i,
                    "bit",
                    format!("bit {b} does not exist in a {bits}-bit register (bits count from 0, least significant first)"),
                ));
            }
        } else if data_type == DataType::Bits {
            return Err(fail(
                i,
                "bit",
                "type `bits` needs `bit` (which bit, 0 = least significant)".into(),
            ));
        }
        if r.active_low && !(r.bit.is_some() || r.table.is_bits()) {
            return Err(fail(
                i,
                "active_low",
                "`active_low` applies to a `bit` or a coil/discrete input".into(),
            ));
        }
        if let Some(s) = r.scale {
            if !s.is_finite() || s == 0.0 {
                return Err(fail(
                    i,
                    "scale",
                    format!("scale must be a finite, non-zero number, not {s}"),
                ));
            }
        }
        if let Some(bp) = r.binary_point {
            if bp > 31 {
                return Err(fail(
                    i,
                    "binary_point",
                    format!("binary point {bp} is beyond a 32-bit value"),
                ));
            }
        }
        if (r.scale.is_some() || r.binary_point.is_some())
            && (r.role.is_bool() || r.role == Role::Status)
        {
            return Err(fail(
                i,
                if r.scale.is_some() {
                    "scale"
                } else {
                    "binary_point"
                },
                "only numeric roles are scaled".into(),
            ));
        }
        let mut states = BTreeMap::new();
        match (r.role, r.states) {
            (Role::Status, None) => {
                return Err(fail(
                    i,
                    "states",
                    "role `status` needs `states` (raw value = meaning)".into(),
                ))
            }
            (Role::Status, Some(map)) => {
                if data_type == DataType::F32 || r.bit.is_some() {
                    return Err(fail(
                        i,
                        "type",
                        "a status enum is an integer register".into(),
                    ));
                }
                for (k, v) in map {
                    let Ok(n) = k.trim().parse::<i64>() else {
                        return Err(fail(
                            i,
                            "states",
                            format!("state key `{k}` is not an integer register value"),
                        ));
                    };
                    states.insert(n, v);
                }
            }
            (_, Some(_)) => {
                return Err(fail(
                    i,
                    "states",
                    "`states` belongs to role `status` only".into(),
                ))
            }
            (_, None) => {}
        }
        if !r.invalid.is_empty() && (r.bit.is_some() || r.table.is_bits()) {
            return Err(fail(
                i,
                "invalid",
                "a single bit has no sentinel value: `invalid` applies to whole registers".into(),
            ));
        }
        if r.word_order.is_some() && data_type.words() != 2 {
            return Err(fail(
                i,
                "word_order",
                "word order only applies to 32-bit types (u32, i32, f32)".into(),
            ));
        }
        out.push(Register {
            role: r.role,
            table: r.table,
            address: r.address,
            data_type,
            word_order: r.word_order.unwrap_or(default_order),
            scale: r.scale.unwrap_or(1.0),
            binary_point: r.binary_point.unwrap_or(0),
            bit: r.bit,
            active_low: r.active_low,
            invalid: r.invalid,
            states,
        });
    }
    Ok(RegisterMap {
        source: source.into(),
        registers: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_maps_load() {
        for (name, _) in BUILT_IN {
            let m = load(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(m.register_for(Role::BatteryCharge).is_some(), "{name}");
        }
    }

    #[test]
    fn an_unknown_type_names_file_line_and_key() {
        let text = "[[registers]]\nrole = \"load\"\naddress = 1\n\n[[registers]]\nrole = \"runtime\"\naddress = 2\ntype = \"u24\"\n";
        let e = parse("x.toml", "x.toml", text).unwrap_err();
        assert_eq!(e.file, "x.toml");
        assert_eq!(e.line, 8, "{e}");
        assert_eq!(e.key, "registers[1].type", "{e}");
        assert!(e.message.contains("u24"), "{e}");
        assert!(e.message.contains("u32"), "lists the known types: {e}");
    }

    #[test]
    fn a_bit_beyond_the_register_is_refused_where_it_is() {
        let text = "[[registers]]\nrole = \"fault\"\naddress = 0\ntype = \"u16\"\nbit = 16\n";
        let e = parse("m.toml", "m.toml", text).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (5, "registers[0].bit"), "{e}");
        assert_eq!(
            e.to_string(),
            "m.toml:5: registers[0].bit: bit 16 does not exist in a 16-bit register (bits count from 0, least significant first)"
        );
    }

    #[test]
    fn a_duplicate_role_is_refused() {
        let text = "[[registers]]\nrole = \"load\"\naddress = 0\n[[registers]]\nrole = \"load\"\naddress = 1\n";
        let e = parse("m.toml", "m.toml", text).unwrap_err();
        assert_eq!(e.key, "registers[1].role");
        assert!(
            e.message
                .contains("`load` is already given by registers[0]"),
            "{e}"
        );
    }

    #[test]
    fn status_needs_states_and_integer_keys() {
        let text = "[[registers]]\nrole = \"status\"\naddress = 0\n";
        assert_eq!(
            parse("m", "m", text).unwrap_err().key,
            "registers[0].states"
        );
        let text =
            "[[registers]]\nrole = \"status\"\naddress = 0\nstates = { \"x\" = \"online\" }\n";
        assert!(parse("m", "m", text).unwrap_err().message.contains("`x`"));
        let text =
            "[[registers]]\nrole = \"status\"\naddress = 0\nstates = { \"2\" = \"on_battery\" }\n";
        let m = parse("m", "m", text).unwrap();
        assert_eq!(m.registers[0].states[&2], State::OnBattery);
    }

    #[test]
    fn unknown_names_and_missing_files_are_reported() {
        let e = load("eaton").unwrap_err();
        assert!(e.to_string().contains("built-in: apc, socomec"), "{e}");
        let e = load("/nonexistent/ups.toml").unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn the_map_word_order_is_the_default_for_32_bit_entries() {
        let text = "word_order = \"little\"\n[[registers]]\nrole = \"runtime\"\naddress = 0\ntype = \"u32\"\n";
        let m = parse("m", "m", text).unwrap();
        assert_eq!(m.registers[0].word_order, WordOrder::Little);
    }
}
