//! Default points per kind of equipment (DESIGN.md §4 "Points per equipment").
//! One table feeds the Brick class, the Haystack tags and the BACnet object
//! type of every point, so the three views cannot disagree.

use super::kinds::EquipKind;

/// A point's class: an existing Brick class, or a vgw extension class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Brick(&'static str),
    Vgw(&'static str),
}

impl Class {
    /// `brick:X` or `vgw:X`, as the APIs show it.
    pub fn curie(&self) -> String {
        match self {
            Class::Brick(c) => format!("brick:{c}"),
            Class::Vgw(c) => format!("vgw:{c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ValueKind {
    Bool,
    Number,
}

/// A unit in both vocabularies: QUDT local name and Haystack unit name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub qudt: &'static str,
    /// `None` where Haystack has no unit (plain counts).
    pub haystack: Option<&'static str>,
}

pub const PERCENT: Unit = Unit {
    qudt: "PERCENT",
    haystack: Some("%"),
};
pub const MBPS: Unit = Unit {
    qudt: "MegaBIT-PER-SEC",
    haystack: Some("Mbps"),
};
pub const COUNT: Unit = Unit {
    qudt: "NUM",
    haystack: None,
};
pub const MILLISEC: Unit = Unit {
    qudt: "MilliSEC",
    haystack: Some("ms"),
};
pub const SEC: Unit = Unit {
    qudt: "SEC",
    haystack: Some("s"),
};
pub const DEG_C: Unit = Unit {
    qudt: "DEG_C",
    haystack: Some("°C"),
};
pub const FPS: Unit = Unit {
    qudt: "FRAME-PER-SEC",
    haystack: Some("fps"),
};
pub const DAY: Unit = Unit {
    qudt: "DAY",
    haystack: Some("day"),
};
pub const MINUTE: Unit = Unit {
    qudt: "MIN",
    haystack: Some("min"),
};
pub const VOLT: Unit = Unit {
    qudt: "V",
    haystack: Some("V"),
};

/// Every unit the templates use (the ontology declares exactly these).
pub const ALL_UNITS: &[Unit] = &[
    PERCENT, MBPS, COUNT, MILLISEC, SEC, DEG_C, FPS, DAY, MINUTE, VOLT,
];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectType {
    AnalogInput,
    BinaryInput,
    BinaryOutput,
    /// Not a point: the gateway's mirror of one node of the site tree.
    StructuredView,
}

impl ObjectType {
    /// The BACnet name used in `bacnet:object-identifier "binary-input,3"`.
    pub fn bacnet_name(self) -> &'static str {
        match self {
            ObjectType::AnalogInput => "analog-input",
            ObjectType::BinaryInput => "binary-input",
            ObjectType::BinaryOutput => "binary-output",
            ObjectType::StructuredView => "structured-view",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            ObjectType::AnalogInput,
            ObjectType::BinaryInput,
            ObjectType::BinaryOutput,
            ObjectType::StructuredView,
        ]
        .into_iter()
        .find(|t| t.bacnet_name() == s)
    }
}

#[derive(Debug)]
pub struct PointTemplate {
    /// Point key; numbered templates get `-N` appended (`alarm-in-3`).
    pub key: &'static str,
    pub dis: &'static str,
    pub class: Class,
    /// Haystack markers besides `point`, `sensor`/`cmd`, `his`, `writable`, `cur`.
    pub markers: &'static [&'static str],
    pub kind: ValueKind,
    pub unit: Option<Unit>,
    pub writable: bool,
    pub his: bool,
    /// Instantiated once per alarm input/output or encoder input.
    pub numbered: Numbered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbered {
    Once,
    PerAlarmInput,
    PerAlarmOutput,
    PerVideoInput,
}

impl PointTemplate {
    pub fn object_type(&self) -> ObjectType {
        match (self.kind, self.writable) {
            (ValueKind::Bool, true) => ObjectType::BinaryOutput,
            (ValueKind::Bool, false) => ObjectType::BinaryInput,
            (ValueKind::Number, _) => ObjectType::AnalogInput,
        }
    }
}

const fn t(
    key: &'static str,
    dis: &'static str,
    class: Class,
    markers: &'static [&'static str],
    kind: ValueKind,
    unit: Option<Unit>,
    his: bool,
) -> PointTemplate {
    PointTemplate {
        key,
        dis,
        class,
        markers,
        kind,
        unit,
        writable: false,
        his,
        numbered: Numbered::Once,
    }
}

