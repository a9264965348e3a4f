//! Config → model: locations, equipment with datasheet properties and parts,
//! points from templates with stable BACnet numbers.

use super::instances::InstanceRegistry;
use super::kinds::{EquipKind, Role, SPACE_KINDS};
use super::templates::{self, Numbered};
use super::*;
use crate::config::locate::KeyPath;
use crate::config::{self, ConfigError, ConfigErrors, Loaded, RecorderCfg};
use std::path::Path;

/// A datasheet property: its vgw ontology property and its Haystack tag.
#[derive(Debug, PartialEq, Eq)]
pub struct PropDef {
    pub vgw: &'static str,
    pub haystack: &'static str,
}

macro_rules! props {
    ($($name:ident = $vgw:literal / $hs:literal;)*) => {
        $(pub const $name: PropDef = PropDef { vgw: $vgw, haystack: $hs };)*
        /// Every datasheet property, for docs and the ontology check.
        pub const PROPS: &[&PropDef] = &[$(&$name),*];
    };
}

props! {
    CHANNELS = "channelCount" / "channels";
    ALARM_INPUTS = "alarmInputCount" / "alarmInputs";
    ALARM_OUTPUTS = "alarmOutputCount" / "alarmOutputs";
    STORAGE_TB = "storageCapacityTB" / "storageTB";
    RAID = "raidLevel" / "raidLevel";
    REDUNDANT_POWER = "redundantPower" / "redundantPower";
    TEMP_MIN = "operatingTempMin" / "operatingTempMin";
    TEMP_MAX = "operatingTempMax" / "operatingTempMax";
    HUMIDITY_MIN = "operatingHumidityMin" / "operatingHumidityMin";
    HUMIDITY_MAX = "operatingHumidityMax" / "operatingHumidityMax";
    MAX_INGEST = "maxIngestMbps" / "maxIngestMbps";
    MAX_RESOLUTION = "maxResolution" / "maxResolution";
    CODECS = "supportedCodec" / "codecs";
    VIDEO_OUTPUTS = "videoOutputs" / "videoOutputs";
    PROTOCOLS = "protocol" / "protocols";
    SUPPLY_VOLTAGE = "supplyVoltage" / "supplyVoltage";
    VARIANT = "recorderVariant" / "recorderVariant";
    CODEC = "codec" / "codec";
    INPUTS = "inputCount" / "videoInputs";
    CAPACITY_VA = "capacityVA" / "capacityVA";
    PORTS = "portCount" / "ports";
    POE_BUDGET = "poeBudgetW" / "poeBudget";
    MODEL = "model" / "model";
    MANUFACTURER = "manufacturer" / "manufacturer";
}

type Props = Vec<(&'static str, PropValue)>;

/// Loads, validates and builds a site. With a data dir, BACnet instance
/// numbers come from (and are saved to) its registry.
pub fn load_site(path: &Path, data_dir: Option<&Path>) -> Result<Site, ConfigErrors> {
    let loaded = config::load(path)?;
    build_with_registry(&loaded, data_dir)
}

/// Builds from an already parsed file (the embedded demo site uses this).
pub fn build_with_registry(loaded: &Loaded, data_dir: Option<&Path>) -> Result<Site, ConfigErrors> {
    let mut registry = match data_dir {
        Some(d) => InstanceRegistry::open(d).map_err(|m| one_error(loaded, m))?,
        None => InstanceRegistry::ephemeral(),
    };
    let site = build(loaded, &mut registry)?;
    registry.save().map_err(|m| one_error(loaded, m))?;
    Ok(site)
}

fn one_error(loaded: &Loaded, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: loaded.path.display().to_string(),
        line: 0,
        key: String::new(),
        message,
    }])
}

