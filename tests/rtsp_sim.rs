//! The simulated RTSP camera (src/sim/rtsp) as third-party clients see
//! it: retina (an independent Rust RTSP client) and ffprobe play its
//! streams over TCP; raw sockets check its answers to bad requests. The
//! last test plays scripts/gst-rtsp-camera (gst-rtsp-server), the other
//! camera the recording tests use. Missing tools fail the tests.

use futures::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, TcpTransportOptions, Transport};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use vgw::sim::rtsp::{self, Codec, RtspSimConfig, RtspSimHandle};

/// Upper bound for anything that should take a few seconds; only reached
/// when something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

async fn sim(streams: u32, codec: Codec) -> RtspSimHandle {
    rtsp::start(
        "127.0.0.1:0".parse().unwrap(),
        RtspSimConfig { streams, codec },
    )
    .await
    .expect("simulator starts")
}

/// What a client received from one stream.
#[derive(Debug)]
struct Received {
    /// RFC 6381 codec string from the stream's parameters ("avc1...").
    codec: String,
    dims: (u32, u32),
    /// Per frame: RTP timestamp, whether it holds a keyframe (IDR, or
    /// any IRAP incl. open-GOP CRA for H.265, read from its NAL units),
    /// packets lost before it.
    frames: Vec<(i64, bool, u16)>,
    /// retina's own random-access flag of the first frame. (retina 0.4
    /// sets it for IDR only, not for H.265 CRA, hence the NAL check.)
    first_rap: bool,
    sender_reports: usize,
}

impl Received {
    fn seconds(&self) -> f64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => (b.0 - a.0) as f64 / 90_000.0,
            _ => 0.0,
        }
    }
}

async fn describe_setup_play(url: &str) -> anyhow::Result<retina::client::Demuxed> {
    let mut session =
        retina::client::Session::describe(url::Url::parse(url)?, SessionOptions::default()).await?;
    session
        .setup(
            0,
            SetupOptions::default()
                .transport(Transport::Tcp(TcpTransportOptions::default()))
                .frame_format(FrameFormat::MP4),
        )
        .await?;
    Ok(session.play(PlayOptions::default()).await?.demuxed()?)
}

/// Plays `url` with retina over TCP until `secs` of frames arrived.
async fn receive(url: &str, secs: f64) -> anyhow::Result<Received> {
    let mut demuxed = describe_setup_play(url).await?;
    let h265 = demuxed.streams()[0].encoding_name() == "h265";
    let mut got = Received {
        codec: String::new(),
        dims: (0, 0),
        frames: Vec::new(),
        first_rap: false,
        sender_reports: 0,
    };
    let deadline = Instant::now() + PATIENCE;
    while got.seconds() < secs {
        let item = tokio::time::timeout_at(deadline, demuxed.next())
            .await
            .map_err(|_| anyhow::anyhow!("{url}: only {:.1} s of video", got.seconds()))?
            .ok_or_else(|| anyhow::anyhow!("{url}: stream ended"))??;
        match item {
            CodecItem::VideoFrame(f) => {
                if got.frames.is_empty() {
                    got.first_rap = f.is_random_access_point();
                }
                got.frames.push((
                    f.timestamp().timestamp(),
                    has_keyframe(h265, f.data()),
                    f.loss(),
                ));
            }
            CodecItem::Rtcp(rtcp) => {
                got.sender_reports += rtcp
                    .pkts()
                    .filter(|p| matches!(p.as_sender_report(), Ok(Some(_))))
                    .count();
            }
            _ => {}
        }
    }
    if let Some(ParametersRef::Video(v)) = demuxed.streams()[0].parameters() {
        got.codec = v.rfc6381_codec().to_string();
        got.dims = v.pixel_dimensions();
    }
    Ok(got)
}

/// Whether frame data (4-byte length-prefixed NAL units) holds an
/// H.264 IDR slice or an H.265 IRAP slice (BLA, IDR, CRA).
fn has_keyframe(h265: bool, mut data: &[u8]) -> bool {
    while data.len() > 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let Some(nal) = data.get(4..4 + len).filter(|n| !n.is_empty()) else {
            return false;
        };
        let key = if h265 {
            (16..=21).contains(&((nal[0] >> 1) & 0x3f))
        } else {
            nal[0] & 0x1f == 5
        };
        if key {
            return true;
        }
        data = &data[4 + len..];
    }
    false
}

