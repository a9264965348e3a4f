//! The per-disk writer thread: appends init segments and fragments to
//! segment files, and once per sync interval makes them durable
//! (`fdatasync` of every file written since the last sync, plus the
//! directory of every new file) *before* inserting their index rows in one
//! transaction. So the index only ever points at bytes that survive a
//! crash, and one fsync per file per second is the whole I/O cost of
//! durability however many fragments arrive.

use super::layout::{self, TICKS_PER_SEC};
use super::retention;
use super::{Fragment, Shared, StoreConfig};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identity of a stream plus its place in the rotation stagger.
#[derive(Debug)]
pub struct StreamKey {
    pub camera: String,
    pub stream: String,
    pub stagger_index: u32,
    pub stagger_of: u32,
}

/// An init segment (ftyp+moov) and what it describes.
#[derive(Debug)]
pub struct InitSeg {
    pub bytes: Vec<u8>,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Identifies the sample entry: export splits where it changes.
    pub sha: String,
}

pub enum Msg {
    Fragment {
        key: Arc<StreamKey>,
        /// A new init segment to apply before this fragment.
        init: Option<Arc<InitSeg>>,
        /// The stream broke (or a fragment was dropped) before this one.
        after_gap: bool,
        frag: Fragment,
        queued: Instant,
    },
    Close(Arc<StreamKey>),
    /// Sync and index now, then reply (tests, shutdown of a caller).
    Sync(SyncSender<()>),
    /// Enforce retention now and reply with what happened.
    Retention(SyncSender<retention::Outcome>),
    /// New limits (a reloaded site file); enforced at once.
    SetRetention(retention::RetentionConfig),
    Shutdown,
}

struct Pending {
    offset: u64,
    len: u64,
    start_90k: u64,
    duration_90k: u32,
    wall_ms: i64,
    frames: u32,
    keyframe: bool,
    queued: Instant,
}

struct OpenSeg {
    key: Arc<StreamKey>,
    rel_path: String,
    abs_path: PathBuf,
    file: File,
    init: Arc<InitSeg>,
    /// Directories created for this file: fsynced with its first sync so
    /// the new names are durable before the index mentions them.
    new_dirs: Vec<PathBuf>,
    target_90k: u64,
    start_90k: u64,
    end_90k: u64,
    start_ms: i64,
    end_ms: i64,
    first_wall_ms: i64,
    last_frag_90k: u64,
    last_frag_wall_ms: i64,
    /// Bytes written (init + fragments); the next fragment goes here.
    len: u64,
    after_gap: bool,
    db_id: Option<i64>,
    pending: Vec<Pending>,
    /// No more appends: mark closed in the index at the next sync.
    closing: bool,
    last_write: Instant,
}

#[derive(Default)]
struct StreamState {
    init: Option<Arc<InitSeg>>,
    current: Option<u64>,
    /// The next segment starts a session: staggered length, flagged gap.
    first_of_session: bool,
    next_after_gap: bool,
}

pub struct Writer {
    pub root: PathBuf,
    pub db: Connection,
    pub cfg: StoreConfig,
    pub shared: Arc<Shared>,
    /// Bytes of all segment files, for the simulated disk budget.
    pub used_bytes: u64,
    streams: HashMap<(String, String), StreamState>,
    segs: HashMap<u64, OpenSeg>,
    next_seg: u64,
    error_logged: bool,
    retention_due: bool,
    /// Most bytes the queue held since the heap was last trimmed.
    queue_high_water: usize,
}