pub fn build(loaded: &Loaded, registry: &mut InstanceRegistry) -> Result<Site, ConfigErrors> {
    let f = &loaded.file;
    let mut locations = Vec::new();
    for b in &f.building {
        locations.push(Location {
            id: b.id.clone(),
            name: b.name.clone().unwrap_or_else(|| b.id.clone()),
            kind: LocationKind::Building,
            parent: None,
            address: b.address.clone(),
        });
    }
    for fl in &f.floor {
        locations.push(Location {
            id: fl.id.clone(),
            name: fl
                .name
                .clone()
                .unwrap_or_else(|| format!("Floor {}", fl.level)),
            kind: LocationKind::Floor { level: fl.level },
            parent: Some(fl.building.clone()),
            address: None,
        });
    }
    for s in &f.space {
        let kind = SPACE_KINDS
            .iter()
            .find(|(k, _)| *k == s.kind)
            .map(|(k, _)| *k)
            .unwrap_or("room");
        locations.push(Location {
            id: s.id.clone(),
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            kind: LocationKind::Space { kind },
            parent: s.floor.clone().or_else(|| s.building.clone()),
            address: None,
        });
    }

    let mut equipment: Vec<Equipment> = Vec::new();
    let recorders: HashMap<&str, &RecorderCfg> = f
        .nvr
        .iter()
        .chain(&f.dvr)
        .map(|r| (r.id.as_str(), r))
        .collect();
    for d in config::validate_decls(f) {
        let c = d.common;
        let mut props = common_props(c);
        let mut driver_address: Option<String> = None;
        let mut modbus: Option<super::ModbusTarget> = None;
        let mut onvif: Option<String> = None;
        let mut recording: Option<super::CameraRecording> = None;
        let mut parts = Vec::new();
        match d.kind {
            EquipKind::Nvr | EquipKind::HybridRecorder | EquipKind::Dvr => {
                let r = recorders[c.id];
                recorder_props(r, &mut props);
                onvif = r.onvif.clone();
                for n in 1..=r.disks.unwrap_or(0) {
                    parts.push((
                        format!("{}.disk-{n}", c.id),
                        format!("{} disk {n}", display(c)),
                        EquipKind::StorageDrive,
                    ));
                }
                for n in 1..=r.alarm_outputs {
                    parts.push((
                        format!("{}.relay-{n}", c.id),
                        format!("{} relay {n}", display(c)),
                        EquipKind::Relay,
                    ));
                }
            }
            EquipKind::IpCamera => {
                let cam = &f.ip_camera[index_of(&d.path)];
                onvif = cam.onvif.clone();
                recording = Some(camera_recording(&f.recording, cam));
                opt_str(&mut props, &CODEC, &cam.codec);
                opt_str(&mut props, &MAX_RESOLUTION, &cam.max_resolution);
                if cam.alarm_inputs > 0 {
                    props.push((ALARM_INPUTS.vgw, PropValue::Int(cam.alarm_inputs.into())));
                }
            }
            EquipKind::Encoder => {
                let e = &f.encoder[index_of(&d.path)];
                onvif = e.onvif.clone();
                props.push((INPUTS.vgw, PropValue::Int(e.inputs.into())));
                opt_str(&mut props, &CODEC, &e.codec);
            }
            EquipKind::Ups => {
                let u = &f.ups[index_of(&d.path)];
                modbus = u.modbus.as_ref().map(|a| super::ModbusTarget {
                    address: a.clone(),
                    unit: u.modbus_unit.unwrap_or(1),
                    map: resolve_map(loaded, u.map.as_deref()),
                });
                if let Some(va) = u.capacity_va {
                    props.push((CAPACITY_VA.vgw, PropValue::Num(va)));
                }
                parts.push((
                    format!("{}.battery", c.id),
                    format!("{} battery", display(c)),
                    EquipKind::Battery,
                ));
            }
            EquipKind::NtpServer => {
                driver_address = f.ntp_server[index_of(&d.path)].address.clone();
            }
            EquipKind::PoeSwitch => {
                let s = &f.poe_switch[index_of(&d.path)];
                if let Some(p) = s.ports {
                    props.push((PORTS.vgw, PropValue::Int(p.into())));
                }
                if let Some(w) = s.poe_budget_w {
                    props.push((POE_BUDGET.vgw, PropValue::Num(w)));
                }
            }
            _ => {}
        }
        equipment.push(Equipment {
            id: c.id.to_string(),
            name: display(c),
            kind: d.kind,
            space: c.space.map(str::to_string),
            part_of: None,
            fed_by: c.fed_by.map(str::to_string),
            streams_to: d.streams_to.map(str::to_string),
            time_source: c.time_source.map(str::to_string),
            managed_by: c.managed_by.map(str::to_string),
            props,
            points: 0..0,
            credential: c.credential.map(str::to_string),
            driver_address,
            modbus,
            onvif,
            recording,
        });
        for (id, name, kind) in parts {
            equipment.push(Equipment {
                id,
                name,
                kind,
                space: c.space.map(str::to_string),
                part_of: Some(c.id.to_string()),
                fed_by: None,
                streams_to: None,
                time_source: None,
                managed_by: None,
                props: Vec::new(),
                points: 0..0,
                credential: None,
                driver_address: None,
                modbus: None,
                onvif: None,
                recording: None,
            });
        }
    }
    equipment.push(Equipment {
        id: "gateway".into(),
        name: f
            .gateway
            .name
            .clone()
            .unwrap_or_else(|| format!("{} video gateway", f.site.name)),
        kind: EquipKind::Gateway,
        space: f.gateway.space.clone(),
        part_of: None,
        fed_by: None,
        streams_to: None,
        time_source: None,
        managed_by: None,
        props: vec![(
            PROTOCOLS.vgw,
            PropValue::List(vec![
                "BACnet/IP".into(),
                "Haystack".into(),
                "SPARQL".into(),
                "MQTT".into(),
            ]),
        )],
        points: 0..0,
        credential: None,
        driver_address: None,
        modbus: None,
        onvif: None,
        recording: None,
    });

    let (points, errors) = instantiate_points(loaded, &mut equipment, &recorders, registry);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let views = match assign_views(&f.site.id, &locations, &equipment, registry) {
        Ok(v) => v,
        Err(m) => {
            return Err(ConfigErrors(vec![
                loaded.error(&KeyPath::root().key("site"), m)
            ]))
        }
    };
    let settings = settings(loaded);
    let mut site = Site {
        id: f.site.id.clone(),
        name: f.site.name.clone(),
        timezone: f.site.timezone.clone(),
        base_iri: f
            .site
            .base_iri
            .clone()
            .unwrap_or_else(|| format!("urn:vgw:{}/", f.site.id)),
        address: f.site.address.clone(),
        locations,
        equipment,
        points,
        gateway_device_instance: f.gateway.bacnet_device_instance.unwrap_or(599),
        views,
        settings,
        index: HashMap::new(),
    };
    site.index = index(&site);
    Ok(site)
}

