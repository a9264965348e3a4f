//! One client connection: the RTSP state machine (RFC 2326 §A.2, server
//! side) and, once playing, the paced RTP stream interleaved on the same
//! TCP connection (§10.12). One task per connection; the clip data is
//! shared, so a session costs a socket, a small buffer and a timer.

use super::auth;
use super::clip::{self, Clip, TICKS_PER_FRAME};
use super::message::{self, Item, Request, Response};
use super::rtp;
use super::{Codec, Shared, State};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER";
/// How often a playing session sends an RTCP sender report.
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a write may wait for a client to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a read buffer may grow: one request head and body, or one
/// interleaved frame from the client (at most 4 + 65535 bytes).
const MAX_BUFFER: usize = 4 + 65_535 + message::MAX_HEAD + message::MAX_BODY;

/// An RTSP session (after SETUP). Counted in `Shared::sessions` while it
/// exists.
struct Session {
    id: String,
    clip: &'static Clip,
    /// The stream's URL as the client set it up (for RTP-Info).
    track_url: String,
    /// (path prefix, stream number) it was set up for.
    stream: (String, u32),
    rtp_channel: u8,
    rtcp_channel: u8,
    ssrc: u32,
    next_seq: u16,
    ts_base: u32,
    /// Frames sent since the session began (across loops and pauses).
    frames_sent: u64,
    packets_sent: u32,
    octets_sent: u32,
    /// `Some` while playing: frame `frames_sent` is due at
    /// `clock_start + frames_sent / FPS`.
    clock_start: Option<Instant>,
    next_report: Instant,
    shared: Arc<Shared>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session {
    fn frame_due(&self, start: Instant) -> Instant {
        start + Duration::from_micros(self.frames_sent * 1_000_000 / u64::from(clip::FPS))
    }

    fn timestamp(&self, frames: u64) -> u32 {
        self.ts_base
            .wrapping_add((frames as u32).wrapping_mul(TICKS_PER_FRAME))
    }

    /// Appends the next frame's interleaved RTP packets to `out`.
    fn next_frame(&mut self, out: &mut Vec<u8>) {
        let frames = &self.clip.frames;
        let frame = &frames[(self.frames_sent % frames.len() as u64) as usize];
        let ts = self.timestamp(self.frames_sent);
        let last = frame.payloads.len().saturating_sub(1);
        for (i, payload) in frame.payloads.iter().enumerate() {
            let len = (12 + payload.len()) as u16;
            out.push(b'$');
            out.push(self.rtp_channel);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&rtp::header(i == last, self.next_seq, ts, self.ssrc));
            out.extend_from_slice(payload);
            self.next_seq = self.next_seq.wrapping_add(1);
            self.packets_sent = self.packets_sent.wrapping_add(1);
            self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        }
        self.frames_sent += 1;
    }

    /// Appends an interleaved RTCP sender report mapping now to RTP time.
    fn sender_report(&self, now: Instant, out: &mut Vec<u8>) {
        let Some(start) = self.clock_start else {
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        let ticks = (elapsed.as_micros() * 90_000 / 1_000_000) as u32;
        let cname = format!("{}{}@vgw-sim", self.stream.0, self.stream.1);
        let sr = rtp::sender_report(
            self.ssrc,
            rtp::ntp_now(),
            self.ts_base.wrapping_add(ticks),
            self.packets_sent,
            self.octets_sent,
            &cname,
        );
        out.push(b'$');
        out.push(self.rtcp_channel);
        out.extend_from_slice(&(sr.len() as u16).to_be_bytes());
        out.extend_from_slice(&sr);
    }
}

/// What a request handler wants done after answering.
enum After {
    Continue,
    Close,
}

struct Conn {
    shared: Arc<Shared>,
    session: Option<Session>,
    /// Our Digest nonce for this connection.
    nonce: String,
}

/// Serves one connection until the client leaves, the session times
/// out, the server goes offline or stops, or the socket fails.
pub(super) async fn serve(
    mut sock: TcpStream,
    shared: Arc<Shared>,
    mut state: watch::Receiver<State>,
) {
    let peer = sock.peer_addr().ok();
    let _ = sock.set_nodelay(true);
    let mut conn = Conn {
        shared,
        session: None,
        nonce: auth::new_nonce(),
    };
    let mut inbuf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_heard = Instant::now();
    loop {
        if *state.borrow_and_update() != State::Online {
            break;
        }
        let timeout = Duration::from_millis(conn.shared.session_timeout_ms.load(Ordering::Relaxed));
        let frame_due = conn
            .session
            .as_ref()
            .and_then(|s| s.clock_start.map(|start| s.frame_due(start)));
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            read = sock.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                last_heard = Instant::now();
                inbuf.extend_from_slice(&chunk[..n]);
                let after = conn.handle_input(&mut inbuf, &mut out);
                if !send(&mut sock, &mut out, &mut state).await {
                    break;
                }
                if matches!(after, After::Close) {
                    linger(&mut sock).await;
                    break;
                }
            }
            _ = sleep_until(frame_due.unwrap_or_else(Instant::now)), if frame_due.is_some() => {
                let Some(s) = conn.session.as_mut() else { continue };
                s.next_frame(&mut out);
                let now = Instant::now();
                if now >= s.next_report {
                    s.sender_report(now, &mut out);
                    s.next_report = now + SR_INTERVAL;
                }
                if !send(&mut sock, &mut out, &mut state).await {
                    break;
                }
            }
            _ = sleep_until(last_heard + timeout) => {
                tracing::debug!(?peer, "RTSP session timed out");
                break;
            }
        }
    }
    let _ = sock.shutdown().await;
    tracing::debug!(?peer, "RTSP connection closed");
}

