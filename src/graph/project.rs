//! The projector: site model → Brick triples + Haystack entities, in one
//! pass, so the two views of an entity cannot drift apart. The Haystack
//! entities are also written as triples on the same subjects
//! (`haystack_triples`), and the Haystack API serves the same list.

use super::vocab::*;
use crate::model::build::{prop_def, PropDef};
use crate::model::kinds::EquipKind;
use crate::model::templates::{Class, ValueKind};
use crate::model::{Equipment, LocationKind, PropValue, Site};
use oxigraph::model::{Literal, NamedNodeRef};

/// A Haystack tag value (the subset of Haystack kinds the model uses).
#[derive(Debug, Clone, PartialEq)]
pub enum HVal {
    Marker,
    Str(String),
    Num(f64, Option<&'static str>),
    Bool(bool),
    /// Another entity, by model id.
    Ref(String),
    List(Vec<String>),
}

/// One Haystack entity: its model id and tags (`id` is the subject and
/// `dis` is `rdfs:label`, so neither is repeated here).
#[derive(Debug, Clone)]
pub struct HEntity {
    pub id: String,
    pub dis: String,
    pub tags: Vec<(&'static str, HVal)>,
}

impl HEntity {
    pub fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|(t, _)| *t == tag)
    }
    pub fn get(&self, tag: &str) -> Option<&HVal> {
        self.tags.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }
}