/// Registry keys of Structured Views are `view:<id>`, which no point id can
/// be (point ids hold a `.`, and no id holds a `:`).
fn assign_views(
    site_id: &str,
    locations: &[super::Location],
    equipment: &[super::Equipment],
    registry: &mut InstanceRegistry,
) -> Result<HashMap<String, u32>, String> {
    let ids: Vec<&str> = std::iter::once(site_id)
        .chain(locations.iter().map(|l| l.id.as_str()))
        .chain(equipment.iter().map(|e| e.id.as_str()))
        .collect();
    let typed: Vec<(String, templates::ObjectType)> = ids
        .iter()
        .map(|id| (format!("view:{id}"), templates::ObjectType::StructuredView))
        .collect();
    let map = registry.assign_all(&typed, &HashMap::new())?;
    Ok(ids
        .iter()
        .map(|id| (id.to_string(), map[&format!("view:{id}")]))
        .collect())
}

/// A UPS register map: built-in names stay names; anything else is a path,
/// relative to the site file. No map given means `apc`.
pub(crate) fn resolve_map(loaded: &Loaded, map: Option<&str>) -> String {
    match map {
        None => "apc".into(),
        Some(m) if !m.contains('/') && !m.ends_with(".toml") => m.into(),
        Some(m) => loaded
            .path
            .parent()
            .map_or_else(|| m.into(), |d| d.join(m).to_string_lossy().into_owned()),
    }
}

