//! One camera's recorder: ingest sessions (with reconnect, backoff and
//! jitter) → groups of pictures → one fMP4 fragment per GOP → the store.
//! Recording starts at the first keyframe (H.265 CRA included, checked on
//! the NAL types ourselves); one fragment per GOP (cut at 2 s); a parameter change starts a new segment with
//! its own sample entry; a stream with B-frames is refused with a clear
//! error (we write no composition offsets, so B-frames would play out of
//! order).

use super::h26x::{self, Codec};
use super::ingest::{self, Event, IngestError, Params};
use super::mp4;
use super::store::{Fragment, StreamWriter};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait between reconnect attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After a refusal (B-frames, no video): retrying sooner changes nothing.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// A GOP longer than this is cut into several fragments anyway, so a
/// camera with a 10 s GOP still reaches the disk every few seconds. (Half
/// a second was tried for memory: twice the fragments overran the store's
/// queue and used more memory, docs/BENCHMARKS.md.)
const MAX_FRAGMENT_90K: i64 = 2 * 90_000;
/// How long a recorder waits for room in the store's queue before it drops
/// a fragment. Meanwhile it does not read its camera: the video waits in
/// the connection (our receive buffer, the camera's send buffer; how much
/// fits depends on the camera, docs/recording.md).
pub const ROOM_WAIT: Duration = Duration::from_secs(5);

/// What the health points show; updated by the recorder, read by a tick.
#[derive(Default)]
pub struct Stats {
    pub connected: AtomicBool,
    pub recording: AtomicBool,
    /// Wall ms of the last frame received.
    pub last_frame_ms: AtomicI64,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames the store could not take (backpressure) or before the first keyframe.
    pub dropped: AtomicU64,
    pub fragments: AtomicU64,
    /// Bytes of this camera in the store (index sum, refreshed every minute).
    pub stored_bytes: AtomicU64,
    /// `on_alarm` cameras: the alarm window (wall ms), set by alarm bookmarks.
    pub armed_from_ms: AtomicI64,
    pub armed_until_ms: AtomicI64,
    /// Why the stream is not recorded, when it is not.
    pub problem: Mutex<Option<String>>,
}

impl Stats {
    fn problem(&self, p: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }
}

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Pending {
    ts_90k: i64,
    /// The frame as received; handed to the store as it is (no copy).
    data: Vec<u8>,
    key: bool,
    wall_ms: i64,
}

/// What the recorder hands the store, in order: an init segment must reach
/// it after the fragments cut under the parameters before it.
enum Out {
    Init {
        segment: Vec<u8>,
        rfc6381: String,
        width: u32,
        height: u32,
    },
    Fragment(Fragment),
}

/// Turns frames into fragments for one session.
struct Gop<'a> {
    writer: &'a StreamWriter,
    /// `on_alarm` cameras hold their fragments here until an alarm.
    gate: Option<&'a mut super::on_alarm::AlarmGate>,
    stats: &'a Stats,
    params: Option<Params>,
    frames: Vec<Pending>,
    /// Until the first keyframe after (re)start or a parameter change.
    waiting_keyframe: bool,
    /// The first GOP of each parameter set has been checked for B-frames.
    checked: bool,
    /// Parameter sets of the current track (the B-slice check reads them).
    param_sets: Option<h26x::ParameterSets>,
    /// Base decode time of the next fragment (90 kHz, this segment).
    next_decode: u64,
    /// Typical frame duration, for the last frame of a flushed GOP.
    last_delta: i64,
    /// Init segments and fragments not yet handed to the store.
    outbox: std::collections::VecDeque<Out>,
}

