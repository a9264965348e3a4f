//! The site model: what exists and how it is related (DESIGN.md §1, hub 1).
//! Built once from a validated config; every protocol view is projected
//! from it and nothing is invented separately.

pub mod build;
pub mod instances;
pub mod kinds;
pub mod templates;

pub use build::{build, load_site};
use kinds::EquipKind;
use serde::Serialize;
use std::collections::HashMap;
use templates::{ObjectType, PointTemplate};

#[derive(Debug)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub base_iri: String,
    pub address: Option<String>,
    pub locations: Vec<Location>,
    pub equipment: Vec<Equipment>,
    pub points: Vec<Point>,
    pub gateway_device_instance: u32,
    /// Structured View instance per site/location/equipment id (the site
    /// itself under `VIEW_OF_SITE`), stable like point numbers.
    pub views: HashMap<String, u32>,
    pub settings: Settings,
    index: HashMap<String, Entry>,
}

/// Gateway-wide settings that are not part of the building model.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub anonymous_read: bool,
    pub http_listen: Option<String>,
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub token_ttl_s: u64,
    pub sparql_timeout_ms: u64,
    pub sparql_max_results: usize,
    pub sparql_update_role: Option<kinds::Role>,
    pub users: Vec<crate::config::UserCfg>,
    pub secrets_file: Option<std::path::PathBuf>,
    pub bacnet: BacnetSettings,
    pub recording: RecordingSettings,
    /// `None`: no broker configured, MQTT off.
    pub mqtt: Option<MqttSettings>,
}

/// `[mqtt]`, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    pub broker: String,
    pub prefix: String,
    pub client_id: String,
    pub credential: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    pub set_points: Vec<String>,
    pub set_priority: u8,
    pub home_assistant: bool,
    pub discovery_prefix: String,
    pub queue_limit: usize,
}

impl MqttSettings {
    /// The defaults for `broker` and site `site_id`.
    pub fn new(broker: &str, site_id: &str) -> Self {
        MqttSettings {
            broker: broker.to_string(),
            prefix: "vgw".into(),
            client_id: format!("vgw-{site_id}"),
            credential: None,
            ca_file: None,
            set_points: Vec::new(),
            set_priority: 10,
            home_assistant: true,
            discovery_prefix: "homeassistant".into(),
            queue_limit: 1000,
        }
    }
}

/// How a camera is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    Continuous,
    /// Only the pre/post-alarm window around an alarm of a linked point.
    OnAlarm,
    Off,
}

impl RecordMode {
    pub fn parse(s: &str) -> Option<RecordMode> {
        match s {
            "continuous" => Some(RecordMode::Continuous),
            "on_alarm" => Some(RecordMode::OnAlarm),
            "off" => Some(RecordMode::Off),
            _ => None,
        }
    }
}

/// `[recording]`, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSettings {
    pub enabled: bool,
    pub mode: RecordMode,
    pub retention_days: u32,
    pub max_bytes_per_camera: Option<u64>,
    pub min_free_percent: f64,
    pub disk_budget_bytes: Option<u64>,
    pub pre_alarm_s: u32,
    pub post_alarm_s: u32,
    pub lock_days: u32,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            enabled: true,
            mode: RecordMode::Continuous,
            retention_days: 30,
            max_bytes_per_camera: None,
            min_free_percent: 5.0,
            disk_budget_bytes: None,
            pre_alarm_s: 10,
            post_alarm_s: 30,
            lock_days: 30,
        }
    }
}

/// One camera's recording settings (`[[ip_camera]] rtsp/record/...`).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRecording {
    /// The stream recorded; `None`: ask the camera over ONVIF.
    pub rtsp: Option<String>,
    pub mode: RecordMode,
    pub retention_days: u32,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Location(usize),
    Equipment(usize),
    Point(usize),
}

/// `[bacnet]`, validated (addresses parsed, defaults filled in).
#[derive(Debug, Clone)]
pub struct BacnetSettings {
    pub enabled: bool,
    pub listen: std::net::SocketAddrV4,
    pub broadcast: std::net::Ipv4Addr,
    /// BBMD to register with as a foreign device, and the registration TTL (s).
    pub bbmd: Option<(std::net::SocketAddrV4, u16)>,
    /// Secrets-file credential holding the DeviceCommunicationControl password.
    pub dcc_credential: Option<String>,
    pub recipients: Vec<AlarmRecipient>,
}