fn display(c: crate::config::CommonRef<'_>) -> String {
    c.name.unwrap_or(c.id).to_string()
}

fn index_of(p: &KeyPath) -> usize {
    match p.0.last() {
        Some(crate::config::locate::Seg::Index(i)) => *i,
        _ => 0,
    }
}

fn opt_str(props: &mut Props, def: &PropDef, v: &Option<String>) {
    if let Some(s) = v {
        props.push((def.vgw, PropValue::Str(s.clone())));
    }
}

fn common_props(c: crate::config::CommonRef<'_>) -> Props {
    let mut props = Vec::new();
    if let Some(m) = c.manufacturer {
        props.push((MANUFACTURER.vgw, PropValue::Str(m.into())));
    }
    if let Some(m) = c.model {
        props.push((MODEL.vgw, PropValue::Str(m.into())));
    }
    if let Some(v) = c.supply_voltage {
        props.push((SUPPLY_VOLTAGE.vgw, PropValue::Str(v.into())));
    }
    if !c.protocols.is_empty() {
        props.push((PROTOCOLS.vgw, PropValue::List(c.protocols.to_vec())));
    }
    props
}

fn recorder_props(r: &RecorderCfg, props: &mut Props) {
    props.push((CHANNELS.vgw, PropValue::Int(r.channels.into())));
    props.push((ALARM_INPUTS.vgw, PropValue::Int(r.alarm_inputs.into())));
    props.push((ALARM_OUTPUTS.vgw, PropValue::Int(r.alarm_outputs.into())));
    if let Some(v) = &r.variant {
        props.push((VARIANT.vgw, PropValue::Str(v.clone())));
    }
    if let Some(tb) = r.storage_tb {
        props.push((STORAGE_TB.vgw, PropValue::Num(tb)));
    }
    opt_str(props, &RAID, &r.raid);
    props.push((REDUNDANT_POWER.vgw, PropValue::Bool(r.redundant_power)));
    if let Some(&[lo, hi]) = r.operating_temp.as_deref() {
        props.push((TEMP_MIN.vgw, PropValue::Num(lo)));
        props.push((TEMP_MAX.vgw, PropValue::Num(hi)));
    }
    if let Some(&[lo, hi]) = r.operating_humidity.as_deref() {
        props.push((HUMIDITY_MIN.vgw, PropValue::Num(lo)));
        props.push((HUMIDITY_MAX.vgw, PropValue::Num(hi)));
    }
    if let Some(m) = r.max_ingest_mbps {
        props.push((MAX_INGEST.vgw, PropValue::Num(m)));
    }
    opt_str(props, &MAX_RESOLUTION, &r.max_resolution);
    if !r.codecs.is_empty() {
        props.push((CODECS.vgw, PropValue::List(r.codecs.clone())));
    }
    if !r.video_outputs.is_empty() {
        props.push((VIDEO_OUTPUTS.vgw, PropValue::List(r.video_outputs.clone())));
    }
}

/// Brick classes an alarm input may be declared as (`[[point]]
/// brick_class`): what is typically wired to a recorder's alarm input.
pub const ALARM_INPUT_CLASSES: &[&str] = &[
    "Contact_Sensor",
    "Motion_Sensor",
    "Occupancy_Sensor",
    "Smoke_Detection_Alarm",
    "Fire_Alarm",
    "Leak_Alarm",
    "Water_Alarm",
    "Emergency_Alarm",
    "Temperature_Alarm",
];