impl<'a> Gop<'a> {
    /// A session's first state: waiting for parameters and a keyframe.
    fn new(
        writer: &'a StreamWriter,
        gate: Option<&'a mut super::on_alarm::AlarmGate>,
        stats: &'a Stats,
    ) -> Gop<'a> {
        Gop {
            writer,
            gate,
            stats,
            params: None,
            frames: Vec::new(),
            waiting_keyframe: true,
            checked: false,
            param_sets: None,
            next_decode: 0,
            // 25 fps until the stream says otherwise.
            last_delta: 3600,
            outbox: std::collections::VecDeque::new(),
        }
    }

    fn on_event(&mut self, e: Event) -> Result<(), IngestError> {
        match e {
            Event::Params(p) => {
                if self.params.as_ref() == Some(&p) {
                    return Ok(());
                }
                self.flush(None);
                if let Some(gate) = self.gate.as_deref_mut() {
                    gate.discard_buffer();
                }
                let track = mp4::Track {
                    sample_entry: p.sample_entry.clone(),
                    width: p.width,
                    height: p.height,
                };
                let codec = match p.codec {
                    Codec::H264 => "h264",
                    Codec::H265 => "h265",
                };
                self.outbox.push_back(Out::Init {
                    segment: mp4::init_segment(&track),
                    rfc6381: p.rfc6381.clone(),
                    width: p.width,
                    height: p.height,
                });
                tracing::info!(codec, rfc6381 = %p.rfc6381, width = p.width, height = p.height, "recording parameters");
                self.param_sets = h26x::parse_decoder_config(p.codec, &p.extra_data).ok();
                self.params = Some(p);
                self.waiting_keyframe = true;
                self.checked = false;
                self.next_decode = 0;
                Ok(())
            }
            Event::Frame(f) => self.on_frame(f),
        }
    }

    fn on_frame(&mut self, f: ingest::Frame) -> Result<(), IngestError> {
        let Some(p) = &self.params else {
            // No parameters yet (neither SDP nor in-band): nothing to
            // decode with.
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let key = h26x::is_keyframe(p.codec, &f.data) || f.random_access;
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(f.data.len() as u64, Ordering::Relaxed);
        self.stats
            .last_frame_ms
            .store(wall_ms(f.received), Ordering::Relaxed);
        if self.waiting_keyframe && !key {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if key && !self.waiting_keyframe {
            // A whole GOP has been checked: the encoder's structure is known.
            self.checked = true;
        }
        self.waiting_keyframe = false;
        // Every frame of the first GOP is checked: in decode order a P
        // frame comes before the B frames that refer to it.
        if !key && !self.checked {
            let b = match &self.param_sets {
                Some(ps) => h26x::has_b_slices(p.codec, &f.data, ps).unwrap_or(false),
                None => false,
            };
            if b {
                return Err(IngestError::Unrecordable(
                    "the stream has B-frames, which vgw cannot record; set the camera's encoder to I/P frames only (no B-frames)".into(),
                ));
            }
        }
        let span = self
            .frames
            .first()
            .map_or(0, |first| f.ts_90k - first.ts_90k);
        if key || span >= MAX_FRAGMENT_90K {
            self.flush(Some(f.ts_90k));
        }
        if let Some(prev) = self.frames.last() {
            let d = f.ts_90k - prev.ts_90k;
            if d > 0 {
                self.last_delta = d;
            }
        }
        // An MP4 sample's size is 32 bits (flush relies on it).
        if u32::try_from(f.data.len()).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.frames.push(Pending {
            ts_90k: f.ts_90k,
            wall_ms: wall_ms(f.received),
            data: f.data,
            key,
        });
        Ok(())
    }

    /// Writes the frames held as one fragment; `next_ts` (the frame that
    /// follows) gives the last one its duration.
    fn flush(&mut self, next_ts: Option<i64>) {
        if self.frames.is_empty() {
            return;
        }
        let n = self.frames.len();
        let durations: Vec<u32> = (0..n)
            .map(|i| {
                let end = self
                    .frames
                    .get(i + 1)
                    .map(|f| f.ts_90k)
                    .or(next_ts)
                    .unwrap_or(self.frames[i].ts_90k + self.last_delta.max(1));
                (end - self.frames[i].ts_90k).clamp(1, i64::from(u32::MAX)) as u32
            })
            .collect();
        let samples: Vec<mp4::SampleMeta> = self
            .frames
            .iter()
            .zip(&durations)
            .map(|(f, &d)| mp4::SampleMeta {
                duration: d,
                size: f.data.len() as u32,
                is_sync: f.key,
            })
            .collect();
        let seq = self.stats.fragments.fetch_add(1, Ordering::Relaxed) as u32 + 1;
        let head = mp4::fragment_head(seq, self.next_decode, &samples);
        let duration: u64 = durations.iter().map(|&d| u64::from(d)).sum();
        let frag = Fragment {
            head,
            payload: self
                .frames
                .iter_mut()
                .map(|f| std::mem::take(&mut f.data))
                .collect(),
            start_90k: self.next_decode,
            duration_90k: duration.min(u64::from(u32::MAX)) as u32,
            wall_ms: self.frames[0].wall_ms,
            frames: n as u32,
            keyframe: self.frames[0].key,
        };
        self.next_decode += duration;
        self.frames.clear();
        let write = match self.gate.as_deref_mut() {
            None => vec![frag],
            Some(gate) => {
                let pass = gate.pass(
                    frag,
                    self.stats.armed_from_ms.load(Ordering::Relaxed),
                    self.stats.armed_until_ms.load(Ordering::Relaxed),
                );
                if pass.closed {
                    self.writer.gap();
                }
                // Buffering is working as intended: the camera is healthy.
                self.stats.recording.store(true, Ordering::Relaxed);
                pass.write
            }
        };
        self.outbox.extend(write.into_iter().map(Out::Fragment));
    }

    /// Hands what is in the outbox to the store, in order. With
    /// `wait_for_room`, a fragment waits up to that long while the store's
    /// queue is full, unless the recorder is stopping (the receiver reads
    /// true); otherwise it is dropped at once (at the end of a session, and
    /// for replays that pace the writer themselves).
    async fn deliver(
        &mut self,
        wait_for_room: Option<(Duration, &tokio::sync::watch::Receiver<bool>)>,
    ) -> Result<(), IngestError> {
        while let Some(out) = self.outbox.pop_front() {
            let f = match out {
                Out::Init {
                    segment,
                    rfc6381,
                    width,
                    height,
                } => {
                    self.writer
                        .init(segment, rfc6381, width, height)
                        .map_err(|e| IngestError::Unrecordable(format!("store: {e}")))?;
                    continue;
                }
                Out::Fragment(f) => f,
            };
            let frames = u64::from(f.frames);
            let limit = match wait_for_room {
                Some((limit, stop)) if !*stop.borrow() => Some(limit),
                _ => None,
            };
            let r = match limit {
                Some(limit) => self.writer.fragment_when_room(f, limit).await,
                None => self.writer.fragment(f),
            };
            match r {
                Ok(()) => self.stats.recording.store(true, Ordering::Relaxed),
                Err(e) => {
                    self.stats.dropped.fetch_add(frames, Ordering::Relaxed);
                    tracing::warn!("fragment not stored: {e}");
                }
            }
        }
        Ok(())
    }

    /// [`Gop::deliver`] without waiting, from synchronous code (it never
    /// awaits anything then).
    fn deliver_now(&mut self) -> Result<(), IngestError> {
        futures::executor::block_on(self.deliver(None))
    }
}

/// One session: connect, then events into `gop` and fragments to the
/// store, until the stream fails or `stop` turns true. A wait for the
/// store's room already under way is not cut short by `stop` (that would
/// lose the fragment); it is bounded by [`ROOM_WAIT`], and once `stop` is
/// set nothing waits any more.
async fn record_session(
    url: &str,
    credentials: Option<(String, String)>,
    timeouts: ingest::Timeouts,
    gop: &mut Gop<'_>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), IngestError> {
    let mut session = tokio::select! {
        s = ingest::Session::connect(url, credentials, timeouts) => s?,
        _ = stop.changed() => return Err(IngestError::Stopped),
    };
    loop {
        if *stop.borrow() {
            return Err(IngestError::Stopped);
        }
        let e = tokio::select! {
            e = session.next() => e?,
            _ = stop.changed() => return Err(IngestError::Stopped),
        };
        if matches!(e, Event::Frame(_)) && !gop.stats.connected.load(Ordering::Relaxed) {
            gop.stats.connected.store(true, Ordering::Relaxed);
        }
        gop.on_event(e)?;
        gop.deliver(Some((ROOM_WAIT, &*stop))).await?;
    }
}

/// Records one stream until `stop` turns true: sessions with reconnect.
pub async fn run(
    url: String,
    credentials: Option<(String, String)>,
    writer: StreamWriter,
    stats: Arc<Stats>,
    timeouts: ingest::Timeouts,
    pre_alarm_s: Option<u32>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Lives across sessions: an alarm right after a reconnect still gets
    // what was buffered before the break.
    let mut gate = pre_alarm_s.map(super::on_alarm::AlarmGate::new);
    let mut backoff = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let started = std::time::Instant::now();
        let result = {
            let mut gop = Gop::new(&writer, gate.as_mut(), &stats);
            let r = record_session(&url, credentials.clone(), timeouts, &mut gop, &mut stop).await;
            // What arrived before the break is kept.
            gop.flush(None);
            let delivered = gop.deliver(None).await;
            r.and(delivered)
        };
        writer.gap();
        stats.connected.store(false, Ordering::Relaxed);
        stats.recording.store(false, Ordering::Relaxed);
        let err = match result {
            Err(IngestError::Stopped) | Ok(()) if *stop.borrow() => return,
            Err(e) => e,
            Ok(()) => IngestError::Rtsp("session ended".into()),
        };
        stats.problem(Some(err.to_string()));
        if !warned {
            tracing::warn!(url = %crate::config::secrets::url_for_log(&url), "recording interrupted: {err}");
            warned = true;
        }
        if started.elapsed() > BACKOFF_MAX {
            backoff = Duration::from_secs(1);
            warned = false;
        }
        let wait = match err {
            IngestError::Unrecordable(_) | IngestError::NoVideo(_) => REFUSED_RETRY,
            _ => backoff + Duration::from_millis(rand::random::<u64>() % 1000),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Recording parameters of a clip (Annex B), as retina would report them.
fn clip_params(codec: Codec, units: &[Vec<&[u8]>]) -> Result<Params, IngestError> {
    let bad = |e: String| IngestError::Unrecordable(format!("clip: {e}"));
    let ps = h26x::ParameterSets::from_nals(codec, units.iter().flatten().copied());
    let record = h26x::build_decoder_config(codec, &ps).map_err(|e| bad(e.to_string()))?;
    let track = mp4::Track::from_decoder_config(codec, &record).map_err(|e| bad(e.to_string()))?;
    Ok(Params {
        codec,
        sample_entry: track.sample_entry.clone(),
        width: track.width,
        height: track.height,
        rfc6381: format!("{codec:?}"),
        extra_data: record,
    })
}

/// H.264 filler data (NAL type 12): ignored by decoders, so a clip can be
/// brought up to a camera's bitrate. `len` bytes, length prefix included.
fn h264_filler(len: usize) -> Vec<u8> {
    let body = len.saturating_sub(4).max(2);
    let mut v = Vec::with_capacity(4 + body);
    v.extend_from_slice(&(body as u32).to_be_bytes());
    v.push(0x0c);
    v.resize(4 + body - 1, 0xff);
    v.push(0x80); // rbsp trailing bits
    v
}

/// Records `clip` (Annex B, 25 fps) looped as if a camera had sent it from
/// `start` for `duration`, through the recorder's real path (init segment,
/// one fragment per GOP), at full speed: hours of video in seconds, for
/// benchmarks. `target_bps` pads each H.264 frame with filler data up to
/// that bitrate. `pace` is called after every second of video (to let the
/// store's writer catch up). Returns the frames recorded.
pub fn replay_clip(
    writer: &StreamWriter,
    codec: Codec,
    clip: &[u8],
    start: SystemTime,
    duration: Duration,
    target_bps: Option<f64>,
    pace: &mut dyn FnMut(),
) -> Result<u64, IngestError> {
    const FRAME_90K: i64 = 3600; // 25 fps
    let units = h26x::annex_b_access_units(codec, clip);
    if units.is_empty() {
        return Err(IngestError::Unrecordable("clip: no access units".into()));
    }
    if target_bps.is_some() && codec != Codec::H264 {
        return Err(IngestError::Unrecordable(
            "padding to a bitrate is H.264 only".into(),
        ));
    }
    let frame_bytes = target_bps.map(|b| (b / 8.0 / 25.0) as usize);
    let stats = Stats::default();
    let mut gop = Gop::new(writer, None, &stats);
    gop.on_event(Event::Params(clip_params(codec, &units)?))?;
    let frames = duration.as_millis() as u64 * 25 / 1000;
    for i in 0..frames {
        let au = &units[i as usize % units.len()];
        let mut data = h26x::to_length_prefixed(au.iter().copied());
        if let Some(want) = frame_bytes {
            if data.len() + 8 < want {
                data.extend_from_slice(&h264_filler(want - data.len()));
            }
        }
        let ts = i as i64 * FRAME_90K;
        gop.on_event(Event::Frame(ingest::Frame {
            ts_90k: ts,
            data,
            random_access: false,
            received: start + Duration::from_micros(ts as u64 * 100 / 9),
            loss: 0,
        }))?;
        gop.deliver_now()?;
        if i % 25 == 24 {
            pace();
        }
    }
    gop.flush(None);
    gop.deliver_now()?;
    pace();
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::store::{Store, StoreConfig};

    /// Feeds a committed clip (Annex B) to a recorder as retina would:
    /// parameters first, then one length-prefixed frame per access unit.
    fn feed(codec: Codec, clip: &[u8]) -> (Result<(), IngestError>, Arc<Stats>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let writer = store.stream("cam-1", "main", 0, 1);
        let stats = Arc::new(Stats::default());
        let r = feed_into(&writer, &stats, &[(codec, clip)]);
        (r, stats)
    }

    /// Feeds clips one after the other into one session (a camera whose
    /// codec or resolution changes mid-stream).
    fn feed_into(
        writer: &StreamWriter,
        stats: &Stats,
        clips: &[(Codec, &[u8])],
    ) -> Result<(), IngestError> {
        let mut gop = Gop::new(writer, None, stats);
        let mut ts = 0i64;
        for &(codec, clip) in clips {
            feed_one(&mut gop, codec, clip, &mut ts)?;
        }
        gop.flush(None);
        gop.deliver_now()?;
        Ok(())
    }

    fn feed_one(
        gop: &mut Gop<'_>,
        codec: Codec,
        clip: &[u8],
        ts: &mut i64,
    ) -> Result<(), IngestError> {
        let units = h26x::annex_b_access_units(codec, clip);
        gop.on_event(Event::Params(clip_params(codec, &units)?))?;
        for au in &units {
            gop.on_event(Event::Frame(ingest::Frame {
                ts_90k: *ts,
                data: h26x::to_length_prefixed(au.iter().copied()),
                random_access: false,
                received: SystemTime::now(),
                loss: 0,
            }))?;
            gop.deliver_now()?;
            *ts += 3600;
        }
        Ok(())
    }

    #[test]
    fn a_replayed_clip_fills_the_store_at_the_asked_bitrate_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let writer = store.stream("cam-1", "main", 0, 1);
        let start = SystemTime::now() - Duration::from_secs(3600);
        let mut paced = 0;
        let frames = replay_clip(
            &writer,
            Codec::H264,
            include_bytes!("../../tests/data/clip-h264.h264"),
            start,
            Duration::from_secs(12),
            Some(4e6),
            &mut || paced += 1,
        )
        .unwrap();
        writer.close().unwrap();
        store.sync_now().unwrap();
        assert_eq!(frames, 300);
        assert!(paced >= 12);
        let u = store.usage("cam-1").unwrap();
        // 12 s at 4 Mbit/s is 6 MB (padding tops frames up, never trims).
        assert!(
            (5.9e6..7.0e6).contains(&(u.bytes as f64)),
            "{} bytes",
            u.bytes
        );
        // Placed where it was asked: an hour ago, 12 s long.
        let t0 = wall_ms(start);
        assert!((u.oldest_ms.unwrap() - t0).abs() < 100);
        assert!((u.newest_ms.unwrap() - (t0 + 12_000)).abs() < 1100);
    }

    #[test]
    fn a_codec_change_starts_a_new_segment_with_its_own_sample_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let writer = store.stream("cam-1", "main", 0, 1);
        let stats = Stats::default();
        feed_into(
            &writer,
            &stats,
            &[
                (
                    Codec::H264,
                    include_bytes!("../../tests/data/clip-h264.h264"),
                ),
                (
                    Codec::H265,
                    include_bytes!("../../tests/data/clip-h265.h265"),
                ),
            ],
        )
        .unwrap();
        store.sync_now().unwrap();
        let segs: Vec<_> = store
            .recordings("cam-1", "main", 0, i64::MAX)
            .unwrap()
            .into_iter()
            .flat_map(|r| r.segments)
            .collect();
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_ne!(segs[0].codec, segs[1].codec);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn a_stream_with_b_frames_is_refused_with_a_clear_error() {
        let (r, _) = feed(
            Codec::H264,
            include_bytes!("../../tests/data/clip-h264-bframes.h264"),
        );
        match r {
            Err(IngestError::Unrecordable(m)) => assert!(m.contains("B-frames"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ip_only_streams_record_one_fragment_per_gop_from_the_first_keyframe() {
        for (codec, clip) in [
            (
                Codec::H264,
                &include_bytes!("../../tests/data/clip-h264.h264")[..],
            ),
            (
                Codec::H265,
                &include_bytes!("../../tests/data/clip-h265.h265")[..],
            ),
        ] {
            let (r, stats) = feed(codec, clip);
            assert_eq!(r, Ok(()), "{codec:?}");
            // 4 s at GOP 25 (1 s): four fragments, every frame kept.
            assert_eq!(stats.fragments.load(Ordering::Relaxed), 4, "{codec:?}");
            assert_eq!(stats.frames.load(Ordering::Relaxed), 100, "{codec:?}");
            assert_eq!(stats.dropped.load(Ordering::Relaxed), 0, "{codec:?}");
        }
    }
}
