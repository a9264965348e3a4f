//! The recording store (DESIGN.md §5): segment files of fragmented MP4,
//! one writer thread per disk with batched fdatasync, the SQLite index,
//! crash recovery, retention with evidence locks, and the queries playback
//! and export need.
//!
//! Data flow: each ingest task holds a [`StreamWriter`] and hands it init
//! segments and fragments. Those calls never touch the disk: they put a
//! message on the store's bounded queue. When it is full,
//! [`StreamWriter::fragment_when_room`] waits (asynchronously, bounded) for
//! room, so the recorder stops reading its camera's socket and a stall of
//! the disk or of the writer's CPU waits in the connection rather than in
//! our memory or on the floor (docs/recording.md); past the bound, and
//! always for [`StreamWriter::fragment`], it returns
//! `Err(StoreError::Backpressure)` (the ingest counts a drop; the store
//! then starts a new segment after a visible gap). The writer thread
//! appends to the segment files and, every
//! `sync_interval`, fdatasyncs what it wrote and indexes it in one
//! transaction, so the index never points at bytes a crash could lose.
//!
//! The query methods on [`Store`] (`recordings`, `export`, `lock`, ...)
//! read SQLite synchronously: from async code call them inside
//! `tokio::task::spawn_blocking`.
//!
//! Modules, one job each: `boxes` (top-level box framing), `layout` (paths,
//! rotation and stagger), `schema` (the index), `writer` (the thread),
//! `recovery`, `retention`, `queries`, `lag` (durability-lag metric).

pub mod boxes;
mod lag;
pub mod layout;
mod queries;
mod recovery;
pub mod retention;
mod schema;
mod writer;

pub use queries::{Drift, ExportPiece, Gap, Lock, Run, SegmentInfo, Usage};
pub use recovery::RecoveryReport;
pub use retention::{CameraRetention, Outcome as RetentionOutcome, RetentionConfig};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use writer::{InitSeg, Msg, StreamKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The writer's queue is full: the data was not taken.
    #[error("recording queue full")]
    Backpressure,
    /// The store was shut down.
    #[error("recording store closed")]
    Closed,
    /// A fragment before any init segment: it could not be decoded.
    #[error("fragment before init segment")]
    NoInit,
    /// Another store (process) holds this directory.
    #[error("{0} is in use by another recording store")]
    InUse(PathBuf),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("recording store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("recording index: {0}")]
    Index(#[from] rusqlite::Error),
    #[error("recording index schema: {0}")]
    Schema(String),
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Nominal segment length (s); rotation waits for a fragment boundary.
    pub segment_secs: u32,
    /// fdatasync + index commit period: the bound on data lost in a crash.
    pub sync_interval: Duration,
    /// Messages the queue holds at most (for all streams of this store).
    pub queue_messages: usize,
    /// Fragment bytes the queue holds at most, so 256 large fragments
    /// cannot pin unbounded memory behind a slow disk. This is most of the
    /// recorder's memory at the peak: see [`queue_bytes_for`].
    pub queue_bytes: usize,
    /// A stream silent this long has its segment closed.
    pub idle_close: Duration,
    pub retention_interval: Duration,
    pub retention: RetentionConfig,
    /// Durability-lag samples kept for the p99.
    pub lag_samples: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            segment_secs: 60,
            sync_interval: Duration::from_secs(1),
            queue_messages: 256,
            queue_bytes: queue_bytes_for(0),
            idle_close: writer::IDLE_CLOSE,
            retention_interval: Duration::from_secs(10),
            retention: RetentionConfig {
                min_free_percent: 2.0,
                min_free_bytes: 1 << 30,
                ..Default::default()
            },
            lag_samples: 4096,
        }
    }
}

/// The queue's byte limit for `streams` streams: 0.25 MiB each (half a
/// second of a 4 Mbit/s stream), at least 16 MiB and at most 256 MiB. With
/// recorders waiting for room rather than dropping, the queue only has to
/// smooth the writer's 1 s sync rhythm; longer stalls wait in the sockets.
pub fn queue_bytes_for(streams: usize) -> usize {
    (streams << 18).clamp(16 << 20, 256 << 20)
}

impl StoreConfig {
    fn disk_budget_left(&self, used: u64) -> Option<u64> {
        self.retention
            .disk_budget_bytes
            .map(|b| b.saturating_sub(used))
    }
}

