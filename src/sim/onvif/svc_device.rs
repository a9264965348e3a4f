//! Device management service (ver10 device/wsdl, prefix tds) and the
//! service list / capabilities every client reads first.

use super::device::{input_token, relay_token};
use super::server::Ctx;
use super::soap::{ns, Fault, Request};
use super::xml::{esc, Element};
use chrono::{Datelike, Timelike};

pub const PATH: &str = "/onvif/device_service";

/// Operations the Core spec marks PRE_AUTH (Access Class): they need no
/// credentials. GetServiceCapabilities is PRE_AUTH in every service.
pub fn pre_auth(op: &str) -> bool {
    matches!(
        op,
        "GetSystemDateAndTime"
            | "GetServices"
            | "GetServiceCapabilities"
            | "GetCapabilities"
            | "GetWsdlUrl"
            | "GetHostname"
            | "GetEndpointReference"
    )
}

pub fn handle(ctx: &Ctx, req: &Request) -> Result<String, Fault> {
    let op = &req.op;
    Ok(match op.name.as_str() {
        "GetSystemDateAndTime" => system_date_and_time(ctx),
        "GetDeviceInformation" => {
            let c = &ctx.dev.cfg;
            format!(
                "<tds:GetDeviceInformationResponse><tds:Manufacturer>{}</tds:Manufacturer><tds:Model>{}</tds:Model><tds:FirmwareVersion>{}</tds:FirmwareVersion><tds:SerialNumber>{}</tds:SerialNumber><tds:HardwareId>{}</tds:HardwareId></tds:GetDeviceInformationResponse>",
                esc(&c.manufacturer),
                esc(&c.model),
                env!("CARGO_PKG_VERSION"),
                esc(&c.serial),
                esc(&c.model)
            )
        }
        "GetServices" => {
            let caps = op
                .child_local("IncludeCapability")
                .map(|e| parse_bool(e.text_trim()))
                .transpose()?
                .ok_or_else(|| Fault::sender(&["ter:InvalidArgs"], "IncludeCapability is required"))?;
            services(ctx, caps)
        }
        "GetServiceCapabilities" => format!(
            "<tds:GetServiceCapabilitiesResponse>{}</tds:GetServiceCapabilitiesResponse>",
            device_service_caps()
        ),
        "GetCapabilities" => capabilities(ctx, op)?,
        "GetHostname" => format!(
            "<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP><tt:Name>{}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>",
            esc(&hostname(&ctx.dev.cfg.name))
        ),
        "GetScopes" => {
            let items: String = scopes(&ctx.dev.cfg)
                .iter()
                .map(|s| format!("<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{}</tt:ScopeItem></tds:Scopes>", esc(s)))
                .collect();
            format!("<tds:GetScopesResponse>{items}</tds:GetScopesResponse>")
        }
        "GetRelayOutputs" => format!("<tds:GetRelayOutputsResponse>{}</tds:GetRelayOutputsResponse>", relay_outputs(ctx, "tds")),
        "SetRelayOutputState" => {
            set_relay_output_state(ctx, op)?;
            "<tds:SetRelayOutputStateResponse/>".into()
        }
        other if op.ns == ns::TDS => return Err(Fault::action_not_supported(other)),
        other => return Err(unknown_action(other)),
    })
}

/// An operation element outside the service's namespace: not part of the
/// addressed service's WSDL at all.
pub fn unknown_action(op: &str) -> Fault {
    Fault::sender(
        &["ter:UnknownAction"],
        &format!("{op} is not an operation of this service"),
    )
}

pub fn parse_bool(s: &str) -> Result<bool, Fault> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Fault::sender(
            &["ter:InvalidArgVal"],
            &format!("not an xs:boolean: {s:?}"),
        )),
    }
}

fn hostname(name: &str) -> String {
    let h: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if h.is_empty() {
        "vgw-sim".into()
    } else {
        h
    }
}

