//! Event service (ver10 events/wsdl, prefix tev) with WS-BaseNotification
//! PullPoint subscriptions.
//!
//! A subscription's endpoint is `/onvif/event_service/subscription/{id}`
//! plus a reference parameter `<sim:SubscriptionKey>` (namespace
//! `urn:vgw:onvif-sim`) that WS-Addressing says the client must echo as a
//! SOAP header on every request to that endpoint. A request without the
//! right key, or to an expired/unknown subscription, gets a SOAP fault
//! (env:Sender, ter:InvalidArgVal) carrying wsrf-r:ResourceUnknownFault, the
//! fault events.wsdl lists for Renew/Unsubscribe.

use super::events::Subscription;
use super::server::Ctx;
use super::soap::{ns, Fault, Request};
use super::svc_device::unknown_action;
use super::topics::{FilterError, Topic, TopicFilter, DIALECT_CONCRETE, DIALECT_CONCRETE_SET};
use super::xml::{esc, Element};
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

pub const PATH: &str = "/onvif/event_service";
pub const SUB_PATH: &str = "/onvif/event_service/subscription";
/// Subscription lifetime when the client names none.
const DEFAULT_TTL_S: i64 = 60;
/// Longest lifetime we grant in one request.
const MAX_TTL_S: i64 = 24 * 3600;
/// PullMessages limits (reported in PullMessagesFaultResponse).
const MAX_PULL_TIMEOUT_S: i64 = 600;
const MAX_MESSAGE_LIMIT: usize = 1000;
const MESSAGE_CONTENT_ITEM_FILTER: &str =
    "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter";

pub fn service_caps(ctx: &Ctx) -> String {
    format!(
        "<tev:Capabilities WSSubscriptionPolicySupport=\"false\" WSPullPointSupport=\"true\" WSPausableSubscriptionManagerInterfaceSupport=\"false\" MaxNotificationProducers=\"0\" MaxPullPoints=\"{}\" PersistentNotificationStorage=\"false\"/>",
        ctx.dev.cfg.max_subscriptions
    )
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn wsn_fault(name: &str, reason: &str) -> Fault {
    Fault::sender(&["ter:InvalidArgVal"], reason).with_detail(format!(
        "<wsnt:{name}><wsrf-bf:Timestamp>{}</wsrf-bf:Timestamp><wsrf-bf:Description>{}</wsrf-bf:Description></wsnt:{name}>",
        ts(Utc::now()),
        esc(reason)
    ))
}

pub fn resource_unknown() -> Fault {
    Fault::sender(&["ter:InvalidArgVal"], "unknown or expired subscription").with_detail(format!(
        "<wsrf-r:ResourceUnknownFault><wsrf-bf:Timestamp>{}</wsrf-bf:Timestamp></wsrf-r:ResourceUnknownFault>",
        ts(Utc::now())
    ))
}

/// Requests to the event service itself.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<String, Fault> {
    let op = &req.op;
    Ok(match op.name.as_str() {
        "GetServiceCapabilities" => format!(
            "<tev:GetServiceCapabilitiesResponse>{}</tev:GetServiceCapabilitiesResponse>",
            service_caps(ctx)
        ),
        "GetEventProperties" => event_properties(),
        "CreatePullPointSubscription" => create_pull_point(ctx, op)?,
        other if op.ns == ns::TEV || op.ns == ns::WSNT => {
            return Err(Fault::action_not_supported(other))
        }
        other => return Err(unknown_action(other)),
    })
}

