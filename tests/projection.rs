//! The Brick and Haystack views of the demo site agree with each other, with
//! the mapping table (DESIGN.md §4), with the Haystack defs and with the
//! vgw ontology; BACnet numbers are stable across config changes.

use oxigraph::model::Term;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use vgw::graph::project::{equip_class, equip_markers};
use vgw::graph::vocab::*;
use vgw::graph::{GraphStore, HEntity, HVal};
use vgw::model::templates::{ObjectType, ValueKind};
use vgw::model::Site;

fn demo() -> (Site, GraphStore, Vec<HEntity>) {
    let site =
        vgw::model::load_site(Path::new("config/demo.toml"), None).expect("demo site is valid");
    let (store, entities) = GraphStore::build(&site, None).expect("store builds");
    (site, store, entities)
}

fn text(t: &Option<Term>) -> String {
    match t {
        Some(Term::NamedNode(n)) => n.as_str().to_string(),
        Some(Term::Literal(l)) => l.value().to_string(),
        other => panic!("unexpected term {other:?}"),
    }
}

/// Haystack tags read back from the store: subject id → {(tag, value)}.
/// Decoded from the triples alone (namespaces stripped, refs back to ids).
fn tags_in_store(site: &Site, store: &GraphStore) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let q = format!(
        "SELECT ?s ?p ?o WHERE {{ GRAPH <{GRAPH_MODEL}> {{ ?s ?p ?o }} FILTER(STRSTARTS(STR(?p), \"https://project-haystack.org/def/\") || STRSTARTS(STR(?p), \"{HS_VGW}\")) }}"
    );
    let namespaces = [PH, PH_IOT, PH_SCIENCE, PH_ICT, HS_VGW];
    let strip = |iri: &str| -> String {
        namespaces
            .iter()
            .find_map(|ns| iri.strip_prefix(ns))
            .unwrap_or_else(|| panic!("tag IRI {iri} in no Haystack namespace"))
            .to_string()
    };
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for row in store.select(&q).unwrap() {
        let s = text(&row[0]);
        let id = site
            .id_of_iri(&s)
            .expect("subject is a site IRI")
            .to_string();
        let (p, o) = (text(&row[1]), text(&row[2]));
        let entry = if p == PH_HAS_TAG {
            (strip(&o), "M".to_string())
        } else {
            let v = site.id_of_iri(&o).map(|i| format!("@{i}")).unwrap_or(o);
            (strip(&p), v)
        };
        out.entry(id).or_default().insert(entry);
    }
    out
}

fn tags_of_entity(h: &HEntity) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for (tag, v) in &h.tags {
        let t = tag.to_string();
        match v {
            HVal::Marker => {
                set.insert((t, "M".into()));
            }
            HVal::Str(s) => {
                set.insert((t, s.clone()));
            }
            HVal::Num(n, _) => {
                set.insert((t, format!("{n}")));
            }
            HVal::Bool(b) => {
                set.insert((t, b.to_string()));
            }
            HVal::Ref(r) => {
                set.insert((t, format!("@{r}")));
            }
            HVal::List(items) => set.extend(items.iter().map(|i| (t.clone(), i.clone()))),
        }
    }
    set
}

#[test]
fn haystack_entities_equal_the_haystack_triples_in_the_store() {
    let (site, store, entities) = demo();
    let stored = tags_in_store(&site, &store);
    assert_eq!(
        stored.len(),
        entities.len(),
        "every entity, and only those, has Haystack triples"
    );
    for h in &entities {
        let mine = tags_of_entity(h);
        let theirs = stored
            .get(&h.id)
            .unwrap_or_else(|| panic!("{} has no Haystack triples", h.id));
        // Numbers come back through xsd:double's lexical form; compare
        // numerically where both sides parse.
        let norm = |s: &BTreeSet<(String, String)>| -> BTreeSet<(String, String)> {
            s.iter()
                .map(|(t, v)| {
                    (
                        t.clone(),
                        v.parse::<f64>()
                            .map(|f| format!("{f}"))
                            .unwrap_or_else(|_| v.clone()),
                    )
                })
                .collect()
        };
        assert_eq!(norm(&mine), norm(theirs), "tags of {}", h.id);
    }
    // dis is rdfs:label on the same subject.
    let labels: HashMap<String, String> = store
        .select(&format!(
            "SELECT ?s ?l WHERE {{ GRAPH <{GRAPH_MODEL}> {{ ?s <{RDFS_LABEL}> ?l }} }}"
        ))
        .unwrap()
        .iter()
        .map(|r| {
            (
                site.id_of_iri(&text(&r[0])).unwrap().to_string(),
                text(&r[1]),
            )
        })
        .collect();
    for h in &entities {
        assert_eq!(labels.get(&h.id), Some(&h.dis), "dis of {}", h.id);
    }
}

