//! The ONVIF operations vgw uses (Device, DeviceIO, Media, Events), each a
//! typed function over `soap::Soap`. Requests follow the ONVIF WSDLs; the
//! answers are read by namespace-independent local names.

use super::soap::{OnvifError, Request, Soap, NS_TEV, NS_TMD, NS_TRT};
use super::xml::{escape, Element};
use std::time::Duration;

/// The service endpoints a device announced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Services {
    pub device: String,
    pub events: Option<String>,
    pub media: Option<String>,
    pub deviceio: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceInfo {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
}

/// A PullPoint subscription: where to send Pull/Renew/Unsubscribe, and the
/// reference parameters every one of those requests must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub address: String,
    pub reference_parameters: Vec<Element>,
    /// Device time at which it lapses unless renewed.
    pub termination: Option<chrono::DateTime<chrono::Utc>>,
    pub current: Option<chrono::DateTime<chrono::Utc>>,
}

/// One event as the device sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Topic path without its prefix: `Device/Trigger/DigitalInput`.
    pub topic: String,
    /// `Initialized`, `Changed`, `Deleted` or "" (not a property event).
    pub property_operation: String,
    pub utc_time: String,
    pub source: Vec<(String, String)>,
    pub data: Vec<(String, String)>,
}

impl Notification {
    pub fn source(&self, name: &str) -> Option<&str> {
        lookup(&self.source, name)
    }
    pub fn data(&self, name: &str) -> Option<&str> {
        lookup(&self.data, name)
    }
}

fn lookup<'a>(items: &'a [(String, String)], name: &str) -> Option<&'a str> {
    items
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

const DIALECT_CONCRETE_SET: &str = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet";
const NS_TOPICS: &str = "http://www.onvif.org/ver10/topics";

/// The topics the driver maps to points (DESIGN.md §4 templates).
pub const TOPIC_FILTER: &str = "tns1:Device/Trigger/DigitalInput|tns1:Device/Trigger/Relay|tns1:VideoSource/MotionAlarm|tns1:VideoSource/GlobalSceneChange/ImagingService|tns1:VideoSource/SignalLoss|tns1:Device/HardwareFailure/StorageFailure|tns1:RecordingConfig/JobState";

fn req<'a>(url: &'a str, action: &'a str, body: &'a str) -> Request<'a> {
    Request {
        url,
        action,
        body,
        headers: "",
        timeout: None,
        authenticate: true,
    }
}

fn missing(what: &str) -> OnvifError {
    OnvifError::BadAnswer(format!("no {what} in the answer"))
}

/// GetSystemDateAndTime (unauthenticated, Core §8.3.1): the device's UTC
/// time, with its round trip so the caller can centre the skew.
pub async fn system_date_and_time(
    soap: &Soap,
    device: &str,
) -> Result<chrono::DateTime<chrono::Utc>, OnvifError> {
    let mut r = req(
        device,
        "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime",
        "<tds:GetSystemDateAndTime/>",
    );
    r.authenticate = false;
    let a = soap.call(&r).await?;
    let utc = a
        .find("UTCDateTime")
        .ok_or_else(|| missing("UTCDateTime"))?;
    let num = |path: &[&str]| -> Result<u32, OnvifError> {
        utc.path(path)
            .and_then(|e| e.text().parse().ok())
            .ok_or_else(|| missing(&path.join("/")))
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        num(&["Date", "Year"])? as i32,
        num(&["Date", "Month"])?,
        num(&["Date", "Day"])?,
    )
    .ok_or_else(|| OnvifError::BadAnswer("impossible date".into()))?;
    let time = date
        .and_hms_opt(
            num(&["Time", "Hour"])?,
            num(&["Time", "Minute"])?,
            num(&["Time", "Second"])?,
        )
        .ok_or_else(|| OnvifError::BadAnswer("impossible time".into()))?;
    Ok(time.and_utc())
}

