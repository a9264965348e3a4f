//! The kinds of things the site model knows, with the facts about each kind
//! that validation and projection both need.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EquipKind {
    Nvr,
    HybridRecorder,
    Dvr,
    IpCamera,
    AnalogCamera,
    Encoder,
    Ups,
    Pdu,
    PoeSwitch,
    NtpServer,
    VmsServer,
    Workstation,
    Gateway,
    StorageDrive,
    Relay,
    Battery,
}

impl EquipKind {
    /// The config table that declares this kind.
    pub fn table(self) -> &'static str {
        match self {
            EquipKind::Nvr | EquipKind::HybridRecorder => "nvr",
            EquipKind::Dvr => "dvr",
            EquipKind::IpCamera => "ip_camera",
            EquipKind::AnalogCamera => "analog_camera",
            EquipKind::Encoder => "encoder",
            EquipKind::Ups => "ups",
            EquipKind::Pdu => "pdu",
            EquipKind::PoeSwitch => "poe_switch",
            EquipKind::NtpServer => "ntp_server",
            EquipKind::VmsServer => "vms_server",
            EquipKind::Workstation => "workstation",
            EquipKind::Gateway => "gateway",
            EquipKind::StorageDrive => "disk",
            EquipKind::Relay => "relay",
            EquipKind::Battery => "battery",
        }
    }

    /// How a person would name it in a sentence.
    pub fn noun(self) -> &'static str {
        match self {
            EquipKind::Nvr => "an NVR",
            EquipKind::HybridRecorder => "a hybrid recorder",
            EquipKind::Dvr => "a DVR",
            EquipKind::IpCamera => "an IP camera",
            EquipKind::AnalogCamera => "an analog camera",
            EquipKind::Encoder => "a video encoder",
            EquipKind::Ups => "a UPS",
            EquipKind::Pdu => "a PDU",
            EquipKind::PoeSwitch => "a PoE switch",
            EquipKind::NtpServer => "an NTP server",
            EquipKind::VmsServer => "a VMS server",
            EquipKind::Workstation => "a workstation",
            EquipKind::Gateway => "the gateway",
            EquipKind::StorageDrive => "a storage drive",
            EquipKind::Relay => "a relay",
            EquipKind::Battery => "a battery",
        }
    }

    pub fn is_recorder(self) -> bool {
        matches!(
            self,
            EquipKind::Nvr | EquipKind::HybridRecorder | EquipKind::Dvr
        )
    }

    pub fn is_power_source(self) -> bool {
        matches!(self, EquipKind::Ups | EquipKind::Pdu | EquipKind::PoeSwitch)
    }

    pub fn is_camera(self) -> bool {
        matches!(self, EquipKind::IpCamera | EquipKind::AnalogCamera)
    }

    /// Kinds this kind may stream video to (DESIGN.md §4).
    pub fn video_targets(self) -> &'static [EquipKind] {
        use EquipKind::*;
        match self {
            IpCamera => &[Nvr, HybridRecorder, VmsServer],
            AnalogCamera => &[Encoder, Dvr, HybridRecorder],
            Encoder => &[Nvr, HybridRecorder, VmsServer],
            Nvr | HybridRecorder | Dvr => &[VmsServer],
            _ => &[],
        }
    }

    pub fn parse_table(name: &str) -> Option<EquipKind> {
        ALL_TABLES.iter().find(|(t, _)| *t == name).map(|(_, k)| *k)
    }
}

/// Config tables that declare equipment, in the order they are projected.
pub const ALL_TABLES: &[(&str, EquipKind)] = &[
    ("nvr", EquipKind::Nvr),
    ("dvr", EquipKind::Dvr),
    ("ip_camera", EquipKind::IpCamera),
    ("analog_camera", EquipKind::AnalogCamera),
    ("encoder", EquipKind::Encoder),
    ("ups", EquipKind::Ups),
    ("pdu", EquipKind::Pdu),
    ("poe_switch", EquipKind::PoeSwitch),
    ("ntp_server", EquipKind::NtpServer),
    ("vms_server", EquipKind::VmsServer),
    ("workstation", EquipKind::Workstation),
];

/// Recorder variants accepted in `[[nvr]] variant`.
pub const RECORDER_VARIANTS: &[&str] = &["compact", "rack", "high_capacity", "hybrid", "edge"];

/// Room kinds accepted in `[[space]] kind`, with their REC class.
pub const SPACE_KINDS: &[(&str, &str)] = &[
    ("server_room", "DataServerRoom"),
    ("technical_room", "UtilitiesRoom"),
    ("security_room", "SecurityRoom"),
    ("telecom_room", "TelecommunicationRoom"),
    ("patch_cabinet", "Cabinet"),
    ("electrical_room", "ElectricityRoom"),
    ("outdoor", "OutdoorSpace"),
    ("office", "OfficeRoom"),
    ("room", "Room"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
