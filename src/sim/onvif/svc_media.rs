//! Media service (ver10 media/wsdl, prefix trt): one H.264 profile on one
//! video source, and its RTSP stream URI.

use super::device::VIDEO_SOURCE;
use super::server::Ctx;
use super::soap::{ns, Fault, Request};
use super::svc_device::unknown_action;
use super::xml::esc;

pub const PATH: &str = "/onvif/media_service";
pub const PROFILE: &str = "Profile_1";
const VSC: &str = "VideoSourceConfig_1";
const VEC: &str = "VideoEncoderConfig_1";

pub fn service_caps() -> String {
    "<trt:Capabilities SnapshotUri=\"false\" Rotation=\"false\"><trt:ProfileCapabilities MaximumNumberOfProfiles=\"1\"/><trt:StreamingCapabilities RTPMulticast=\"false\" RTP_TCP=\"true\" RTP_RTSP_TCP=\"true\"/></trt:Capabilities>".into()
}

fn video_source_configuration() -> String {
    format!(
        "<tt:VideoSourceConfiguration token=\"{VSC}\"><tt:Name>{VSC}</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>{VIDEO_SOURCE}</tt:SourceToken><tt:Bounds x=\"0\" y=\"0\" width=\"1920\" height=\"1080\"/></tt:VideoSourceConfiguration>"
    )
}

fn video_encoder_configuration() -> String {
    format!(
        "<tt:VideoEncoderConfiguration token=\"{VEC}\"><tt:Name>{VEC}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>50</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>"
    )
}

fn profile(prefix_el: &str) -> String {
    format!(
        "<{prefix_el} token=\"{PROFILE}\" fixed=\"true\"><tt:Name>MainStream</tt:Name>{}{}</{prefix_el}>",
        video_source_configuration(),
        video_encoder_configuration()
    )
}

pub fn handle(ctx: &Ctx, req: &Request) -> Result<String, Fault> {
    let op = &req.op;
    Ok(match op.name.as_str() {
        "GetServiceCapabilities" => format!(
            "<trt:GetServiceCapabilitiesResponse>{}</trt:GetServiceCapabilitiesResponse>",
            service_caps()
        ),
        "GetProfiles" => format!("<trt:GetProfilesResponse>{}</trt:GetProfilesResponse>", profile("trt:Profiles")),
        "GetProfile" => {
            check_profile(op)?;
            format!("<trt:GetProfileResponse>{}</trt:GetProfileResponse>", profile("trt:Profile"))
        }
        "GetVideoSources" => format!(
            "<trt:GetVideoSourcesResponse><trt:VideoSources token=\"{VIDEO_SOURCE}\"><tt:Framerate>25</tt:Framerate><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>"
        ),
        "GetStreamUri" => {
            check_profile(op)?;
            let proto = op
                .child_local("StreamSetup")
                .and_then(|s| s.child_local("Transport"))
                .and_then(|t| t.child_local("Protocol"))
                .map(|p| p.text_trim().to_string());
            if let Some(p) = proto {
                if !matches!(p.as_str(), "RTSP" | "TCP" | "UDP" | "HTTP") {
                    return Err(Fault::invalid_arg("ter:InvalidStreamSetup", "unknown transport protocol"));
                }
            }
            let uri = ctx.dev.cfg.rtsp_url.clone().unwrap_or_else(|| format!("rtsp://{}:554/stream1", ctx.host_only()));
            format!(
                "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>",
                esc(&uri)
            )
        }
        other if op.ns == ns::TRT => return Err(Fault::action_not_supported(other)),
        other => return Err(unknown_action(other)),
    })
}

fn check_profile(op: &super::xml::Element) -> Result<(), Fault> {
    let token = op
        .child_local("ProfileToken")
        .ok_or_else(|| Fault::sender(&["ter:InvalidArgs"], "ProfileToken is required"))?;
    if token.text_trim() != PROFILE {
        return Err(Fault::invalid_arg(
            "ter:NoProfile",
            "the profile does not exist",
        ));
    }
    Ok(())
}
