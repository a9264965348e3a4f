//! The one place that uses the rusty-bacnet crates (pinned `=0.15.0`):
//! builds the device's object database from a `Plan`, runs the BACnet/IP
//! server, and offers the few operations the rest of vgw needs, in vgw's
//! own types — put a point's value and quality, mirror a priority array.

mod guarded;

use super::plan::{Alarm, Kind, Plan, Planned, NC_EQUIPMENT, NC_SECURITY};
use crate::model::{AlarmRecipient, RecipientTarget};
use crate::points::priority::LEVELS;
use crate::points::{Quality, Value};
use bacnet_objects::analog::AnalogInputObject;
use bacnet_objects::binary::{BinaryInputObject, BinaryOutputObject};
use bacnet_objects::database::ObjectDatabase;
use bacnet_objects::device::{DeviceConfig, DeviceObject};
use bacnet_objects::device_identity::build_database_with_extra;
use bacnet_objects::group::StructuredViewObject;
use bacnet_objects::notification_class::NotificationClass;
use bacnet_objects::object_profile::ObjectProfile;
use bacnet_objects::traits::BACnetObject;
use bacnet_objects::DeviceIdentity;
use bacnet_server::server::{
    BACnetServer, CovPolicy, DccPolicy, GetEventInformationBudget, ReadPropertyMultipleBudget,
    RequestAdmissionPolicy,
};
use bacnet_server::LocalCommandSource;
use bacnet_transport::bip::{BipMode, BipTransport, ForeignDeviceConfig};
use bacnet_types::bitstring::{DaysOfWeek, EventTransitionBits, LimitEnable};
use bacnet_types::constructed::{
    BACnetAddress, BACnetDestination, BACnetNameValue, BACnetRecipient,
};
use bacnet_types::enums::{
    EngineeringUnits, NotifyType, ObjectType, PropertyIdentifier as P, Reliability, Segmentation,
};
use bacnet_types::error::Error;
use bacnet_types::primitives::{ObjectIdentifier, PropertyValue, Time};
use bacnet_types::MacAddr;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// Receives a BACnet command for point `index` at `level` (1–17; `None`
/// relinquishes) from `who`; an `Err` answers WRITE_ACCESS_DENIED.
pub type WriteSink = Arc<dyn Fn(usize, u8, Option<bool>, &str) -> Result<(), String> + Send + Sync>;

/// Told that a BMS acknowledged the alarm of point `index`.
pub type AckSink = Arc<dyn Fn(usize) + Send + Sync>;

/// How the server is reached and where its alarms go.
pub struct Options {
    pub listen: SocketAddrV4,
    pub broadcast: Ipv4Addr,
    pub bbmd: Option<(SocketAddrV4, u16)>,
    pub dcc_password: Option<String>,
    pub recipients: Vec<AlarmRecipient>,
}

/// Where BACnet writes and acknowledgements go.
#[derive(Clone)]
pub struct Sinks {
    pub write: WriteSink,
    pub ack: AckSink,
}

/// Initial state of one point, so the server starts with the engine's view.
pub struct Initial {
    pub value: Value,
    pub quality: Quality,
}

/// Point index → its object.
type PointObjects = HashMap<usize, (Kind, ObjectIdentifier)>;

pub struct Stack {
    server: BACnetServer<BipTransport>,
    points: PointObjects,
}

/// What the BACnet server has done since start, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub confirmed_requests: u64,
    pub unconfirmed_requests: u64,
    /// Requests turned away because every handler slot was busy.
    pub overloaded: u64,
    pub cov_subscriptions: u64,
    pub cov_notifications: u64,
}

fn oid(kind: Kind, instance: u32) -> Result<ObjectIdentifier, Error> {
    let t = match kind {
        Kind::AnalogInput => ObjectType::ANALOG_INPUT,
        Kind::BinaryInput => ObjectType::BINARY_INPUT,
        Kind::BinaryOutput => ObjectType::BINARY_OUTPUT,
        Kind::Device => ObjectType::DEVICE,
        Kind::NotificationClass => ObjectType::NOTIFICATION_CLASS,
        Kind::StructuredView => ObjectType::STRUCTURED_VIEW,
    };
    ObjectIdentifier::new(t, instance)
}

