//! WS-Discovery (2005/04, the version ONVIF uses) responder for Probe.
//!
//! One UDP socket serves many devices: each device that matches a Probe
//! answers with its own ProbeMatches message (it is a separate Target
//! Service), sent unicast back to the prober as the spec says. Types
//! offered: dn:NetworkVideoTransmitter and tds:Device. Scope matching uses
//! the RFC 3986 rule (default MatchBy) or strcmp0.
//! Not implemented: Hello/Bye announcements and Resolve.

use super::device::DeviceConfig;
use super::svc_device::scopes;
use super::xml::{self, esc, Element};
use sha1::{Digest as _, Sha1};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const DN: &str = "http://www.onvif.org/ver10/network/wsdl";
const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
const PROBE_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
const MATCH_RFC3986: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986";
const MATCH_STRCMP0: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0";
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);

struct Target {
    uuid: String,
    xaddr: String,
    scopes: Vec<String>,
}

pub struct DiscoveryHandle {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DiscoveryHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A stable urn:uuid per device name (so restarts keep the same endpoint
/// reference, as WS-Discovery expects).
pub fn endpoint_uuid(name: &str) -> String {
    let h = Sha1::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 (name-based, SHA-1)
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Answers unicast Probes on `listen` for the given (name, xaddr) devices.
pub async fn start_discovery(
    listen: SocketAddr,
    devices: Vec<(String, String)>,
) -> anyhow::Result<DiscoveryHandle> {
    start_discovery_opts(listen, devices, false).await
}

/// As [`start_discovery`]; with `multicast` the socket also joins
/// 239.255.255.250 (bind 0.0.0.0:3702 for real multicast discovery).
pub async fn start_discovery_opts(
    listen: SocketAddr,
    devices: Vec<(String, String)>,
    multicast: bool,
) -> anyhow::Result<DiscoveryHandle> {
    let sock = tokio::net::UdpSocket::bind(listen).await?;
    if multicast {
        sock.join_multicast_v4(MULTICAST_GROUP, Ipv4Addr::UNSPECIFIED)?;
    }
    let addr = sock.local_addr()?;
    let targets: Arc<Vec<Target>> = Arc::new(
        devices
            .into_iter()
            .map(|(name, xaddr)| {
                let cfg = DeviceConfig {
                    name: name.clone(),
                    ..DeviceConfig::default()
                };
                Target {
                    uuid: endpoint_uuid(&name),
                    xaddr,
                    scopes: scopes(&cfg),
                }
            })
            .collect(),
    );
    let task = tokio::spawn(async move {
        let seq = AtomicU64::new(1);
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&buf[..n]) else {
                continue;
            };
            for reply in answer(text, &targets, &seq) {
                let _ = sock.send_to(reply.as_bytes(), peer).await;
            }
        }
    });
    Ok(DiscoveryHandle { addr, task })
}

/// The ProbeMatches messages for one datagram (none if it is not a Probe
/// or nothing matches).
fn answer(text: &str, targets: &[Target], seq: &AtomicU64) -> Vec<String> {
    let Ok(root) = xml::parse(text) else {
        return vec![];
    };
    if !root.is(ENV, "Envelope") {
        return vec![];
    }
    let header = root.child(ENV, "Header");
    let action = header
        .and_then(|h| h.child(WSA, "Action"))
        .map(|a| a.text_trim());
    let Some(probe) = root.child(ENV, "Body").and_then(|b| b.child(WSD, "Probe")) else {
        return vec![];
    };
    if action.is_some_and(|a| a != PROBE_ACTION) {
        return vec![];
    }
    let relates = header
        .and_then(|h| h.child(WSA, "MessageID"))
        .map(|m| m.text_trim().to_string())
        .unwrap_or_default();
    if !types_match(probe) {
        return vec![];
    }
    targets
        .iter()
        .filter(|t| scopes_match(probe, &t.scopes))
        .map(|t| probe_match(t, &relates, seq.fetch_add(1, Ordering::Relaxed)))
        .collect()
}

fn types_match(probe: &Element) -> bool {
    let Some(types) = probe.child(WSD, "Types") else {
        return true;
    };
    types.text_trim().split_whitespace().all(|q| {
        matches!(
            types.resolve_qname(q),
            Some((ref n, ref l)) if (n == DN && l == "NetworkVideoTransmitter") || (n == TDS && l == "Device")
        )
    })
}

fn scopes_match(probe: &Element, ours: &[String]) -> bool {
    let Some(scopes) = probe.child(WSD, "Scopes") else {
        return true;
    };
    let by = scopes.attr("MatchBy").unwrap_or(MATCH_RFC3986);
    scopes.text_trim().split_whitespace().all(|want| {
        ours.iter().any(|have| match by {
            MATCH_STRCMP0 => have == want,
            MATCH_RFC3986 => {
                let want = want.trim_end_matches('/');
                have == want
                    || have
                        .strip_prefix(want)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            _ => false,
        })
    })
}

fn probe_match(t: &Target, relates_to: &str, msg_no: u64) -> String {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let msg_id = endpoint_uuid(&format!("{:?}", id));
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{env}" xmlns:wsa="{wsa}" xmlns:d="{wsd}" xmlns:dn="{dn}" xmlns:tds="{tds}">"#,
            r#"<env:Header><wsa:MessageID>{mid}</wsa:MessageID><wsa:RelatesTo>{rel}</wsa:RelatesTo>"#,
            r#"<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"#,
            r#"<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"#,
            r#"<d:AppSequence InstanceId="1" MessageNumber="{no}"/></env:Header>"#,
            r#"<env:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>{uuid}</wsa:Address></wsa:EndpointReference>"#,
            r#"<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>{scopes}</d:Scopes>"#,
            r#"<d:XAddrs>{xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"#
        ),
        env = ENV,
        wsa = WSA,
        wsd = WSD,
        dn = DN,
        tds = TDS,
        mid = msg_id,
        rel = esc(relates_to),
        no = msg_no,
        uuid = t.uuid,
        scopes = esc(&t.scopes.join(" ")),
        xaddr = esc(&t.xaddr),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(types: &str, scopes: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="{ENV}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}"><s:Header><a:Action>{PROBE_ACTION}</a:Action><a:MessageID>uuid:1</a:MessageID></s:Header><s:Body><d:Probe>{types}{scopes}</d:Probe></s:Body></s:Envelope>"#
        )
    }

