//! The demo site's field devices: one ONVIF simulator per recorder or
//! camera with an `onvif` URL, one Modbus UPS simulator per UPS, one NTP
//! simulator per NTP server, an RTSP simulator serving every camera's
//! video, and a WS-Discovery responder — all on
//! loopback at free ports (the site's addresses are rewritten to them, so
//! two demos never collide) — plus a scripted scenario so every driver
//! path shows without hardware:
//!
//! - every 90 s the main entrance door (nvr-1 alarm input 1) opens for 8 s;
//! - every 6 min UPS 1 loses mains for 2 min (on battery, charge falls);
//! - every 5 min the NTP server falls silent for 1 min;
//! - every 7 min NVR 2's clock drifts 3 s for 2 min.

use crate::config::secrets::Credential;
use crate::model::kinds::EquipKind;
use crate::model::Site;
use std::net::SocketAddr;
use std::time::Duration;

/// The login every simulated ONVIF device of the demo takes.
pub const ONVIF_USER: &str = "admin";
pub const ONVIF_PASSWORD: &str = "demo-onvif";

pub struct DemoDevices {
    pub onvif: Vec<(String, super::onvif::SimHandle)>,
    pub ups: Vec<(String, super::modbus_ups::UpsSimHandle)>,
    pub ntp: Vec<(String, super::ntp::NtpSim)>,
    pub discovery: Option<super::onvif::DiscoveryHandle>,
    /// Every camera without a stream of its own records from here.
    pub cameras: Option<super::rtsp::RtspSimHandle>,
}

/// The credential the demo's ONVIF devices accept, whatever its name.
pub fn credential(_name: &str) -> Option<Credential> {
    Some(Credential {
        username: ONVIF_USER.into(),
        password: ONVIF_PASSWORD.into(),
    })
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts a simulator for every device of `site` that a driver talks to
/// and points the site at them.
pub async fn start(site: &mut Site) -> anyhow::Result<DemoDevices> {
    let mut out = DemoDevices {
        onvif: Vec::new(),
        ups: Vec::new(),
        ntp: Vec::new(),
        discovery: None,
        cameras: None,
    };
    let count = |site: &Site, e: usize, prefix: &str| {
        site.points[site.equipment[e].points.clone()]
            .iter()
            .filter(|p| {
                p.key
                    .strip_prefix(prefix)
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
            .count() as u32
    };
    for i in 0..site.equipment.len() {
        let e = &site.equipment[i];
        if e.onvif.is_some() {
            let cfg = super::onvif::DeviceConfig {
                name: e.name.clone(),
                username: ONVIF_USER.into(),
                password: ONVIF_PASSWORD.into(),
                inputs: count(site, i, "alarm-in-"),
                relays: count(site, i, "alarm-out-"),
                model: e.id.clone(),
                serial: format!("DEMO-{}", e.id),
                ..Default::default()
            };
            let sim = super::onvif::start(loopback(), cfg).await?;
            site.equipment[i].onvif = Some(sim.device_url());
            out.onvif.push((site.equipment[i].id.clone(), sim));
        } else if let Some(m) = e.modbus.clone() {
            let sim = super::modbus_ups::start(loopback(), &m.map, m.unit).await?;
            if let Some(t) = site.equipment[i].modbus.as_mut() {
                t.address = sim.addr().to_string();
            }
            out.ups.push((site.equipment[i].id.clone(), sim));
        } else if e.kind == EquipKind::NtpServer && e.driver_address.is_some() {
            let sim = super::ntp::start(loopback()).await?;
            site.equipment[i].driver_address = Some(sim.addr().to_string());
            out.ntp.push((site.equipment[i].id.clone(), sim));
        }
    }
    // One RTSP simulator serves every camera: `/h265/k` for cameras whose
    // datasheet says H.265, `/h264/k` for the rest.
    let cams: Vec<usize> = (0..site.equipment.len())
        .filter(|&i| {
            let e = &site.equipment[i];
            e.onvif.is_none() && e.recording.as_ref().is_some_and(|r| r.rtsp.is_none())
        })
        .collect();
    if !cams.is_empty() {
        let sim = super::rtsp::start(
            loopback(),
            super::rtsp::RtspSimConfig {
                streams: cams.len() as u32,
                codec: super::rtsp::Codec::H264,
            },
        )
        .await?;
        for (k, &i) in cams.iter().enumerate() {
            let h265 = site.equipment[i].props.iter().any(|(name, v)| {
                *name == "codec"
                    && matches!(v, crate::model::PropValue::Str(c) if c.contains("265"))
            });
            let codec = if h265 {
                super::rtsp::Codec::H265
            } else {
                super::rtsp::Codec::H264
            };
            let url = sim.url_for(codec, k as u32 + 1);
            if let Some(r) = site.equipment[i].recording.as_mut() {
                r.rtsp = Some(url);
            }
        }
        out.cameras = Some(sim);
    }
    let listed: Vec<(String, String)> = out
        .onvif
        .iter()
        .map(|(id, s)| {
            let name = site.equipment(id).map_or(id.clone(), |e| e.name.clone());
            (name, s.device_url())
        })
        .collect();
    if !listed.is_empty() {
        out.discovery = Some(super::onvif::start_discovery(loopback(), listed).await?);
    }
    Ok(out)
}

impl DemoDevices {
    /// Where `vgw discover --target` finds the demo's devices.
    pub fn discovery_addr(&self) -> Option<SocketAddr> {
        self.discovery.as_ref().map(|d| d.addr())
    }

    fn onvif(&self, id: &str) -> Option<&super::onvif::SimHandle> {
        self.onvif.iter().find(|(i, _)| i == id).map(|(_, s)| s)
    }

    /// Runs the scripted scenario until the returned task is aborted (or
    /// the runtime ends). `DemoDevices` must stay alive meanwhile.
    pub fn run_scenario(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let d = self.clone();
        tokio::spawn(async move {
            // A one-second clock: every scene is a function of elapsed time,
            // so the script reads like a timetable.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut t: u64 = 0;
            loop {
                tick.tick().await;
                d.scene(t);
                t += 1;
            }
        })
    }

    fn scene(&self, t: u64) {
        if let Some(nvr) = self.onvif("nvr-1") {
            match t % 90 {
                30 => nvr.set_input(1, true),
                38 => nvr.set_input(1, false),
                _ => {}
            }
        }
        if let Some((_, ups)) = self.ups.first() {
            match t % 360 {
                60 => ups.set_mains(false),
                180 => ups.set_mains(true),
                _ => {}
            }
        }
        for (_, ntp) in &self.ntp {
            match t % 300 {
                240 => ntp.set_answering(false),
                0 => ntp.set_answering(true),
                _ => {}
            }
        }
        if let Some(nvr) = self.onvif("nvr-2") {
            match t % 420 {
                120 => nvr.set_clock_offset_ms(3_000),
                240 => nvr.set_clock_offset_ms(0),
                _ => {}
            }
        }
    }
}