/// Object of a triple being emitted.
pub enum Obj<'a> {
    /// Another entity of this site, by model id.
    Id(&'a str),
    Iri(&'a str),
    Lit(Literal),
}

/// Where projected triples go (a batching store loader, or a test vector).
pub trait Sink {
    fn triple(&mut self, subject: &str, predicate: &str, object: Obj<'_>);
}

/// Projects the whole site: Brick triples into `sink`, Haystack entities
/// returned (and, with `with_haystack_triples`, also written to `sink`).
pub fn project(site: &Site, sink: &mut dyn Sink, with_haystack_triples: bool) -> Vec<HEntity> {
    let mut p = Projector {
        site,
        sink,
        entities: Vec::new(),
    };
    p.site_and_locations();
    for e in &site.equipment {
        p.equipment(e);
    }
    let entities = p.entities;
    if with_haystack_triples {
        for h in &entities {
            haystack_triples(site, h, sink);
        }
    }
    entities
}

struct Projector<'a> {
    site: &'a Site,
    sink: &'a mut dyn Sink,
    entities: Vec<HEntity>,
}

pub const SITE_ENTITY_ID: &str = "site";

impl Projector<'_> {
    fn emit(&mut self, s: &str, p: &str, o: Obj<'_>) {
        let s = self.site.iri(s);
        self.sink.triple(&s, p, o);
    }

    fn typed(&mut self, id: &str, class: &str, label: &str) {
        self.emit(id, RDF_TYPE, Obj::Iri(class));
        self.emit(id, RDFS_LABEL, Obj::Lit(Literal::new_simple_literal(label)));
    }

    fn site_and_locations(&mut self) {
        let site = self.site;
        self.typed(SITE_ENTITY_ID, &rec("Site"), &site.name);
        let mut tags = vec![
            ("site", HVal::Marker),
            ("tz", HVal::Str(haystack_tz(&site.timezone))),
        ];
        if let Some(a) = &site.address {
            tags.push(("geoAddr", HVal::Str(a.clone())));
        }
        self.entities.push(HEntity {
            id: SITE_ENTITY_ID.into(),
            dis: site.name.clone(),
            tags,
        });

        for l in &site.locations {
            let (class, mut tags) = match l.kind {
                LocationKind::Building => (
                    rec("Building"),
                    vec![("space", HVal::Marker), ("building", HVal::Marker)],
                ),
                LocationKind::Floor { level } => (
                    rec("Level"),
                    vec![
                        ("space", HVal::Marker),
                        ("floor", HVal::Marker),
                        ("floorNum", HVal::Num(level as f64, None)),
                    ],
                ),
                LocationKind::Space { kind } => {
                    let rec_class = crate::model::kinds::SPACE_KINDS
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map(|(_, c)| *c)
                        .unwrap_or("Room");
                    let marker = if kind == "outdoor" { "outdoor" } else { "room" };
                    (
                        rec(rec_class),
                        vec![("space", HVal::Marker), (marker, HVal::Marker)],
                    )
                }
            };
            self.typed(&l.id, &class, &l.name);
            let parent = l.parent.as_deref().unwrap_or(SITE_ENTITY_ID);
            self.emit(&l.id, &rec("isPartOf"), Obj::Id(parent));
            if let Some(p) = &l.parent {
                tags.push(("spaceRef", HVal::Ref(p.clone())));
            }
            if let Some(a) = &l.address {
                tags.push(("geoAddr", HVal::Str(a.clone())));
            }
            tags.push(("siteRef", HVal::Ref(SITE_ENTITY_ID.into())));
            self.entities.push(HEntity {
                id: l.id.clone(),
                dis: l.name.clone(),
                tags,
            });
        }
    }

    fn equipment(&mut self, e: &Equipment) {
        let site = self.site;
        self.typed(&e.id, &equip_class(e.kind), &e.name);
        if e.kind == EquipKind::Gateway {
            self.emit(&e.id, RDF_TYPE, Obj::Iri(&format!("{BACNET}BACnetDevice")));
            let inst = Literal::new_typed_literal(
                site.gateway_device_instance.to_string(),
                NamedNodeRef::new_unchecked("http://www.w3.org/2001/XMLSchema#nonNegativeInteger"),
            );
            self.emit(&e.id, &format!("{BACNET}device-instance"), Obj::Lit(inst));
        }
        let mut tags: Vec<(&'static str, HVal)> = equip_markers(e.kind)
            .iter()
            .map(|m| (*m, HVal::Marker))
            .collect();
        tags.push(("siteRef", HVal::Ref(SITE_ENTITY_ID.into())));
        if let Some(sp) = &e.space {
            self.emit(&e.id, &brick("hasLocation"), Obj::Id(sp));
            tags.push(("spaceRef", HVal::Ref(sp.clone())));
        }
        if let Some(parent) = &e.part_of {
            self.emit(parent, &brick("hasPart"), Obj::Id(&e.id));
            tags.push(("equipRef", HVal::Ref(parent.clone())));
        }
        if let Some(src) = &e.fed_by {
            self.emit(src, &brick("feeds"), Obj::Id(&e.id));
            tags.push(("elecRef", HVal::Ref(src.clone())));
        }
        if let Some(dst) = &e.streams_to {
            self.emit(&e.id, &vgw("streamsVideoTo"), Obj::Id(dst));
            if let Some(t) = site.equipment(dst) {
                match (e.kind, t.kind) {
                    (_, EquipKind::VmsServer) => tags.push(("vmsRef", HVal::Ref(dst.clone()))),
                    (EquipKind::AnalogCamera, EquipKind::Encoder) => {
                        tags.push(("deviceRef", HVal::Ref(dst.clone())));
                        if let Some(rec) = t
                            .streams_to
                            .as_ref()
                            .filter(|r| site.equipment(r).is_some_and(|x| x.kind.is_recorder()))
                        {
                            tags.push(("nvrRef", HVal::Ref(rec.clone())));
                        }
                    }
                    (EquipKind::AnalogCamera, _) => {
                        tags.push(("deviceRef", HVal::Ref(dst.clone())));
                        tags.push(("nvrRef", HVal::Ref(dst.clone())));
                    }
                    _ => tags.push(("nvrRef", HVal::Ref(dst.clone()))),
                }
            }
        }
        if let Some(ntp) = &e.time_source {
            self.emit(&e.id, &vgw("synchronizesTimeWith"), Obj::Id(ntp));
            tags.push(("ntpRef", HVal::Ref(ntp.clone())));
        }
        if let Some(vms) = &e.managed_by {
            self.emit(&e.id, &vgw("isManagedBy"), Obj::Id(vms));
            if !tags
                .iter()
                .any(|(t, v)| *t == "vmsRef" && *v == HVal::Ref(vms.clone()))
            {
                tags.push(("vmsRef", HVal::Ref(vms.clone())));
            }
        }
        for (name, value) in &e.props {
            let def = prop_def(name).expect("every property has a PropDef");
            self.property(&e.id, def, value, &mut tags);
        }
        self.entities.push(HEntity {
            id: e.id.clone(),
            dis: e.name.clone(),
            tags,
        });
        for p in site.points_of(e) {
            self.point(e, p);
        }
    }

    fn property(
        &mut self,
        id: &str,
        def: &PropDef,
        value: &PropValue,
        tags: &mut Vec<(&'static str, HVal)>,
    ) {
        let pred = vgw(def.vgw);
        let unit = prop_unit(def);
        match value {
            PropValue::Int(i) => {
                self.emit(id, &pred, Obj::Lit(Literal::from(*i)));
                tags.push((def.haystack, HVal::Num(*i as f64, unit)));
            }
            PropValue::Num(f) if f.is_finite() => {
                self.emit(id, &pred, Obj::Lit(decimal(*f)));
                tags.push((def.haystack, HVal::Num(*f, unit)));
            }
            PropValue::Num(_) => {}
            PropValue::Str(s) => {
                self.emit(id, &pred, Obj::Lit(Literal::new_simple_literal(s)));
                tags.push((def.haystack, HVal::Str(s.clone())));
            }
            PropValue::Bool(b) => {
                self.emit(id, &pred, Obj::Lit(Literal::from(*b)));
                tags.push((def.haystack, HVal::Bool(*b)));
            }
            PropValue::List(items) => {
                for s in items {
                    self.emit(id, &pred, Obj::Lit(Literal::new_simple_literal(s)));
                }
                tags.push((def.haystack, HVal::List(items.clone())));
            }
        }
    }

    fn point(&mut self, e: &Equipment, p: &crate::model::Point) {
        let site = self.site;
        let tpl = p.template;
        let class = match p.class {
            Class::Brick(c) => brick(c),
            Class::Vgw(c) => vgw(c),
        };
        self.typed(&p.id, &class, &p.name);
        self.emit(&e.id, &brick("hasPoint"), Obj::Id(&p.id));
        if let Some(u) = tpl.unit {
            self.emit(
                &p.id,
                &brick("hasUnit"),
                Obj::Iri(&format!("{UNIT}{}", u.qudt)),
            );
        }
        // BACnet reference: which object of the gateway device serves it.
        let bac = format!("{}/bacnet", p.id);
        self.emit(&p.id, &format!("{REF}hasExternalReference"), Obj::Id(&bac));
        self.emit(&bac, RDF_TYPE, Obj::Iri(&format!("{REF}BACnetReference")));
        let oid = format!("{},{}", p.object_type.bacnet_name(), p.instance);
        self.emit(
            &bac,
            &format!("{BACNET}object-identifier"),
            Obj::Lit(Literal::new_simple_literal(&oid)),
        );
        self.emit(
            &bac,
            &format!("{BACNET}object-name"),
            Obj::Lit(Literal::new_simple_literal(p.object_name())),
        );
        self.emit(&bac, &format!("{BACNET}objectOf"), Obj::Id("gateway"));
        if tpl.his {
            let ts = format!("{}/history", p.id);
            self.emit(&p.id, &format!("{REF}hasExternalReference"), Obj::Id(&ts));
            self.emit(
                &ts,
                RDF_TYPE,
                Obj::Iri(&format!("{REF}TimeseriesReference")),
            );
            self.emit(
                &ts,
                &format!("{REF}hasTimeseriesId"),
                Obj::Lit(Literal::new_simple_literal(&p.id)),
            );
            self.emit(&ts, &format!("{REF}storedAt"), Obj::Id("gateway/history"));
        }
        if let Some((lo, hi)) = p.limits {
            self.emit(&p.id, &vgw("lowLimit"), Obj::Lit(decimal(lo)));
            self.emit(&p.id, &vgw("highLimit"), Obj::Lit(decimal(hi)));
        }

        let mut tags: Vec<(&'static str, HVal)> = vec![("point", HVal::Marker)];
        tags.push((if tpl.writable { "cmd" } else { "sensor" }, HVal::Marker));
        tags.extend(tpl.markers.iter().map(|m| (*m, HVal::Marker)));
        tags.push(("cur", HVal::Marker));
        if tpl.his {
            tags.push(("his", HVal::Marker));
        }
        if tpl.writable {
            tags.push(("writable", HVal::Marker));
        }
        tags.push((
            "kind",
            HVal::Str(
                match tpl.kind {
                    ValueKind::Bool => "Bool",
                    ValueKind::Number => "Number",
                }
                .into(),
            ),
        ));
        if let Some(u) = tpl.unit.and_then(|u| u.haystack) {
            tags.push(("unit", HVal::Str(u.into())));
        }
        tags.push(("equipRef", HVal::Ref(e.id.clone())));
        tags.push(("siteRef", HVal::Ref(SITE_ENTITY_ID.into())));
        if let Some(sp) = &e.space {
            tags.push(("spaceRef", HVal::Ref(sp.clone())));
        }
        tags.push(("bacnetObject", HVal::Str(oid)));
        if let Some((lo, hi)) = p.limits {
            let unit = tpl.unit.and_then(|u| u.haystack);
            tags.push(("lowLimit", HVal::Num(lo, unit)));
            tags.push(("highLimit", HVal::Num(hi, unit)));
        }
        let _ = site;
        self.entities.push(HEntity {
            id: p.id.clone(),
            dis: p.name.clone(),
            tags,
        });
    }
}

/// The Brick (or vgw) class of a kind of equipment.
pub fn equip_class(kind: EquipKind) -> String {
    use EquipKind::*;
    match kind {
        Nvr => brick("Network_Video_Recorder"),
        HybridRecorder => vgw("Hybrid_Video_Recorder"),
        Dvr => vgw("Digital_Video_Recorder"),
        IpCamera => brick("Surveillance_Camera"),
        AnalogCamera => vgw("Analog_Surveillance_Camera"),
        Encoder => vgw("Video_Encoder"),
        Ups => vgw("Uninterruptible_Power_Supply"),
        Pdu => vgw("Power_Distribution_Unit"),
        PoeSwitch => brick("Ethernet_Switch"),
        NtpServer => vgw("NTP_Server"),
        VmsServer => vgw("Video_Management_Server"),
        Workstation => vgw("Client_Workstation"),
        Gateway => vgw("Video_Gateway"),
        StorageDrive => vgw("Storage_Drive"),
        Relay => brick("Relay"),
        Battery => brick("Battery"),
    }
}

/// Haystack markers of a kind of equipment (DESIGN.md §4 table).
pub fn equip_markers(kind: EquipKind) -> &'static [&'static str] {
    use EquipKind::*;
    match kind {
        Nvr => &["nvr", "device", "equip"],
        HybridRecorder => &["nvr", "hybrid", "device", "equip"],
        Dvr => &["dvr", "device", "equip"],
        IpCamera => &["camera", "device", "equip"],
        AnalogCamera => &["camera", "analog", "equip"],
        Encoder => &["video", "encoder", "device", "equip"],
        Ups => &["ups", "equip"],
        Pdu => &["pdu", "equip"],
        PoeSwitch => &["networking", "switch", "device", "equip"],
        NtpServer => &["ntp", "server", "device", "equip"],
        VmsServer => &["vms", "server", "device", "equip"],
        Workstation => &["workstation", "device", "equip"],
        Gateway => &["videoGateway", "device", "equip"],
        StorageDrive => &["disk", "equip"],
        Relay => &["relay", "equip"],
        Battery => &["battery", "equip"],
    }
}

/// Haystack unit of a datasheet property.
fn prop_unit(def: &PropDef) -> Option<&'static str> {
    match def.vgw {
        "storageCapacityTB" => Some("TB"),
        "operatingTempMin" | "operatingTempMax" => Some("°C"),
        "operatingHumidityMin" | "operatingHumidityMax" => Some("%RH"),
        "maxIngestMbps" => Some("Mbps"),
        "capacityVA" => Some("VA"),
        "poeBudgetW" => Some("W"),
        _ => None,
    }
}

/// Haystack `tz` is the city part of the IANA name (`Europe/Berlin` → `Berlin`).
pub fn haystack_tz(iana: &str) -> String {
    iana.rsplit('/').next().unwrap_or(iana).to_string()
}

fn decimal(f: f64) -> Literal {
    let mut s = format!("{f}");
    if !s.contains('.') {
        s.push_str(".0");
    }
    Literal::new_typed_literal(
        s,
        NamedNodeRef::new_unchecked("http://www.w3.org/2001/XMLSchema#decimal"),
    )
}

/// The RDF namespace of a Haystack tag: the standard lib that defines it,
/// else the vgw lib.
pub fn tag_namespace(tag: &str) -> &'static str {
    match crate::graph::haystack_lib::standard_lib(tag) {
        Some("ph") => PH,
        Some("phIoT") => PH_IOT,
        Some("phScience") => PH_SCIENCE,
        Some("phIct") => PH_ICT,
        _ => HS_VGW,
    }
}

/// Writes one Haystack entity as triples on its subject.
pub fn haystack_triples(site: &Site, h: &HEntity, sink: &mut dyn Sink) {
    let s = site.iri(&h.id);
    for (tag, v) in &h.tags {
        let pred = format!("{}{tag}", tag_namespace(tag));
        match v {
            HVal::Marker => sink.triple(&s, PH_HAS_TAG, Obj::Iri(&pred)),
            HVal::Str(x) => sink.triple(&s, &pred, Obj::Lit(Literal::new_simple_literal(x))),
            HVal::Num(n, _) => sink.triple(&s, &pred, Obj::Lit(Literal::from(*n))),
            HVal::Bool(b) => sink.triple(&s, &pred, Obj::Lit(Literal::from(*b))),
            HVal::Ref(id) => sink.triple(&s, &pred, Obj::Iri(&site.iri(id))),
            HVal::List(items) => {
                for x in items {
                    sink.triple(&s, &pred, Obj::Lit(Literal::new_simple_literal(x)));
                }
            }
        }
    }
}
