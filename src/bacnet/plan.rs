//! What the gateway's BACnet device serves, decided once from the site
//! model and independent of the BACnet stack: every object with its type,
//! stable instance, name, description, units, state texts, alarm settings and
//! place in the Structured View tree. The server database and the EDE export
//! are both built from this one list, so the point list a BMS imports always
//! names the objects the device really serves.

use crate::graph::project::{equip_class, HEntity, HVal};
use crate::graph::vocab;
use crate::model::templates::{self, ObjectType, ValueKind};
use crate::model::{LocationKind, Point, Site};
use std::collections::HashMap;

/// BACnet object types the gateway serves, with their standard numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    AnalogInput,
    BinaryInput,
    BinaryOutput,
    Device,
    NotificationClass,
    StructuredView,
}

impl Kind {
    /// The BACnetObjectType enumeration value (EDE column `object-type`).
    pub fn code(self) -> u16 {
        match self {
            Kind::AnalogInput => 0,
            Kind::BinaryInput => 3,
            Kind::BinaryOutput => 4,
            Kind::Device => 8,
            Kind::NotificationClass => 15,
            Kind::StructuredView => 29,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::AnalogInput => "analog-input",
            Kind::BinaryInput => "binary-input",
            Kind::BinaryOutput => "binary-output",
            Kind::Device => "device",
            Kind::NotificationClass => "notification-class",
            Kind::StructuredView => "structured-view",
        }
    }
    fn of_point(t: ObjectType) -> Kind {
        match t {
            ObjectType::AnalogInput => Kind::AnalogInput,
            ObjectType::BinaryInput => Kind::BinaryInput,
            ObjectType::BinaryOutput => Kind::BinaryOutput,
            ObjectType::StructuredView => Kind::StructuredView,
        }
    }
}

pub use crate::points::alarms::{Definition as Alarm, NC_EQUIPMENT, NC_SECURITY};

/// Structured View node types (BACnetNodeType) used for the site tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Area,
    Building,
    Floor,
    Room,
    Equipment,
}

