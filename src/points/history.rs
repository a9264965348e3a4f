//! Point history in SQLite (WAL): what each historised point's value was.
//!
//! Samples arrive on a bounded queue and are written by one dedicated
//! thread in batched transactions, so no file I/O ever runs on an async
//! worker and a slow disk can never stall the point engine: when the queue
//! is full, samples are dropped and counted. Point ids are mapped to small
//! integers in a `points` table keyed by the model id, so history survives
//! restarts and config edits that keep the id.

use super::{Quality, Value};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const FILE_NAME: &str = "history.sqlite";
/// Samples waiting for the writer at most.
pub const QUEUE: usize = 65_536;
/// The writer commits at least this often, or every `BATCH` samples.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const BATCH: usize = 5_000;

/// One recorded value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub value: Value,
    pub quality: Quality,
}

enum Msg {
    Sample(String, Sample),
    /// Reply once everything queued before has been committed.
    Flush(SyncSender<()>),
    /// Retention: delete each point's samples older than its cutoff (ms).
    Prune(Vec<(String, i64)>),
}

pub struct History {
    path: PathBuf,
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    /// Readers use their own connection (WAL lets them run beside the writer).
    reader: Mutex<Connection>,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS samples (
             point INTEGER NOT NULL REFERENCES points(id),
             ts INTEGER NOT NULL,
             value REAL,
             quality INTEGER NOT NULL
         );
         -- Not unique: two changes in the same millisecond are both kept,
         -- in arrival order (rowid), so a quick on/off/on is not lost.
         CREATE INDEX IF NOT EXISTS samples_by_point_ts ON samples (point, ts);",
    )?;
    Ok(c)
}

fn quality_code(q: Quality) -> i64 {
    match q {
        Quality::Initial => 0,
        Quality::Ok => 1,
        Quality::Fault => 2,
        Quality::OutOfService => 3,
        Quality::Overridden => 4,
    }
}

fn quality_of(code: i64) -> Quality {
    match code {
        1 => Quality::Ok,
        2 => Quality::Fault,
        3 => Quality::OutOfService,
        4 => Quality::Overridden,
        _ => Quality::Initial,
    }
}