#[test]
fn classes_and_markers_follow_the_mapping_table() {
    let (site, store, entities) = demo();
    let by_id: HashMap<&str, &HEntity> = entities.iter().map(|h| (h.id.as_str(), h)).collect();
    let types = store
        .select(&format!(
            "SELECT ?s ?c WHERE {{ GRAPH <{GRAPH_MODEL}> {{ ?s a ?c }} }}"
        ))
        .unwrap();
    let mut classes: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in types {
        classes.entry(text(&r[0])).or_default().insert(text(&r[1]));
    }
    for e in &site.equipment {
        let c = &classes[&site.iri(&e.id)];
        assert!(
            c.contains(&equip_class(e.kind)),
            "{} should be a {}",
            e.id,
            equip_class(e.kind)
        );
        let h = by_id[e.id.as_str()];
        for m in equip_markers(e.kind) {
            assert!(h.has(m), "{} lacks marker {m}", e.id);
        }
        assert!(h.has("equip") && !h.has("point"));
    }
    // Spot checks straight from DESIGN.md §4.
    assert!(classes[&site.iri("nvr-1")].contains(&brick("Network_Video_Recorder")));
    assert!(classes[&site.iri("nvr-3")].contains(&vgw("Hybrid_Video_Recorder")));
    assert!(classes[&site.iri("cam-001")].contains(&brick("Surveillance_Camera")));
    assert!(classes[&site.iri("acam-1")].contains(&vgw("Analog_Surveillance_Camera")));
    assert!(classes[&site.iri("ntp-1")].contains(&vgw("NTP_Server")));
    assert!(classes[&site.iri("gateway")].contains(&format!("{BACNET}BACnetDevice")));
    assert_eq!(
        by_id["acam-1"].get("deviceRef"),
        Some(&HVal::Ref("enc-1".into()))
    );
    assert_eq!(
        by_id["acam-1"].get("nvrRef"),
        Some(&HVal::Ref("nvr-3".into()))
    );
    assert_eq!(
        by_id["cam-001"].get("elecRef"),
        Some(&HVal::Ref("poe-1".into()))
    );
    assert_eq!(
        by_id["nvr-1"].get("ntpRef"),
        Some(&HVal::Ref("ntp-1".into()))
    );

    // Points: Haystack kind, sensor/cmd and unit agree with the BACnet type
    // and the Brick unit (mapped through units.ttl's vgw:haystackUnit).
    let unit_rows = store
        .select(&format!("SELECT ?p ?hs WHERE {{ GRAPH <{GRAPH_MODEL}> {{ ?p <{BRICK}hasUnit> ?u }} GRAPH <{GRAPH_ONTOLOGY}> {{ OPTIONAL {{ ?u <{VGW}haystackUnit> ?hs }} }} }}"))
        .unwrap();
    let units: HashMap<String, Option<String>> = unit_rows
        .iter()
        .map(|r| (text(&r[0]), r[1].as_ref().map(|_| text(&r[1]))))
        .collect();
    for p in &site.points {
        let h = by_id[p.id.as_str()];
        assert!(h.has("point") && h.has("cur"));
        let kind = match h.get("kind") {
            Some(HVal::Str(k)) => k.as_str(),
            other => panic!("{} kind {other:?}", p.id),
        };
        match p.object_type {
            ObjectType::AnalogInput => assert_eq!(kind, "Number", "{}", p.id),
            ObjectType::BinaryInput | ObjectType::BinaryOutput => {
                assert_eq!(kind, "Bool", "{}", p.id)
            }
            ObjectType::StructuredView => panic!("{} is a point, not a view", p.id),
        }
        assert_eq!(
            h.has("cmd") && h.has("writable"),
            p.object_type == ObjectType::BinaryOutput,
            "{}",
            p.id
        );
        assert_eq!(h.has("sensor"), !p.template.writable, "{}", p.id);
        assert_eq!(p.template.kind == ValueKind::Number, kind == "Number");
        let hs_unit = match h.get("unit") {
            Some(HVal::Str(u)) => Some(u.clone()),
            _ => None,
        };
        match units.get(&site.iri(&p.id)) {
            Some(from_ontology) => assert_eq!(&hs_unit, from_ontology, "unit of {}", p.id),
            None => assert_eq!(
                hs_unit, None,
                "{} has a Haystack unit but no brick:hasUnit",
                p.id
            ),
        }
        assert_eq!(h.get("equipRef"), Some(&HVal::Ref(p.equip.clone())));
    }
}

