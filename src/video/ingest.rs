//! RTSP ingest: the one module that uses retina. A session connects over
//! TCP (interleaved RTP), picks the stream's video track, and hands every
//! frame and every parameter change to the caller as plain data. Every
//! await is bounded: retina itself has no timeouts, and a camera that
//! stops sending without closing the connection must not hang a recorder.

use super::h26x::Codec;
use futures::StreamExt;
use std::time::{Duration, SystemTime};

/// What a session reports.
#[derive(Debug)]
pub enum Event {
    /// New (or first) codec parameters: a new segment must start.
    Params(Params),
    Frame(Frame),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub codec: Codec,
    /// Complete `avc1`/`hvc1` sample entry box for the MP4 track.
    pub sample_entry: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codec string, e.g. `avc1.4D401E`.
    pub rfc6381: String,
    /// The avcC / hvcC record (parameter sets), for bitstream checks.
    pub extra_data: Vec<u8>,
}

#[derive(Debug)]
pub struct Frame {
    /// 90 kHz ticks since the session's first frame.
    pub ts_90k: i64,
    /// Length-prefixed NAL units, as stored in an MP4 sample.
    pub data: Vec<u8>,
    /// retina's view; the recorder also checks the NAL types itself.
    pub random_access: bool,
    /// When the gateway received it (wall clock).
    pub received: SystemTime,
    /// RTP packets lost just before this frame.
    pub loss: u16,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// DESCRIBE, SETUP and PLAY, each.
    pub request: Duration,
    /// Longest silence between two frames before the session is dropped.
    pub frame: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request: Duration::from_secs(10),
            frame: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IngestError {
    #[error("`{0}` is not a URL")]
    BadUrl(String),
    #[error("{0} took longer than {1:?}")]
    Timeout(&'static str, Duration),
    #[error("RTSP: {0}")]
    Rtsp(String),
    #[error("the stream has no H.264 or H.265 video track (found: {0})")]
    NoVideo(String),
    /// The stream cannot be recorded as it is (the caller must not retry
    /// quickly: nothing will change until the camera is reconfigured).
    #[error("{0}")]
    Unrecordable(String),
    #[error("the recorder stopped the session")]
    Stopped,
}

async fn bounded<T, E: std::fmt::Display>(
    what: &'static str,
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, IngestError> {
    match tokio::time::timeout(limit, f).await {
        Err(_) => Err(IngestError::Timeout(what, limit)),
        Ok(Err(e)) => Err(IngestError::Rtsp(e.to_string())),
        Ok(Ok(v)) => Ok(v),
    }
}

fn params_of(codec: Codec, v: &retina::codec::VideoParameters) -> Result<Params, IngestError> {
    let (width, height) = v.pixel_dimensions();
    Ok(Params {
        codec,
        sample_entry: v
            .mp4_sample_entry()
            .build()
            .map_err(|e| IngestError::Unrecordable(format!("no MP4 sample entry: {e}")))?,
        width,
        height,
        rfc6381: v.rfc6381_codec().to_string(),
        extra_data: v.extra_data().to_vec(),
    })
}

/// One RTSP session: runs until the stream breaks, a timeout strikes, or
/// `on_event` returns `Err` (the recorder's stop or refusal).
pub async fn session(
    url: &str,
    credentials: Option<(String, String)>,
    t: Timeouts,
    on_event: &mut (dyn FnMut(Event) -> Result<(), IngestError> + Send),
) -> Result<(), IngestError> {
    let parsed = url::Url::parse(url).map_err(|_| IngestError::BadUrl(url.into()))?;
    let creds =
        credentials.map(|(username, password)| retina::client::Credentials { username, password });
    let opts = retina::client::SessionOptions::default()
        .creds(creds)
        .user_agent(format!("vgw/{}", env!("CARGO_PKG_VERSION")));
    let mut session = bounded(
        "DESCRIBE",
        t.request,
        retina::client::Session::describe(parsed, opts),
    )
    .await?;
    let found: Vec<String> = session
        .streams()
        .iter()
        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
        .collect();
    let (index, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find_map(|(i, s)| match (s.media(), s.encoding_name()) {
            ("video", "h264") => Some((i, Codec::H264)),
            ("video", "h265") => Some((i, Codec::H265)),
            _ => None,
        })
        .ok_or_else(|| IngestError::NoVideo(found.join(", ")))?;
    bounded(
        "SETUP",
        t.request,
        session.setup(
            index,
            retina::client::SetupOptions::default().transport(retina::client::Transport::default()),
        ),
    )
    .await?;
    // Parameters from the SDP, when the camera put them there; otherwise
    // they arrive in-band with the first keyframe.
    if let Some(retina::codec::ParametersRef::Video(v)) = session.streams()[index].parameters() {
        on_event(Event::Params(params_of(codec, v)?))?;
    }
    let playing = bounded(
        "PLAY",
        t.request,
        session.play(retina::client::PlayOptions::default()),
    )
    .await?;
    let mut demuxed = playing
        .demuxed()
        .map_err(|e| IngestError::Rtsp(e.to_string()))?;
    loop {
        let item = match tokio::time::timeout(t.frame, demuxed.next()).await {
            Err(_) => return Err(IngestError::Timeout("the next frame", t.frame)),
            Ok(None) => return Err(IngestError::Rtsp("the camera ended the stream".into())),
            Ok(Some(Err(e))) => return Err(IngestError::Rtsp(e.to_string())),
            Ok(Some(Ok(item))) => item,
        };
        let retina::codec::CodecItem::VideoFrame(f) = item else {
            continue;
        };
        if f.stream_id() != index {
            continue;
        }
        if f.has_new_parameters() {
            if let Some(retina::codec::ParametersRef::Video(v)) =
                demuxed.streams()[index].parameters()
            {
                on_event(Event::Params(params_of(codec, v)?))?;
            }
        }
        let ts_90k = f.timestamp().elapsed();
        let random_access = f.is_random_access_point();
        let loss = f.loss();
        on_event(Event::Frame(Frame {
            ts_90k,
            data: f.into_data(),
            random_access,
            received: SystemTime::now(),
            loss,
        }))?;
    }
}