fn event_properties() -> String {
    // Topic tree: nest each topic's path, marking leaves wstop:topic="true"
    // with their message description.
    let mut tree = String::new();
    for root in ["Device", "VideoSource", "RecordingConfig"] {
        tree.push_str(&format!("<tns1:{root}>"));
        let topics: Vec<Topic> = Topic::ALL
            .iter()
            .copied()
            .filter(|t| t.path()[0] == root)
            .collect();
        render_level(&mut tree, &topics, 1);
        tree.push_str(&format!("</tns1:{root}>"));
    }
    format!(
        "<tev:GetEventPropertiesResponse><tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation><wsnt:FixedTopicSet>true</wsnt:FixedTopicSet><wstop:TopicSet>{tree}</wstop:TopicSet><wsnt:TopicExpressionDialect>{DIALECT_CONCRETE_SET}</wsnt:TopicExpressionDialect><wsnt:TopicExpressionDialect>{DIALECT_CONCRETE}</wsnt:TopicExpressionDialect><tev:MessageContentFilterDialect>{MESSAGE_CONTENT_ITEM_FILTER}</tev:MessageContentFilterDialect><tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
    )
}

fn render_level(out: &mut String, topics: &[Topic], depth: usize) {
    let mut names: Vec<&str> = Vec::new();
    for t in topics {
        if let Some(n) = t.path().get(depth) {
            if !names.contains(n) {
                names.push(n);
            }
        }
    }
    for name in names {
        let below: Vec<Topic> = topics
            .iter()
            .copied()
            .filter(|t| t.path().get(depth) == Some(&name))
            .collect();
        let leaf = below.iter().find(|t| t.path().len() == depth + 1);
        match leaf {
            Some(t) => {
                let (sn, st, dn, dt) = t.items();
                out.push_str(&format!(
                    "<tns1:{name} wstop:topic=\"true\"><tt:MessageDescription IsProperty=\"true\"><tt:Source><tt:SimpleItemDescription Name=\"{sn}\" Type=\"{st}\"/></tt:Source><tt:Data><tt:SimpleItemDescription Name=\"{dn}\" Type=\"{dt}\"/></tt:Data></tt:MessageDescription></tns1:{name}>"
                ));
            }
            None => {
                out.push_str(&format!("<tns1:{name}>"));
                render_level(out, &below, depth + 1);
                out.push_str(&format!("</tns1:{name}>"));
            }
        }
    }
}

/// xs:duration (PnYnMnDTnHnMnS, years/months refused) or xs:dateTime.
pub enum TimeSpec {
    Relative(chrono::Duration),
    Absolute(DateTime<Utc>),
}

pub fn parse_time_spec(s: &str) -> Option<TimeSpec> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('P') {
        return parse_duration(rest).map(TimeSpec::Relative);
    }
    super::auth::parse_datetime(s).map(TimeSpec::Absolute)
}