pub fn scopes(cfg: &super::device::DeviceConfig) -> Vec<String> {
    // RFC 3986 unreserved characters stay as they are.
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SET).to_string();
    vec![
        "onvif://www.onvif.org/type/video_encoder".into(),
        "onvif://www.onvif.org/type/Network_Video_Transmitter".into(),
        "onvif://www.onvif.org/Profile/Streaming".into(),
        format!("onvif://www.onvif.org/name/{}", enc(&cfg.name)),
        format!("onvif://www.onvif.org/hardware/{}", enc(&cfg.model)),
        "onvif://www.onvif.org/location/".into(),
    ]
}

fn system_date_and_time(ctx: &Ctx) -> String {
    let t = ctx.dev.now();
    let dt = format!(
        "<tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date>",
        t.hour(),
        t.minute(),
        t.second(),
        t.year(),
        t.month(),
        t.day()
    );
    // The device keeps UTC as its local time (TZ "UTC0", POSIX 1003.1).
    format!(
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>{dt}</tt:UTCDateTime><tt:LocalDateTime>{dt}</tt:LocalDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )
}

fn device_service_caps() -> String {
    "<tds:Capabilities><tds:Network IPFilter=\"false\" ZeroConfiguration=\"false\" IPVersion6=\"false\" DynDNS=\"false\"/><tds:Security UsernameToken=\"true\" HttpDigest=\"true\"/><tds:System DiscoveryResolve=\"false\" DiscoveryBye=\"false\" RemoteDiscovery=\"false\" SystemBackup=\"false\" SystemLogging=\"false\" FirmwareUpgrade=\"false\"/></tds:Capabilities>".into()
}

/// Services offered: (namespace, path, capabilities element, major, minor).
fn service_list(ctx: &Ctx) -> Vec<(&'static str, &'static str, String, u32, u32)> {
    let io = ctx.dev.io();
    vec![
        (ns::TDS, PATH, device_service_caps(), 2, 60),
        (
            ns::TRT,
            super::svc_media::PATH,
            super::svc_media::service_caps(),
            2,
            60,
        ),
        (
            ns::TEV,
            super::svc_events::PATH,
            super::svc_events::service_caps(ctx),
            2,
            60,
        ),
        (
            ns::TMD,
            super::svc_deviceio::PATH,
            super::svc_deviceio::service_caps(io.inputs.len(), io.relays.len()),
            2,
            60,
        ),
    ]
}

fn services(ctx: &Ctx, include_caps: bool) -> String {
    let mut out = String::from("<tds:GetServicesResponse>");
    for (nsu, path, caps, major, minor) in service_list(ctx) {
        out.push_str(&format!(
            "<tds:Service><tds:Namespace>{nsu}</tds:Namespace><tds:XAddr>{}</tds:XAddr>",
            esc(&ctx.url(path))
        ));
        if include_caps {
            out.push_str(&format!("<tds:Capabilities>{caps}</tds:Capabilities>"));
        }
        out.push_str(&format!(
            "<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
        ));
    }
    out.push_str("</tds:GetServicesResponse>");
    out
}