/// The stack's reliability for an engine quality. A point no driver has
/// reported yet is flagged (Status_Flags FAULT) rather than shown as a
/// trustworthy 0.
fn reliability(q: Quality) -> Reliability {
    match q {
        Quality::Ok | Quality::Overridden | Quality::OutOfService => Reliability::NO_FAULT_DETECTED,
        Quality::Fault => Reliability::COMMUNICATION_FAILURE,
        Quality::Initial => Reliability::UNRELIABLE_OTHER,
    }
}

fn present_value(kind: Kind, v: Value) -> Option<PropertyValue> {
    match (kind, v) {
        (Kind::AnalogInput, Value::Number(n)) if n.is_finite() => {
            Some(PropertyValue::Real(n as f32))
        }
        (Kind::BinaryInput | Kind::BinaryOutput, Value::Bool(b)) => {
            Some(PropertyValue::Enumerated(u32::from(b)))
        }
        _ => None,
    }
}

fn all_transitions() -> PropertyValue {
    PropertyValue::BitString {
        unused_bits: 5,
        data: vec![EventTransitionBits::all().to_bacnet()],
    }
}

fn profile(o: &Planned) -> ObjectProfile {
    let mut tags: Vec<BACnetNameValue> = o.markers.iter().map(BACnetNameValue::semantic).collect();
    if let Some(c) = &o.brick_class {
        tags.push(BACnetNameValue::valued(
            "brick",
            PropertyValue::CharacterString(c.clone()),
        ));
    }
    ObjectProfile {
        tags: Some(tags),
        profile_location: None,
        // Profile_Name must start with a vendor identifier; vgw has none
        // of its own and reports 0 throughout.
        profile_name: o.brick_class.as_ref().map(|c| format!("0-{c}")),
    }
}

fn point_object(
    o: &Planned,
    init: &Initial,
    sinks: &Sinks,
) -> Result<Box<dyn BACnetObject>, Error> {
    let point = o.point.unwrap_or_default();
    let mut inner: Box<dyn BACnetObject> = match o.kind {
        Kind::AnalogInput => {
            let units = EngineeringUnits::from_raw(o.units.unwrap_or(95));
            let mut ai = AnalogInputObject::new(o.instance, o.name.clone(), units)?;
            ai.set_description(o.description.clone());
            ai.set_profile(profile(o))?;
            Box::new(ai)
        }
        Kind::BinaryInput => {
            let mut bi = BinaryInputObject::new(o.instance, o.name.clone())?;
            bi.set_description(o.description.clone());
            bi.set_profile(profile(o))?;
            Box::new(bi)
        }
        Kind::BinaryOutput => {
            let mut bo = BinaryOutputObject::new(o.instance, o.name.clone())?;
            bo.set_description(o.description.clone());
            bo.set_profile(profile(o))?;
            bo.set_relinquish_default(0)?;
            Box::new(bo)
        }
        _ => return Err(Error::Encoding(format!("{} is not a point", o.name))),
    };
    let mut set = |p: P, v: PropertyValue| inner.write_property(p, None, v, None);
    if let Some([inactive, active]) = o.states {
        set(
            P::INACTIVE_TEXT,
            PropertyValue::CharacterString(inactive.into()),
        )?;
        set(
            P::ACTIVE_TEXT,
            PropertyValue::CharacterString(active.into()),
        )?;
    }
    match &o.alarm {
        Some(Alarm::ChangeOfState { alarm_value, .. }) => {
            set(
                P::ALARM_VALUE,
                PropertyValue::Enumerated(u32::from(*alarm_value)),
            )?;
        }
        Some(Alarm::OutOfRange {
            low,
            high,
            deadband,
            time_delay_s,
            ..
        }) => {
            set(P::HIGH_LIMIT, PropertyValue::Real(*high as f32))?;
            set(P::LOW_LIMIT, PropertyValue::Real(*low as f32))?;
            set(P::DEADBAND, PropertyValue::Real(*deadband as f32))?;
            let both = PropertyValue::BitString {
                unused_bits: 6,
                data: vec![LimitEnable::all().to_bacnet()],
            };
            set(P::LIMIT_ENABLE, both)?;
            set(
                P::TIME_DELAY,
                PropertyValue::Unsigned(u64::from(*time_delay_s)),
            )?;
        }
        // No alarm: no event state either, so GetEventInformation lists
        // only points that can really alarm.
        None if o.kind != Kind::BinaryOutput => {
            set(P::EVENT_DETECTION_ENABLE, PropertyValue::Boolean(false))?;
        }
        None => {}
    }
    if let Some(alarm) = &o.alarm {
        set(
            P::NOTIFICATION_CLASS,
            PropertyValue::Unsigned(u64::from(alarm.class())),
        )?;
        set(P::EVENT_ENABLE, all_transitions())?;
        set(
            P::NOTIFY_TYPE,
            PropertyValue::Enumerated(NotifyType::ALARM.to_raw()),
        )?;
    }
    match (o.kind, present_value(o.kind, init.value)) {
        (Kind::BinaryOutput, _) => {}
        (_, Some(v)) => inner.set_present_value_internal(v)?,
        (_, None) => {}
    }
    inner.set_reliability_internal(reliability(init.quality))?;
    Ok(Box::new(guarded::Guarded {
        inner,
        point,
        writable: o.writable,
        sink: sinks.write.clone(),
        ack: sinks.ack.clone(),
    }))
}

