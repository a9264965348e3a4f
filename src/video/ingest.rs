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

/// One playing RTSP session: [`Session::connect`], then [`Session::next`]
/// until it fails. The caller decides when to ask for the next event, so a
/// recorder whose store is full simply stops reading and the camera's
/// video waits in the TCP connection.
pub struct Session {
    demuxed: retina::client::Demuxed,
    index: usize,
    codec: Codec,
    frame_timeout: Duration,
    /// Parameters from the SDP, reported by the first `next`.
    sdp_params: Option<Params>,
    /// A frame that brought new parameters: reported after them.
    held: Option<Frame>,
}

impl Session {
    /// DESCRIBE, SETUP (interleaved TCP) and PLAY, each bounded by
    /// `t.request`.
    pub async fn connect(
        url: &str,
        credentials: Option<(String, String)>,
        t: Timeouts,
    ) -> Result<Session, IngestError> {
        let parsed = url::Url::parse(url).map_err(|_| IngestError::BadUrl(url.into()))?;
        let creds = credentials
            .map(|(username, password)| retina::client::Credentials { username, password });
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
                retina::client::SetupOptions::default()
                    .transport(retina::client::Transport::default()),
            ),
        )
        .await?;
        // Parameters from the SDP, when the camera put them there;
        // otherwise they arrive in-band with the first keyframe.
        let sdp_params = match session.streams()[index].parameters() {
            Some(retina::codec::ParametersRef::Video(v)) => Some(params_of(codec, v)?),
            _ => None,
        };
        let playing = bounded(
            "PLAY",
            t.request,
            session.play(retina::client::PlayOptions::default()),
        )
        .await?;
        let demuxed = playing
            .demuxed()
            .map_err(|e| IngestError::Rtsp(e.to_string()))?;
        Ok(Session {
            demuxed,
            index,
            codec,
            frame_timeout: t.frame,
            sdp_params,
            held: None,
        })
    }

    /// The next parameter change or frame of the video track. Waits at
    /// most the frame timeout for the camera.
    pub async fn next(&mut self) -> Result<Event, IngestError> {
        if let Some(p) = self.sdp_params.take() {
            return Ok(Event::Params(p));
        }
        if let Some(f) = self.held.take() {
            return Ok(Event::Frame(f));
        }
        loop {
            let item = match tokio::time::timeout(self.frame_timeout, self.demuxed.next()).await {
                Err(_) => return Err(IngestError::Timeout("the next frame", self.frame_timeout)),
                Ok(None) => return Err(IngestError::Rtsp("the camera ended the stream".into())),
                Ok(Some(Err(e))) => return Err(IngestError::Rtsp(e.to_string())),
                Ok(Some(Ok(item))) => item,
            };
            let retina::codec::CodecItem::VideoFrame(f) = item else {
                continue;
            };
            if f.stream_id() != self.index {
                continue;
            }
            let new_params = if f.has_new_parameters() {
                match self.demuxed.streams()[self.index].parameters() {
                    Some(retina::codec::ParametersRef::Video(v)) => Some(params_of(self.codec, v)?),
                    _ => None,
                }
            } else {
                None
            };
            let frame = Frame {
                ts_90k: f.timestamp().elapsed(),
                random_access: f.is_random_access_point(),
                loss: f.loss(),
                data: f.into_data(),
                received: SystemTime::now(),
            };
            return Ok(match new_params {
                Some(p) => {
                    self.held = Some(frame);
                    Event::Params(p)
                }
                None => Event::Frame(frame),
            });
        }
    }
}
