//! Video recording (DESIGN.md §5): RTSP ingest, fragmented-MP4 segments,
//! the SQLite index, retention, playback and export.
//!
//! - `h26x`: H.264/H.265 bitstream facts (keyframes incl. H.265 open GOP,
//!   B-frames, dimensions) the recorder decides on.
//! - `mp4`: our fragmented-MP4 writer (init segment, one fragment per GOP)
//!   and the progressive MP4 of an export.
//! - `store`: segment files, the per-disk writer thread, the index,
//!   crash recovery and retention.

pub mod audit;
pub mod h26x;
pub mod ingest;
pub mod mp4;
pub mod store;
