//! The TOML site file, as serde reads it. Field names are the config keys;
//! `docs/config.md` documents every one. Unknown keys are collected (not
//! silently ignored) by `config::load`, which also owns line numbers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SiteFile {
    pub site: SiteSection,
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub sparql: SparqlSection,
    #[serde(default)]
    pub bacnet: BacnetSection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub recording: RecordingSection,
    #[serde(default)]
    pub mqtt: MqttSection,
    #[serde(default)]
    pub building: Vec<BuildingCfg>,
    #[serde(default)]
    pub floor: Vec<FloorCfg>,
    #[serde(default)]
    pub space: Vec<SpaceCfg>,
    #[serde(default)]
    pub nvr: Vec<RecorderCfg>,
    #[serde(default)]
    pub dvr: Vec<RecorderCfg>,
    #[serde(default)]
    pub ip_camera: Vec<IpCameraCfg>,
    #[serde(default)]
    pub analog_camera: Vec<AnalogCameraCfg>,
    #[serde(default)]
    pub encoder: Vec<EncoderCfg>,
    #[serde(default)]
    pub ups: Vec<UpsCfg>,
    #[serde(default)]
    pub pdu: Vec<PlainEquipCfg>,
    #[serde(default)]
    pub poe_switch: Vec<PoeSwitchCfg>,
    #[serde(default)]
    pub ntp_server: Vec<NtpServerCfg>,
    #[serde(default)]
    pub vms_server: Vec<PlainEquipCfg>,
    #[serde(default)]
    pub workstation: Vec<PlainEquipCfg>,
    #[serde(default)]
    pub point: Vec<PointOverrideCfg>,
    #[serde(default)]
    pub user: Vec<UserCfg>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SiteSection {
    pub id: String,
    pub name: String,
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Defaults to `urn:vgw:<id>/`.
    pub base_iri: Option<String>,
    pub address: Option<String>,
}

fn default_tz() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct GatewaySection {
    pub name: Option<String>,
    /// BACnet device instance of the gateway (0..=4194302).
    pub bacnet_device_instance: Option<u32>,
    /// Serve the model (SPARQL query, topology API) without login. Only for
    /// closed networks; video, writes and graph edits always need a login.
    #[serde(default)]
    pub anonymous_read: bool,
    /// TOML file holding `[credentials.NAME] username/password`; relative
    /// paths are relative to the site file.
    pub secrets_file: Option<String>,
    pub space: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct HttpSection {
    pub listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Bearer token lifetime in seconds.
    pub token_ttl_s: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SparqlSection {
    pub timeout_ms: Option<u64>,
    pub max_results: Option<usize>,
    /// Role allowed to POST /sparql/update; absent = updates disabled.
    pub update_role: Option<String>,
}

/// The gateway's BACnet/IP device (`docs/bacnet.md`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct BacnetSection {
    /// Serve BACnet/IP at all (default true).
    pub enabled: Option<bool>,
    /// `ADDR:PORT` of the UDP socket (default `0.0.0.0:47808`).
    pub listen: Option<String>,
    /// Directed broadcast address for I-Am (default 255.255.255.255).
    pub broadcast: Option<String>,
    /// `ADDR:PORT` of a BBMD to register with as a foreign device.
    pub bbmd: Option<String>,
    /// Foreign-device registration time-to-live in seconds (default 300).
    pub bbmd_ttl_s: Option<u16>,
    /// Name of a secrets-file credential whose password a BMS must give
    /// for DeviceCommunicationControl; without one, DCC is refused.
    pub dcc_credential: Option<String>,
    /// Where alarm and event notifications go.
    #[serde(default)]
    pub alarm_recipient: Vec<AlarmRecipientCfg>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct AlarmRecipientCfg {
    /// `ADDR:PORT` of the BMS (BACnet/IP address of the recipient).
    pub address: Option<String>,
    /// Or the recipient's device instance (found by Who-Is).
    pub device: Option<u32>,
    /// Notification classes delivered (default: all of them).
    #[serde(default)]
    pub classes: Vec<u32>,
    /// ConfirmedEventNotification (default) or Unconfirmed.
    pub confirmed: Option<bool>,
    /// Process identifier the BMS expects (default 0).
    pub process_id: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct BuildingCfg {
    pub id: String,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct FloorCfg {
    pub id: String,
    pub building: String,
    pub level: i32,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SpaceCfg {
    pub id: String,
    pub floor: Option<String>,
    /// Outdoor areas hang off a building instead of a floor.
    pub building: Option<String>,
    pub kind: String,
    pub name: Option<String>,
}

/// Declares an equipment table: the keys every piece of equipment has, plus
/// the kind's own. (Not `#[serde(flatten)]`: flatten hides unknown keys.)
macro_rules! equipment_table {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize, Default)]
        pub struct $name {
            pub id: String,
            pub name: Option<String>,
            pub space: Option<String>,
            pub fed_by: Option<String>,
            pub time_source: Option<String>,
            pub managed_by: Option<String>,
            pub manufacturer: Option<String>,
            pub model: Option<String>,
            pub supply_voltage: Option<String>,
            #[serde(default)]
            pub protocols: Vec<String>,
            /// Name of a credential in the secrets file or environment.
            pub credential: Option<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }
        impl EquipmentTable for $name {
            fn common(&self) -> CommonRef<'_> {
                CommonRef {
                    id: &self.id,
                    name: self.name.as_deref(),
                    space: self.space.as_deref(),
                    fed_by: self.fed_by.as_deref(),
                    time_source: self.time_source.as_deref(),
                    managed_by: self.managed_by.as_deref(),
                    manufacturer: self.manufacturer.as_deref(),
                    model: self.model.as_deref(),
                    supply_voltage: self.supply_voltage.as_deref(),
                    protocols: &self.protocols,
                    credential: self.credential.as_deref(),
                }
            }
        }
    };
}

/// The keys every equipment table shares, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct CommonRef<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub space: Option<&'a str>,
    pub fed_by: Option<&'a str>,
    pub time_source: Option<&'a str>,
    pub managed_by: Option<&'a str>,
    pub manufacturer: Option<&'a str>,
    pub model: Option<&'a str>,
    pub supply_voltage: Option<&'a str>,
    pub protocols: &'a [String],
    pub credential: Option<&'a str>,
}