/// One fragment (`moof`+`mdat`, usually one GOP) of a stream, as parts
/// written one after the other: the moof and mdat header, then every
/// frame in the buffer it arrived in. Cutting a fragment copies no video,
/// so a GOP is never held twice, and memory grows frame by frame rather
/// than by GOP-sized buffers (docs/BENCHMARKS.md, memory).
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// moof and the mdat's header.
    pub head: Vec<u8>,
    /// The mdat's payload: the samples' bytes, one buffer per sample.
    pub payload: Vec<Vec<u8>>,
    /// Start on the stream's 90 kHz timeline (monotonic within a session).
    pub start_90k: u64,
    pub duration_90k: u32,
    /// Wall-clock time of its first frame, ms since the epoch.
    pub wall_ms: i64,
    pub frames: u32,
    /// Starts with a keyframe (export can begin here).
    pub keyframe: bool,
}

impl Fragment {
    /// Bytes on disk: head and payload.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.iter().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 72 on thread-priority's 0..=99 scale is nice -10 for a normal
/// (SCHED_OTHER) thread on Linux.
const WRITER_PRIORITY: u8 = 72;

/// On a machine whose cores are saturated (the recording benchmark: 64
/// streams and their peer on 2 cores) the writer thread was found mostly
/// runnable rather than blocked on the disk, and the queue overflowed
/// while it waited for a CPU. At nice -10 it keeps draining
/// (docs/BENCHMARKS.md). Raising it needs CAP_SYS_NICE or an RLIMIT_NICE
/// that allows it (systemd: `LimitNICE=-10`); otherwise the writer runs at
/// normal priority, as before.
fn raise_writer_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    let Ok(v) = ThreadPriorityValue::try_from(WRITER_PRIORITY) else {
        return;
    };
    match set_current_thread_priority(ThreadPriority::Crossplatform(v)) {
        Ok(()) => tracing::debug!("recording writer thread at nice -10"),
        Err(e) => tracing::info!(
            "recording writer thread at normal priority (nice -10 needs CAP_SYS_NICE or LimitNICE=-10): {e:?}"
        ),
    }
}

/// State shared by the store, its stream writers and the writer thread.
pub(crate) struct Shared {
    write_error: AtomicBool,
    write_errors: AtomicU64,
    retention_blocked: AtomicBool,
    dropped: AtomicU64,
    queued_bytes: AtomicUsize,
    /// Woken by the writer thread each time it takes a fragment off the
    /// queue: streams waiting for room try again.
    room: tokio::sync::Notify,
    lags: lag::Lags,
}