const fn numbered(mut p: PointTemplate, n: Numbered) -> PointTemplate {
    p.numbered = n;
    p
}

const fn writable(mut p: PointTemplate) -> PointTemplate {
    p.writable = true;
    p
}

use Class::{Brick, Vgw};
use ValueKind::{Bool, Number};

pub const ONLINE: PointTemplate = t(
    "online",
    "Online",
    Vgw("Online_Status"),
    &["online"],
    Bool,
    None,
    true,
);
pub const ALARM_IN: PointTemplate = numbered(
    t(
        "alarm-in",
        "Alarm input",
        Vgw("External_Alarm_Input"),
        &["alarm", "input"],
        Bool,
        None,
        true,
    ),
    Numbered::PerAlarmInput,
);
pub const ALARM_OUT: PointTemplate = numbered(
    writable(t(
        "alarm-out",
        "Alarm output",
        Brick("Relay_Command"),
        &["relay", "output"],
        Bool,
        None,
        true,
    )),
    Numbered::PerAlarmOutput,
);
/// What the relay reports back: differs from `alarm-out` while a command
/// has not (yet) been carried out.
pub const ALARM_OUT_STATE: PointTemplate = numbered(
    t(
        "alarm-out-state",
        "Alarm output state",
        Vgw("Relay_Feedback_Status"),
        &["relay", "output"],
        Bool,
        None,
        true,
    ),
    Numbered::PerAlarmOutput,
);
pub const STORAGE_USAGE: PointTemplate = t(
    "storage-usage",
    "Storage usage",
    Vgw("Storage_Usage_Sensor"),
    &["storage", "usage"],
    Number,
    Some(PERCENT),
    true,
);
pub const DISK_FAULT: PointTemplate = t(
    "disk-fault",
    "Disk fault",
    Vgw("Disk_Fault_Alarm"),
    &["disk", "fault", "alarm"],
    Bool,
    None,
    true,
);
pub const RECORDING_OK: PointTemplate = t(
    "recording-ok",
    "Recording OK",
    Vgw("Recording_Status"),
    &["recording"],
    Bool,
    None,
    true,
);
pub const INGEST_BITRATE: PointTemplate = t(
    "ingest-bitrate",
    "Ingest bitrate",
    Vgw("Bitrate_Sensor"),
    &["bitrate"],
    Number,
    Some(MBPS),
    true,
);
pub const CHANNELS_IN_USE: PointTemplate = t(
    "channels-in-use",
    "Channels in use",
    Vgw("Channel_Count_Sensor"),
    &["channel", "count"],
    Number,
    Some(COUNT),
    false,
);
pub const TIME_OFFSET: PointTemplate = t(
    "time-offset",
    "Clock offset",
    Vgw("Time_Offset_Sensor"),
    &["time", "offset"],
    Number,
    Some(MILLISEC),
    true,
);
pub const TIME_SYNC_ALARM: PointTemplate = t(
    "time-sync-alarm",
    "Time sync alarm",
    Vgw("Time_Sync_Alarm"),
    &["time", "sync", "alarm"],
    Bool,
    None,
    true,
);
pub const TEMP: PointTemplate = t(
    "temp",
    "Temperature",
    Brick("Temperature_Sensor"),
    &["temp"],
    Number,
    Some(DEG_C),
    true,
);
pub const LAST_FRAME_AGE: PointTemplate = t(
    "last-frame-age",
    "Last frame age",
    Vgw("Frame_Age_Sensor"),
    &["frame", "age"],
    Number,
    Some(SEC),
    false,
);
pub const BITRATE: PointTemplate = t(
    "bitrate",
    "Bitrate",
    Vgw("Bitrate_Sensor"),
    &["bitrate"],
    Number,
    Some(MBPS),
    true,
);
pub const FPS_POINT: PointTemplate = t(
    "fps",
    "Frame rate",
    Vgw("Frame_Rate_Sensor"),
    &["frame", "rate"],
    Number,
    Some(FPS),
    false,
);
pub const VIDEO_LOSS: PointTemplate = t(
    "video-loss",
    "Video loss",
    Vgw("Video_Loss_Alarm"),
    &["video", "loss", "alarm"],
    Bool,
    None,
    true,
);
pub const VIDEO_LOSS_N: PointTemplate = numbered(VIDEO_LOSS, Numbered::PerVideoInput);
pub const MOTION: PointTemplate = t(
    "motion",
    "Motion",
    Brick("Motion_Sensor"),
    &["motion"],
    Bool,
    None,
    true,
);
pub const TAMPER: PointTemplate = t(
    "tamper",
    "Tamper",
    Vgw("Tamper_Alarm"),
    &["tamper", "alarm"],
    Bool,
    None,
    true,
);
pub const RETENTION_DAYS: PointTemplate = t(
    "retention-days",
    "Retention achieved",
    Vgw("Retention_Achieved_Sensor"),
    &["retention"],
    Number,
    Some(DAY),
    false,
);
pub const RETENTION_FORECAST: PointTemplate = t(
    "retention-forecast",
    "Retention forecast",
    Vgw("Retention_Forecast_Sensor"),
    &["retention", "forecast"],
    Number,
    Some(DAY),
    false,
);
pub const ON_BATTERY: PointTemplate = t(
    "on-battery",
    "On battery",
    Brick("Power_Loss_Alarm"),
    &["onBattery", "alarm"],
    Bool,
    None,
    true,
);
pub const BATTERY_CHARGE: PointTemplate = t(
    "battery-charge",
    "Charge",
    Vgw("Battery_State_Of_Charge_Sensor"),
    &["charge"],
    Number,
    Some(PERCENT),
    true,
);
pub const RUNTIME: PointTemplate = t(
    "runtime",
    "Runtime remaining",
    Vgw("Runtime_Remaining_Sensor"),
    &["runtime"],
    Number,
    Some(MINUTE),
    true,
);
pub const LOAD: PointTemplate = t(
    "load",
    "Load",
    Vgw("Load_Percent_Sensor"),
    &["load"],
    Number,
    Some(PERCENT),
    true,
);
pub const INPUT_VOLTAGE: PointTemplate = t(
    "input-voltage",
    "Input voltage",
    Brick("Voltage_Sensor"),
    &["elec", "volt", "input"],
    Number,
    Some(VOLT),
    true,
);
pub const OUTPUT_VOLTAGE: PointTemplate = t(
    "output-voltage",
    "Output voltage",
    Brick("Output_Voltage_Sensor"),
    &["elec", "volt", "output"],
    Number,
    Some(VOLT),
    true,
);
pub const BATTERY_VOLTAGE: PointTemplate = t(
    "battery-voltage",
    "Voltage",
    Brick("Battery_Voltage_Sensor"),
    &["elec", "volt"],
    Number,
    Some(VOLT),
    true,
);
pub const LOW_BATTERY: PointTemplate = t(
    "low-battery",
    "Low alarm",
    Brick("Low_Battery_Alarm"),
    &["low", "alarm"],
    Bool,
    None,
    true,
);
pub const REPLACE_BATTERY: PointTemplate = t(
    "replace-battery",
    "Replace alarm",
    Vgw("Replace_Battery_Alarm"),
    &["replace", "alarm"],
    Bool,
    None,
    true,
);
pub const FAULT: PointTemplate = t(
    "fault",
    "Fault",
    Vgw("Equipment_Fault_Alarm"),
    &["fault", "alarm"],
    Bool,
    None,
    true,
);
pub const STRATUM: PointTemplate = t(
    "stratum",
    "Stratum",
    Vgw("Stratum_Sensor"),
    &["ntp", "stratum"],
    Number,
    Some(COUNT),
    false,
);
pub const NTP_OFFSET: PointTemplate = t(
    "offset",
    "Offset",
    Vgw("Time_Offset_Sensor"),
    &["ntp", "time", "offset"],
    Number,
    Some(MILLISEC),
    true,
);
pub const ROOT_DISTANCE: PointTemplate = t(
    "root-distance",
    "Root distance",
    Vgw("Root_Distance_Sensor"),
    &["ntp", "distance"],
    Number,
    Some(MILLISEC),
    false,
);
pub const SYNC_ALARM: PointTemplate = t(
    "sync-alarm",
    "Unsynchronised / leap alarm",
    Vgw("Time_Sync_Alarm"),
    &["ntp", "sync", "alarm"],
    Bool,
    None,
    true,
);
pub const DISK_USAGE: PointTemplate = t(
    "disk-usage",
    "Recording disk usage",
    Vgw("Recording_Disk_Usage_Sensor"),
    &["storage", "usage"],
    Number,
    Some(PERCENT),
    true,
);
pub const STORAGE_WRITE_ERROR: PointTemplate = t(
    "storage-write-error",
    "Recording write error",
    Vgw("Storage_Write_Error_Alarm"),
    &["storage", "fault", "alarm"],
    Bool,
    None,
    true,
);
pub const OLDEST_RECORDING: PointTemplate = t(
    "oldest-recording",
    "Oldest recording age",
    Vgw("Oldest_Recording_Age_Sensor"),
    &["retention"],
    Number,
    Some(DAY),
    false,
);

