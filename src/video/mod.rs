//! Video recording (DESIGN.md §5): RTSP ingest, fragmented-MP4 segments,
//! the SQLite index, retention, playback and export.
//!
//! - `h26x`: H.264/H.265 bitstream facts (keyframes incl. H.265 open GOP,
//!   B-frames, dimensions) the recorder decides on.
//! - `mp4`: our fragmented-MP4 writer (init segment, one fragment per GOP)
//!   and the progressive MP4 of an export.
//! - `store`: segment files, the per-disk writer thread, the index,
//!   crash recovery and retention.
//! - `ingest` (the only retina user) and `recorder`: RTSP sessions to
//!   fragments; `service`: recorders of a running gateway and their
//!   health points; `export`: clips; `audit`: the chain-of-custody log.

pub mod audit;
pub mod export;
pub mod h26x;
pub mod ingest;
pub mod mp4;
pub mod on_alarm;
pub mod recorder;
pub mod service;
pub mod store;