/// Frames 1/25 s apart in RTP time, none lost, a keyframe first and
/// then every 25 frames (the clips' GOP), across the clip's loop.
fn assert_smooth(r: &Received) {
    assert!(
        r.first_rap && r.frames[0].1,
        "the first frame is a keyframe"
    );
    for (i, w) in r.frames.windows(2).enumerate() {
        assert_eq!(
            w[1].0 - w[0].0,
            3600,
            "frame {} follows frame {i} by 1/25 s",
            i + 1
        );
        assert_eq!(w[1].2, 0, "no packet lost before frame {}", i + 1);
    }
    for (i, f) in r.frames.iter().enumerate() {
        assert_eq!(f.1, i % 25 == 0, "frame {i} keyframe flag");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_plays_h264_across_the_clip_loop() {
    let sim = sim(1, Codec::H264).await;
    // 4.5 s: past the end of the 4 s clip, so the loop must be seamless.
    let r = receive(&sim.url(1), 4.5).await.unwrap();
    assert!(
        r.codec.starts_with("avc1.4D"),
        "Main profile H.264: {}",
        r.codec
    );
    assert_eq!(r.dims, (640, 360));
    assert_smooth(&r);
    assert!(
        r.sender_reports >= 1,
        "RTCP sender reports map RTP time to wall clock"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_plays_h265_across_the_clip_loop() {
    let sim = sim(1, Codec::H265).await;
    let r = receive(&sim.url(1), 4.5).await.unwrap();
    assert!(
        r.codec.starts_with("hvc1.1."),
        "Main profile H.265: {}",
        r.codec
    );
    assert_eq!(r.dims, (640, 360));
    assert_smooth(&r);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_play_at_once_in_either_codec() {
    let sim = sim(64, Codec::H264).await;
    let mut clients = Vec::new();
    for n in 1..=64 {
        let url = if n % 2 == 0 {
            sim.url_for(Codec::H265, n)
        } else {
            sim.url(n)
        };
        clients.push(tokio::spawn(async move { (n, receive(&url, 1.0).await) }));
    }
    for c in clients {
        let (n, r) = c.await.unwrap();
        let r = r.unwrap_or_else(|e| panic!("stream {n}: {e}"));
        let want = if n % 2 == 0 { "hvc1" } else { "avc1" };
        assert!(r.codec.starts_with(want), "stream {n}: {}", r.codec);
        assert_smooth(&r);
    }
    sim.stop().await;
}

/// Polls `cond` every 20 ms until it holds; panics after PATIENCE.
async fn wait_until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond().await {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_camera_drops_sessions_refuses_and_comes_back() {
    let sim = sim(2, Codec::H264).await;
    let mut demuxed = describe_setup_play(&sim.url(1)).await.unwrap();
    let first = timeout(PATIENCE, demuxed.next()).await.unwrap();
    assert!(matches!(first, Some(Ok(_))), "playing: {first:?}");
    assert_eq!(sim.sessions(), 1);

    sim.set_online(false);
    // The client's stream ends (EOF or error) rather than stalling.
    let ended = timeout(PATIENCE, async {
        loop {
            match demuxed.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "stream ends when the camera goes offline");
    wait_until("the session is gone", async || sim.sessions() == 0).await;
    let addr = sim.addr();
    wait_until("connections are refused", async || {
        TcpStream::connect(addr).await.is_err()
    })
    .await;

    sim.set_online(true);
    let r = receive(&sim.url(2), 1.0).await.expect("serves again");
    assert_smooth(&r);
    sim.stop().await;
}

/// Sends `request` on a fresh connection; returns it and the reply head.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let reply = read_reply(&mut s).await;
    (s, reply)
}

/// Reads one response head (the responses checked here have no body).
async fn read_reply(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(PATIENCE, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed before replying: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether the server closes the connection (EOF or reset) without
/// sending anything more.
async fn closes(s: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(
        timeout(PATIENCE, s.read(&mut chunk)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn bad_requests_get_rtsp_errors_not_crashes() {
    let sim = sim(2, Codec::H264).await;
    let a = sim.addr();
    let url = sim.url(1);

    let (mut s, r) = exchange(a, b"\x16\x03\x01garbage\r\n\r\n").await;
    assert!(r.starts_with("RTSP/1.0 400 "), "{r}");
    assert!(closes(&mut s).await, "garbage ends the connection");

    let huge = format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Big: {}",
        "a".repeat(100_000)
    );
    let (mut s, r) = exchange(a, huge.as_bytes()).await;
    assert!(r.starts_with("RTSP/1.0 400 "), "{r}");
    assert!(closes(&mut s).await, "an endless head ends the connection");

    // Well-formed but wrong requests keep the connection usable: each
    // next request is answered on it.
    let mut s = TcpStream::connect(a).await.unwrap();
    let cases = [
        (format!("FROB {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"), "501"),
        (format!("RECORD {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n"), "405"),
        (format!("OPTIONS {url} RTSP/2.0\r\nCSeq: 3\r\n\r\n"), "505"),
        (format!("OPTIONS {url} RTSP/1.0\r\n\r\n"), "400"),
        (format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 5\r\n\r\n", sim.url(3)), "404"),
        (format!("DESCRIBE rtsp://{a}/nope/1 RTSP/1.0\r\nCSeq: 6\r\n\r\n"), "404"),
        (format!("PLAY {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n"), "455"),
        (
            format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 8\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"),
            "461",
        ),
        (format!("PLAY {url} RTSP/1.0\r\nCSeq: 9\r\nSession: 1234\r\n\r\n"), "454"),
        (format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 10\r\nRequire: funky\r\n\r\n"), "551"),
        (format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 11\r\n\r\n"), "200"),
    ];
    for (req, status) in cases {
        s.write_all(req.as_bytes()).await.unwrap();
        let r = read_reply(&mut s).await;
        assert!(
            r.starts_with(&format!("RTSP/1.0 {status} ")),
            "{req:?} → {r}"
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn silent_clients_time_out() {
    let sim = sim(1, Codec::H264).await;
    sim.set_session_timeout(Duration::from_millis(200));
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let req = format!(
        "SETUP {}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
        sim.url(1)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let r = read_reply(&mut s).await;
    assert!(r.contains("Session: ") && r.contains(";timeout="), "{r}");
    wait_until("the idle session is dropped", async || sim.sessions() == 0).await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_keepalives_hold_a_session_past_its_timeout() {
    let sim = sim(1, Codec::H264).await;
    // retina sends a keepalive (OPTIONS, then GET_PARAMETER) every half
    // timeout; without our answers the session would end after 2 s.
    sim.set_session_timeout(Duration::from_secs(2));
    let r = receive(&sim.url(1), 5.0).await.unwrap();
    assert_smooth(&r);
    sim.stop().await;
}

/// Runs a command to completion, killing it after PATIENCE.
fn run_bounded(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is it installed?): {e}"));
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_decodes_both_codecs_across_the_loop() {
    let sim = sim(1, Codec::H264).await;
    for (url, codec) in [(sim.url(1), "h264"), (sim.url_for(Codec::H265, 1), "hevc")] {
        let out = tokio::task::spawn_blocking(move || {
            run_bounded(Command::new("ffprobe").args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-timeout",
                "10000000",
                // 5 s: past the 4 s clip's end, decoding every frame.
                "-read_intervals",
                "%+5",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
                "-of",
                "default=noprint_wrappers=1",
                &url,
            ]))
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ffprobe: {errors}");
        assert!(
            errors.trim().is_empty(),
            "{codec}: decoder complained: {errors}"
        );
        assert!(text.contains(&format!("codec_name={codec}\n")), "{text}");
        assert!(
            text.contains("width=640\n") && text.contains("height=360\n"),
            "{text}"
        );
        let frames: u32 = text
            .lines()
            .find_map(|l| l.strip_prefix("nb_read_frames="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // 5 s at 25 fps is 125 frames; allow for the probe's start-up.
        assert!(
            frames >= 100,
            "{codec}: {frames} frames decoded in 5 s: {text}"
        );
    }
    sim.stop().await;
}

/// The gst-rtsp-server camera, killed when dropped.
struct GstCamera(std::process::Child);

impl Drop for GstCamera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gst_rtsp_camera_serves_the_clip_to_retina() {
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gst-rtsp-camera");
    let mut child = Command::new(script)
        .args(["--port", &port.to_string(), "--streams", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let camera = GstCamera(child);
    // The script prints "ready" once it serves (after making its looped
    // file, which the first run caches).
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.trim() == "ready")
    });
    let ready = timeout(Duration::from_secs(300), ready).await;
    assert!(
        matches!(ready, Ok(Ok(true))),
        "gst-rtsp-camera never said ready"
    );

    for n in 1..=2 {
        let url = format!("rtsp://127.0.0.1:{port}/cam/{n}");
        let r = receive(&url, 2.0)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(r.codec.starts_with("avc1.4D"), "{url}: {}", r.codec);
        assert_eq!(r.dims, (640, 360));
        assert!(r.frames.iter().any(|f| f.1), "{url}: a keyframe within 2 s");
        assert!(
            r.frames.len() >= 40,
            "{url}: {} frames in 2 s",
            r.frames.len()
        );
    }
    drop(camera);
}

/// What a raw client reads off an RTSP connection while playing.
#[derive(Debug)]
enum Msg {
    /// Interleaved channel and packet.
    Data(u8, Vec<u8>),
    /// A response head (none of ours here has a body).
    Reply(String),
}

struct RawClient {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    async fn connect(addr: SocketAddr) -> Self {
        RawClient {
            sock: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, request: String) {
        self.sock.write_all(request.as_bytes()).await.unwrap();
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = timeout(PATIENCE, self.sock.read(&mut chunk))
            .await
            .expect("server went quiet")
            .unwrap();
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn next(&mut self) -> Msg {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() >= 4 {
                    let len = 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() >= len {
                        let frame: Vec<u8> = self.buf.drain(..len).collect();
                        return Msg::Data(frame[1], frame[4..].to_vec());
                    }
                }
            } else if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Msg::Reply(String::from_utf8(head).unwrap());
            }
            self.fill().await;
        }
    }

    /// The next response, skipping stream data sent before it.
    async fn reply(&mut self) -> String {
        loop {
            if let Msg::Reply(r) = self.next().await {
                return r;
            }
        }
    }
}

/// An RTP packet's (seq, timestamp, ssrc, marker), checking the fixed
/// header against the SDP.
fn rtp_fields(p: &[u8]) -> (u16, u32, u32, bool) {
    assert_eq!(p[0] >> 6, 2, "RTP version 2");
    assert_eq!(p[1] & 0x7f, 96, "payload type of the SDP");
    (
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        p[1] & 0x80 != 0,
    )
}

fn header_value<'a>(reply: &'a str, name: &str) -> &'a str {
    reply
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
}

fn rtp_info(reply: &str) -> (u16, u32) {
    let info = header_value(reply, "RTP-Info");
    let field = |k: &str| {
        info.split(';')
            .find_map(|f| f.trim().strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {info}"))
            .to_string()
    };
    (
        field("seq=").parse().unwrap(),
        field("rtptime=").parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_info_matches_the_stream_and_pause_resumes_it() {
    let sim = sim(1, Codec::H264).await;
    let url = sim.url(1);
    let mut c = RawClient::connect(sim.addr()).await;
    c.send(format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n"
    ))
    .await;
    let r = c.reply().await;
    assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
    assert!(
        header_value(&r, "Transport").contains("interleaved=4-5"),
        "{r}"
    );
    let session = header_value(&r, "Session")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(sim.sessions(), 1);

    c.send(format!(
        "PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"
    ))
    .await;
    let (seq0, ts0) = rtp_info(&c.reply().await);
    // Read frames 0..=4 (the marker bit closes each) and the sender
    // report that follows the first frame.
    let mut last: Option<(u16, u32)> = None;
    let (mut ssrc, mut frames, mut report) = (0, 0, false);
    while frames < 5 || !report {
        match c.next().await {
            Msg::Data(4, p) => {
                let (seq, ts, s, marker) = rtp_fields(&p);
                match last {
                    None => {
                        assert_eq!(
                            (seq, ts),
                            (seq0, ts0),
                            "the first packet is the one RTP-Info names"
                        );
                        assert_eq!(
                            p[12] & 0x1f,
                            7,
                            "the stream opens with the SPS of a keyframe"
                        );
                        ssrc = s;
                    }
                    Some((prev, _)) => assert_eq!((seq, s), (prev.wrapping_add(1), ssrc)),
                }
                last = Some((seq, ts));
                frames += u32::from(marker);
            }
            Msg::Data(5, p) => {
                assert_eq!(p[1], 200, "RTCP sender report");
                assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), ssrc);
                report = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (mut last_seq, mut last_ts) = last.unwrap();
    assert_eq!(
        last_ts.wrapping_sub(ts0),
        4 * 3600,
        "frame 4 is 4/25 s after frame 0"
    );

    c.send(format!(
        "PAUSE {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"
    ))
    .await;
    // Packets sent before the pause took effect come first; note the last.
    loop {
        match c.next().await {
            Msg::Data(4, p) => (last_seq, last_ts, ..) = rtp_fields(&p),
            Msg::Data(..) => {}
            Msg::Reply(r) => {
                assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
                break;
            }
        }
    }
    c.send(format!(
        "PLAY {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n"
    ))
    .await;
    let (seq1, ts1) = rtp_info(&c.reply().await);
    assert_eq!(
        seq1,
        last_seq.wrapping_add(1),
        "sequence numbers continue after PAUSE"
    );
    assert_eq!(
        ts1,
        last_ts.wrapping_add(3600),
        "timestamps continue after PAUSE"
    );
    let Msg::Data(4, p) = c.next().await else {
        panic!("no RTP after PLAY")
    };
    assert_eq!(rtp_fields(&p).0, seq1);

    c.send(format!(
        "TEARDOWN {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\n\r\n"
    ))
    .await;
    assert!(c.reply().await.starts_with("RTSP/1.0 200 "));
    wait_until("the torn-down session is gone", async || {
        sim.sessions() == 0
    })
    .await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_with_a_password_wants_digest_or_basic() {
    let sim = sim(1, Codec::H264).await;
    sim.set_credentials(Some(("admin", "s3cret")));
    let url = url::Url::parse(&sim.url(1)).unwrap();
    let options = |password: Option<&str>| {
        SessionOptions::default().creds(password.map(|p| retina::client::Credentials {
            username: "admin".into(),
            password: p.into(),
        }))
    };
    // retina answers our Digest challenge on each request and plays.
    let mut session = retina::client::Session::describe(url.clone(), options(Some("s3cret")))
        .await
        .unwrap();
    session
        .setup(
            0,
            SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default())),
        )
        .await
        .unwrap();
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let first = timeout(PATIENCE, demuxed.next()).await.unwrap();
    assert!(
        matches!(first, Some(Ok(CodecItem::VideoFrame(_)))),
        "{first:?}"
    );
    drop(demuxed);
    for wrong in [None, Some("wrong")] {
        let refused = retina::client::Session::describe(url.clone(), options(wrong)).await;
        assert!(refused.is_err(), "password {wrong:?} accepted");
    }

    // ffprobe: a second Digest implementation.
    let authed = format!("rtsp://admin:s3cret@{}/cam/1", sim.addr());
    let out = tokio::task::spawn_blocking(move || {
        run_bounded(Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            &authed,
        ]))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h264");

    // Basic, and the 401 without credentials, on the wire.
    let (_, r) = exchange(
        sim.addr(),
        format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", sim.url(1)).as_bytes(),
    )
    .await;
    assert!(
        r.starts_with("RTSP/1.0 401 ") && r.contains("WWW-Authenticate: Digest "),
        "{r}"
    );
    let basic = format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\n\r\n",
        sim.url(1)
    );
    let (_, r) = exchange(sim.addr(), basic.as_bytes()).await;
    assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
    sim.stop().await;
}