/// Binary values are stored as 0/1 and come back as booleans for points
/// whose kind is Bool (the reader is told the kind).
fn encode(v: Value) -> Option<f64> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        Value::Number(n) => Some(n),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl History {
    /// Opens (or creates) `<dir>/history.sqlite` and starts the writer thread.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let writer = open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reader = open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("vgw-history".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| e.to_string())?;
        Ok(History {
            path,
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            reader: Mutex::new(reader),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a sample; never blocks. Returns false (and counts it) when the
    /// queue is full.
    pub fn record(&self, point: &str, sample: Sample) -> bool {
        match self.tx.try_send(Msg::Sample(point.to_string(), sample)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Samples dropped because the writer fell behind, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (at most `timeout`) until everything queued so far is committed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Samples of `point` with `start <= ts < end` (ms), oldest first, at most
    /// `limit`. `as_bool` turns stored 0/1 back into booleans.
    pub fn read(
        &self,
        point: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
        as_bool: bool,
    ) -> Result<Vec<Sample>, String> {
        let c = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let Some(id): Option<i64> = c
            .query_row("SELECT id FROM points WHERE name = ?1", [point], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| e.to_string())?
        else {
            return Ok(Vec::new());
        };
        let mut stmt = c
            .prepare_cached("SELECT ts, value, quality FROM samples WHERE point = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts, rowid LIMIT ?4")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![id, start_ms, end_ms, limit as i64], |r| {
                let v: Option<f64> = r.get(1)?;
                Ok(Sample {
                    ts_ms: r.get(0)?,
                    value: match v {
                        None => Value::Null,
                        Some(x) if as_bool => Value::Bool(x != 0.0),
                        Some(x) => Value::Number(x),
                    },
                    quality: quality_of(r.get(2)?),
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Queues retention: each point's samples older than its cutoff (ms)
    /// are deleted by the writer. Never blocks; false if the queue is full
    /// (the next round catches up).
    pub fn prune(&self, cutoffs: Vec<(String, i64)>) -> bool {
        self.tx.try_send(Msg::Prune(cutoffs)).is_ok()
    }
}

fn write_loop(mut c: Connection, rx: Receiver<Msg>) {
    let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut batch: Vec<(String, Sample)> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<SyncSender<()>> = Vec::new();
    let write = |c: &mut Connection,
                 ids: &mut std::collections::HashMap<String, i64>,
                 batch: &mut Vec<(String, Sample)>| {
        if !batch.is_empty() {
            if let Err(e) = commit(c, ids, batch) {
                tracing::error!("history: writing {} samples failed: {e}", batch.len());
            }
            batch.clear();
        }
    };
    loop {
        let first = rx.recv_timeout(FLUSH_EVERY);
        let closed = matches!(first, Err(RecvTimeoutError::Disconnected));
        // This message, then what is already queued, up to a batch.
        let mut next = first.ok();
        while let Some(msg) = next.take() {
            match msg {
                Msg::Sample(p, s) => batch.push((p, s)),
                Msg::Flush(done) => waiting.push(done),
                // Samples queued before a prune are written first, so
                // retention sees them.
                Msg::Prune(cutoffs) => {
                    write(&mut c, &mut ids, &mut batch);
                    prune(&mut c, &cutoffs);
                }
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        write(&mut c, &mut ids, &mut batch);
        for w in waiting.drain(..) {
            let _ = w.send(());
        }
        if closed {
            return;
        }
    }
}

/// One transaction for all points, on the writer thread, so retention
/// never competes with inserts for the write lock.
fn prune(c: &mut Connection, cutoffs: &[(String, i64)]) {
    let run = |c: &mut Connection| -> rusqlite::Result<usize> {
        let tx = c.transaction()?;
        let mut n = 0;
        {
            let mut del = tx.prepare_cached(
                "DELETE FROM samples WHERE point = (SELECT id FROM points WHERE name = ?1) AND ts < ?2",
            )?;
            for (name, before) in cutoffs {
                n += del.execute(params![name, before])?;
            }
        }
        tx.commit()?;
        Ok(n)
    };
    match run(c) {
        Ok(0) => {}
        Ok(n) => tracing::info!("history retention: deleted {n} samples"),
        Err(e) => tracing::error!("history retention failed: {e}"),
    }
}

fn commit(
    c: &mut Connection,
    ids: &mut std::collections::HashMap<String, i64>,
    batch: &[(String, Sample)],
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    {
        let mut insert_point = tx.prepare_cached("INSERT INTO points (name) VALUES (?1) ON CONFLICT(name) DO UPDATE SET name = name RETURNING id")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO samples (point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (name, s) in batch {
            let id = match ids.get(name) {
                Some(id) => *id,
                None => {
                    let id: i64 = insert_point.query_row([name], |r| r.get(0))?;
                    ids.insert(name.clone(), id);
                    id
                }
            };
            insert.execute(params![
                id,
                s.ts_ms,
                encode(s.value),
                quality_code(s.quality)
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, v: f64) -> Sample {
        Sample {
            ts_ms,
            value: Value::Number(v),
            quality: Quality::Ok,
        }
    }

    #[test]
    fn ranges_are_start_inclusive_end_exclusive_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = History::open(dir.path()).unwrap();
            for i in 0..10 {
                assert!(h.record("ups-1.load", s(1_000 * i, i as f64)));
            }
            h.record(
                "ups-1.on-battery",
                Sample {
                    ts_ms: 5,
                    value: Value::Bool(true),
                    quality: Quality::Ok,
                },
            );
            assert!(h.flush(Duration::from_secs(10)));
            let got = h.read("ups-1.load", 2_000, 5_000, 100, false).unwrap();
            assert_eq!(
                got.iter().map(|x| x.ts_ms).collect::<Vec<_>>(),
                [2_000, 3_000, 4_000]
            );
        }
        let h = History::open(dir.path()).unwrap();
        assert_eq!(
            h.read("ups-1.load", 0, i64::MAX, 100, false).unwrap().len(),
            10
        );
        assert_eq!(
            h.read("ups-1.load", 0, i64::MAX, 4, false).unwrap().len(),
            4,
            "limit"
        );
        assert_eq!(
            h.read("ups-1.on-battery", 0, 10, 10, true).unwrap()[0].value,
            Value::Bool(true)
        );
        assert!(h.read("nope", 0, i64::MAX, 10, false).unwrap().is_empty());
    }

    #[test]
    fn retention_drops_only_that_points_older_samples() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        for i in 0..10 {
            h.record("p", s(i, i as f64));
            h.record("q", s(i, i as f64));
        }
        assert!(h.prune(vec![("p".into(), 4)]));
        assert!(h.flush(Duration::from_secs(10)));
        let left = h.read("p", 0, i64::MAX, 100, false).unwrap();
        assert_eq!(left.first().unwrap().ts_ms, 4);
        assert_eq!(left.len(), 6);
        assert_eq!(h.read("q", 0, i64::MAX, 100, false).unwrap().len(), 10);
    }
}