/// Measures device clock minus ours, ms, against the midpoint of the round
/// trip. ONVIF gives whole seconds, so the result is good to about ±0.5 s
/// plus half the round trip.
pub async fn measure_skew_ms(soap: &Soap, device: &str) -> Result<i64, OnvifError> {
    let sent = chrono::Utc::now();
    let dev = system_date_and_time(soap, device).await?;
    let got = chrono::Utc::now();
    let mid = sent + (got - sent) / 2;
    // The device truncated to the second: its true time is on average
    // half a second later than what it printed.
    Ok((dev - mid).num_milliseconds() + 500)
}

pub async fn device_information(soap: &Soap, device: &str) -> Result<DeviceInfo, OnvifError> {
    let a = soap
        .call(&req(
            device,
            "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation",
            "<tds:GetDeviceInformation/>",
        ))
        .await?;
    let t = |n: &str| {
        a.child_named(n)
            .map(|e| e.text().to_string())
            .unwrap_or_default()
    };
    Ok(DeviceInfo {
        manufacturer: t("Manufacturer"),
        model: t("Model"),
        firmware: t("FirmwareVersion"),
        serial: t("SerialNumber"),
    })
}

/// GetServices, or GetCapabilities on devices that predate it.
pub async fn services(soap: &Soap, device: &str) -> Result<Services, OnvifError> {
    let mut s = Services {
        device: device.into(),
        ..Default::default()
    };
    match soap
        .call(&req(
            device,
            "http://www.onvif.org/ver10/device/wsdl/GetServices",
            "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
        ))
        .await
    {
        Ok(a) => {
            for svc in a.children_named("Service") {
                let ns = svc.child_named("Namespace").map(|e| e.text()).unwrap_or("");
                let x = svc.child_named("XAddr").map(|e| e.text().to_string());
                match ns {
                    NS_TEV => s.events = x,
                    NS_TRT => s.media = x,
                    NS_TMD => s.deviceio = x,
                    _ => {}
                }
            }
        }
        Err(e) if e.is_offline() || matches!(e, OnvifError::NotAuthorized(_)) => return Err(e),
        Err(_) => {
            let a = soap
                .call(&req(
                    device,
                    "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
                    "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
                ))
                .await?;
            let caps = a.child_named("Capabilities").ok_or_else(|| missing("Capabilities"))?;
            let x = |path: &[&str]| caps.path(path).map(|e| e.text().to_string());
            s.events = x(&["Events", "XAddr"]);
            s.media = x(&["Media", "XAddr"]);
            s.deviceio = x(&["Extension", "DeviceIO", "XAddr"]);
        }
    }
    Ok(s)
}

/// Tokens of the elements `name` in an answer, in document order.
fn tokens(a: &Element, name: &str) -> Vec<String> {
    a.children_named(name)
        .filter_map(|e| e.attr("token").map(str::to_string))
        .collect()
}

/// DigitalInputs tokens, in the order the device lists them (input k of
/// the site model is the k-th).
pub async fn digital_inputs(soap: &Soap, deviceio: &str) -> Result<Vec<String>, OnvifError> {
    let a = soap
        .call(&req(
            deviceio,
            "http://www.onvif.org/ver10/deviceIO/wsdl/GetDigitalInputs",
            "<tmd:GetDigitalInputs/>",
        ))
        .await?;
    Ok(tokens(&a, "DigitalInputs"))
}

pub async fn relay_outputs(soap: &Soap, device: &str) -> Result<Vec<String>, OnvifError> {
    let a = soap
        .call(&req(
            device,
            "http://www.onvif.org/ver10/device/wsdl/GetRelayOutputs",
            "<tds:GetRelayOutputs/>",
        ))
        .await?;
    Ok(tokens(&a, "RelayOutputs"))
}