/// Applies `[[point]] brick_class / normal / notification_class / cameras`
/// to one point; returns (key, message) for each key that does not fit.
fn alarm_mapping(
    o: &crate::config::schema::PointOverrideCfg,
    p: &mut Point,
    equipment: &[Equipment],
) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let is_alarm_input = p.template.key == "alarm-in";
    if let Some(c) = &o.brick_class {
        match ALARM_INPUT_CLASSES.iter().find(|k| **k == c.as_str()) {
            _ if !is_alarm_input => errors.push((
                "brick_class",
                format!(
                    "only alarm inputs take a Brick class; `{}` is a {}",
                    p.id, p.template.dis
                ),
            )),
            Some(k) => p.class = templates::Class::Brick(k),
            None => {
                let hint = config::did_you_mean(c, ALARM_INPUT_CLASSES)
                    .map(|b| format!("did you mean `{b}`? "))
                    .unwrap_or_default();
                errors.push((
                    "brick_class",
                    format!(
                        "`{c}` is not a Brick class for an alarm input; {hint}one of: {}",
                        ALARM_INPUT_CLASSES.join(", ")
                    ),
                ));
            }
        }
    }
    match (o.normal.as_deref(), is_alarm_input) {
        (None, _) => {}
        (Some(_), false) => errors.push((
            "normal",
            format!("only alarm inputs have a normal state; `{}` is a {}", p.id, p.template.dis),
        )),
        (Some("inactive"), true) => p.alarm.alarm_value = Some(true),
        (Some("active"), true) => p.alarm.alarm_value = Some(false),
        (Some(other), true) => errors.push((
            "normal",
            format!("`{other}`: expected `inactive` (alarm when active) or `active` (alarm when it opens)"),
        )),
    }
    if let Some(nc) = o.notification_class {
        if !crate::config::NOTIFICATION_CLASSES.contains(&nc) {
            errors.push((
                "notification_class",
                format!(
                    "notification class {nc} does not exist; the gateway has {}..={}",
                    crate::config::NOTIFICATION_CLASSES.start(),
                    crate::config::NOTIFICATION_CLASSES.end()
                ),
            ));
        } else if crate::points::alarms::definition(p).is_none() {
            errors.push((
                "notification_class",
                format!("point `{}` raises no alarms", p.id),
            ));
        } else {
            p.alarm.notification_class = Some(nc);
        }
    }
    if !o.cameras.is_empty() {
        if p.template.kind != templates::ValueKind::Bool || p.template.writable {
            errors.push((
                "cameras",
                format!(
                    "only binary inputs can bookmark cameras; `{}` is not one",
                    p.id
                ),
            ));
        }
        let cameras: Vec<&str> = equipment
            .iter()
            .filter(|e| matches!(e.kind, EquipKind::IpCamera | EquipKind::AnalogCamera))
            .map(|e| e.id.as_str())
            .collect();
        for c in &o.cameras {
            if !cameras.contains(&c.as_str()) {
                let hint = config::did_you_mean(c, &cameras)
                    .map(|b| format!("; did you mean `{b}`?"))
                    .unwrap_or_default();
                errors.push(("cameras", format!("no camera `{c}` in this site{hint}")));
            }
        }
        p.cameras = o.cameras.clone();
    }
    errors
}

/// Looks up a property's Haystack tag by its vgw name.
pub fn prop_def(vgw: &str) -> Option<&'static PropDef> {
    PROPS.iter().copied().find(|p| p.vgw == vgw)
}

