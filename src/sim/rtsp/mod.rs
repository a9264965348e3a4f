//! A simulated RTSP camera server: RTSP 1.0 (RFC 2326) over TCP with
//! RTP/RTCP interleaved on the RTSP connection — the transport the
//! recorder uses — serving the committed test clips (tests/data/) in a
//! seamless real-time loop, H.264 (RFC 6184) or H.265 (RFC 7798).
//!
//! Paths: `/cam/{n}` in the server's codec, `/h264/{n}` and `/h265/{n}`
//! in those codecs, for n in 1..=streams. It is the camera of `vgw demo`
//! and the recorder's tests; tests/rtsp_sim.rs cross-checks it with
//! retina and ffprobe, and scripts/gst-rtsp-camera provides a real
//! third-party server (gst-rtsp-server) for the same role.
//!
//! - `clip`: the embedded clips, split into frames and RTP payloads once.
//! - `rtp`: RTP packetization, headers, RTCP sender reports.
//! - `message`: bounded RTSP request parsing and responses.
//! - `conn`: one connection's RTSP state machine and paced stream.
//! - `auth`: optional Digest/Basic authentication.

mod auth;
mod clip;
pub use clip::annex_b;
mod conn;
mod message;
mod rtp;

use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The video codec a stream is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Codec {
    H264,
    H265,
}

/// What the server serves.
#[derive(Clone, Debug)]
pub struct RtspSimConfig {
    /// Number of cameras: paths `/cam/1` ..= `/cam/{streams}`.
    pub streams: u32,
    /// Codec of the `/cam/{n}` paths.
    pub codec: Codec,
}

/// Session timeout announced in `Session: ...;timeout=` (RFC 2326
/// §12.37): a connection that sends nothing for this long is closed.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections served at once; more are answered 503 and closed, so a
/// flood of idle connections cannot exhaust memory or descriptors.
const MAX_CONNECTIONS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Online,
    /// Camera unplugged: no listener, no sessions.
    Offline,
    Stopped,
}

/// What the accept loop and every connection task share.
struct Shared {
    streams: u32,
    codec: Codec,
    sessions: AtomicUsize,
    session_timeout_ms: AtomicU64,
    /// `Some`: every request but OPTIONS needs these (Digest or Basic).
    credentials: RwLock<Option<auth::Credentials>>,
}

/// A running simulated server. Dropping it stops the server too.
pub struct RtspSimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    state: watch::Sender<State>,
    /// A listener bound by `set_online(true)` for the accept loop to take
    /// over: binding there, synchronously, means a client may connect as
    /// soon as `set_online` returns.
    rebound: Arc<Mutex<Option<std::net::TcpListener>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Starts a server on `listen` (port 0 picks a free port). Fails when
/// the address cannot be bound or `streams` is 0.
pub async fn start(listen: SocketAddr, cfg: RtspSimConfig) -> anyhow::Result<RtspSimHandle> {
    anyhow::ensure!(
        cfg.streams >= 1,
        "an RTSP simulator needs at least one stream"
    );
    for codec in [Codec::H264, Codec::H265] {
        clip::embedded(codec)
            .map_err(|e| anyhow::anyhow!("embedded {codec:?} clip is unusable: {e}"))?;
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for RTSP on {listen}"))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        streams: cfg.streams,
        codec: cfg.codec,
        sessions: AtomicUsize::new(0),
        session_timeout_ms: AtomicU64::new(DEFAULT_SESSION_TIMEOUT.as_millis() as u64),
        credentials: RwLock::new(None),
    });
    let (state, rx) = watch::channel(State::Online);
    let rebound = Arc::new(Mutex::new(None));
    let task = tokio::spawn(accept_loop(
        addr,
        Some(listener),
        shared.clone(),
        rx,
        rebound.clone(),
    ));
    Ok(RtspSimHandle {
        addr,
        shared,
        state,
        rebound,
        task: Some(task),
    })
}