pub async fn set_relay_output_state(
    soap: &Soap,
    device: &str,
    token: &str,
    active: bool,
) -> Result<(), OnvifError> {
    let body = format!(
        "<tds:SetRelayOutputState><tds:RelayOutputToken>{}</tds:RelayOutputToken><tds:LogicalState>{}</tds:LogicalState></tds:SetRelayOutputState>",
        escape(token),
        if active { "active" } else { "inactive" }
    );
    soap.call(&req(
        device,
        "http://www.onvif.org/ver10/device/wsdl/SetRelayOutputState",
        &body,
    ))
    .await
    .map(|_| ())
}

/// The RTSP URI of the device's first media profile.
pub async fn first_stream_uri(soap: &Soap, media: &str) -> Result<Option<String>, OnvifError> {
    let a = soap
        .call(&req(
            media,
            "http://www.onvif.org/ver10/media/wsdl/GetProfiles",
            "<trt:GetProfiles/>",
        ))
        .await?;
    let Some(profile) = tokens(&a, "Profiles").into_iter().next() else {
        return Ok(None);
    };
    let body = format!(
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>",
        escape(&profile)
    );
    let a = soap
        .call(&req(
            media,
            "http://www.onvif.org/ver10/media/wsdl/GetStreamUri",
            &body,
        ))
        .await?;
    Ok(a.path(&["MediaUri", "Uri"]).map(|u| u.text().to_string()))
}

fn parse_time(e: Option<&Element>) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(e?.text())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// CreatePullPointSubscription for `filter` (ConcreteSet topic
/// expression), lapsing after `ttl` unless renewed.
pub async fn create_pull_point(
    soap: &Soap,
    events: &str,
    filter: &str,
    ttl: Duration,
) -> Result<Subscription, OnvifError> {
    let body = format!(
        r#"<tev:CreatePullPointSubscription><tev:Filter><wsnt:TopicExpression Dialect="{DIALECT_CONCRETE_SET}" xmlns:tns1="{NS_TOPICS}">{}</wsnt:TopicExpression></tev:Filter><tev:InitialTerminationTime>PT{}S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"#,
        escape(filter),
        ttl.as_secs()
    );
    let a = soap
        .call(&req(
            events,
            "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest",
            &body,
        ))
        .await?;
    let reference = a
        .child_named("SubscriptionReference")
        .ok_or_else(|| missing("SubscriptionReference"))?;
    let address = reference
        .child_named("Address")
        .map(|e| e.text().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("SubscriptionReference/Address"))?;
    Ok(Subscription {
        address,
        reference_parameters: reference
            .child_named("ReferenceParameters")
            .map(|r| r.children.clone())
            .unwrap_or_default(),
        termination: parse_time(a.child_named("TerminationTime")),
        current: parse_time(a.child_named("CurrentTime")),
    })
}

/// WS-Addressing headers for a request to a subscription: Action, To and
/// every reference parameter, marked as such (WS-Addressing SOAP binding
/// §2.3), so devices that route by them find the subscription.
fn subscription_headers(sub: &Subscription, action: &str) -> String {
    let mut h = format!(
        "<wsa:Action>{}</wsa:Action><wsa:To>{}</wsa:To>",
        escape(action),
        escape(&sub.address)
    );
    for p in &sub.reference_parameters {
        let mut p = p.clone();
        p.attrs
            .push(("wsa:IsReferenceParameter".into(), "true".into()));
        p.to_xml(&mut h);
    }
    h
}

async fn subscription_call(
    soap: &Soap,
    sub: &Subscription,
    action: &str,
    body: &str,
    timeout: Option<Duration>,
) -> Result<Element, OnvifError> {
    let headers = subscription_headers(sub, action);
    soap.call(&Request {
        url: &sub.address,
        action,
        body,
        headers: &headers,
        timeout,
        authenticate: true,
    })
    .await
}