impl Writer {
    pub fn new(root: PathBuf, db: Connection, cfg: StoreConfig, shared: Arc<Shared>) -> Self {
        let used_bytes = db
            .query_row("SELECT COALESCE(SUM(bytes), 0) FROM segments", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0) as u64;
        Writer {
            root,
            db,
            cfg,
            shared,
            used_bytes,
            streams: HashMap::new(),
            segs: HashMap::new(),
            next_seg: 0,
            error_logged: false,
            retention_due: true,
            queue_high_water: 0,
        }
    }

    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut next_sync = Instant::now() + self.cfg.sync_interval;
        let mut next_retention = Instant::now();
        loop {
            let wait = next_sync.saturating_duration_since(Instant::now());
            let mut stop = false;
            let msg = rx.recv_timeout(wait);
            // Any message taken frees a slot: recorders waiting for room
            // try again (for a fragment, once its bytes are freed too).
            if matches!(&msg, Ok(m) if !matches!(m, Msg::Fragment { .. })) {
                self.shared.room.notify_waiters();
            }
            match msg {
                Ok(Msg::Fragment {
                    key,
                    init,
                    after_gap,
                    frag,
                    queued,
                }) => {
                    let was = self
                        .shared
                        .queued_bytes
                        .fetch_sub(frag.len(), Ordering::Relaxed);
                    self.queue_high_water = self.queue_high_water.max(was);
                    self.shared.room.notify_waiters();
                    self.fragment(key, init, after_gap, frag, queued);
                }
                Ok(Msg::Close(key)) => {
                    if let Some(st) = self
                        .streams
                        .get_mut(&(key.camera.clone(), key.stream.clone()))
                    {
                        close_current(st, &mut self.segs);
                        st.first_of_session = true;
                    }
                }
                Ok(Msg::Sync(reply)) => {
                    self.sync();
                    self.maybe_retention(false);
                    next_sync = Instant::now() + self.cfg.sync_interval;
                    let _ = reply.send(());
                }
                Ok(Msg::Retention(reply)) => {
                    self.sync();
                    let _ = reply.send(self.retention());
                }
                Ok(Msg::SetRetention(r)) => {
                    self.cfg.retention = r;
                    self.sync();
                    self.retention();
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => stop = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop {
                for st in self.streams.values_mut() {
                    close_current(st, &mut self.segs);
                }
                self.sync();
                return;
            }
            let now = Instant::now();
            if now >= next_sync {
                self.sync();
                self.trim_after_burst();
                next_sync = now + self.cfg.sync_interval;
                let periodic = now >= next_retention;
                if periodic {
                    next_retention = now + self.cfg.retention_interval;
                }
                self.maybe_retention(periodic);
            }
        }
    }

    fn fragment(
        &mut self,
        key: Arc<StreamKey>,
        init: Option<Arc<InitSeg>>,
        after_gap: bool,
        frag: Fragment,
        queued: Instant,
    ) {
        let skey = (key.camera.clone(), key.stream.clone());
        let st = self.streams.entry(skey).or_insert_with(|| StreamState {
            first_of_session: true,
            ..Default::default()
        });
        if after_gap {
            close_current(st, &mut self.segs);
            st.first_of_session = true;
            st.next_after_gap = true;
        }
        if let Some(init) = init {
            // The same init sent again (after a dropped message) changes
            // nothing; a different one needs its own file and sample entry.
            if st.init.as_ref().map(|i| &i.sha) != Some(&init.sha) {
                close_current(st, &mut self.segs);
            }
            st.init = Some(init);
        }
        let Some(init) = st.init.clone() else {
            tracing::warn!(
                "recording {}/{}: fragment before any init segment dropped",
                key.camera,
                key.stream
            );
            return;
        };
        if let Some(seg) = st.current.and_then(|id| self.segs.get(&id)) {
            if layout::needs_rotation(
                seg.start_90k,
                seg.end_90k,
                seg.target_90k,
                frag.start_90k,
                frag.keyframe,
            ) {
                close_current(st, &mut self.segs);
            }
        }
        let id = match st.current {
            Some(id) => id,
            None => {
                let target = layout::segment_ticks(
                    self.cfg.segment_secs,
                    st.first_of_session,
                    key.stagger_index,
                    key.stagger_of,
                );
                let after = st.next_after_gap;
                match create_segment(
                    &self.root,
                    &key,
                    &init,
                    &frag,
                    target,
                    after,
                    self.cfg.disk_budget_left(self.used_bytes),
                ) {
                    Ok(seg) => {
                        self.used_bytes += seg.len;
                        let id = self.next_seg;
                        self.next_seg += 1;
                        self.segs.insert(id, seg);
                        st.current = Some(id);
                        st.first_of_session = false;
                        st.next_after_gap = false;
                        id
                    }
                    Err(e) => {
                        // Nothing of this fragment is stored: the next one
                        // starts a new segment after a visible gap.
                        st.next_after_gap = true;
                        write_failed(
                            &self.shared,
                            &mut self.error_logged,
                            &mut self.retention_due,
                            &key,
                            &e,
                        );
                        return;
                    }
                }
            }
        };
        let seg = self.segs.get_mut(&id).expect("current segment is open");
        let len = frag.len() as u64;
        let res = match self.cfg.disk_budget_left(self.used_bytes) {
            Some(left) if left < len => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk budget exhausted",
            )),
            _ => write_fragment_at(&seg.file, &frag, seg.len),
        };
        if let Err(e) = res {
            // A partial write would leave a torn box in the middle of the
            // file: cut it off and end the segment there.
            let _ = seg.file.set_len(seg.len);
            close_current(st, &mut self.segs);
            st.next_after_gap = true;
            st.first_of_session = true;
            write_failed(
                &self.shared,
                &mut self.error_logged,
                &mut self.retention_due,
                &key,
                &e,
            );
            return;
        }
        if self.shared.write_error.swap(false, Ordering::Relaxed) {
            tracing::info!("recording: writes succeed again");
            self.error_logged = false;
        }
        self.used_bytes += len;
        seg.pending.push(Pending {
            offset: seg.len,
            len,
            start_90k: frag.start_90k,
            duration_90k: frag.duration_90k,
            wall_ms: frag.wall_ms,
            frames: frag.frames,
            keyframe: frag.keyframe,
            queued,
        });
        seg.len += len;
        let end_90k = frag.start_90k + u64::from(frag.duration_90k);
        seg.end_90k = end_90k;
        seg.end_ms = frag.wall_ms + ticks_to_ms(frag.duration_90k);
        seg.last_frag_90k = frag.start_90k;
        seg.last_frag_wall_ms = frag.wall_ms;
        seg.last_write = Instant::now();
    }

    /// fdatasync every written file, then index what is now durable.
    pub fn sync(&mut self) {
        // Streams silent for a while (camera gone without close) release
        // their segment, so it becomes closed and eligible for retention.
        let idle = self.cfg.idle_close;
        for st in self.streams.values_mut() {
            if let Some(id) = st.current {
                if self
                    .segs
                    .get(&id)
                    .is_some_and(|s| s.last_write.elapsed() >= idle)
                {
                    close_current(st, &mut self.segs);
                    st.first_of_session = true;
                }
            }
        }
        let mut failed = Vec::new();
        for (id, seg) in self.segs.iter_mut() {
            if seg.pending.is_empty() && seg.db_id.is_some() && !seg.closing {
                continue;
            }
            let r = seg.file.sync_data().and_then(|()| {
                for d in seg.new_dirs.drain(..) {
                    File::open(&d)?.sync_all()?;
                }
                Ok(())
            });
            if let Err(e) = r {
                // After a failed fsync the page cache may have dropped the
                // data: nothing pending in this file can be trusted.
                failed.push((*id, e));
            }
        }
        for (id, e) in failed {
            let Some(seg) = self.segs.get_mut(&id) else {
                continue;
            };
            let key = seg.key.clone();
            seg.pending.clear();
            write_failed(
                &self.shared,
                &mut self.error_logged,
                &mut self.retention_due,
                &key,
                &e,
            );
            if let Some(st) = self
                .streams
                .get_mut(&(key.camera.clone(), key.stream.clone()))
            {
                if st.current == Some(id) {
                    close_current(st, &mut self.segs);
                    st.next_after_gap = true;
                }
            }
        }
        match self.index() {
            Ok(new_ids) => {
                let mut lags = Vec::new();
                for (id, db_id) in new_ids {
                    if let Some(s) = self.segs.get_mut(&id) {
                        s.db_id = Some(db_id);
                    }
                }
                for s in self.segs.values_mut() {
                    lags.extend(s.pending.drain(..).map(|p| p.queued.elapsed()));
                }
                self.shared.lags.record(lags);
                let done: Vec<u64> = self
                    .segs
                    .iter()
                    .filter(|(_, s)| s.closing)
                    .map(|(id, _)| *id)
                    .collect();
                for id in done {
                    if let Some(s) = self.segs.remove(&id) {
                        if s.db_id.is_none() {
                            // Never held a durable fragment: nothing to keep.
                            self.used_bytes = self.used_bytes.saturating_sub(s.len);
                            let _ = std::fs::remove_file(&s.abs_path);
                        }
                    }
                }
            }
            Err(e) => {
                // Rows stay pending and are retried at the next sync.
                self.shared.write_error.store(true, Ordering::Relaxed);
                if !self.error_logged {
                    self.error_logged = true;
                    tracing::error!("recording index: commit failed, retrying: {e}");
                }
                self.retention_due = true;
            }
        }
    }

    /// One transaction for everything synced; returns the ids of segments
    /// indexed for the first time (applied only once it committed).
    fn index(&mut self) -> rusqlite::Result<Vec<(u64, i64)>> {
        let tx = self.db.transaction()?;
        let mut new_ids = Vec::new();
        for (id, s) in self.segs.iter() {
            let db_id = match s.db_id {
                Some(d) => d,
                None if s.pending.is_empty() => continue,
                None => {
                    let d = insert_segment(&tx, s)?;
                    new_ids.push((*id, d));
                    d
                }
            };
            let mut ins = tx.prepare_cached(
                "INSERT INTO fragments (segment, offset, len, start_90k, duration_90k, wall_ms, frames, keyframe)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for p in &s.pending {
                ins.execute(params![
                    db_id,
                    p.offset as i64,
                    p.len as i64,
                    p.start_90k as i64,
                    p.duration_90k,
                    p.wall_ms,
                    p.frames,
                    p.keyframe
                ])?;
            }
            // Only the durable, indexed extent counts: a fragment whose
            // fsync failed was dropped from `pending` and is not covered.
            let (end_90k, end_ms, bytes) = match s.pending.last() {
                Some(p) => (
                    p.start_90k + u64::from(p.duration_90k),
                    p.wall_ms + ticks_to_ms(p.duration_90k),
                    p.offset + p.len,
                ),
                None => (u64::MAX, 0, 0),
            };
            if end_90k != u64::MAX {
                tx.prepare_cached(
                    "UPDATE segments SET end_90k = ?2, end_ms = ?3, bytes = ?4, open = ?5 WHERE id = ?1",
                )?
                .execute(params![db_id, end_90k as i64, end_ms, bytes as i64, !s.closing])?;
                let drift = (s.last_frag_wall_ms - s.first_wall_ms)
                    - ((s.last_frag_90k - s.start_90k) * 1000 / TICKS_PER_SEC) as i64;
                tx.prepare_cached(
                    "INSERT INTO clock_drift (segment, first_wall_ms, first_90k, last_wall_ms, last_90k, drift_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (segment) DO UPDATE SET last_wall_ms = ?4, last_90k = ?5, drift_ms = ?6",
                )?
                .execute(params![
                    db_id,
                    s.first_wall_ms,
                    s.start_90k as i64,
                    s.last_frag_wall_ms,
                    s.last_frag_90k as i64,
                    drift
                ])?;
            } else if s.closing {
                tx.prepare_cached("UPDATE segments SET open = 0 WHERE id = ?1")?
                    .execute([db_id])?;
            }
        }
        tx.commit()?;
        Ok(new_ids)
    }

    fn maybe_retention(&mut self, periodic: bool) {
        let low = retention::free_space(&self.root, &self.cfg.retention, self.used_bytes)
            .is_some_and(|(free, total)| free < self.cfg.retention.floor(total));
        if periodic || low || self.retention_due {
            self.retention();
        }
    }

    /// Once a burst that filled a quarter of the queue has drained, gives
    /// the freed memory back (crate::heap): otherwise every disk stall would
    /// leave its high-water mark in the RSS for good.
    fn trim_after_burst(&mut self) {
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        if self.queue_high_water >= self.cfg.queue_bytes / 4 && queued <= self.cfg.queue_bytes / 16
        {
            self.queue_high_water = 0;
            crate::heap::release_free_memory();
        }
    }

    fn retention(&mut self) -> retention::Outcome {
        self.retention_due = false;
        let out = retention::enforce(
            &mut self.db,
            &self.root,
            &self.cfg.retention,
            super::now_ms(),
            &mut self.used_bytes,
        );
        self.shared
            .retention_blocked
            .store(out.blocked, Ordering::Relaxed);
        out
    }
}