pub trait EquipmentTable {
    fn common(&self) -> CommonRef<'_>;
}

equipment_table!(
    /// NVR, DVR and hybrid recorders.
    RecorderCfg {
        /// compact | rack | high_capacity | hybrid | edge
        pub variant: Option<String>,
        pub channels: u32,
        #[serde(default)]
        pub alarm_inputs: u32,
        #[serde(default)]
        pub alarm_outputs: u32,
        pub storage_tb: Option<f64>,
        pub disks: Option<u32>,
        pub raid: Option<String>,
        #[serde(default)]
        pub redundant_power: bool,
        pub operating_temp: Option<Vec<f64>>,
        pub operating_humidity: Option<Vec<f64>>,
        pub max_ingest_mbps: Option<f64>,
        pub max_resolution: Option<String>,
        #[serde(default)]
        pub codecs: Vec<String>,
        #[serde(default)]
        pub video_outputs: Vec<String>,
        pub streams_to: Option<String>,
        pub onvif: Option<String>,
    }
);

equipment_table!(IpCameraCfg {
    pub streams_to: Option<String>,
    /// RTSP URL of the stream the gateway records (default: the one the
    /// camera's ONVIF GetStreamUri reports).
    pub rtsp: Option<String>,
    /// `continuous`, `on_alarm` or `off` (default: `[recording] mode`).
    pub record: Option<String>,
    /// Days of this camera's video kept (default `[recording] retention_days`).
    pub retention_days: Option<u32>,
    /// Size cap of this camera's video in GB.
    pub max_gb: Option<f64>,
    pub rtsp_sub: Option<String>,
    pub onvif: Option<String>,
    pub codec: Option<String>,
    pub max_resolution: Option<String>,
    #[serde(default)]
    pub alarm_inputs: u32,
});

equipment_table!(AnalogCameraCfg {
    pub streams_to: Option<String>,
    /// Input number on the encoder/DVR/hybrid recorder (1-based).
    pub input: Option<u32>,
});

equipment_table!(EncoderCfg {
    pub inputs: u32,
    pub streams_to: Option<String>,
    pub codec: Option<String>,
    pub onvif: Option<String>,
});