/// Closes after an error reply the way HTTP servers do: send FIN, then
/// read and discard what the client is still sending (bounded in bytes
/// and time). Closing with unread input would reset the connection and
/// could destroy the error reply before the client reads it.
async fn linger(sock: &mut TcpStream) {
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut budget = 1usize << 20;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while budget > 0 {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Writes and clears `out`; `false` when the connection must end: the
/// write failed, the client absorbed nothing for WRITE_TIMEOUT (it stopped
/// reading), or the server went offline or stopped meanwhile — so a stuck
/// client can neither pin its session nor delay `set_online(false)`.
async fn send(sock: &mut TcpStream, out: &mut Vec<u8>, state: &mut watch::Receiver<State>) -> bool {
    if out.is_empty() {
        return true;
    }
    let ok = tokio::select! {
        written = tokio::time::timeout(WRITE_TIMEOUT, sock.write_all(out)) => {
            matches!(written, Ok(Ok(())))
        }
        _ = state.wait_for(|s| *s != State::Online) => false,
    };
    out.clear();
    ok
}

/// Answers a connection beyond the server's capacity with 503 (RFC 2326
/// §11.5.4) and closes it, without waiting for its request.
pub(super) async fn refuse_busy(mut sock: TcpStream) {
    let reply = Response::new(503).to_bytes(None);
    let _ = tokio::time::timeout(Duration::from_secs(1), sock.write_all(&reply)).await;
}

impl Conn {
    /// Answers every complete request in `inbuf` into `out`.
    fn handle_input(&mut self, inbuf: &mut Vec<u8>, out: &mut Vec<u8>) -> After {
        loop {
            match message::parse(inbuf) {
                Ok(None) => {
                    if inbuf.len() > MAX_BUFFER {
                        out.extend(Response::new(400).to_bytes(None));
                        return After::Close;
                    }
                    return After::Continue;
                }
                Ok(Some((item, used))) => {
                    inbuf.drain(..used);
                    if let Item::Request(req) = item {
                        let cseq = req.header("CSeq").map(str::to_string);
                        let resp = match cseq {
                            None => Response::new(400),
                            Some(_) => self.handle(&req),
                        };
                        out.extend(resp.to_bytes(cseq.as_deref()));
                    }
                }
                Err(e) => {
                    tracing::debug!("bad RTSP input: {e}");
                    out.extend(Response::new(400).to_bytes(None));
                    return After::Close;
                }
            }
        }
    }

    fn handle(&mut self, req: &Request) -> Response {
        let known = matches!(
            req.method.as_str(),
            "OPTIONS"
                | "DESCRIBE"
                | "SETUP"
                | "PLAY"
                | "PAUSE"
                | "TEARDOWN"
                | "GET_PARAMETER"
                | "SET_PARAMETER"
                | "ANNOUNCE"
                | "RECORD"
                | "REDIRECT"
        );
        if !known {
            return Response::new(501).header("Public", PUBLIC);
        }
        if req.version != "RTSP/1.0" {
            return Response::new(505);
        }
        // We implement no extensions (§12.32).
        if let Some(required) = req.header("Require") {
            return Response::new(551).header("Unsupported", required);
        }
        // OPTIONS stays open, as on most cameras: it is the keepalive.
        if req.method != "OPTIONS" && !self.authorized(req) {
            let [digest, basic] = auth::challenges(&self.nonce);
            return Response::new(401)
                .header("WWW-Authenticate", digest)
                .header("WWW-Authenticate", basic);
        }
        match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(req),
            "SETUP" => self.setup(req),
            "PLAY" => self.play(req),
            "PAUSE" => self.pause(req),
            "TEARDOWN" => self.teardown(req),
            "GET_PARAMETER" => match self.check_session(req, false) {
                Ok(()) => self.with_session(Response::new(200)),
                Err(r) => r,
            },
            // A camera that only plays: ANNOUNCE/RECORD/SET_PARAMETER/
            // REDIRECT are RTSP methods it does not allow.
            _ => Response::new(405).header("Allow", PUBLIC),
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let creds = self
            .shared
            .credentials
            .read()
            .unwrap_or_else(|e| e.into_inner());
        match creds.as_ref() {
            None => true,
            Some(c) => auth::verify(
                c,
                req.header("Authorization"),
                &req.method,
                &req.uri,
                &self.nonce,
            ),
        }
    }

    fn describe(&self, req: &Request) -> Response {
        let Some(target) = self.resolve(&req.uri) else {
            return Response::new(404);
        };
        let clip = match clip::embedded(target.codec) {
            Ok(c) => c,
            Err(_) => return Response::new(500),
        };
        let sdp = format!(
            "v=0\r\n\
             o=- {sid} 1 IN IP4 0.0.0.0\r\n\
             s=vgw simulated camera {n}\r\n\
             c=IN IP4 0.0.0.0\r\n\
             t=0 0\r\n\
             a=control:*\r\n\
             a=range:npt=now-\r\n\
             m=video 0 RTP/AVP {pt}\r\n\
             a=rtpmap:{pt} {enc}/90000\r\n\
             a=fmtp:{pt} {fmtp}\r\n\
             a=framerate:{fps}\r\n\
             a=control:trackID=0\r\n",
            sid = rand::thread_rng().gen::<u32>(),
            n = target.number,
            pt = rtp::PAYLOAD_TYPE,
            enc = clip.encoding_name(),
            fmtp = clip.fmtp,
            fps = clip::FPS,
        );
        Response::new(200)
            .header(
                "Content-Base",
                format!("{}/", strip_track(&req.uri).trim_end_matches('/')),
            )
            .body("application/sdp", sdp.into_bytes())
    }

    fn setup(&mut self, req: &Request) -> Response {
        let Some(target) = self.resolve(&req.uri) else {
            return Response::new(404);
        };
        if let Err(r) = self.check_session(req, false) {
            return r;
        }
        let stream = (target.prefix.clone(), target.number);
        if let Some(s) = &self.session {
            // One stream per session: a second SETUP may only repeat the
            // first (e.g. to change channels before PLAY).
            if s.stream != stream {
                return Response::new(459);
            }
            if s.clock_start.is_some() {
                return Response::new(455);
            }
        }
        let Some(channels) = req.header("Transport").and_then(tcp_transport) else {
            // UDP (or anything but interleaved TCP) is not served: the
            // recorder and this simulator use TCP only.
            return Response::new(461);
        };
        let clip = match clip::embedded(target.codec) {
            Ok(c) => c,
            Err(_) => return Response::new(500),
        };
        let session = match self.session.take() {
            Some(mut s) => {
                s.rtp_channel = channels.0;
                s.rtcp_channel = channels.1;
                s
            }
            None => {
                let mut rng = rand::thread_rng();
                self.shared.sessions.fetch_add(1, Ordering::Relaxed);
                Session {
                    id: format!("{:016X}", rng.gen::<u64>()),
                    clip,
                    track_url: req.uri.clone(),
                    stream,
                    rtp_channel: channels.0,
                    rtcp_channel: channels.1,
                    ssrc: rng.gen(),
                    next_seq: rng.gen(),
                    ts_base: rng.gen(),
                    frames_sent: 0,
                    packets_sent: 0,
                    octets_sent: 0,
                    clock_start: None,
                    next_report: Instant::now(),
                    shared: self.shared.clone(),
                }
            }
        };
        let transport = format!(
            "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={:08X};mode=\"PLAY\"",
            session.rtp_channel, session.rtcp_channel, session.ssrc
        );
        self.session = Some(session);
        self.with_session(Response::new(200).header("Transport", transport))
    }

    fn play(&mut self, req: &Request) -> Response {
        if let Err(r) = self.check_session(req, true) {
            return r;
        }
        let Some(s) = self.session.as_mut() else {
            return Response::new(455);
        };
        if s.clock_start.is_none() {
            // First PLAY, or resuming: frame `frames_sent` is due now.
            // Timestamps continue where they stopped; the sender report
            // sent right away gives clients the new wall-clock mapping.
            let now = Instant::now();
            let offset = Duration::from_micros(s.frames_sent * 1_000_000 / u64::from(clip::FPS));
            s.clock_start = Some(now.checked_sub(offset).unwrap_or(now));
            s.next_report = now;
        }
        let rtp_info = format!(
            "url={};seq={};rtptime={}",
            s.track_url,
            s.next_seq,
            s.timestamp(s.frames_sent)
        );
        self.with_session(
            Response::new(200)
                .header("Range", "npt=now-")
                .header("RTP-Info", rtp_info),
        )
    }

    fn pause(&mut self, req: &Request) -> Response {
        if let Err(r) = self.check_session(req, true) {
            return r;
        }
        let Some(s) = self.session.as_mut() else {
            return Response::new(455);
        };
        s.clock_start = None;
        self.with_session(Response::new(200))
    }

    fn teardown(&mut self, req: &Request) -> Response {
        if let Err(r) = self.check_session(req, true) {
            return r;
        }
        // Dropping the session stops the stream and uncounts it; the
        // connection stays open for further requests (§10.7).
        self.session = None;
        Response::new(200)
    }

    /// Checks the request's Session header against ours (§12.37): a
    /// wrong one is 454; none where one is required is 454 too when we
    /// have a session, 455 when we have not (nothing was set up).
    fn check_session(&self, req: &Request, required: bool) -> Result<(), Response> {
        let given = req
            .header("Session")
            .map(|v| v.split(';').next().unwrap_or_default().trim());
        match (&self.session, given) {
            (Some(s), Some(id)) if s.id == id => Ok(()),
            (_, Some(_)) => Err(Response::new(454)),
            (Some(_), None) if required => Err(Response::new(454)),
            (None, None) if required => Err(Response::new(455)),
            _ => Ok(()),
        }
    }

    fn with_session(&self, resp: Response) -> Response {
        match &self.session {
            Some(s) => resp.header(
                "Session",
                format!(
                    "{};timeout={}",
                    s.id,
                    // Whole seconds, rounded up: 0 would tell clients to
                    // send keepalives continuously.
                    self.shared
                        .session_timeout_ms
                        .load(Ordering::Relaxed)
                        .div_ceil(1000)
                ),
            ),
            None => resp,
        }
    }

    /// Maps a request URL to a served stream: `/cam/{n}` in the server's
    /// codec, `/h264/{n}` and `/h265/{n}` in those, n in 1..=streams,
    /// optionally followed by our track control `trackID=0`.
    fn resolve(&self, uri: &str) -> Option<Target> {
        let path = url_path(uri)?;
        let mut segs = path.split('/').filter(|s| !s.is_empty());
        let prefix = segs.next()?;
        let number: u32 = segs.next()?.parse().ok()?;
        match segs.next() {
            None | Some("trackID=0") => {}
            Some(_) => return None,
        }
        if segs.next().is_some() || number == 0 || number > self.shared.streams {
            return None;
        }
        let codec = match prefix {
            "cam" => self.shared.codec,
            "h264" => Codec::H264,
            "h265" => Codec::H265,
            _ => return None,
        };
        Some(Target {
            prefix: prefix.to_string(),
            number,
            codec,
        })
    }
}

struct Target {
    prefix: String,
    number: u32,
    codec: Codec,
}

/// The path of an `rtsp://host[:port]/path[?query]` URL (or of a bare
/// absolute path), without query.
fn url_path(uri: &str) -> Option<&str> {
    let rest = match uri.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("rtsp") => rest,
        Some(_) => return None,
        None if uri.starts_with('/') => return Some(uri.split('?').next().unwrap_or_default()),
        None => return None,
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    Some(path.split('?').next().unwrap_or_default())
}

/// The stream URL without our track suffix (the aggregate URL).
fn strip_track(uri: &str) -> &str {
    let trimmed = uri.trim_end_matches('/');
    trimmed.strip_suffix("/trackID=0").unwrap_or(trimmed)
}

/// The interleaved channels of the first `RTP/AVP/TCP` option of a
/// Transport header (§12.39), defaulting to 0-1; `None` when the client
/// offers no TCP option (UDP, multicast).
fn tcp_transport(header: &str) -> Option<(u8, u8)> {
    header.split(',').find_map(|spec| {
        let mut params = spec.split(';').map(str::trim);
        let proto = params.next()?;
        if !proto.eq_ignore_ascii_case("RTP/AVP/TCP") {
            return None;
        }
        let mut channels = (0u8, 1u8);
        for p in params {
            if p.eq_ignore_ascii_case("multicast") {
                return None;
            }
            if let Some(v) = p.strip_prefix("interleaved=") {
                let (a, b) = match v.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let a: u8 = v.parse().ok()?;
                        (a, a.checked_add(1)?)
                    }
                };
                channels = (a, b);
            }
        }
        Some(channels)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_header_picks_the_tcp_option() {
        assert_eq!(
            tcp_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some((0, 1))
        );
        assert_eq!(
            tcp_transport(
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=4-5"
            ),
            Some((4, 5))
        );
        assert_eq!(tcp_transport("RTP/AVP/TCP;unicast"), Some((0, 1)));
        assert_eq!(tcp_transport("RTP/AVP;unicast;client_port=5000-5001"), None);
        assert_eq!(
            tcp_transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(tcp_transport("RTP/AVP/TCP;unicast;interleaved=x"), None);
    }

    fn test_conn() -> Conn {
        Conn {
            shared: Arc::new(Shared {
                streams: 2,
                codec: Codec::H264,
                sessions: std::sync::atomic::AtomicUsize::new(0),
                session_timeout_ms: std::sync::atomic::AtomicU64::new(60_000),
                credentials: std::sync::RwLock::new(None),
            }),
            session: None,
            nonce: auth::new_nonce(),
        }
    }

    /// Thousands of random, half-valid requests (and random bytes) through
    /// one connection's state machine: every answer is an RTSP status
    /// line, nothing panics, and the session count stays consistent.
    #[test]
    fn random_requests_get_answers_never_panics() {
        use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        let methods = [
            "OPTIONS",
            "DESCRIBE",
            "SETUP",
            "PLAY",
            "PAUSE",
            "TEARDOWN",
            "GET_PARAMETER",
            "RECORD",
            "FOO",
            "setup",
        ];
        let uris = [
            "rtsp://h/cam/1",
            "rtsp://h/cam/1/trackID=0",
            "rtsp://h/cam/0",
            "/cam/2/",
            "rtsp://h/h265/99999999999",
            "rtsp://h/cam/1/trackID=0/x",
            "*",
            "rtsp://",
            "rtsp://h:99999/cam/1?x=%00",
            "rtsp://h/h265/2/trackID=0",
        ];
        let transports = [
            "RTP/AVP/TCP;unicast;interleaved=0-1",
            "RTP/AVP/TCP;interleaved=255-256",
            "RTP/AVP/TCP;interleaved=9",
            "RTP/AVP;unicast;client_port=1-2",
            ";;,,",
            "",
        ];
        let versions = ["RTSP/1.0", "RTSP/1.0", "RTSP/2.0", "HTTP/1.1"];
        let mut conn = test_conn();
        for i in 0..5000 {
            let mut req = format!(
                "{} {} {}\r\n",
                methods.choose(&mut rng).unwrap(),
                uris.choose(&mut rng).unwrap(),
                versions.choose(&mut rng).unwrap()
            );
            if rng.gen_bool(0.9) {
                req.push_str(&format!("CSeq: {i}\r\n"));
            }
            if rng.gen_bool(0.5) {
                req.push_str(&format!(
                    "Transport: {}\r\n",
                    transports.choose(&mut rng).unwrap()
                ));
            }
            if rng.gen_bool(0.5) {
                let id = match &conn.session {
                    Some(s) if rng.gen_bool(0.7) => s.id.clone(),
                    _ => format!("{:x}", rng.gen::<u32>()),
                };
                req.push_str(&format!("Session: {id};timeout=5\r\n"));
            }
            req.push_str("\r\n");
            let mut input = req.into_bytes();
            if rng.gen_bool(0.05) {
                // Random bytes, sometimes with a start of interleaved data.
                let n = rng.gen_range(0..64);
                input = (0..n).map(|_| rng.gen()).collect();
            }
            let mut out = Vec::new();
            let after = conn.handle_input(&mut input, &mut out);
            assert!(
                out.is_empty() || out.starts_with(b"RTSP/1.0 "),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            if matches!(after, After::Close) {
                conn.session = None;
            }
            assert_eq!(
                conn.shared.sessions.load(Ordering::Relaxed),
                usize::from(conn.session.is_some())
            );
        }
    }

    #[test]
    fn url_paths() {
        assert_eq!(url_path("rtsp://h:554/cam/1?x=1"), Some("/cam/1"));
        assert_eq!(url_path("RTSP://h"), Some("/"));
        assert_eq!(url_path("/cam/2/"), Some("/cam/2/"));
        assert_eq!(url_path("http://h/cam/1"), None);
        assert_eq!(url_path("*"), None);
        assert_eq!(strip_track("rtsp://h/cam/1/trackID=0"), "rtsp://h/cam/1");
    }
}