impl RtspSimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtsp://addr/cam/{n}`.
    pub fn url(&self, n: u32) -> String {
        format!("rtsp://{}/cam/{n}", self.addr)
    }

    /// `rtsp://addr/h264/{n}` or `/h265/{n}`: stream n in a given codec,
    /// whatever the server's default.
    pub fn url_for(&self, codec: Codec, n: u32) -> String {
        let prefix = match codec {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        };
        format!("rtsp://{}/{prefix}/{n}", self.addr)
    }

    /// `false`: the camera is unplugged — every connection is closed and
    /// the port stops listening (connections are refused). `true`: it
    /// serves again on the same address. Closing is asynchronous (a few
    /// milliseconds); listening again is done when this returns.
    pub fn set_online(&self, online: bool) {
        let current = *self.state.borrow();
        if current == State::Stopped {
            return;
        }
        if online && current == State::Offline {
            match std::net::TcpListener::bind(self.addr).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => *self.rebound.lock().unwrap_or_else(|e| e.into_inner()) = Some(l),
                // The accept loop keeps trying.
                Err(e) => tracing::warn!(
                    "RTSP simulator cannot listen on {} again yet: {e}",
                    self.addr
                ),
            }
        }
        self.state.send_replace(if online {
            State::Online
        } else {
            State::Offline
        });
    }

    /// Open RTSP sessions: SETUP done, not yet torn down, closed or
    /// timed out.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    /// Changes the session timeout (default 60 s, at most a day) for
    /// connections' next idle period; lets tests see a silent client
    /// dropped.
    pub fn set_session_timeout(&self, timeout: Duration) {
        let ms = timeout.as_millis().clamp(1, 86_400_000) as u64;
        self.shared.session_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// `Some((user, password))`: requests other than OPTIONS must
    /// authenticate (Digest, or Basic), or get 401 — like a camera with a
    /// password. `None` (the default): no authentication. Applies to the
    /// next request, on open connections too.
    pub fn set_credentials(&self, credentials: Option<(&str, &str)>) {
        let creds = credentials.map(|(u, p)| auth::Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
        *self
            .shared
            .credentials
            .write()
            .unwrap_or_else(|e| e.into_inner()) = creds;
    }

    /// Stops listening, closes every connection and waits for them.
    pub async fn stop(mut self) {
        self.state.send_replace(State::Stopped);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RtspSimHandle {
    fn drop(&mut self) {
        self.state.send_replace(State::Stopped);
    }
}

async fn accept_loop(
    addr: SocketAddr,
    mut listener: Option<TcpListener>,
    shared: Arc<Shared>,
    mut state: watch::Receiver<State>,
    rebound: Arc<Mutex<Option<std::net::TcpListener>>>,
) {
    let mut conns = JoinSet::new();
    loop {
        let current = *state.borrow_and_update();
        match current {
            State::Stopped => break,
            State::Offline => listener = None,
            State::Online if listener.is_none() => {
                let taken = rebound.lock().unwrap_or_else(|e| e.into_inner()).take();
                let fresh = match taken {
                    Some(std) => TcpListener::from_std(std),
                    None => TcpListener::bind(addr).await,
                };
                match fresh {
                    Ok(l) => listener = Some(l),
                    Err(e) => tracing::warn!("RTSP simulator cannot listen on {addr}: {e}"),
                }
            }
            State::Online => {}
        }
        let retry = current == State::Online && listener.is_none();
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = accept(listener.as_ref()), if listener.is_some() => {
                match accepted {
                    Ok((sock, peer)) if conns.len() >= MAX_CONNECTIONS => {
                        tracing::warn!(%peer, "RTSP simulator full ({MAX_CONNECTIONS} connections)");
                        tokio::spawn(conn::refuse_busy(sock));
                    }
                    Ok((sock, peer)) => {
                        tracing::debug!(%peer, "RTSP connection");
                        conns.spawn(conn::serve(sock, shared.clone(), state.clone()));
                    }
                    // Out of file descriptors and the like: let it pass.
                    Err(e) => {
                        tracing::warn!("RTSP simulator accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)), if retry => {}
        }
    }
    drop(listener);
    // Connections see `Stopped` and end by themselves; aborting covers
    // one blocked writing to a client that stopped reading.
    conns.shutdown().await;
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// `vgw sim rtsp`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Serve simulated RTSP cameras (looping test clips, RTP over TCP)",
    long_about = "Serve simulated RTSP cameras: RTSP 1.0 with RTP/RTCP interleaved on the TCP \
connection (UDP is refused with 461), looping a 4 s 640x360 25 fps test clip in real time \
(one keyframe per second, parameter sets in-band before each, RTCP sender reports every 5 s, \
timestamps continuing across loops). Sessions time out after 60 s without requests.\n\n\
Paths: /cam/N in --codec, /h264/N and /h265/N in those codecs, for N in 1..=--streams. \
--user/--password require authentication (Digest or Basic). Prints the /cam URLs, then serves until Ctrl-C.\n\n\
Example: vgw sim rtsp --streams 64 --codec h265, then \
ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/cam/1"
)]
pub struct Args {
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub listen: SocketAddr,
    /// Number of cameras (/cam/1 ..= /cam/N).
    #[arg(long, default_value_t = 4)]
    pub streams: u32,
    /// Codec of the /cam/N paths.
    #[arg(long, value_enum, default_value = "h264")]
    pub codec: Codec,
    /// Require this user name (with --password); default: no authentication.
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// Password for --user.
    #[arg(long, requires = "user")]
    pub password: Option<String>,
}

/// `vgw sim rtsp`: prints the stream URLs and serves until Ctrl-C.
pub fn run_cli(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sim = start(
            args.listen,
            RtspSimConfig {
                streams: args.streams,
                codec: args.codec,
            },
        )
        .await?;
        if let (Some(user), Some(password)) = (&args.user, &args.password) {
            sim.set_credentials(Some((user, password)));
        }
        println!(
            "simulated RTSP cameras on rtsp://{} ({} x {:?}, RTP over TCP):",
            sim.addr(),
            args.streams,
            args.codec
        );
        for n in 1..=args.streams {
            println!("{}", sim.url(n));
        }
        tokio::signal::ctrl_c().await?;
        sim.stop().await;
        Ok(())
    })
}