fn destination(r: &AlarmRecipient) -> Result<BACnetDestination, Error> {
    let recipient = match &r.target {
        RecipientTarget::Address(a) => {
            let mut mac = a.ip().octets().to_vec();
            mac.extend_from_slice(&a.port().to_be_bytes());
            BACnetRecipient::Address(BACnetAddress {
                network_number: 0,
                mac_address: MacAddr::from_slice(&mac),
            })
        }
        RecipientTarget::Device(d) => {
            BACnetRecipient::Device(ObjectIdentifier::new(ObjectType::DEVICE, *d)?)
        }
    };
    Ok(BACnetDestination {
        valid_days: DaysOfWeek::all(),
        from_time: Time {
            hour: 0,
            minute: 0,
            second: 0,
            hundredths: 0,
        },
        to_time: Time {
            hour: 23,
            minute: 59,
            second: 59,
            hundredths: 99,
        },
        recipient,
        process_identifier: r.process_id,
        issue_confirmed_notifications: r.confirmed,
        transitions: EventTransitionBits::all(),
    })
}

fn notification_class(
    o: &Planned,
    recipients: &[AlarmRecipient],
) -> Result<NotificationClass, Error> {
    let mut nc = NotificationClass::new(o.instance, o.name.clone())?;
    nc.set_description(o.description.clone());
    // BACnet event priorities: 64–127 property safety, 128–191
    // supervisory, 192–255 trouble. [to-offnormal, to-fault, to-normal]
    nc.priority = match o.instance {
        NC_SECURITY => [80, 200, 200],
        NC_EQUIPMENT => [140, 200, 220],
        _ => [255, 255, 255],
    };
    nc.ack_required = EventTransitionBits::TO_OFFNORMAL | EventTransitionBits::TO_FAULT;
    for r in recipients {
        if r.classes.is_empty() || r.classes.contains(&o.instance) {
            nc.add_destination(destination(r)?)?;
        }
    }
    Ok(nc)
}

fn structured_view(o: &Planned) -> Result<StructuredViewObject, Error> {
    let mut sv = StructuredViewObject::new(o.instance, o.name.clone())?;
    sv.node_type = o.node.map_or(0, |n| n.code());
    sv.write_property(
        P::DESCRIPTION,
        None,
        PropertyValue::CharacterString(o.description.clone()),
        None,
    )?;
    for (kind, instance) in &o.children {
        sv.add_subordinate(oid(*kind, *instance)?, String::new())?;
    }
    Ok(sv)
}

