//! DeviceIO service (ver10 deviceIO/wsdl, prefix tmd): digital inputs and
//! relay outputs, listed in order 1..n (a client maps the k-th listed input
//! to alarm input k).

use super::server::Ctx;
use super::soap::{ns, Fault, Request};
use super::svc_device::{digital_inputs, relay_outputs, set_relay_output_state, unknown_action};

pub const PATH: &str = "/onvif/deviceio_service";

pub fn service_caps(inputs: usize, relays: usize) -> String {
    format!(
        "<tmd:Capabilities VideoSources=\"1\" VideoOutputs=\"0\" AudioSources=\"0\" AudioOutputs=\"0\" RelayOutputs=\"{relays}\" SerialPorts=\"0\" DigitalInputs=\"{inputs}\" DigitalInputOptions=\"false\"/>"
    )
}

pub fn handle(ctx: &Ctx, req: &Request) -> Result<String, Fault> {
    let op = &req.op;
    Ok(match op.name.as_str() {
        "GetServiceCapabilities" => {
            let io = ctx.dev.io();
            format!(
                "<tmd:GetServiceCapabilitiesResponse>{}</tmd:GetServiceCapabilitiesResponse>",
                service_caps(io.inputs.len(), io.relays.len())
            )
        }
        "GetDigitalInputs" => format!(
            "<tmd:GetDigitalInputsResponse>{}</tmd:GetDigitalInputsResponse>",
            digital_inputs(ctx)
        ),
        "GetRelayOutputs" => format!(
            "<tmd:GetRelayOutputsResponse>{}</tmd:GetRelayOutputsResponse>",
            relay_outputs(ctx, "tmd")
        ),
        "SetRelayOutputState" => {
            set_relay_output_state(ctx, op)?;
            "<tmd:SetRelayOutputStateResponse/>".into()
        }
        other if op.ns == ns::TMD => return Err(Fault::action_not_supported(other)),
        other => return Err(unknown_action(other)),
    })
}
