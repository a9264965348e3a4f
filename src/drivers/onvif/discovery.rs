//! WS-Discovery (ONVIF Core §7): a Probe for NetworkVideoTransmitters and
//! devices, sent to the multicast group and/or to given addresses, and the
//! ProbeMatches that come back within a time limit.

use super::xml;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

pub const MULTICAST: &str = "239.255.255.250:3702";
const NS_D: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const NS_WSA04: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// Matches kept from one probe (a hostile network cannot grow it).
const MAX_MATCHES: usize = 4096;

/// One device that answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Found {
    pub endpoint: String,
    pub xaddrs: Vec<String>,
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    /// From the `onvif://www.onvif.org/name/...` scope.
    pub name: Option<String>,
    pub hardware: Option<String>,
    pub from: SocketAddr,
}

fn probe_message(id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="{NS_WSA04}" xmlns:d="{NS_D}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action s:mustUnderstand="1">{NS_D}/Probe</a:Action><a:MessageID>urn:uuid:{id}</a:MessageID><a:ReplyTo><a:Address>{NS_WSA04}/role/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"#
    )
}

fn uuid4() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// Sends one Probe to every target and collects answers for `wait`.
/// A device answering twice (multicast and unicast) is listed once.
pub async fn probe(targets: &[SocketAddr], wait: Duration) -> std::io::Result<Vec<Found>> {
    let sock = UdpSocket::bind("0.0.0.0:0").await?;
    let _ = sock.set_multicast_ttl_v4(2);
    let id = uuid4();
    let msg = probe_message(&id);
    for t in targets {
        sock.send_to(msg.as_bytes(), t).await?;
    }
    let mut found: Vec<Found> = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
    {
        let Ok(text) = std::str::from_utf8(&buf[..n]) else {
            continue;
        };
        for f in parse_matches(text, &id, from) {
            if found.len() < MAX_MATCHES && !found.iter().any(|g| g.endpoint == f.endpoint) {
                found.push(f);
            }
        }
    }
    Ok(found)
}

/// The ProbeMatch entries of an answer to our probe `id` (answers to
/// other probes, and anything unparseable, give none).
pub fn parse_matches(text: &str, id: &str, from: SocketAddr) -> Vec<Found> {
    let Ok(env) = xml::parse(text) else {
        return Vec::new();
    };
    let relates = env
        .find("RelatesTo")
        .map(|r| r.text().trim_start_matches("urn:uuid:").to_string());
    if relates.as_deref().is_some_and(|r| r != id) {
        return Vec::new();
    }
    let Some(matches) = env.find("ProbeMatches") else {
        return Vec::new();
    };
    let words = |e: Option<&xml::Element>| -> Vec<String> {
        e.map(|e| e.text().split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    matches
        .children_named("ProbeMatch")
        .filter_map(|m| {
            let endpoint = m
                .path(&["EndpointReference", "Address"])?
                .text()
                .to_string();
            let scopes = words(m.child_named("Scopes"));
            let scope = |kind: &str| {
                scopes.iter().find_map(|s| {
                    s.strip_prefix(&format!("onvif://www.onvif.org/{kind}/"))
                        .map(|v| {
                            percent_encoding::percent_decode_str(v)
                                .decode_utf8_lossy()
                                .into_owned()
                        })
                })
            };
            Some(Found {
                name: scope("name"),
                hardware: scope("hardware"),
                endpoint,
                xaddrs: words(m.child_named("XAddrs")),
                types: words(m.child_named("Types")),
                scopes: scopes.clone(),
                from,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_matches_give_address_name_and_hardware() {
        let text = format!(
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="{NS_WSA04}" xmlns:d="{NS_D}"><e:Header><w:RelatesTo>urn:uuid:abc</w:RelatesTo></e:Header><e:Body><d:ProbeMatches><d:ProbeMatch><w:EndpointReference><w:Address>urn:uuid:dev-1</w:Address></w:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>onvif://www.onvif.org/name/Lobby%20NVR onvif://www.onvif.org/hardware/XR-6400</d:Scopes><d:XAddrs>http://10.0.0.5/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>"#
        );
        let from = "10.0.0.5:3702".parse().unwrap();
        let f = parse_matches(&text, "abc", from);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name.as_deref(), Some("Lobby NVR"));
        assert_eq!(f[0].hardware.as_deref(), Some("XR-6400"));
        assert_eq!(f[0].xaddrs, vec!["http://10.0.0.5/onvif/device_service"]);
        assert!(parse_matches(&text, "other-probe", from).is_empty());
        assert!(parse_matches("<junk", "abc", from).is_empty());
    }

    #[test]
    fn the_probe_asks_for_video_transmitters() {
        let p = probe_message("x");
        let e = xml::parse(&p).unwrap();
        assert_eq!(
            e.find("Types").unwrap().text(),
            "dn:NetworkVideoTransmitter"
        );
        assert_eq!(uuid4().len(), 36);
    }
}