fn instantiate_points(
    loaded: &Loaded,
    equipment: &mut [Equipment],
    recorders: &HashMap<&str, &RecorderCfg>,
    registry: &mut InstanceRegistry,
) -> (Vec<Point>, Vec<ConfigError>) {
    let f = &loaded.file;
    let mut points: Vec<Point> = Vec::new();
    let cams: HashMap<&str, u32> = f
        .ip_camera
        .iter()
        .map(|c| (c.id.as_str(), c.alarm_inputs))
        .collect();
    let encoders: HashMap<&str, u32> = f
        .encoder
        .iter()
        .map(|e| (e.id.as_str(), e.inputs))
        .collect();
    for e in equipment.iter_mut() {
        let start = points.len();
        let rec = recorders.get(e.id.as_str());
        for tpl in templates::for_kind(e.kind) {
            let count = match tpl.numbered {
                Numbered::Once => 0,
                Numbered::PerAlarmInput => rec
                    .map(|r| r.alarm_inputs)
                    .or_else(|| cams.get(e.id.as_str()).copied())
                    .unwrap_or(0),
                Numbered::PerAlarmOutput => rec.map_or(0, |r| r.alarm_outputs),
                Numbered::PerVideoInput => encoders.get(e.id.as_str()).copied().unwrap_or(0),
            };
            let keys: Vec<(String, String)> = if tpl.numbered == Numbered::Once {
                vec![(tpl.key.to_string(), tpl.dis.to_string())]
            } else {
                (1..=count)
                    .map(|n| (format!("{}-{n}", tpl.key), format!("{} {n}", tpl.dis)))
                    .collect()
            };
            for (key, dis) in keys {
                let limits = match (tpl.key, rec.and_then(|r| r.operating_temp.as_deref())) {
                    ("temp", Some(&[lo, hi])) => Some((lo, hi)),
                    _ => None,
                };
                points.push(Point {
                    id: format!("{}.{key}", e.id),
                    key,
                    equip: e.id.clone(),
                    name: format!("{} {}", e.name, lower_first(&dis)),
                    template: tpl,
                    object_type: tpl.object_type(),
                    instance: 0,
                    limits,
                    his_interval_s: None,
                    his_retention_days: f.history.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
                    class: tpl.class,
                    alarm: Default::default(),
                    cameras: Vec::new(),
                });
            }
        }
        e.points = start..points.len();
    }

    // Overrides: names and pinned instance numbers.
    let mut errors = Vec::new();
    let by_id: HashMap<String, usize> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let mut pinned: HashMap<String, u32> = HashMap::new();
    let mut pin_owner: HashMap<(templates::ObjectType, u32), (String, usize)> = HashMap::new();
    for (i, o) in f.point.iter().enumerate() {
        let path = KeyPath::root().key("point").index(i);
        let Some(&pi) = by_id.get(&o.id) else {
            let ids: Vec<&str> = by_id.keys().map(String::as_str).collect();
            let hint = config::did_you_mean(&o.id, &ids)
                .map(|b| format!("; did you mean `{b}`?"))
                .unwrap_or_default();
            errors.push(loaded.error(
                &path.key("id"),
                format!(
                    "no point `{}` in this site (point ids are `<equipment id>.<point key>`){hint}",
                    o.id
                ),
            ));
            continue;
        };
        if let Some(n) = &o.name {
            points[pi].name = n.clone();
        }
        if o.his_interval_s.is_some() || o.his_retention_days.is_some() {
            if !points[pi].template.his {
                errors.push(loaded.error(
                    &path.key(if o.his_interval_s.is_some() {
                        "his_interval_s"
                    } else {
                        "his_retention_days"
                    }),
                    format!(
                        "point `{}` keeps no history (see the `his` column in model.md)",
                        o.id
                    ),
                ));
            }
            if o.his_interval_s == Some(0) {
                errors.push(loaded.error(
                    &path.key("his_interval_s"),
                    "the interval must be at least 1 s",
                ));
            }
            if o.his_retention_days == Some(0) {
                errors.push(loaded.error(
                    &path.key("his_retention_days"),
                    "retention must be at least 1 day",
                ));
            }
            points[pi].his_interval_s = o.his_interval_s;
        }
        if let Some(days) = o.his_retention_days {
            points[pi].his_retention_days = days;
        }
        errors.extend(
            alarm_mapping(o, &mut points[pi], equipment)
                .into_iter()
                .map(|(key, msg)| loaded.error(&path.key(key), msg)),
        );
        if let Some(n) = o.bacnet_instance {
            let ty = points[pi].object_type;
            if n > instances::MAX_INSTANCE {
                errors.push(loaded.error(
                    &path.key("bacnet_instance"),
                    format!("BACnet instance {n} is out of range 0..=4194302"),
                ));
            } else if let Some((other, oi)) = pin_owner.get(&(ty, n)) {
                let line = loaded.locator.line(
                    &KeyPath::root()
                        .key("point")
                        .index(*oi)
                        .key("bacnet_instance"),
                );
                errors.push(loaded.error(
                    &path.key("bacnet_instance"),
                    format!(
                        "BACnet {} {n} is already pinned to `{other}` at line {line}",
                        ty.bacnet_name()
                    ),
                ));
            } else {
                pin_owner.insert((ty, n), (o.id.clone(), i));
                pinned.insert(o.id.clone(), n);
            }
        }
    }
    if !errors.is_empty() {
        return (points, errors);
    }
    let typed: Vec<(String, templates::ObjectType)> = points
        .iter()
        .map(|p| (p.id.clone(), p.object_type))
        .collect();
    match registry.assign_all(&typed, &pinned) {
        Ok(map) => {
            for p in &mut points {
                p.instance = map[&p.id];
            }
        }
        Err(m) => errors.push(loaded.error(&KeyPath::root().key("point"), m)),
    }
    (points, errors)
}