    fn targets() -> Vec<Target> {
        ["cam-a", "cam-b"]
            .iter()
            .map(|n| Target {
                uuid: endpoint_uuid(n),
                xaddr: format!("http://127.0.0.1/{n}"),
                scopes: scopes(&DeviceConfig {
                    name: n.to_string(),
                    ..Default::default()
                }),
            })
            .collect()
    }

    #[test]
    fn probe_for_nvt_gets_one_match_per_device_with_relates_to() {
        let seq = AtomicU64::new(1);
        let r = answer(
            &probe("<d:Types>dn:NetworkVideoTransmitter</d:Types>", ""),
            &targets(),
            &seq,
        );
        assert_eq!(r.len(), 2);
        let root = xml::parse(&r[0]).unwrap();
        let h = root.child(ENV, "Header").unwrap();
        assert_eq!(h.child(WSA, "RelatesTo").unwrap().text_trim(), "uuid:1");
        let m = root
            .child(ENV, "Body")
            .unwrap()
            .child(WSD, "ProbeMatches")
            .unwrap()
            .child(WSD, "ProbeMatch")
            .unwrap();
        assert_eq!(
            m.child(WSD, "XAddrs").unwrap().text_trim(),
            "http://127.0.0.1/cam-a"
        );
        assert!(m
            .child(WSD, "Scopes")
            .unwrap()
            .text_trim()
            .contains("onvif://www.onvif.org/name/cam-a"));
    }

    #[test]
    fn scope_and_type_filters_apply() {
        let seq = AtomicU64::new(1);
        let by_name = probe("", "<d:Scopes>onvif://www.onvif.org/name/cam-b</d:Scopes>");
        assert_eq!(answer(&by_name, &targets(), &seq).len(), 1);
        let prefix = probe("", "<d:Scopes>onvif://www.onvif.org/name</d:Scopes>");
        assert_eq!(answer(&prefix, &targets(), &seq).len(), 2);
        let partial = probe("", "<d:Scopes>onvif://www.onvif.org/name/cam</d:Scopes>");
        assert_eq!(answer(&partial, &targets(), &seq).len(), 0);
        let other_type = probe(r#"<d:Types xmlns:x="urn:x">x:Printer</d:Types>"#, "");
        assert_eq!(answer(&other_type, &targets(), &seq).len(), 0);
        assert!(answer("garbage", &targets(), &seq).is_empty());
    }

    #[test]
    fn endpoint_uuid_is_stable_and_well_formed() {
        let a = endpoint_uuid("cam-a");
        assert_eq!(a, endpoint_uuid("cam-a"));
        assert_ne!(a, endpoint_uuid("cam-b"));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
    }
}