impl Node {
    pub fn code(self) -> u32 {
        match self {
            Node::Area => 5,
            Node::Equipment => 6,
            Node::Building => 13,
            Node::Floor => 14,
            Node::Room => 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub kind: Kind,
    pub instance: u32,
    /// Object_Name: `[A-Za-z0-9_-]`, unique in the device.
    pub name: String,
    pub description: String,
    /// Model id (point, equipment, location or site id; EDE `keyname`).
    pub key: String,
    /// Index into `Site::points` for point objects.
    pub point: Option<usize>,
    /// BACnetEngineeringUnits value, analog points only.
    pub units: Option<u32>,
    /// Inactive and active text of binary points.
    pub states: Option<[&'static str; 2]>,
    pub writable: bool,
    pub alarm: Option<Alarm>,
    /// Structured View: node type and subordinates (kind, instance).
    pub node: Option<Node>,
    pub children: Vec<(Kind, u32)>,
    /// Brick class as a prefixed name (`brick:Relay_Command`).
    pub brick_class: Option<String>,
    /// Haystack markers of the entity.
    pub markers: Vec<String>,
}

impl Planned {
    fn new(kind: Kind, instance: u32, name: String, description: String, key: &str) -> Self {
        Planned {
            kind,
            instance,
            name,
            description,
            key: key.to_string(),
            point: None,
            units: None,
            states: None,
            writable: false,
            alarm: None,
            node: None,
            children: Vec::new(),
            brick_class: None,
            markers: Vec::new(),
        }
    }
}

/// Every object of the device: the Device first, then notification
/// classes, views and points, each group by instance.
#[derive(Debug, Clone)]
pub struct Plan {
    pub device_instance: u32,
    pub objects: Vec<Planned>,
}

impl Plan {
    pub fn device(&self) -> &Planned {
        &self.objects[0]
    }
    /// The planned object of point `index`, if the point is served.
    pub fn by_point(&self) -> HashMap<usize, usize> {
        self.objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.point.map(|p| (p, i)))
            .collect()
    }
}

/// The object name of the gateway's Device object.
pub fn device_name(site: &Site) -> String {
    format!("{}_gateway", site.id)
}

pub fn plan(site: &Site, haystack: &[HEntity]) -> Plan {
    let markers: HashMap<&str, Vec<String>> = haystack
        .iter()
        .map(|h| {
            let m = h
                .tags
                .iter()
                .filter(|(_, v)| matches!(v, HVal::Marker))
                .map(|(t, _)| t.to_string())
                .collect();
            (h.id.as_str(), m)
        })
        .collect();
    let markers_of = |id: &str| markers.get(id).cloned().unwrap_or_default();

    let mut objects = Vec::new();
    let mut device = Planned::new(
        Kind::Device,
        site.gateway_device_instance,
        device_name(site),
        format!("vgw video gateway for {}", site.name),
        &site.id,
    );
    device.brick_class = Some(prefixed(&vocab::vgw("Video_Gateway")));
    objects.push(device);

    for (class, name, dis) in [
        (
            NC_SECURITY,
            "nc_security_alarms",
            "Security alarms: alarm inputs, tamper, video loss",
        ),
        (
            NC_EQUIPMENT,
            "nc_equipment_status",
            "Equipment status: online, recording, power, time sync, limits",
        ),
    ] {
        objects.push(Planned::new(
            Kind::NotificationClass,
            class,
            name.into(),
            dis.into(),
            name,
        ));
    }

    // Views: the site, every location and every piece of equipment.
    let view = |id: &str| site.views.get(id).copied();
    let mut views: Vec<Planned> = Vec::new();
    let mut view_index: HashMap<String, usize> = HashMap::new();
    let mut add_view = |id: &str, name: &str, node: Node, brick: Option<String>| {
        if let Some(n) = view(id) {
            // Part ids (`nvr-1.disk-1`) hold a `.`, which object names do not.
            let object_name = id.replace('.', "_");
            let mut v = Planned::new(Kind::StructuredView, n, object_name, name.into(), id);
            v.node = Some(node);
            v.brick_class = brick;
            v.markers = markers_of(id);
            view_index.insert(id.to_string(), views.len());
            views.push(v);
        }
    };
    add_view(&site.id, &site.name, Node::Area, Some("brick:Site".into()));
    for l in &site.locations {
        let (node, class) = match l.kind {
            LocationKind::Building => (Node::Building, "brick:Building"),
            LocationKind::Floor { .. } => (Node::Floor, "brick:Floor"),
            LocationKind::Space { .. } => (Node::Room, "brick:Space"),
        };
        add_view(&l.id, &l.name, node, Some(class.into()));
    }
    for e in &site.equipment {
        add_view(
            &e.id,
            &e.name,
            Node::Equipment,
            Some(prefixed(&equip_class(e.kind))),
        );
    }
    // Parent links: location → parent location or the site; equipment →
    // the equipment it is part of, its room, or the site.
    let site_view = view_index.get(site.id.as_str()).copied();
    let mut link = |parent: Option<usize>, child: usize| {
        if let Some(p) = parent.or(site_view) {
            if p != child {
                let c = (Kind::StructuredView, views[child].instance);
                views[p].children.push(c);
            }
        }
    };
    for l in &site.locations {
        let Some(&me) = view_index.get(l.id.as_str()) else {
            continue;
        };
        let parent = l.parent.as_deref().and_then(|p| view_index.get(p).copied());
        link(parent, me);
    }
    for e in &site.equipment {
        let Some(&me) = view_index.get(e.id.as_str()) else {
            continue;
        };
        let parent = e
            .part_of
            .as_deref()
            .or(e.space.as_deref())
            .and_then(|p| view_index.get(p).copied());
        link(parent, me);
    }

    let mut points: Vec<Planned> = Vec::with_capacity(site.points.len());
    for (i, p) in site.points.iter().enumerate() {
        let kind = Kind::of_point(p.object_type);
        let mut o = Planned::new(kind, p.instance, p.object_name(), p.name.clone(), &p.id);
        o.point = Some(i);
        o.writable = p.template.writable;
        o.units = (p.template.kind == ValueKind::Number).then(|| units_code(p.template.unit));
        o.states = (p.template.kind == ValueKind::Bool).then(|| state_texts(p));
        o.alarm = crate::points::alarms::definition(p);
        o.brick_class = Some(p.class.curie());
        o.markers = markers_of(&p.id);
        if let Some(&v) = view_index.get(p.equip.as_str()) {
            views[v].children.push((kind, p.instance));
        }
        points.push(o);
    }

    views.sort_by_key(|v| v.instance);
    points.sort_by_key(|o| (o.kind, o.instance));
    objects.extend(views);
    objects.extend(points);
    Plan {
        device_instance: site.gateway_device_instance,
        objects,
    }
}

/// `https://brickschema.org/schema/Brick#Relay` → `brick:Relay`.
fn prefixed(iri: &str) -> String {
    if let Some(l) = iri.strip_prefix(vocab::BRICK) {
        format!("brick:{l}")
    } else if let Some(l) = iri.strip_prefix(vocab::VGW) {
        format!("vgw:{l}")
    } else {
        iri.to_string()
    }
}

/// BACnetEngineeringUnits for a template unit. BACnet has no bit-rate or
/// frame units: Mbps is served as no-units (the description and EDE say
/// Mbps) and fps as per-second.
pub fn units_code(u: Option<templates::Unit>) -> u32 {
    match u.map(|u| u.qudt) {
        Some("PERCENT") => 98,
        Some("MilliSEC") => 159,
        Some("SEC") => 73,
        Some("MIN") => 72,
        Some("DAY") => 70,
        Some("DEG_C") => 62,
        Some("V") => 5,
        Some("FRAME-PER-SEC") => 101,
        _ => 95,
    }
}

/// Inactive/active texts a BMS operator reads on the dashboard.
fn state_texts(p: &Point) -> [&'static str; 2] {
    let key = p.template.key;
    match key {
        "online" => ["offline", "online"],
        "recording-ok" => ["not recording", "recording"],
        "alarm-out" => ["off", "on"],
        "motion" => ["no motion", "motion"],
        "on-battery" => ["on mains", "on battery"],
        _ if p.template.markers.contains(&"alarm") => ["normal", "alarm"],
        _ => ["inactive", "active"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn demo() -> (Site, Plan) {
        let loaded = crate::config::parse(
            std::path::Path::new("config/demo.toml"),
            crate::cli::serve::DEMO_SITE.to_string(),
        )
        .unwrap();
        let mut reg = crate::model::instances::InstanceRegistry::ephemeral();
        let site = crate::model::build(&loaded, &mut reg).unwrap();
        let (_, haystack) = crate::graph::GraphStore::build(&site, None).unwrap();
        let plan = plan(&site, &haystack);
        (site, plan)
    }

    #[test]
    fn every_point_is_served_under_its_model_number_with_a_plain_unique_name() {
        let (site, plan) = demo();
        let names: HashSet<&str> = plan.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names.len(),
            plan.objects.len(),
            "object names must be unique"
        );
        for o in &plan.objects {
            assert!(
                o.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{}",
                o.name
            );
        }
        let ids: HashSet<(Kind, u32)> = plan.objects.iter().map(|o| (o.kind, o.instance)).collect();
        assert_eq!(
            ids.len(),
            plan.objects.len(),
            "object identifiers must be unique"
        );
        let by_point = plan.by_point();
        assert_eq!(by_point.len(), site.points.len());
        for (i, p) in site.points.iter().enumerate() {
            let o = &plan.objects[by_point[&i]];
            assert_eq!(
                (o.kind, o.instance),
                (Kind::of_point(p.object_type), p.instance)
            );
            assert_eq!(o.writable, p.template.writable);
        }
    }

    #[test]
    fn structured_views_mirror_site_to_points() {
        let (site, plan) = demo();
        let mut parents: HashMap<(Kind, u32), usize> = HashMap::new();
        for o in plan
            .objects
            .iter()
            .filter(|o| o.kind == Kind::StructuredView)
        {
            for c in &o.children {
                *parents.entry(*c).or_default() += 1;
            }
        }
        // Every point and every view but the site's sits in exactly one view.
        for o in &plan.objects {
            let expected = match o.kind {
                Kind::StructuredView if o.key == site.id => 0,
                Kind::StructuredView
                | Kind::AnalogInput
                | Kind::BinaryInput
                | Kind::BinaryOutput => 1,
                _ => 0,
            };
            assert_eq!(
                parents.get(&(o.kind, o.instance)).copied().unwrap_or(0),
                expected,
                "{}",
                o.key
            );
        }
        // The relay's view is its NVR's, whose view sits in the NVR's room.
        let nvr = plan
            .objects
            .iter()
            .find(|o| o.key == "nvr-1" && o.kind == Kind::StructuredView)
            .unwrap();
        let relay = plan
            .objects
            .iter()
            .find(|o| o.key == "nvr-1.alarm-out-1")
            .unwrap();
        assert!(nvr.children.contains(&(Kind::BinaryOutput, relay.instance)));
        let room = site.equipment("nvr-1").unwrap().space.clone().unwrap();
        let room_view = plan.objects.iter().find(|o| o.key == room).unwrap();
        assert!(room_view
            .children
            .contains(&(Kind::StructuredView, nvr.instance)));
    }

    #[test]
    fn alarms_go_where_an_operator_expects() {
        let (_, plan) = demo();
        let get = |key: &str| plan.objects.iter().find(|o| o.key == key).unwrap();
        assert_eq!(
            get("nvr-1.alarm-in-1").alarm,
            Some(Alarm::ChangeOfState {
                alarm_value: true,
                class: NC_SECURITY
            })
        );
        assert_eq!(
            get("nvr-1.online").alarm,
            Some(Alarm::ChangeOfState {
                alarm_value: false,
                class: NC_EQUIPMENT
            })
        );
        assert_eq!(get("nvr-1.alarm-out-1").alarm, None);
        assert!(matches!(
            get("nvr-1.temp").alarm,
            Some(Alarm::OutOfRange { .. })
        ));
        assert_eq!(get("nvr-1.temp").units, Some(62));
    }
}