/// Days of point history kept when neither the point nor `[history]` says.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

fn settings(loaded: &Loaded) -> Settings {
    let f = &loaded.file;
    let base = loaded.path.parent().unwrap_or(Path::new("."));
    Settings {
        anonymous_read: f.gateway.anonymous_read,
        http_listen: f.http.listen.clone(),
        tls: match (&f.http.tls_cert, &f.http.tls_key) {
            (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
            _ => None,
        },
        token_ttl_s: f.http.token_ttl_s.unwrap_or(3600),
        sparql_timeout_ms: f.sparql.timeout_ms.unwrap_or(10_000),
        sparql_max_results: f.sparql.max_results.unwrap_or(100_000),
        sparql_update_role: f.sparql.update_role.as_deref().and_then(Role::parse),
        users: f.user.clone(),
        secrets_file: f.gateway.secrets_file.as_ref().map(|s| base.join(s)),
        bacnet: bacnet_settings(&f.bacnet),
        recording: recording_settings(&f.recording),
        mqtt: mqtt_settings(&f.mqtt, &f.site.id, base),
    }
}

/// `[mqtt]` after validation; `None` without a broker.
fn mqtt_settings(
    m: &crate::config::schema::MqttSection,
    site_id: &str,
    base: &Path,
) -> Option<super::MqttSettings> {
    let d = super::MqttSettings::new(m.broker.as_deref()?, site_id);
    Some(super::MqttSettings {
        prefix: m.prefix.clone().unwrap_or(d.prefix),
        client_id: m.client_id.clone().unwrap_or(d.client_id),
        credential: m.credential.clone(),
        ca_file: m.ca_file.as_ref().map(|c| base.join(c)),
        set_points: m.set_points.clone(),
        set_priority: m.set_priority.unwrap_or(d.set_priority),
        home_assistant: m.home_assistant.unwrap_or(d.home_assistant),
        discovery_prefix: m.discovery_prefix.clone().unwrap_or(d.discovery_prefix),
        queue_limit: m.queue_limit.unwrap_or(d.queue_limit),
        broker: d.broker,
    })
}

const GB: f64 = 1e9;

/// `[recording]` after validation (bad values were reported).
fn recording_settings(r: &crate::config::schema::RecordingSection) -> super::RecordingSettings {
    let d = super::RecordingSettings::default();
    super::RecordingSettings {
        enabled: r.enabled.unwrap_or(d.enabled),
        mode: r
            .mode
            .as_deref()
            .and_then(super::RecordMode::parse)
            .unwrap_or(d.mode),
        retention_days: r.retention_days.unwrap_or(d.retention_days),
        max_bytes_per_camera: r.max_gb_per_camera.map(|g| (g * GB) as u64),
        min_free_percent: r.min_free_percent.unwrap_or(d.min_free_percent),
        disk_budget_bytes: r.disk_budget_gb.map(|g| (g * GB) as u64),
        pre_alarm_s: r.pre_alarm_s.unwrap_or(d.pre_alarm_s),
        post_alarm_s: r.post_alarm_s.unwrap_or(d.post_alarm_s),
        lock_days: r.lock_days.unwrap_or(d.lock_days),
    }
}

/// A camera's recording: its own keys over `[recording]`.
fn camera_recording(
    r: &crate::config::schema::RecordingSection,
    cam: &crate::config::schema::IpCameraCfg,
) -> super::CameraRecording {
    let site = recording_settings(r);
    super::CameraRecording {
        rtsp: cam.rtsp.clone(),
        mode: if site.enabled {
            cam.record
                .as_deref()
                .and_then(super::RecordMode::parse)
                .unwrap_or(site.mode)
        } else {
            super::RecordMode::Off
        },
        retention_days: cam.retention_days.unwrap_or(site.retention_days),
        max_bytes: cam
            .max_gb
            .map(|g| (g * GB) as u64)
            .or(site.max_bytes_per_camera),
    }
}

/// `[bacnet]` after validation: anything unparsable was already reported.
fn bacnet_settings(b: &crate::config::schema::BacnetSection) -> super::BacnetSettings {
    use super::{AlarmRecipient, BacnetSettings, RecipientTarget};
    let d = BacnetSettings::default();
    BacnetSettings {
        enabled: b.enabled.unwrap_or(true),
        listen: b
            .listen
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d.listen),
        broadcast: b
            .broadcast
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d.broadcast),
        bbmd: b
            .bbmd
            .as_deref()
            .and_then(|s| s.parse().ok())
            .map(|a| (a, b.bbmd_ttl_s.unwrap_or(300))),
        dcc_credential: b.dcc_credential.clone(),
        recipients: b
            .alarm_recipient
            .iter()
            .filter_map(|r| {
                let target = match (&r.address, r.device) {
                    (Some(a), _) => RecipientTarget::Address(a.parse().ok()?),
                    (None, Some(dev)) => RecipientTarget::Device(dev),
                    (None, None) => return None,
                };
                Some(AlarmRecipient {
                    target,
                    classes: r.classes.clone(),
                    confirmed: r.confirmed.unwrap_or(true),
                    process_id: r.process_id.unwrap_or(0),
                })
            })
            .collect(),
    }
}

fn index(site: &Site) -> HashMap<String, Entry> {
    let mut m =
        HashMap::with_capacity(site.locations.len() + site.equipment.len() + site.points.len());
    for (i, l) in site.locations.iter().enumerate() {
        m.insert(l.id.clone(), Entry::Location(i));
    }
    for (i, e) in site.equipment.iter().enumerate() {
        m.insert(e.id.clone(), Entry::Equipment(i));
    }
    for (i, p) in site.points.iter().enumerate() {
        m.insert(p.id.clone(), Entry::Point(i));
    }
    m
}

/// "Recording OK" → "recording OK" (acronyms keep their case).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), s.chars().nth(1)) {
        (Some(c), Some(n)) if !n.is_uppercase() => c.to_lowercase().chain(chars).collect(),
        _ => s.to_string(),
    }
}
