//! Namespaces and the fixed IRIs of the model (docs/model.md lists them).

pub const BRICK: &str = "https://brickschema.org/schema/Brick#";
pub const REC: &str = "https://w3id.org/rec#";
pub const REF: &str = "https://brickschema.org/schema/Brick/ref#";
pub const BACNET: &str = "http://data.ashrae.org/bacnet/2020#";
pub const UNIT: &str = "http://qudt.org/vocab/unit/";
pub const VGW: &str = "https://w3id.org/vgw#";
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
pub const RDFS_LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";

/// Haystack 4 libraries as RDF namespaces (Haystack's own RDF export form).
pub const PH: &str = "https://project-haystack.org/def/ph/3.9.15#";
pub const PH_IOT: &str = "https://project-haystack.org/def/phIoT/3.9.15#";
pub const PH_SCIENCE: &str = "https://project-haystack.org/def/phScience/3.9.15#";
pub const PH_ICT: &str = "https://project-haystack.org/def/phIct/3.9.15#";
/// The vgw Haystack lib (`haystack/vgw.trio`).
pub const HS_VGW: &str = "https://w3id.org/vgw/haystack#";
/// Marker tags are `<entity> ph:hasTag <lib#tag>`.
pub const PH_HAS_TAG: &str = "https://project-haystack.org/def/ph/3.9.15#hasTag";

/// Named graphs: the derived model is rebuilt from config on every start;
/// the ontology is loaded from the binary; the user graph holds SPARQL
/// Update edits and is the only graph persisted.
pub const GRAPH_MODEL: &str = "urn:vgw:graph:model";
pub const GRAPH_ONTOLOGY: &str = "urn:vgw:graph:ontology";
pub const GRAPH_USER: &str = "urn:vgw:graph:user";

/// Prefixes used in exports and accepted by canned queries.
pub const PREFIXES: &[(&str, &str)] = &[
    ("brick", BRICK),
    ("rec", REC),
    ("ref", REF),
    ("bacnet", BACNET),
    ("unit", UNIT),
    ("vgw", VGW),
    ("ph", PH),
    ("phIoT", PH_IOT),
    ("phScience", PH_SCIENCE),
    ("phIct", PH_ICT),
    ("hs", HS_VGW),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", XSD),
];

/// `PREFIX` lines for SPARQL text.
pub fn sparql_prefixes() -> String {
    PREFIXES
        .iter()
        .map(|(p, ns)| format!("PREFIX {p}: <{ns}>\n"))
        .collect()
}

pub fn brick(local: &str) -> String {
    format!("{BRICK}{local}")
}
pub fn vgw(local: &str) -> String {
    format!("{VGW}{local}")
}
pub fn rec(local: &str) -> String {
    format!("{REC}{local}")
}

/// The ontology files compiled into the binary, so `vgw demo` works from
/// any directory.
pub const ONTOLOGY_FILES: &[(&str, &str)] = &[
    ("Brick.ttl", include_str!("../../ontology/Brick.ttl")),
    ("vgw.ttl", include_str!("../../ontology/vgw.ttl")),
    ("units.ttl", include_str!("../../ontology/units.ttl")),
];
