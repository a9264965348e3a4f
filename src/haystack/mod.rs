//! The Haystack 4 HTTP API (`/haystack`, `docs/haystack.md`).
//!
//! - `scram`: the SCRAM-SHA-256 login handshake.

pub mod filter;
pub mod scram;
pub mod wire;