/// Sets the health flag, logs the first error of a run of them, and asks
/// for retention: the usual cause is a full disk.
fn write_failed(
    shared: &Shared,
    logged: &mut bool,
    retention_due: &mut bool,
    key: &StreamKey,
    e: &io::Error,
) {
    shared.write_error.store(true, Ordering::Relaxed);
    shared.write_errors.fetch_add(1, Ordering::Relaxed);
    if !*logged {
        *logged = true;
        tracing::error!(
            "recording {}/{}: write failed, still trying: {e}",
            key.camera,
            key.stream
        );
    }
    *retention_due = true;
}

pub fn ticks_to_ms(t: u32) -> i64 {
    (u64::from(t) * 1000 / TICKS_PER_SEC) as i64
}

fn close_current(st: &mut StreamState, segs: &mut HashMap<u64, OpenSeg>) {
    if let Some(id) = st.current.take() {
        if let Some(s) = segs.get_mut(&id) {
            s.closing = true;
        }
    }
}

fn insert_segment(tx: &rusqlite::Transaction, s: &OpenSeg) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO streams (camera, stream, first_seen_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (camera, stream) DO NOTHING",
    )?
    .execute(params![s.key.camera, s.key.stream, super::now_ms()])?;
    let stream_id: i64 = tx.query_row(
        "SELECT id FROM streams WHERE camera = ?1 AND stream = ?2",
        params![s.key.camera, s.key.stream],
        |r| r.get(0),
    )?;
    tx.prepare_cached(
        "INSERT INTO segments (stream_id, camera, stream, path, codec, width, height, init_len, init_sha,
                               start_90k, end_90k, start_ms, end_ms, bytes, open, after_gap)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?11, ?8, 1, ?12)",
    )?
    .execute(params![
        stream_id,
        s.key.camera,
        s.key.stream,
        s.rel_path,
        s.init.codec,
        s.init.width,
        s.init.height,
        s.init.bytes.len() as i64,
        s.init.sha,
        s.start_90k as i64,
        s.start_ms,
        s.after_gap
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Most buffers one `pwritev` takes (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;

/// Writes the fragment's head and sample buffers contiguously at `offset`,
/// in one `pwritev` for a usual GOP (one system call, no copy into a single
/// buffer), continuing after short writes.
fn write_fragment_at(file: &File, frag: &Fragment, offset: u64) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = std::iter::once(&frag.head)
        .chain(&frag.payload)
        .filter(|b| !b.is_empty())
        .map(|b| io::IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    let mut at = offset;
    while !rest.is_empty() {
        let n = rest.len().min(IOV_MAX);
        let pos = i64::try_from(at).map_err(|_| io::Error::other("file offset past 2^63"))?;
        let written = match nix::sys::uio::pwritev(file, &rest[..n], pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => w,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        at += written as u64;
        io::IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

/// Creates the file (and its directories) and writes the init segment.
fn create_segment(
    root: &Path,
    key: &Arc<StreamKey>,
    init: &Arc<InitSeg>,
    frag: &Fragment,
    target_90k: u64,
    after_gap: bool,
    budget_left: Option<u64>,
) -> io::Result<OpenSeg> {
    if budget_left.is_some_and(|left| left < (init.bytes.len() + frag.len()) as u64) {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "simulated disk budget exhausted",
        ));
    }
    let dir_rel = layout::day_dir(&key.camera, frag.wall_ms);
    let dir = root.join(&dir_rel);
    let mut new_dirs = Vec::new();
    if !dir.exists() {
        std::fs::create_dir_all(&dir)?;
        // The day dir's entry lives in the camera dir, the camera dir's in
        // recordings/: fsync both parents (and the day dir for the file).
        if let Some(cam) = dir.parent() {
            new_dirs.push(root.to_path_buf());
            new_dirs.push(cam.to_path_buf());
        }
    }
    new_dirs.push(dir.clone());
    let mut attempt = 0;
    let (file, name) = loop {
        let name = layout::file_name(&key.camera, &key.stream, frag.wall_ms, attempt);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(&name))
        {
            Ok(f) => break (f, name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let abs_path = dir.join(&name);
    if let Err(e) = file.write_all_at(&init.bytes, 0) {
        let _ = std::fs::remove_file(&abs_path);
        return Err(e);
    }
    Ok(OpenSeg {
        key: key.clone(),
        rel_path: format!("{dir_rel}/{name}"),
        abs_path,
        file,
        init: init.clone(),
        new_dirs,
        target_90k,
        start_90k: frag.start_90k,
        end_90k: frag.start_90k,
        start_ms: frag.wall_ms,
        end_ms: frag.wall_ms,
        first_wall_ms: frag.wall_ms,
        last_frag_90k: frag.start_90k,
        last_frag_wall_ms: frag.wall_ms,
        len: init.bytes.len() as u64,
        after_gap,
        db_id: None,
        pending: Vec::new(),
        closing: false,
        last_write: Instant::now(),
    })
}

/// How long `StreamWriter::close` or an idle stream waits, at most, before
/// its segment is closed: used by `StoreConfig::default`.
pub const IDLE_CLOSE: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    /// A fragment of more frames than one pwritev takes (a long GOP at a
    /// high frame rate) lands whole and in order, after what was there.
    #[test]
    fn fragment_parts_land_contiguously() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("seg.mp4"))
            .unwrap();
        file.write_all_at(b"init", 0).unwrap();
        let payload: Vec<Vec<u8>> = (0..2500u32)
            .map(|i| vec![i as u8; 1 + (i as usize % 5)])
            .chain([Vec::new()])
            .collect();
        let frag = Fragment {
            head: b"moof+mdat".to_vec(),
            payload,
            start_90k: 0,
            duration_90k: 0,
            wall_ms: 0,
            frames: 2500,
            keyframe: true,
        };
        write_fragment_at(&file, &frag, 4).unwrap();
        let mut want = b"init".to_vec();
        want.extend_from_slice(&frag.head);
        frag.payload.iter().for_each(|b| want.extend_from_slice(b));
        assert_eq!(std::fs::read(dir.path().join("seg.mp4")).unwrap(), want);
        assert_eq!(frag.len() + 4, want.len());
    }
}