/// PullMessages: waits up to `wait` on the device for up to `limit`
/// messages. Returns them and the subscription's new termination time.
pub async fn pull_messages(
    soap: &Soap,
    sub: &Subscription,
    wait: Duration,
    limit: u32,
) -> Result<(Vec<Notification>, Option<chrono::DateTime<chrono::Utc>>), OnvifError> {
    let body = format!(
        "<tev:PullMessages><tev:Timeout>PT{}S</tev:Timeout><tev:MessageLimit>{limit}</tev:MessageLimit></tev:PullMessages>",
        wait.as_secs()
    );
    let a = subscription_call(
        soap,
        sub,
        "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest",
        &body,
        Some(wait + soap.timeout),
    )
    .await?;
    let msgs = a
        .children_named("NotificationMessage")
        .filter_map(notification)
        .collect();
    Ok((msgs, parse_time(a.child_named("TerminationTime"))))
}

pub async fn renew(
    soap: &Soap,
    sub: &Subscription,
    ttl: Duration,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, OnvifError> {
    let body = format!(
        "<wsnt:Renew><wsnt:TerminationTime>PT{}S</wsnt:TerminationTime></wsnt:Renew>",
        ttl.as_secs()
    );
    let a = subscription_call(
        soap,
        sub,
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest",
        &body,
        None,
    )
    .await?;
    Ok(parse_time(a.child_named("TerminationTime")))
}

pub async fn unsubscribe(soap: &Soap, sub: &Subscription) -> Result<(), OnvifError> {
    subscription_call(
        soap,
        sub,
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest",
        "<wsnt:Unsubscribe/>",
        None,
    )
    .await
    .map(|_| ())
}

/// One wsnt:NotificationMessage; `None` when it has no topic or message.
pub fn notification(m: &Element) -> Option<Notification> {
    let topic = m.child_named("Topic")?.text();
    // Drop the prefix (`tns1:`), whatever the device called it.
    let topic = topic.split_once(':').map_or(topic, |(_, t)| t).to_string();
    let msg = m.path(&["Message", "Message"])?;
    let items = |part: &str| -> Vec<(String, String)> {
        msg.child_named(part)
            .map(|p| {
                p.children_named("SimpleItem")
                    .filter_map(|i| {
                        Some((i.attr("Name")?.to_string(), i.attr("Value")?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(Notification {
        topic,
        property_operation: msg.attr("PropertyOperation").unwrap_or("").to_string(),
        utc_time: msg.attr("UtcTime").unwrap_or("").to_string(),
        source: items("Source"),
        data: items("Data"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::onvif::soap::NS_WSA;
    use crate::drivers::onvif::xml::parse;

    #[test]
    fn a_notification_message_parses_with_any_prefixes() {
        let doc = r#"<wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:x="http://www.onvif.org/ver10/topics"><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">x:Device/Trigger/DigitalInput</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-12-01T10:00:00Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="InputToken" Value="DI_3"/></tt:Source><tt:Data><tt:SimpleItem Name="LogicalState" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"#;
        let n = notification(&parse(doc).unwrap()).unwrap();
        assert_eq!(n.topic, "Device/Trigger/DigitalInput");
        assert_eq!(n.property_operation, "Changed");
        assert_eq!(n.source("InputToken"), Some("DI_3"));
        assert_eq!(n.data("LogicalState"), Some("true"));
    }

    #[test]
    fn reference_parameters_are_echoed_as_marked_headers() {
        let rp = parse(r#"<d:SubscriptionId xmlns:d="urn:dev">42</d:SubscriptionId>"#).unwrap();
        let sub = Subscription {
            address: "http://dev/sub?x=1&y=2".into(),
            reference_parameters: vec![rp],
            termination: None,
            current: None,
        };
        let h = subscription_headers(&sub, "urn:act");
        assert!(
            h.contains(r#"<wsa:To>http://dev/sub?x=1&amp;y=2</wsa:To>"#),
            "{h}"
        );
        let wrapped = format!(r#"<h xmlns:wsa="{NS_WSA}">{h}</h>"#);
        let e = parse(&wrapped).unwrap();
        let id = e.child("urn:dev", "SubscriptionId").unwrap();
        assert_eq!(
            (id.text(), id.attr("IsReferenceParameter")),
            ("42", Some("true"))
        );
    }
}