fn parse_duration(rest: &str) -> Option<chrono::Duration> {
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms: i64 = 0;
    let mut num = String::new();
    for c in date.chars() {
        match c {
            '0'..='9' => num.push(c),
            'D' => ms = ms.checked_add(num.parse::<i64>().ok()?.checked_mul(86_400_000)?)?,
            // Years and months have no fixed length; we do not need them.
            _ => return None,
        }
        if c == 'D' {
            num.clear();
        }
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        for c in time.chars() {
            match c {
                '0'..='9' | '.' => num.push(c),
                'H' | 'M' | 'S' => {
                    let v: f64 = num.parse().ok()?;
                    let unit = match c {
                        'H' => 3_600_000.0,
                        'M' => 60_000.0,
                        _ => 1000.0,
                    };
                    let add = v * unit;
                    if !add.is_finite() || add > 1e15 {
                        return None;
                    }
                    ms = ms.checked_add(add as i64)?;
                    num.clear();
                }
                _ => return None,
            }
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some(chrono::Duration::milliseconds(ms))
}

/// Resolves a requested termination time against the device clock into a
/// real-clock instant, plus the keep-alive period if it was relative.
fn termination_from(
    ctx: &Ctx,
    spec: Option<&str>,
    fault: &str,
) -> Result<(DateTime<Utc>, Option<chrono::Duration>), Fault> {
    let (ttl, keepalive) = match spec.map(parse_time_spec) {
        None => (chrono::Duration::seconds(DEFAULT_TTL_S), true),
        Some(None) => return Err(wsn_fault(fault, "not an xs:duration or xs:dateTime")),
        Some(Some(TimeSpec::Relative(d))) => (d, true),
        Some(Some(TimeSpec::Absolute(t))) => (t - ctx.dev.now(), false),
    };
    if ttl <= chrono::Duration::zero() || ttl > chrono::Duration::seconds(MAX_TTL_S) {
        return Err(wsn_fault(
            fault,
            "termination time in the past or too far ahead",
        ));
    }
    Ok((Utc::now() + ttl, keepalive.then_some(ttl)))
}

fn create_pull_point(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let mut filter = None;
    if let Some(f) = op.child_local("Filter") {
        for part in &f.children {
            match (part.ns.as_str(), part.name.as_str()) {
                (ns::WSNT, "TopicExpression") => {
                    let tf = TopicFilter::parse(part).map_err(|e| match e {
                        FilterError::DialectUnknown => wsn_fault(
                            "TopicExpressionDialectUnknownFault",
                            "unsupported topic expression dialect",
                        ),
                        FilterError::Invalid(why) => wsn_fault("InvalidTopicExpressionFault", &why),
                    })?;
                    if !tf.matches_any() {
                        return Err(wsn_fault(
                            "TopicNotSupportedFault",
                            "no topic of this device matches",
                        ));
                    }
                    filter = Some(tf);
                }
                // Message content filtering (ItemFilter) is not implemented.
                (ns::WSNT, "MessageContent") => {
                    return Err(wsn_fault(
                        "InvalidMessageContentExpressionFault",
                        "message content filters are not supported by this simulator",
                    ))
                }
                _ => return Err(wsn_fault("InvalidFilterFault", "unknown filter element")),
            }
        }
    }
    let init = op
        .child_local("InitialTerminationTime")
        .map(|e| e.text_trim());
    let (termination, keepalive) =
        termination_from(ctx, init, "UnacceptableInitialTerminationTimeFault")?;
    let dev = &ctx.dev;
    let sub = dev
        .subs
        .create(filter, termination, keepalive, dev.snapshot())
        .map_err(|_| {
            // The WS-BaseNotification fault for a refused subscription, as a
            // receiver-side failure of the action.
            Fault::receiver(&["ter:Action"], "maximum number of PullPoint subscriptions reached").with_detail(
                format!(
                    "<wsnt:SubscribeCreationFailedFault><wsrf-bf:Timestamp>{}</wsrf-bf:Timestamp><wsrf-bf:Description>MaxPullPoints ({}) reached</wsrf-bf:Description></wsnt:SubscribeCreationFailedFault>",
                    ts(Utc::now()),
                    dev.cfg.max_subscriptions
                ),
            )
        })?;
    let now = dev.now();
    Ok(format!(
        "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>{}</wsa:Address><wsa:ReferenceParameters><sim:SubscriptionKey>{}</sim:SubscriptionKey></wsa:ReferenceParameters></tev:SubscriptionReference><wsnt:CurrentTime>{}</wsnt:CurrentTime><wsnt:TerminationTime>{}</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>",
        esc(&ctx.url(&format!("{SUB_PATH}/{}", sub.id))),
        sub.key,
        ts(now),
        ts(sub.termination() + dev.offset())
    ))
}

/// Finds the subscription a request addresses, checking its reference
/// parameter header.
pub fn lookup(ctx: &Ctx, id: u64, req: &Request) -> Result<Arc<Subscription>, Fault> {
    let sub = ctx.dev.subs.get(id).ok_or_else(resource_unknown)?;
    let key = req
        .header(ns::SIM, "SubscriptionKey")
        .map(|h| h.text_trim());
    if key != Some(sub.key.as_str()) {
        return Err(resource_unknown());
    }
    Ok(sub)
}

/// Requests to a subscription endpoint.
pub async fn handle_subscription(ctx: &Ctx, id: u64, req: &Request) -> Result<String, Fault> {
    let op = &req.op;
    let sub = lookup(ctx, id, req)?;
    let dev = &ctx.dev;
    match (op.ns.as_str(), op.name.as_str()) {
        (ns::TEV, "PullMessages") => {
            let timeout =
                op.child_local("Timeout")
                    .and_then(|t| match parse_time_spec(t.text_trim()) {
                        Some(TimeSpec::Relative(d)) => Some(d),
                        _ => None,
                    });
            let limit = op
                .child_local("MessageLimit")
                .and_then(|m| m.text_trim().parse::<i64>().ok());
            let (Some(timeout), Some(limit)) = (timeout, limit) else {
                return Err(pull_fault(
                    "Timeout (xs:duration) and MessageLimit (xs:int) are required",
                ));
            };
            if timeout < chrono::Duration::zero()
                || timeout > chrono::Duration::seconds(MAX_PULL_TIMEOUT_S)
                || limit < 1
                || limit as usize > MAX_MESSAGE_LIMIT
            {
                return Err(pull_fault("Timeout or MessageLimit out of range"));
            }
            let wait = timeout.to_std().unwrap_or_default();
            let msgs = tokio::select! {
                m = sub.pull(limit as usize, wait) => m,
                _ = ctx.stopped() => Vec::new(),
            };
            let body: String = msgs.iter().map(|m| m.to_xml()).collect();
            Ok(format!(
                "<tev:PullMessagesResponse><tev:CurrentTime>{}</tev:CurrentTime><tev:TerminationTime>{}</tev:TerminationTime>{body}</tev:PullMessagesResponse>",
                ts(dev.now()),
                ts(sub.termination() + dev.offset())
            ))
        }
        (ns::TEV, "SetSynchronizationPoint") => {
            for m in dev.snapshot() {
                sub.push(m);
            }
            Ok("<tev:SetSynchronizationPointResponse/>".into())
        }
        (ns::WSNT, "Renew") => {
            let t = op.child_local("TerminationTime").map(|e| e.text_trim());
            let (termination, keepalive) =
                termination_from(ctx, t, "UnacceptableTerminationTimeFault")?;
            sub.set_termination(termination, keepalive);
            Ok(format!(
                "<wsnt:RenewResponse><wsnt:TerminationTime>{}</wsnt:TerminationTime><wsnt:CurrentTime>{}</wsnt:CurrentTime></wsnt:RenewResponse>",
                ts(termination + dev.offset()),
                ts(dev.now())
            ))
        }
        (ns::WSNT, "Unsubscribe") => {
            dev.subs.remove(sub.id);
            Ok("<wsnt:UnsubscribeResponse/>".into())
        }
        (ns::TEV, "Seek") | (ns::WSNT, _) | (ns::TEV, _) => {
            Err(Fault::action_not_supported(&op.name))
        }
        (_, other) => Err(unknown_action(other)),
    }
}

fn pull_fault(reason: &str) -> Fault {
    Fault::sender(&["ter:InvalidArgVal"], reason).with_detail(format!(
        "<tev:PullMessagesFaultResponse><tev:MaxTimeout>PT{MAX_PULL_TIMEOUT_S}S</tev:MaxTimeout><tev:MaxMessageLimit>{MAX_MESSAGE_LIMIT}</tev:MaxMessageLimit></tev:PullMessagesFaultResponse>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        match parse_time_spec(s) {
            Some(TimeSpec::Relative(d)) => d.num_milliseconds(),
            _ => -1,
        }
    }

    #[test]
    fn durations_parse_per_xs_duration() {
        assert_eq!(secs("PT60S"), 60_000);
        assert_eq!(secs("PT1M30S"), 90_000);
        assert_eq!(secs("PT0.5S"), 500);
        assert_eq!(secs("P1DT1H"), 90_000_000);
        assert_eq!(secs("PT"), -1);
        assert_eq!(secs("P1Y"), -1);
        assert_eq!(secs("PT5"), -1);
        assert_eq!(secs("PT99999999999999999999H"), -1);
        assert!(matches!(
            parse_time_spec("2030-01-01T00:00:00Z"),
            Some(TimeSpec::Absolute(_))
        ));
    }
}
