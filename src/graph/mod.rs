//! RDF side of the model: projection to Brick + Haystack triples, the
//! Oxigraph store, canned topology queries and result formats.

pub mod formats;
pub mod haystack_lib;
pub mod project;
pub mod queries;
pub mod store;
pub mod vocab;

pub use project::{HEntity, HVal};
pub use store::{Answer, Dataset, GraphStore, QueryError, UpdateError};