/// GetCapabilities (deprecated in favour of GetServices, still what many
/// clients ask first). Category is a list; absent means All.
fn capabilities(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let cats: Vec<String> = op
        .children
        .iter()
        .filter(|c| c.name == "Category")
        .flat_map(|c| {
            c.text_trim()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let want = |c: &str| cats.is_empty() || cats.iter().any(|x| x == "All" || x == c);
    for c in &cats {
        if !matches!(
            c.as_str(),
            "All" | "Analytics" | "Device" | "Events" | "Imaging" | "Media" | "PTZ"
        ) {
            return Err(Fault::invalid_arg(
                "ter:NoSuchService",
                &format!("unknown category {c}"),
            ));
        }
    }
    if !cats.is_empty() && !["All", "Device", "Events", "Media"].iter().any(|c| want(c)) {
        return Err(Fault::receiver(
            &["ter:ActionNotSupported", "ter:NoSuchService"],
            "category not supported",
        ));
    }
    let io = ctx.dev.io();
    let mut out = String::from("<tds:GetCapabilitiesResponse><tds:Capabilities>");
    if want("Device") {
        out.push_str(&format!(
            "<tt:Device><tt:XAddr>{}</tt:XAddr><tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network><tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>false</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade><tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions></tt:System><tt:IO><tt:InputConnectors>{}</tt:InputConnectors><tt:RelayOutputs>{}</tt:RelayOutputs></tt:IO><tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2><tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration><tt:AccessPolicyConfig>false</tt:AccessPolicyConfig><tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken><tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken></tt:Security></tt:Device>",
            esc(&ctx.url(PATH)),
            io.inputs.len(),
            io.relays.len()
        ));
    }
    if want("Events") {
        out.push_str(&format!(
            "<tt:Events><tt:XAddr>{}</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>",
            esc(&ctx.url(super::svc_events::PATH))
        ));
    }
    if want("Media") {
        out.push_str(&format!(
            "<tt:Media><tt:XAddr>{}</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>",
            esc(&ctx.url(super::svc_media::PATH))
        ));
    }
    if want("Device") {
        // DeviceIO is only reachable through the extension.
        out.push_str(&format!(
            "<tt:Extension><tt:DeviceIO><tt:XAddr>{}</tt:XAddr><tt:VideoSources>1</tt:VideoSources><tt:VideoOutputs>0</tt:VideoOutputs><tt:AudioSources>0</tt:AudioSources><tt:AudioOutputs>0</tt:AudioOutputs><tt:RelayOutputs>{}</tt:RelayOutputs></tt:DeviceIO></tt:Extension>",
            esc(&ctx.url(super::svc_deviceio::PATH)),
            io.relays.len()
        ));
    }
    out.push_str("</tds:Capabilities></tds:GetCapabilitiesResponse>");
    Ok(out)
}

/// tt:RelayOutput list; the same in tds and tmd responses, only the
/// wrapper element's prefix differs.
pub fn relay_outputs(ctx: &Ctx, prefix: &str) -> String {
    let n = ctx.dev.io().relays.len() as u32;
    (1..=n)
        .map(|i| {
            format!(
                "<{prefix}:RelayOutputs token=\"{}\"><tt:Properties><tt:Mode>Bistable</tt:Mode><tt:DelayTime>PT0S</tt:DelayTime><tt:IdleState>open</tt:IdleState></tt:Properties></{prefix}:RelayOutputs>",
                relay_token(i)
            )
        })
        .collect()
}

/// SetRelayOutputState (tds and tmd share the request shape).
pub fn set_relay_output_state(ctx: &Ctx, op: &Element) -> Result<(), Fault> {
    let token = op
        .child_local("RelayOutputToken")
        .ok_or_else(|| Fault::sender(&["ter:InvalidArgs"], "RelayOutputToken is required"))?
        .text_trim();
    let state = op
        .child_local("LogicalState")
        .ok_or_else(|| Fault::sender(&["ter:InvalidArgs"], "LogicalState is required"))?
        .text_trim();
    let active = match state {
        "active" => true,
        "inactive" => false,
        _ => {
            return Err(Fault::sender(
                &["ter:InvalidArgVal"],
                "LogicalState must be active or inactive",
            ))
        }
    };
    let n = (1..=ctx.dev.cfg.relays)
        .find(|i| relay_token(*i) == token)
        .ok_or_else(|| Fault::invalid_arg("ter:RelayToken", "unknown relay token"))?;
    ctx.dev.set_relay(n, active);
    Ok(())
}

/// tt:DigitalInput list for tmd:GetDigitalInputs, in order 1..n.
pub fn digital_inputs(ctx: &Ctx) -> String {
    let n = ctx.dev.io().inputs.len() as u32;
    (1..=n)
        .map(|i| {
            format!(
                "<tmd:DigitalInputs token=\"{}\" IdleState=\"open\"/>",
                input_token(i)
            )
        })
        .collect()
}
