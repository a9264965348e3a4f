//! Simulated ONVIF devices (NVR / camera), built from the ONVIF Core
//! specification and WSDLs rather than from any client's expectations.
//!
//! Each device is one HTTP server on its own port (SOAP 1.2,
//! `application/soap+xml`); many devices share one process and one tokio
//! runtime.
//!
//! # Endpoints
//! | path | service | namespace |
//! |---|---|---|
//! | `/onvif/device_service` | Device (tds) | `http://www.onvif.org/ver10/device/wsdl` |
//! | `/onvif/media_service` | Media (trt) | `http://www.onvif.org/ver10/media/wsdl` |
//! | `/onvif/deviceio_service` | DeviceIO (tmd) | `http://www.onvif.org/ver10/deviceIO/wsdl` |
//! | `/onvif/event_service` | Events (tev) | `http://www.onvif.org/ver10/events/wsdl` |
//! | `/onvif/event_service/subscription/{id}` | a PullPoint subscription | tev + WS-BaseNotification |
//!
//! A PullPoint's EndpointReference carries the reference parameter
//! `<sim:SubscriptionKey xmlns:sim="urn:vgw:onvif-sim">…</sim:SubscriptionKey>`,
//! which the client must send back as a SOAP header (WS-Addressing).
//!
//! Authentication: see [`auth`]. PRE_AUTH operations (GetSystemDateAndTime,
//! GetServices, GetCapabilities, GetServiceCapabilities, GetHostname,
//! GetWsdlUrl, GetEndpointReference) need no credentials.
//!
//! # Control API (JSON, no auth, same port)
//! - `GET /sim/state` — everything: inputs, relays, alarm flags, online,
//!   clock offset, subscription count.
//! - `POST /sim/state` `{"motion":true,"tamper":false,"signal_loss":…,
//!   "storage_failure":…,"recording":…}` — any subset; each change raises
//!   its event.
//! - `GET /sim/inputs` → `[false, true, …]`; `POST /sim/inputs/{n}`
//!   `{"active": true}` (1-based; 404 if no such input).
//! - `GET /sim/relays` → `[false, …]` (1-based order).
//! - `GET /sim/clock` → `{"offset_ms", "device_time"}`; `POST /sim/clock`
//!   `{"offset_ms": 3000}`.
//! - `POST /sim/online` `{"online": false}` — SOAP endpoints stop answering
//!   (requests hang until the client gives up); the control API still works.
//! - `GET /sim/subscriptions` → `{"count": n, "max": m}`.

pub mod auth;
mod device;
pub mod discovery;
mod events;
mod server;
pub mod soap;
mod svc_device;
mod svc_deviceio;
mod svc_events;
mod svc_media;
mod topics;
mod xml;

pub use auth::AuthMode;
pub use device::DeviceConfig;
pub use discovery::{start_discovery, start_discovery_opts, DiscoveryHandle};
pub use server::{start, SimHandle};

use std::net::SocketAddr;

/// Serve simulated ONVIF devices (Device, Media, DeviceIO, Events services,
/// WS-Discovery) for tests and demos.
#[derive(clap::Args, Debug)]
#[command(after_help = "Each device prints its device service URL. \
Control API on each device port: GET/POST /sim/state, POST /sim/inputs/{n} {\"active\":true}, \
GET /sim/relays, POST /sim/clock {\"offset_ms\":3000}, POST /sim/online {\"online\":false}, \
GET /sim/subscriptions. See src/sim/onvif/mod.rs.")]
pub struct Args {
    /// Address of the first device; device k listens on port + k - 1.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub listen: SocketAddr,
    /// Number of devices.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Digital inputs per device.
    #[arg(long, default_value_t = 4)]
    pub inputs: u32,
    /// Relay outputs per device.
    #[arg(long, default_value_t = 2)]
    pub relays: u32,
    #[arg(long, default_value = "admin")]
    pub user: String,
    #[arg(long, default_value = "admin", env = "VGW_SIM_ONVIF_PASSWORD")]
    pub password: String,
    /// Which credentials the devices accept.
    #[arg(long, value_enum, default_value_t = AuthMode::Any)]
    pub auth: AuthMode,
    /// Device clock = real clock + this offset (milliseconds).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_offset_ms: i64,
    /// PullPoint subscriptions allowed per device.
    #[arg(long, default_value_t = 10)]
    pub max_subscriptions: usize,
    /// Stream URI returned by GetStreamUri (default rtsp://<host>:554/stream1).
    #[arg(long)]
    pub rtsp_url: Option<String>,
    /// Device name prefix (device k is "<name>-k"; used in scopes).
    #[arg(long, default_value = "vgw-sim")]
    pub name: String,
    /// Answer WS-Discovery Probes on this UDP address (for all devices).
    #[arg(long)]
    pub discovery: Option<SocketAddr>,
    /// Also join the WS-Discovery multicast group 239.255.255.250
    /// (use with --discovery 0.0.0.0:3702).
    #[arg(long)]
    pub discovery_multicast: bool,
}

pub fn run_cli(args: &Args) -> anyhow::Result<()> {
    if args.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    if args.clock_offset_ms.abs() > 3_155_760_000_000 {
        anyhow::bail!("--clock-offset-ms is more than a century");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut handles = Vec::new();
        for k in 0..args.count {
            let port = u16::try_from(u32::from(args.listen.port()) + k)
                .map_err(|_| anyhow::anyhow!("port range overflows for --count {}", args.count))?;
            let addr = SocketAddr::new(args.listen.ip(), port);
            let cfg = DeviceConfig {
                name: format!("{}-{}", args.name, k + 1),
                username: args.user.clone(),
                password: args.password.clone(),
                inputs: args.inputs,
                relays: args.relays,
                clock_offset_ms: args.clock_offset_ms,
                max_subscriptions: args.max_subscriptions,
                auth: args.auth,
                rtsp_url: args.rtsp_url.clone(),
                serial: format!("SIM-{:04}", k + 1),
                ..DeviceConfig::default()
            };
            let name = cfg.name.clone();
            let h = start(addr, cfg)
                .await
                .map_err(|e| anyhow::anyhow!("device {name} on {addr}: {e}"))?;
            println!("{} {}", name, h.device_url());
            handles.push((name, h));
        }
        let disco = match args.discovery {
            Some(d) => {
                let devices = handles
                    .iter()
                    .map(|(n, h)| (n.clone(), h.device_url()))
                    .collect();
                let dh = start_discovery_opts(d, devices, args.discovery_multicast).await?;
                println!("discovery udp://{}", dh.addr());
                Some(dh)
            }
            None => None,
        };
        use std::io::Write as _;
        std::io::stdout().flush().ok();
        wait_for_signal().await;
        if let Some(d) = disco {
            d.shutdown().await;
        }
        for (_, h) in handles {
            h.shutdown().await;
        }
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