impl Default for BacnetSettings {
    fn default() -> Self {
        BacnetSettings {
            enabled: true,
            listen: std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 47808),
            broadcast: std::net::Ipv4Addr::BROADCAST,
            bbmd: None,
            dcc_credential: None,
            recipients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecipientTarget {
    Address(std::net::SocketAddrV4),
    Device(u32),
}

/// One entry of the notification classes' recipient lists.
#[derive(Debug, Clone)]
pub struct AlarmRecipient {
    pub target: RecipientTarget,
    /// Empty: every notification class.
    pub classes: Vec<u32>,
    pub confirmed: bool,
    pub process_id: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub id: String,
    pub name: String,
    pub kind: LocationKind,
    /// None for buildings (their parent is the site).
    pub parent: Option<String>,
    /// Street address (buildings).
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum LocationKind {
    Building,
    Floor { level: i32 },
    Space { kind: &'static str },
}

/// A datasheet characteristic, projected to both views.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PropValue {
    Int(i64),
    Num(f64),
    Str(String),
    Bool(bool),
    List(Vec<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct Equipment {
    pub id: String,
    pub name: String,
    pub kind: EquipKind,
    pub space: Option<String>,
    /// Parts (disks, relays, batteries) name the equipment they belong to.
    pub part_of: Option<String>,
    pub fed_by: Option<String>,
    pub streams_to: Option<String>,
    pub time_source: Option<String>,
    pub managed_by: Option<String>,
    /// Property name (see `model::build::PROPS`) and value.
    pub props: Vec<(&'static str, PropValue)>,
    /// Indexes into `Site::points`.
    #[serde(skip)]
    pub points: std::ops::Range<usize>,
    /// Name of the credential for this device; used by drivers, never projected.
    #[serde(skip)]
    pub credential: Option<String>,
    /// Where its driver reaches it (`host:port`), for drivers that poll.
    #[serde(skip)]
    pub driver_address: Option<String>,
    /// Modbus TCP endpoint of a UPS (`[[ups]] modbus`, `modbus_unit`, `map`).
    #[serde(skip)]
    pub modbus: Option<ModbusTarget>,
    /// ONVIF device service URL (`onvif = "http://host:port/onvif/device_service"`).
    #[serde(skip)]
    pub onvif: Option<String>,
    /// Cameras: how (and whether) the gateway records it.
    #[serde(skip)]
    pub recording: Option<CameraRecording>,
}

/// Where and how a UPS is read over Modbus TCP.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusTarget {
    /// `host:port` as written in the site file.
    pub address: String,
    /// Modbus unit (slave) id; default 1.
    pub unit: u8,
    /// Register map: a built-in name (`apc`, `socomec`) or a file path,
    /// already resolved relative to the site file.
    pub map: String,
}

#[derive(Debug, Clone)]
pub struct Point {
    /// `<equipment id>.<key>`
    pub id: String,
    pub key: String,
    pub equip: String,
    pub name: String,
    pub template: &'static PointTemplate,
    pub object_type: ObjectType,
    pub instance: u32,
    /// Alarm limits (low, high) for analog points with an operating range.
    pub limits: Option<(f64, f64)>,
    /// History: a sample every N seconds (`None`: on every change).
    pub his_interval_s: Option<u32>,
    /// History kept this many days.
    pub his_retention_days: u32,
    /// The Brick class (the template's unless the site file says otherwise).
    pub class: templates::Class,
    /// How it alarms, where the site file overrides the template default.
    pub alarm: AlarmOverride,
    /// Cameras an alarm of this point bookmarks (ids of camera equipment).
    pub cameras: Vec<String>,
}

/// Per-point alarm settings from the site file (`[[point]] normal`,
/// `notification_class`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmOverride {
    /// The value that is an alarm (for a normally-active input: `false`).
    pub alarm_value: Option<bool>,
    pub notification_class: Option<u32>,
}

impl Point {
    /// BACnet object name: `[A-Za-z0-9_-]` only, derived from the id.
    pub fn object_name(&self) -> String {
        self.id.replace('.', "_")
    }
}

impl Site {
    pub fn equipment(&self, id: &str) -> Option<&Equipment> {
        match self.index.get(id)? {
            Entry::Equipment(i) => Some(&self.equipment[*i]),
            _ => None,
        }
    }
    pub fn location(&self, id: &str) -> Option<&Location> {
        match self.index.get(id)? {
            Entry::Location(i) => Some(&self.locations[*i]),
            _ => None,
        }
    }
    pub fn point(&self, id: &str) -> Option<&Point> {
        match self.index.get(id)? {
            Entry::Point(i) => Some(&self.points[*i]),
            _ => None,
        }
    }
    pub fn points_of<'a>(&'a self, e: &'a Equipment) -> &'a [Point] {
        &self.points[e.points.clone()]
    }
    /// The IRI of any entity id.
    pub fn iri(&self, id: &str) -> String {
        format!("{}{id}", self.base_iri)
    }
    /// The id behind an IRI of this site, if it is one.
    pub fn id_of_iri<'a>(&self, iri: &'a str) -> Option<&'a str> {
        iri.strip_prefix(self.base_iri.as_str())
    }
    /// Locations from the equipment's room up to the building.
    pub fn location_chain(&self, space: Option<&str>) -> Vec<&Location> {
        let mut out = Vec::new();
        let mut cur = space;
        while let Some(id) = cur {
            let Some(l) = self.location(id) else { break };
            out.push(l);
            cur = l.parent.as_deref();
            if out.len() > 8 {
                break;
            }
        }
        out
    }
}