fn database(
    plan: &Plan,
    identity: &DeviceIdentity,
    initial: &[Initial],
    recipients: &[AlarmRecipient],
    sinks: &Sinks,
) -> Result<(ObjectDatabase, PointObjects), Error> {
    let mut objects: Vec<Box<dyn BACnetObject>> = Vec::with_capacity(plan.objects.len());
    let mut points = HashMap::new();
    let mut order = Vec::with_capacity(plan.objects.len());
    for o in &plan.objects {
        let id = oid(o.kind, o.instance)?;
        order.push(id);
        match o.kind {
            Kind::Device => continue,
            Kind::NotificationClass => objects.push(Box::new(notification_class(o, recipients)?)),
            Kind::StructuredView => objects.push(Box::new(structured_view(o)?)),
            _ => {
                let p = o.point.unwrap_or_default();
                let init = initial.get(p).unwrap_or(&Initial {
                    value: Value::Null,
                    quality: Quality::Initial,
                });
                objects.push(point_object(o, init, sinks)?);
                points.insert(p, (o.kind, id));
            }
        }
    }
    let mut db = build_database_with_extra(identity, objects)?;
    // Replace the stock Device with one that names vgw, in plan order.
    let d = plan.device();
    let mut dev = DeviceObject::new(DeviceConfig {
        identity: identity.clone(),
        vendor_name: "vgw".into(),
        model_name: "vgw video gateway".into(),
        firmware_revision: env!("CARGO_PKG_VERSION").into(),
        application_software_version: env!("CARGO_PKG_VERSION").into(),
        ..DeviceConfig::default()
    })?;
    dev.set_description(d.description.clone());
    dev.set_services_supported(identity.services());
    dev.set_device_uuid(identity.device_uuid());
    dev.set_profile(profile(d))?;
    dev.set_object_list(order);
    db.add(Box::new(dev))?;
    Ok((db, points))
}

/// Which network mutations reach the objects at all. Point objects decide
/// their own writes (`guarded`); the Device, notification classes and views
/// are defined by the site file and would lose any edit at restart, so
/// writes, list edits and object creation/deletion are refused up front
/// (SERVICE_REQUEST_DENIED). Subscriptions pass.
fn mutation_allowed(ctx: &bacnet_server::mutation::MutationAuthorizationContext) -> bool {
    use bacnet_server::mutation::MutationTarget as T;
    let is_point = |o: &ObjectIdentifier| {
        matches!(
            o.object_type(),
            ObjectType::ANALOG_INPUT | ObjectType::BINARY_INPUT | ObjectType::BINARY_OUTPUT
        )
    };
    match &ctx.target {
        T::SubscribeCov(_) | T::SubscribeCovProperty(_) | T::SubscribeCovPropertyMultiple(_) => {
            true
        }
        T::WriteProperty(w) => is_point(&w.object_identifier),
        T::WritePropertyMultiple(w) => is_point(&w.reference.object_identifier),
        _ => false,
    }
}

impl Stack {
    /// Builds the database and starts serving; sends one I-Am broadcast.
    pub async fn start(
        plan: &Plan,
        opts: Options,
        initial: &[Initial],
        sinks: Sinks,
    ) -> Result<Stack, String> {
        let d = plan.device();
        let identity = DeviceIdentity::new(d.instance, 0)
            .and_then(|i| i.with_max_apdu(1476))
            .map(|i| {
                i.with_name(d.name.clone())
                    .with_segmentation(Segmentation::BOTH)
            })
            .map_err(|e| format!("BACnet device identity: {e}"))?;
        let (db, points) = database(plan, &identity, initial, &opts.recipients, &sinks)
            .map_err(|e| format!("BACnet object database: {e}"))?;
        // On loopback the limited broadcast never arrives: use the loopback
        // network's broadcast address, which peers on 127.0.0.1 send to.
        let broadcast = if opts.listen.ip().is_loopback() && opts.broadcast.is_broadcast() {
            Ipv4Addr::new(127, 255, 255, 255)
        } else {
            opts.broadcast
        };
        let mut b = BACnetServer::bip_builder()
            .interface(*opts.listen.ip())
            .port(opts.listen.port())
            // A specific address binds that address (the stack then listens
            // for broadcasts beside it); 0.0.0.0 binds every interface. The
            // stack binds by address only with a fixed port: port 0 (an
            // ephemeral port, tests) binds every interface.
            .share_port_by_address(!opts.listen.ip().is_unspecified() && opts.listen.port() != 0)
            .broadcast_address(broadcast)
            .device(identity)
            .database(db)
            .cov_policy(CovPolicy {
                max_subscriptions_global: 8192,
                max_subscriptions_per_peer: 4096,
                max_indefinite_per_peer: 4096,
                max_confirmed_in_flight_per_peer: 64,
                ..CovPolicy::default()
            })
            .read_property_multiple_budget(ReadPropertyMultipleBudget {
                max_result_elements: 8192,
                max_service_ack_bytes: 1 << 20,
            })
            .get_event_information_budget(GetEventInformationBudget {
                max_objects: 1 << 20,
                ..GetEventInformationBudget::default()
            })
            .policy(bacnet_server::FnPolicy::new().mutation(mutation_allowed))
            .request_admission_policy(RequestAdmissionPolicy {
                max_confirmed_in_flight: 256,
                max_confirmed_in_flight_per_peer: 128,
                ..RequestAdmissionPolicy::default()
            });
        if let Some((bbmd, ttl)) = opts.bbmd {
            b = b.mode(BipMode::Foreign(ForeignDeviceConfig {
                bbmd_ip: *bbmd.ip(),
                bbmd_port: bbmd.port(),
                ttl,
                renewal_interval: None,
            }));
        }
        b = match opts.dcc_password {
            Some(p) => b.dcc_policy(DccPolicy::RequirePassword).dcc_password(p),
            None => b.dcc_policy(DccPolicy::DenyAll),
        };
        let server = b
            .build()
            .await
            .map_err(|e| {
                format!(
                    "BACnet/IP on udp {}: {e} (another BACnet device on this port? pick one with --bacnet ADDR:PORT or [bacnet] listen, or turn BACnet off with --bacnet off)",
                    opts.listen
                )
            })?;
        if let Err(e) = server.broadcast_i_am().await {
            tracing::warn!("BACnet I-Am broadcast at start failed: {e}");
        }
        Ok(Stack { server, points })
    }