equipment_table!(UpsCfg {
    pub capacity_va: Option<f64>,
    /// Modbus TCP endpoint `host:port`.
    pub modbus: Option<String>,
    pub modbus_unit: Option<u8>,
    /// Register map name (`apc`, `socomec`) or a path to a map file.
    pub map: Option<String>,
});

equipment_table!(PoeSwitchCfg {
    pub ports: Option<u32>,
    pub poe_budget_w: Option<f64>,
});

equipment_table!(NtpServerCfg {
    /// `host:port` the NTP monitor polls.
    pub address: Option<String>,
});

equipment_table!(PlainEquipCfg {});

/// Per-point settings over the template defaults.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PointOverrideCfg {
    /// `<equipment id>.<point key>`, e.g. `nvr-1.alarm-in-3`.
    pub id: String,
    pub name: Option<String>,
    /// Pin the BACnet instance number of this point's object.
    pub bacnet_instance: Option<u32>,
    /// Record the value every N seconds instead of on every change.
    pub his_interval_s: Option<u32>,
    /// Keep this point's history N days (default `[history] retention_days`).
    pub his_retention_days: Option<u32>,
    /// Alarm inputs: what is wired to the input, as a Brick point class
    /// (`Contact_Sensor` for a door contact, `Motion_Sensor`, ...).
    pub brick_class: Option<String>,
    /// Alarm inputs: the state without alarm, `inactive` (default) or
    /// `active` (a normally-active loop alarms when it opens).
    pub normal: Option<String>,
    /// Alarm inputs: the BACnet notification class its alarms go to.
    pub notification_class: Option<u32>,
    /// Alarm inputs: cameras whose recordings an alarm bookmarks.
    #[serde(default)]
    pub cameras: Vec<String>,
}

/// Video recording (`docs/recording.md`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct RecordingSection {
    /// Record at all (default true: every camera with an RTSP URL).
    pub enabled: Option<bool>,
    /// `continuous` (default) or `on_alarm` (pre/post-alarm seconds only).
    pub mode: Option<String>,
    /// Days kept per camera unless the camera says otherwise (default 30).
    pub retention_days: Option<u32>,
    /// Size cap per camera in GB (default none).
    pub max_gb_per_camera: Option<f64>,
    /// Free space kept on the recording disk, % (default 5): the oldest
    /// unlocked recordings go first when it runs short.
    pub min_free_percent: Option<f64>,
    /// Cap on the whole recording directory in GB (default none: the disk).
    pub disk_budget_gb: Option<f64>,
    /// Seconds before and after an alarm a bookmark covers (default 10/30).
    pub pre_alarm_s: Option<u32>,
    pub post_alarm_s: Option<u32>,
    /// Days an alarm bookmark's range is locked against retention (default 30).
    pub lock_days: Option<u32>,
}

/// Publishing to an MQTT broker (`docs/mqtt.md`). Off without `broker`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct MqttSection {
    /// `mqtt://host:1883` or `mqtts://host:8883` (no password in the URL).
    pub broker: Option<String>,
    /// First topic level (default `vgw`).
    pub prefix: Option<String>,
    /// Fixed client id, so the broker keeps the session (default `vgw-<site id>`).
    pub client_id: Option<String>,
    /// Name of the broker login in the secrets file.
    pub credential: Option<String>,
    /// PEM CA bundle for `mqtts://` (default: the system's).
    pub ca_file: Option<String>,
    /// Point ids (`*` matches any run of characters) whose `/set` topic is
    /// obeyed (default none: MQTT only reads).
    #[serde(default)]
    pub set_points: Vec<String>,
    /// Priority level a `/set` writes at (default 10).
    pub set_priority: Option<u8>,
    /// Home Assistant discovery (default true).
    pub home_assistant: Option<bool>,
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: Option<String>,
    /// Events kept while the broker is away; older ones are dropped and
    /// counted (default 1000).
    pub queue_limit: Option<usize>,
}

/// Point history defaults (`docs/config.md`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct HistorySection {
    /// Days of history kept per point unless the point says otherwise
    /// (default 400: a year plus the same weeks of the year before).
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct UserCfg {
    pub name: String,
    /// viewer | operator | admin
    pub role: String,
    /// SCRAM-SHA-256 credential: base64 salt, iteration count, base64
    /// StoredKey and ServerKey (RFC 5802). Never a plaintext password.
    pub salt: String,
    pub iterations: u32,
    pub stored_key: String,
    pub server_key: String,
}
