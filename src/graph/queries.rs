//! Canned topology queries behind `/api/...`.
//!
//! Shape rule (Oxigraph): start every property path from a bound IRI and
//! return plain IRIs; never follow a transitive path with a type test in the
//! same pattern (8 s at 64k cameras). Kinds, names and points of the hits
//! come from the in-memory site model, not from further SPARQL.

use super::store::{GraphStore, QueryError};
use super::vocab::sparql_prefixes;
use crate::model::kinds::EquipKind;
use crate::model::Site;
use oxigraph::model::Term;
use serde::Serialize;

/// Which relation a traversal follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// `brick:feeds`: downstream = what it powers.
    Power,
    /// `vgw:streamsVideoTo`: downstream = where its video goes.
    Video,
    /// `vgw:synchronizesTimeWith`: downstream = the clocks it sets.
    Time,
    /// All three at once (the dependency graph).
    All,
}

impl Relation {
    pub fn parse(s: &str) -> Option<Relation> {
        match s {
            "power" => Some(Relation::Power),
            "video" => Some(Relation::Video),
            "time" => Some(Relation::Time),
            "all" => Some(Relation::All),
            _ => None,
        }
    }

    /// The one-step path, oriented downstream.
    fn step(self) -> &'static str {
        match self {
            Relation::Power => "brick:feeds",
            Relation::Video => "vgw:streamsVideoTo",
            Relation::Time => "^vgw:synchronizesTimeWith",
            Relation::All => "brick:feeds|vgw:streamsVideoTo|^vgw:synchronizesTimeWith",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Downstream,
    Upstream,
}

/// SPARQL for everything reachable from `iri` along `rel`.
pub fn traversal_query(iri: &str, rel: Relation, dir: Direction) -> String {
    let path = match dir {
        Direction::Downstream => format!("({})+", rel.step()),
        Direction::Upstream => format!("^({})+", rel.step()),
    };
    format!(
        "{}SELECT DISTINCT ?e WHERE {{ <{iri}> {path} ?e }}",
        sparql_prefixes()
    )
}

/// SPARQL for everything powered, directly or not, by `iri` (parts included).
pub fn unpowered_query(iri: &str) -> String {
    format!(
        "{}SELECT DISTINCT ?e WHERE {{ <{iri}> (brick:feeds|brick:hasPart)+ ?e }}",
        sparql_prefixes()
    )
}

fn values(iris: &[String]) -> String {
    iris.iter()
        .map(|i| format!("<{i}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Video sources whose path to a recorder passes through any of `dark`.
pub fn unrecorded_query(dark: &[String]) -> String {
    format!(
        "{}SELECT DISTINCT ?src WHERE {{ VALUES ?dark {{ {} }} ?src vgw:streamsVideoTo+ ?dark }}",
        sparql_prefixes(),
        values(dark)
    )
}

/// Clocks set (directly or through another time server) by any of `dark`.
pub fn unsynced_query(dark: &[String]) -> String {
    format!(
        "{}SELECT DISTINCT ?c WHERE {{ VALUES ?dark {{ {} }} ?c vgw:synchronizesTimeWith+ ?dark }}",
        sparql_prefixes(),
        values(dark)
    )
}

fn iris(rows: Vec<Vec<Option<Term>>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| match r.into_iter().next().flatten() {
            Some(Term::NamedNode(n)) => Some(n.into_string()),
            _ => None,
        })
        .collect()
}

/// Ids reachable from `id` (which must exist) along `rel`.
pub fn traverse(
    store: &GraphStore,
    site: &Site,
    id: &str,
    rel: Relation,
    dir: Direction,
) -> Result<Vec<String>, QueryError> {
    let rows = store.select(&traversal_query(&site.iri(id), rel, dir))?;
    Ok(to_ids(site, iris(rows)))
}

/// Maps IRIs back to ids; IRIs from user-graph edits that name no model
/// entity are kept whole.
fn to_ids(site: &Site, iris: Vec<String>) -> Vec<String> {
    let mut ids: Vec<String> = iris
        .into_iter()
        .map(|i| site.id_of_iri(&i).map(str::to_string).unwrap_or(i))
        .collect();
    ids.sort();
    ids
}

/// What fails with `id`.
#[derive(Debug, Serialize)]
pub struct Impact {
    /// `id` and everything it powers, directly or not (and their parts).
    pub unpowered: Vec<String>,
    /// Video sources no longer recorded (their path runs through a dark device).
    pub not_recorded: Vec<String>,
    /// Clocks that lose their time source.
    pub time_unsynced: Vec<String>,
}

pub fn impact(store: &GraphStore, site: &Site, id: &str) -> Result<Impact, QueryError> {
    let start = site.iri(id);
    let mut dark = iris(store.select(&unpowered_query(&start))?);
    dark.retain(|i| *i != start);
    dark.insert(0, start);
    let dark_set: std::collections::HashSet<&String> = dark.iter().collect();
    let in_dark = |i: &String| dark_set.contains(i);
    // Recording is lost where a source's path to its recorder runs through a
    // dark recorder or encoder. A dark VMS only loses what streams straight
    // to it (cameras or encoders it records itself), not what NVRs record.
    let kind_of = |iri: &String| {
        site.id_of_iri(iri)
            .and_then(|id| site.equipment(id))
            .map(|e| e.kind)
    };
    let mut carriers: Vec<String> = dark
        .iter()
        .filter(|i| kind_of(i).is_some_and(|k| k.is_recorder() || k == EquipKind::Encoder))
        .cloned()
        .collect();
    let mut direct_to_vms = Vec::new();
    for vms in dark
        .iter()
        .filter(|i| kind_of(i) == Some(EquipKind::VmsServer))
    {
        let q = format!(
            "{}SELECT ?src WHERE {{ ?src vgw:streamsVideoTo <{vms}> }}",
            sparql_prefixes()
        );
        direct_to_vms.extend(
            iris(store.select(&q)?)
                .into_iter()
                .filter(|s| kind_of(s).is_some_and(|k| k.is_camera() || k == EquipKind::Encoder)),
        );
    }
    carriers.extend(direct_to_vms.iter().cloned());
    let mut not_recorded = if carriers.is_empty() {
        Vec::new()
    } else {
        iris(store.select(&unrecorded_query(&carriers))?)
    };
    not_recorded.extend(direct_to_vms);
    not_recorded.sort();
    not_recorded.dedup();
    not_recorded.retain(|i| !in_dark(i));
    let mut unsynced = iris(store.select(&unsynced_query(&dark))?);
    unsynced.retain(|i| !in_dark(i));
    drop(dark_set);
    Ok(Impact {
        unpowered: to_ids(site, dark),
        not_recorded: to_ids(site, not_recorded),
        time_unsynced: to_ids(site, unsynced),
    })
}
