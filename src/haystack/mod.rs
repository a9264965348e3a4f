//! The Haystack 4 HTTP API (`/haystack`, `docs/haystack.md`).
//!
//! - `scram`: the SCRAM-SHA-256 login handshake;
//! - `wire`: values, grids and their Zinc/JSON encodings (libhaystack);
//! - `filter`: filters evaluated on tag and ref indexes;
//! - `ops`: the ops.

pub mod filter;
pub mod ops;
pub mod points;
pub mod scram;
pub mod watch;
pub mod wire;

use crate::graph::HEntity;
use std::collections::HashMap;

/// The Haystack side of a running gateway.
pub struct Haystack {
    /// Every entity as a Haystack dict, indexed for filters.
    pub index: filter::Index,
    pub handshakes: scram::Handshakes,
    pub watches: watch::Watches,
}

impl Haystack {
    /// The same entities the RDF store holds as Haystack triples.
    pub fn build(site_id: &str, entities: &[HEntity]) -> Haystack {
        let dis: HashMap<&str, &str> = entities
            .iter()
            .map(|h| (h.id.as_str(), h.dis.as_str()))
            .collect();
        let dis_of = |id: &str| dis.get(id).map(|d| d.to_string());
        let dicts = entities
            .iter()
            .map(|h| wire::entity_dict(site_id, h, &dis_of))
            .collect();
        Haystack {
            index: filter::Index::build(dicts),
            handshakes: scram::Handshakes::default(),
            watches: watch::Watches::default(),
        }
    }
}