/// The templates instantiated for one kind of equipment.
pub fn for_kind(kind: EquipKind) -> &'static [&'static PointTemplate] {
    use EquipKind::*;
    match kind {
        Nvr | HybridRecorder | Dvr => &[
            &ONLINE,
            &ALARM_IN,
            &ALARM_OUT,
            &ALARM_OUT_STATE,
            &STORAGE_USAGE,
            &DISK_FAULT,
            &RECORDING_OK,
            &INGEST_BITRATE,
            &CHANNELS_IN_USE,
            &TIME_OFFSET,
            &TIME_SYNC_ALARM,
            &TEMP,
        ],
        IpCamera => &[
            &ONLINE,
            &RECORDING_OK,
            &LAST_FRAME_AGE,
            &BITRATE,
            &FPS_POINT,
            &VIDEO_LOSS,
            &MOTION,
            &TAMPER,
            &RETENTION_DAYS,
            &RETENTION_FORECAST,
            &ALARM_IN,
        ],
        AnalogCamera => &[&RECORDING_OK, &VIDEO_LOSS, &RETENTION_DAYS],
        Encoder => &[&ONLINE, &VIDEO_LOSS_N],
        Ups => &[
            &ONLINE,
            &ON_BATTERY,
            &RUNTIME,
            &LOAD,
            &INPUT_VOLTAGE,
            &OUTPUT_VOLTAGE,
            &FAULT,
        ],
        // The battery is a part of its UPS; its points hang off it so that
        // Haystack's `battery` equip marker never lands on a point.
        Battery => &[
            &BATTERY_CHARGE,
            &BATTERY_VOLTAGE,
            &LOW_BATTERY,
            &REPLACE_BATTERY,
        ],
        NtpServer => &[&ONLINE, &STRATUM, &NTP_OFFSET, &ROOT_DISTANCE, &SYNC_ALARM],
        Pdu | PoeSwitch | VmsServer | Workstation => &[&ONLINE],
        Gateway => &[&DISK_USAGE, &OLDEST_RECORDING, &STORAGE_WRITE_ERROR],
        StorageDrive | Relay => &[],
    }
}