pub struct Store {
    root: PathBuf,
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    queue_bytes: usize,
    /// Readers use their own connection; WAL lets them run beside the writer.
    reader: Mutex<Connection>,
    thread: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    /// Held for the store's life: a second writer on the same directory
    /// (another vgw, a test) would truncate our open segments as "crashed".
    _lock: nix::fcntl::Flock<std::fs::File>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Opens (or creates) `<data_dir>/recordings/`, repairs what a crash
    /// left (see [`Store::recovery`]) and starts the writer thread.
    pub fn open(data_dir: &Path, cfg: StoreConfig) -> Result<Store, StoreError> {
        let root = data_dir.join("recordings");
        std::fs::create_dir_all(&root)?;
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| StoreError::InUse(root.clone()))?;
        let db_path = root.join(schema::FILE_NAME);
        let mut db = schema::open(&db_path)?;
        schema::migrate(&mut db).map_err(StoreError::Schema)?;
        let recovery = recovery::recover(&mut db, &root)?;
        if !recovery.is_clean() {
            tracing::warn!("recording store recovered after a crash: {recovery:?}");
        }
        let reader = schema::open(&db_path)?;
        let shared = Arc::new(Shared {
            write_error: AtomicBool::new(false),
            write_errors: AtomicU64::new(0),
            retention_blocked: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
            lags: lag::Lags::new(cfg.lag_samples),
        });
        let (tx, rx) = sync_channel(cfg.queue_messages.max(1));
        let queue_bytes = cfg.queue_bytes;
        let w = writer::Writer::new(root.clone(), db, cfg, shared.clone());
        let thread = std::thread::Builder::new()
            .name("vgw-rec-writer".into())
            .spawn(move || {
                raise_writer_priority();
                w.run(rx)
            })?;
        Ok(Store {
            root,
            tx,
            shared,
            queue_bytes,
            reader: Mutex::new(reader),
            thread: Some(thread),
            recovery,
            _lock: lock,
        })
    }

    /// `<data_dir>/recordings`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What recovery repaired when this store was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// A handle for one camera stream. `stagger_index` of `stagger_of`
    /// spreads the rotation of streams that start together (see
    /// `layout::segment_ticks`).
    pub fn stream(
        &self,
        camera_id: &str,
        stream: &str,
        stagger_index: u32,
        stagger_of: u32,
    ) -> StreamWriter {
        StreamWriter {
            tx: self.tx.clone(),
            key: Arc::new(StreamKey {
                camera: camera_id.to_string(),
                stream: stream.to_string(),
                stagger_index,
                stagger_of,
            }),
            shared: self.shared.clone(),
            queue_bytes: self.queue_bytes,
            side: Arc::new(Mutex::new(Side::default())),
        }
    }

    /// Blocks until everything queued so far is fsynced and indexed (and
    /// retention ran if space is short). For tests and orderly shutdown;
    /// not for async workers.
    pub fn sync_now(&self) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Sync(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// Blocks while a retention pass runs now; returns what it did.
    pub fn run_retention_now(&self) -> Result<RetentionOutcome, StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Retention(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// Replaces the retention limits (a reloaded site file); the writer
    /// enforces them at once. Blocks while the writer's queue is full.
    pub fn set_retention(&self, r: RetentionConfig) -> Result<(), StoreError> {
        self.tx
            .send(Msg::SetRetention(r))
            .map_err(|_| StoreError::Closed)
    }

    /// A write or fsync is failing (disk full, I/O error) right now.
    pub fn write_error(&self) -> bool {
        self.shared.write_error.load(Ordering::Relaxed)
    }

    /// Write errors since start.
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }

    /// Retention could not free enough: only locked or open data is left.
    pub fn retention_blocked(&self) -> bool {
        self.shared.retention_blocked.load(Ordering::Relaxed)
    }

    /// Fragments refused with `Backpressure` since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Fragment bytes handed over and not yet written: memory the queue
    /// holds now (at most `queue_bytes`, or one larger fragment alone;
    /// beyond, recorders wait for room, then drop).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }

    /// p99 of the time from `fragment()` to its index row, over the last
    /// `lag_samples` fragments.
    pub fn durability_lag_p99(&self) -> Option<Duration> {
        self.shared.lags.quantile(0.99)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let c = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&c)?)
    }

    /// Contiguous runs of `camera`/`stream` overlapping `[from_ms, to_ms)`.
    pub fn recordings(
        &self,
        camera: &str,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Run>, StoreError> {
        self.read(|c| queries::recordings(c, &self.root, camera, stream, from_ms, to_ms))
    }

    /// The parts of `[from_ms, to_ms)` with no recording of the stream.
    pub fn gaps(
        &self,
        camera: &str,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Gap>, StoreError> {
        let runs = self.recordings(camera, stream, from_ms, to_ms)?;
        Ok(queries::gaps_between(&runs, from_ms, to_ms))
    }

    /// Fragments to export `[from_ms, to_ms)`, starting at the last keyframe
    /// fragment at or before `from_ms`; `new_init` marks where the init
    /// segment (sample entry) changes.
    pub fn fragments_for_export(
        &self,
        camera: &str,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ExportPiece>, StoreError> {
        self.read(|c| queries::export(c, &self.root, camera, stream, from_ms, to_ms))
    }

    /// Indexed bytes and time span of one camera (all its streams).
    pub fn usage(&self, camera: &str) -> Result<Usage, StoreError> {
        self.read(|c| queries::usage(c, camera))
    }

    pub fn total_usage(&self) -> Result<Usage, StoreError> {
        self.read(queries::total_usage)
    }

    /// Camera-clock drift per segment overlapping the range.
    pub fn drift(&self, camera: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Drift>, StoreError> {
        self.read(|c| queries::drift(c, camera, from_ms, to_ms))
    }

    /// Protects `[start_ms, end_ms)` of `camera` from retention until
    /// `expires_at` (ms; None = until unlocked). Returns the lock id.
    pub fn lock(
        &self,
        camera: &str,
        start_ms: i64,
        end_ms: i64,
        reason: &str,
        by: &str,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        if end_ms <= start_ms {
            return Err(StoreError::Invalid(
                "lock end must be after its start".into(),
            ));
        }
        self.read(|c| {
            c.execute(
                "INSERT INTO locks (camera, start_ms, end_ms, reason, created_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![camera, start_ms, end_ms, reason, by, now_ms(), expires_at],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Removes a lock; false if there was none with that id.
    pub fn unlock(&self, id: i64) -> Result<bool, StoreError> {
        self.read(|c| Ok(c.execute("DELETE FROM locks WHERE id = ?1", [id])? > 0))
    }

    pub fn locks(&self) -> Result<Vec<Lock>, StoreError> {
        self.read(queries::locks)
    }
}

impl Drop for Store {
    /// Closes every open segment (fsynced, indexed, marked closed).
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What became of a fragment offered to the queue.
enum Offer {
    Queued,
    /// No room now: the fragment, given back untouched.
    Full(Fragment),
    Failed(StoreError),
}

/// What a stream writer still has to tell the writer thread; carried on
/// the next fragment so a full queue can never lose an init segment or a
/// gap.
#[derive(Default)]
struct Side {
    init: Option<Arc<InitSeg>>,
    gap: bool,
    has_init: bool,
}

/// The ingest side of one stream. Cheap to clone; every call returns at
/// once except [`StreamWriter::fragment_when_room`], which waits, bounded,
/// for room (see the module doc on backpressure).
#[derive(Clone)]
pub struct StreamWriter {
    tx: SyncSender<Msg>,
    key: Arc<StreamKey>,
    shared: Arc<Shared>,
    queue_bytes: usize,
    side: Arc<Mutex<Side>>,
}

impl StreamWriter {
    fn side(&self) -> std::sync::MutexGuard<'_, Side> {
        self.side.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new init segment (ftyp+moov). It goes out with the next fragment;
    /// if it differs from the current one, that fragment starts a new
    /// segment file with its own sample entry.
    pub fn init(
        &self,
        init_segment: Vec<u8>,
        codec: String,
        width: u32,
        height: u32,
    ) -> Result<(), StoreError> {
        let sha = Sha256::digest(&init_segment)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut s = self.side();
        s.init = Some(Arc::new(InitSeg {
            bytes: init_segment,
            codec,
            width,
            height,
            sha,
        }));
        s.has_init = true;
        Ok(())
    }

    /// Queues a fragment at once. `Err(Backpressure)` when the queue is
    /// full: the fragment is dropped (and counted), and the next accepted
    /// one starts a new segment after a gap, so the hole shows in the index.
    pub fn fragment(&self, f: Fragment) -> Result<(), StoreError> {
        self.fragment_since(f, Instant::now())
    }

    /// [`StreamWriter::fragment`] for a fragment handed over at `since`
    /// (the durability lag counts from then).
    fn fragment_since(&self, f: Fragment, since: Instant) -> Result<(), StoreError> {
        match self.offer(f, since) {
            Offer::Queued => Ok(()),
            Offer::Full(_) => Err(self.refuse()),
            Offer::Failed(e) => Err(e),
        }
    }

    /// Queues a fragment, waiting up to `limit` for room when the queue is
    /// full (the caller, not reading its camera meanwhile, leaves the video
    /// in the socket). `Err(Backpressure)` once `limit` has passed: the
    /// fragment is dropped as by [`StreamWriter::fragment`].
    pub async fn fragment_when_room(&self, f: Fragment, limit: Duration) -> Result<(), StoreError> {
        let since = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        let mut f = f;
        loop {
            // Registered before trying, so a wake-up between the failed try
            // and the wait is not missed.
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            f = match self.offer(f, since) {
                Offer::Queued => return Ok(()),
                Offer::Full(back) => back,
                Offer::Failed(e) => return Err(e),
            };
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                // One last try: room may have come with the deadline.
                return self.fragment_since(f, since);
            }
        }
    }

    /// A fragment the queue could not take is dropped: counted, and the
    /// next one starts a new segment after a gap.
    fn refuse(&self) -> StoreError {
        self.side().gap = true;
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        StoreError::Backpressure
    }

    /// Puts the fragment on the queue if there is room; gives it back if
    /// not, changing nothing. `since`: when it was handed over, waits
    /// included, for the durability lag.
    fn offer(&self, f: Fragment, since: Instant) -> Offer {
        let mut s = self.side();
        if !s.has_init {
            return Offer::Failed(StoreError::NoInit);
        }
        let n = f.len();
        let queued = self.shared.queued_bytes.fetch_add(n, Ordering::Relaxed);
        if queued + n > self.queue_bytes && queued > 0 {
            self.shared.queued_bytes.fetch_sub(n, Ordering::Relaxed);
            return Offer::Full(f);
        }
        let msg = Msg::Fragment {
            key: self.key.clone(),
            init: s.init.clone(),
            after_gap: s.gap,
            frag: f,
            queued: since,
        };
        match self.tx.try_send(msg) {
            Ok(()) => {
                s.init = None;
                s.gap = false;
                Offer::Queued
            }
            Err(e) => {
                self.shared.queued_bytes.fetch_sub(n, Ordering::Relaxed);
                match e {
                    TrySendError::Full(Msg::Fragment { frag, .. }) => Offer::Full(frag),
                    TrySendError::Full(_) => unreachable!("the message built above is a fragment"),
                    TrySendError::Disconnected(_) => Offer::Failed(StoreError::Closed),
                }
            }
        }
    }

    /// The stream broke: the next fragment starts a new segment, and the
    /// index shows the gap. Never blocks, never fails.
    pub fn gap(&self) {
        self.side().gap = true;
    }

    /// The stream ended: its segment is closed (fsynced, indexed, closed).
    /// On `Backpressure` the segment is closed anyway once the stream has
    /// been idle for `idle_close`.
    pub fn close(&self) -> Result<(), StoreError> {
        match self.tx.try_send(Msg::Close(self.key.clone())) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Backpressure),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }
}