#[test]
fn every_haystack_tag_used_has_a_def() {
    let (_, _, entities) = demo();
    let used: BTreeSet<&str> = entities
        .iter()
        .flat_map(|h| h.tags.iter().map(|(t, _)| *t))
        .collect();
    let missing: Vec<&&str> = used
        .iter()
        .filter(|t| !vgw::graph::haystack_lib::has_def(t))
        .collect();
    assert!(
        missing.is_empty(),
        "tags without a def (add them to haystack/vgw.trio): {missing:?}"
    );
    // And the vgw lib does not redefine a standard tag.
    for d in vgw::graph::haystack_lib::vgw_defs() {
        assert!(
            vgw::graph::haystack_lib::standard_lib(d).is_none(),
            "vgw.trio redefines standard tag {d}"
        );
    }
}

#[test]
fn every_vgw_term_in_the_model_is_declared_in_the_ontology() {
    let (_, store, _) = demo();
    let q = format!(
        "SELECT DISTINCT ?t WHERE {{ GRAPH <{GRAPH_MODEL}> {{ {{ ?s a ?t }} UNION {{ ?s ?t ?o }} }} FILTER(STRSTARTS(STR(?t), \"{VGW}\")) \
         FILTER NOT EXISTS {{ GRAPH <{GRAPH_ONTOLOGY}> {{ ?t a ?kind }} }} }}"
    );
    let undeclared: Vec<String> = store
        .select(&q)
        .unwrap()
        .iter()
        .map(|r| text(&r[0]))
        .collect();
    assert!(
        undeclared.is_empty(),
        "vgw terms used but not declared in ontology/vgw.ttl: {undeclared:?}"
    );
}

#[test]
fn secrets_and_endpoints_never_reach_the_store() {
    let (_, store, _) = demo();
    let mut out = Vec::new();
    store
        .dump(None, oxigraph::io::RdfFormat::NTriples, &mut out)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    for secret_ish in [
        "nvr-admin",
        "camera-admin",
        "credential",
        "127.0.0.1:15020",
        "modbus",
    ] {
        assert!(
            !text.contains(secret_ish),
            "`{secret_ish}` leaked into the RDF store"
        );
    }
}

/// Point id → (object type, instance) after building `text` with `dir`.
fn numbers(text: &str, dir: &Path) -> HashMap<String, (ObjectType, u32)> {
    let loaded = vgw::config::parse(Path::new("site.toml"), text.to_string()).expect("valid");
    let site = vgw::model::build::build_with_registry(&loaded, Some(dir)).expect("builds");
    site.points
        .iter()
        .map(|p| (p.id.clone(), (p.object_type, p.instance)))
        .collect()
}

#[test]
fn bacnet_numbers_survive_restart_rename_insertion_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string("config/demo.toml").unwrap();
    let first = numbers(&demo, dir.path());
    assert_eq!(
        numbers(&demo, dir.path()),
        first,
        "a restart renumbers nothing"
    );

    // Rename a camera, add an NVR with a camera at the top of the file,
    // remove another camera.
    let mut changed = demo.replace(
        "name = \"Floor 1 corridor east\"",
        "name = \"Lobby east (renamed)\"",
    );
    let removed = "[[ip_camera]]\nid = \"cam-060\"\nname = \"Floor 15 stairwell\"\nspace = \"f15-corridor\"\nstreams_to = \"nvr-2\"\nfed_by = \"poe-2\"\ntime_source = \"ntp-1\"\ncodec = \"H.265\"\nmax_resolution = \"4MP\"\ncredential = \"camera-admin\"\n";
    assert!(changed.contains(removed));
    changed = changed.replace(removed, "");
    let added = "[[nvr]]\nid = \"nvr-0\"\nspace = \"srv\"\nchannels = 8\nalarm_inputs = 4\nalarm_outputs = 1\n\n[[ip_camera]]\nid = \"cam-new\"\nstreams_to = \"nvr-0\"\n\n";
    changed = changed.replacen("[[ups]]", &format!("{added}[[ups]]"), 1);
    let second = numbers(&changed, dir.path());

    for (id, n) in &second {
        if let Some(old) = first.get(id) {
            assert_eq!(n, old, "{id} was renumbered");
        }
    }
    let old_numbers: BTreeSet<&(ObjectType, u32)> = first.values().collect();
    for id in second
        .keys()
        .filter(|id| id.starts_with("nvr-0.") || id.starts_with("cam-new."))
    {
        assert!(
            !old_numbers.contains(&second[id]),
            "{id} reused a number of an earlier point"
        );
    }
    let unique: BTreeSet<&(ObjectType, u32)> = second.values().collect();
    assert_eq!(unique.len(), second.len(), "no two points share an object");
}

#[test]
fn pinned_numbers_are_served() {
    let site = vgw::model::load_site(Path::new("config/examples/small.toml"), None).unwrap();
    let p = site.point("nvr-1.alarm-in-1").unwrap();
    assert_eq!((p.object_type, p.instance), (ObjectType::BinaryInput, 101));
    assert_eq!(p.name, "Front door contact");
}