    /// Puts an input's value and quality into its object; COV and alarms
    /// follow from the stack. Outputs get their quality only (their value
    /// comes from the priority array).
    pub async fn put(&self, point: usize, value: Value, quality: Quality) -> Result<(), String> {
        let Some(&(kind, id)) = self.points.get(&point) else {
            return Ok(());
        };
        {
            let mut db = self.server.database().write().await;
            if let Some(o) = db.get_mut(&id) {
                let r = reliability(quality);
                if o.read_property(P::RELIABILITY, None).ok()
                    != Some(PropertyValue::Enumerated(r.to_raw()))
                {
                    let _ = o.set_reliability_internal(r);
                }
            }
        }
        if kind == Kind::BinaryOutput {
            return Ok(());
        }
        // Writing the value (even unchanged) runs the stack's COV and event
        // evaluation, which also carries a reliability change to subscribers.
        let pv = match present_value(kind, value) {
            Some(v) => v,
            None => self
                .server
                .read_local(&id, P::PRESENT_VALUE, None)
                .await
                .map_err(|e| e.to_string())?,
        };
        self.server
            .set_present_value_local(&id, pv)
            .await
            .map_err(|e| e.to_string())
    }

    /// Makes an output's priority array equal the engine's (`levels[16]` is
    /// the relinquish default).
    pub async fn mirror_priority(
        &self,
        point: usize,
        levels: &[Value; LEVELS],
    ) -> Result<(), String> {
        let Some(&(kind, id)) = self.points.get(&point) else {
            return Ok(());
        };
        let served = self
            .server
            .read_local(&id, P::PRIORITY_ARRAY, None)
            .await
            .map_err(|e| e.to_string())?;
        let served: Vec<PropertyValue> = match served {
            PropertyValue::List(v) => v,
            other => return Err(format!("unexpected priority array {other:?}")),
        };
        for (i, want) in levels.iter().take(16).enumerate() {
            let want = present_value(kind, *want).unwrap_or(PropertyValue::Null);
            if served.get(i) != Some(&want) {
                self.server
                    .write_local(
                        &id,
                        P::PRESENT_VALUE,
                        None,
                        want,
                        Some(i as u8 + 1),
                        LocalCommandSource::ServerDevice,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(want) = present_value(kind, levels[16]) {
            let now = self
                .server
                .read_local(&id, P::RELINQUISH_DEFAULT, None)
                .await
                .ok();
            if now.as_ref() != Some(&want) {
                self.server
                    .write_local(
                        &id,
                        P::RELINQUISH_DEFAULT,
                        None,
                        want,
                        None,
                        LocalCommandSource::ServerDevice,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Acknowledges the point's latest transition in its BACnet object, as
    /// an AcknowledgeAlarm would (Acked_Transitions; the stack sends no
    /// acknowledgement notification for a local acknowledgement). Returns
    /// false when the object has nothing to acknowledge.
    pub async fn acknowledge(&self, point: usize) -> Result<bool, String> {
        use bacnet_types::enums::EventState;
        let Some(&(_, id)) = self.points.get(&point) else {
            return Ok(false);
        };
        let mut db = self.server.database().write().await;
        let Some(o) = db.get_mut(&id) else {
            return Ok(false);
        };
        let state = match o.read_property(P::EVENT_STATE, None) {
            Ok(PropertyValue::Enumerated(raw)) => EventState::from_raw(raw),
            other => return Err(format!("event state: {other:?}")),
        };
        // Event_Time_Stamps: [to-offnormal, to-fault, to-normal]
        let index = if state == EventState::NORMAL {
            3
        } else if state == EventState::FAULT {
            2
        } else {
            1
        };
        let stamp = match o.read_property(P::EVENT_TIME_STAMPS, Some(index)) {
            Ok(PropertyValue::ApplicationData(bytes)) => {
                bacnet_encoding::primitives::decode_timestamp_choice(&bytes, 0)
                    .map_err(|e| e.to_string())?
                    .0
            }
            other => return Err(format!("event time stamp: {other:?}")),
        };
        Ok(
            o.acknowledge_alarm_correlated_detailed_internal(state, &stamp)
                .is_ok(),
        )
    }

    pub fn counters(&self) -> Counters {
        let r = self.server.request_admission_counters();
        let c = self.server.cov_counters();
        Counters {
            confirmed_requests: r.confirmed_admitted_total,
            unconfirmed_requests: r.unconfirmed_admitted_total,
            overloaded: r.confirmed_overloaded_total + r.unconfirmed_overloaded_total,
            cov_subscriptions: c.subscriptions_active,
            cov_notifications: c.notifications_sent,
        }
    }

    pub async fn stop(mut self) {
        if let Err(e) = self.server.stop().await {
            tracing::warn!("BACnet server stop: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's plan served on an ephemeral loopback port.
    async fn demo_stack() -> (crate::model::Site, Plan, Stack) {
        let site = crate::model::load_site(std::path::Path::new("config/demo.toml"), None).unwrap();
        let (_, haystack) = crate::graph::GraphStore::build(&site, None).unwrap();
        let plan = super::super::plan::plan(&site, &haystack);
        let opts = Options {
            listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            broadcast: Ipv4Addr::BROADCAST,
            bbmd: None,
            dcc_password: None,
            recipients: Vec::new(),
        };
        let sinks = Sinks {
            write: Arc::new(|_, _, _, _| Ok(())),
            ack: Arc::new(|_| {}),
        };
        let stack = Stack::start(&plan, opts, &[], sinks).await.unwrap();
        (site, plan, stack)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_device_shows_communication_failure_and_recovers() {
        let (site, _plan, stack) = demo_stack().await;
        let point = site
            .points
            .iter()
            .position(|p| p.id == "nvr-1.online")
            .unwrap();
        let (_, id) = stack.points[&point];
        let read = |p: P| {
            let server = &stack.server;
            async move { server.read_local(&id, p, None).await.unwrap() }
        };
        // Starts flagged: no driver has reported.
        assert_eq!(
            read(P::RELIABILITY).await,
            PropertyValue::Enumerated(Reliability::UNRELIABLE_OTHER.to_raw())
        );
        stack
            .put(point, Value::Bool(true), Quality::Ok)
            .await
            .unwrap();
        assert_eq!(read(P::PRESENT_VALUE).await, PropertyValue::Enumerated(1));
        assert_eq!(
            read(P::RELIABILITY).await,
            PropertyValue::Enumerated(Reliability::NO_FAULT_DETECTED.to_raw())
        );
        stack
            .put(point, Value::Bool(true), Quality::Fault)
            .await
            .unwrap();
        assert_eq!(
            read(P::RELIABILITY).await,
            PropertyValue::Enumerated(Reliability::COMMUNICATION_FAILURE.to_raw())
        );
        // Status_Flags: in-alarm, fault, overridden, out-of-service.
        match read(P::STATUS_FLAGS).await {
            PropertyValue::BitString { data, .. } => assert_eq!(data[0] & 0x40, 0x40, "fault flag"),
            other => panic!("{other:?}"),
        }
        stack
            .put(point, Value::Bool(true), Quality::Ok)
            .await
            .unwrap();
        assert_eq!(
            read(P::RELIABILITY).await,
            PropertyValue::Enumerated(Reliability::NO_FAULT_DETECTED.to_raw())
        );
        stack.stop().await;
    }
}
