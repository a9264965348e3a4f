//! Chain of custody: every export and every evidence lock is appended to
//! `<data_dir>/recordings/audit.jsonl` (who, what, which camera and range,
//! when) and synced before the action is answered. The file is only ever
//! appended to; the API lists it, nothing edits it.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Wall ms when it happened.
    pub at_ms: i64,
    /// The logged-in user (or `cli` for `vgw clip` on the gateway host).
    pub who: String,
    /// `export`, `lock`, `unlock`.
    pub action: String,
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Free text: the lock's reason, the export's format.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

pub struct AuditLog {
    path: PathBuf,
    /// One appender at a time, so lines never interleave.
    file: Mutex<std::fs::File>,
}

/// Most entries `list` returns at once.
pub const LIST_LIMIT: usize = 10_000;

impl AuditLog {
    pub fn open(dir: &Path) -> std::io::Result<AuditLog> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("audit.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    /// Appends and syncs one entry; an error means the action must not go
    /// ahead (no export without its record).
    pub fn append(&self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Entries, oldest first, optionally for one camera, at most `limit`
    /// of the newest. A damaged line (a crash mid-write) is skipped.
    pub fn list(&self, camera: Option<&str>, limit: usize) -> std::io::Result<Vec<Entry>> {
        let f = std::fs::File::open(&self.path)?;
        let mut out: std::collections::VecDeque<Entry> = std::collections::VecDeque::new();
        for line in std::io::BufReader::new(f).lines() {
            let Ok(e) = serde_json::from_str::<Entry>(&line?) else {
                continue;
            };
            if camera.is_some_and(|c| c != e.camera) {
                continue;
            }
            if out.len() == limit.min(LIST_LIMIT) {
                out.pop_front();
            }
            out.push_back(e);
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(camera: &str, who: &str) -> Entry {
        Entry {
            at_ms: 1,
            who: who.into(),
            action: "export".into(),
            camera: camera.into(),
            start_ms: 10,
            end_ms: 20,
            detail: String::new(),
        }
    }

    #[test]
    fn entries_survive_reopening_and_filter_by_camera() {
        let d = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(d.path()).unwrap();
            log.append(&entry("cam-1", "alice")).unwrap();
            log.append(&entry("cam-2", "bob")).unwrap();
        }
        let log = AuditLog::open(d.path()).unwrap();
        log.append(&entry("cam-1", "carol")).unwrap();
        let all = log.list(None, 100).unwrap();
        assert_eq!(all.len(), 3);
        let cam1: Vec<String> = log
            .list(Some("cam-1"), 100)
            .unwrap()
            .into_iter()
            .map(|e| e.who)
            .collect();
        assert_eq!(cam1, ["alice", "carol"]);
        assert_eq!(log.list(None, 1).unwrap()[0].who, "carol", "the newest");
    }

    #[test]
    fn a_torn_last_line_is_skipped_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path()).unwrap();
        log.append(&entry("cam-1", "alice")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("audit.jsonl"))
            .unwrap()
            .write_all(b"{\"at_ms\":2,\"who\":\"x")
            .unwrap();
        assert_eq!(log.list(None, 10).unwrap().len(), 1);
    }
}
