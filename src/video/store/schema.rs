//! The recording index: `recordings/index.sqlite` (WAL).
//!
//! The writer thread is the only connection that inserts segments and
//! fragments; readers (playback, export, locks) use their own connection,
//! which WAL lets run beside it. Times: `*_90k` are the stream's own
//! 90 kHz timeline (monotonic within a session), `*_ms` are wall-clock ms
//! since the epoch as reported with each fragment.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

pub const FILE_NAME: &str = "index.sqlite";
/// Bumped with every incompatible change; `migrate` refuses newer files.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    stream TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    UNIQUE (camera, stream)
);
-- One segment file: the init segment at offset 0, then fragments.
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    camera TEXT NOT NULL,
    stream TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,      -- relative to recordings/
    codec TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    init_len INTEGER NOT NULL,      -- bytes [0, init_len) are the init segment
    init_sha TEXT NOT NULL,         -- same hash = same sample entry
    start_90k INTEGER NOT NULL,
    end_90k INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,         -- durable, indexed length of the file
    open INTEGER NOT NULL,          -- 1 while the writer may still append
    after_gap INTEGER NOT NULL      -- 1: the stream broke right before it
);
CREATE INDEX segments_by_stream ON segments (camera, stream, start_ms);
CREATE INDEX segments_by_start ON segments (start_ms);
CREATE TABLE fragments (
    segment INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    start_90k INTEGER NOT NULL,
    duration_90k INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    keyframe INTEGER NOT NULL,
    PRIMARY KEY (segment, offset)
) WITHOUT ROWID;
-- Evidence: segments overlapping an unexpired lock are never deleted.
CREATE TABLE locks (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX locks_by_camera ON locks (camera, start_ms);
-- Camera clock vs the 90k timeline, per segment: drift_ms > 0 means the
-- camera's wall clock advanced faster than its media timeline.
CREATE TABLE clock_drift (
    segment INTEGER PRIMARY KEY REFERENCES segments(id) ON DELETE CASCADE,
    first_wall_ms INTEGER NOT NULL,
    first_90k INTEGER NOT NULL,
    last_wall_ms INTEGER NOT NULL,
    last_90k INTEGER NOT NULL,
    drift_ms INTEGER NOT NULL
);
-- Files whose rows are deleted but which may not be unlinked yet: a crash
-- between the commit and the unlink must not leave them behind forever.
CREATE TABLE trash (path TEXT PRIMARY KEY);
";

pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed index row must survive power loss, because it is
    // the promise that the bytes it points at are durable.
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    Ok(c)
}

/// Creates or upgrades the schema; refuses a file from a newer vgw.
pub fn migrate(c: &mut Connection) -> Result<(), String> {
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| e.to_string())?;
    match v {
        0 => {
            let tx = c.transaction().map_err(|e| e.to_string())?;
            tx.execute_batch(V1).map_err(|e| e.to_string())?;
            tx.pragma_update(None, "user_version", VERSION)
                .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())
        }
        VERSION => Ok(()),
        v => Err(format!(
            "recording index schema version {v} is newer than this vgw ({VERSION})"
        )),
    }
}
