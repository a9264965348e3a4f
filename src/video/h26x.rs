//! (being written; placeholder so ingest compiles until the branch lands)

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Codec {
    H264,
    H265,
}
