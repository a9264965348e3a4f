//! A point object that answers BACnet writes the way the site model says:
//! a network write to a writable point's Present_Value (or Relinquish_
//! Default) goes into the point engine's priority array first and is
//! mirrored into the stack's object only if the engine took it; every other
//! network write answers WRITE_ACCESS_DENIED. Local writes (the gateway
//! mirroring the engine) pass straight through.
//!
//! Everything else is forwarded to the stack's own object. The forward list
//! is every method the stack's analog/binary input and binary output objects
//! override (bacnet-objects 0.15.0); a method missing here would silently
//! fall back to the trait default and break COV or alarms, so re-check it
//! when the pinned version changes.

use super::{AckSink, WriteSink};
use bacnet_objects::command_source::CommandOrigin;
use bacnet_objects::durable::DurableWrites;
use bacnet_objects::event::{
    EnrollmentSummaryCapability, EventStateChange, EventTransitionCommit,
    EventTransitionCommitError, TransitionOutcome,
};
use bacnet_objects::property_metadata::PropertyMetadata;
use bacnet_objects::traits::{BACnetObject, ReliabilityEvaluation};
use bacnet_types::bitstring::EventTransitionBits;
use bacnet_types::constructed::BACnetObjectPropertyReference;
use bacnet_types::enums::{
    ErrorClass, ErrorCode, EventState, PropertyIdentifier as P, Reliability,
};
use bacnet_types::error::Error;
use bacnet_types::primitives::{BACnetTimeStamp, ObjectIdentifier, PropertyValue};
use std::borrow::Cow;
use std::time::Duration;

pub struct Guarded {
    pub inner: Box<dyn BACnetObject>,
    /// Index of the point in the site model.
    pub point: usize,
    /// Only binary outputs take commands.
    pub writable: bool,
    pub sink: WriteSink,
    /// Told when a BMS acknowledges this point's alarm.
    pub ack: AckSink,
}

fn denied() -> Error {
    Error::protocol(ErrorClass::PROPERTY, ErrorCode::WRITE_ACCESS_DENIED)
}

/// The engine value of a BACnet write (Null relinquishes).
fn engine_value(v: &PropertyValue) -> Result<Option<bool>, Error> {
    match v {
        PropertyValue::Null => Ok(None),
        PropertyValue::Enumerated(0) => Ok(Some(false)),
        PropertyValue::Enumerated(1) => Ok(Some(true)),
        PropertyValue::Enumerated(_) => Err(Error::protocol(
            ErrorClass::PROPERTY,
            ErrorCode::VALUE_OUT_OF_RANGE,
        )),
        _ => Err(Error::protocol(
            ErrorClass::PROPERTY,
            ErrorCode::INVALID_DATA_TYPE,
        )),
    }
}

fn who(origin: &CommandOrigin) -> String {
    match origin {
        CommandOrigin::Remote { actual_address, .. } => {
            let m = &actual_address.mac_address;
            if m.len() == 6 {
                format!(
                    "bacnet:{}.{}.{}.{}:{}",
                    m[0],
                    m[1],
                    m[2],
                    m[3],
                    u16::from_be_bytes([m[4], m[5]])
                )
            } else {
                format!("bacnet:net{}", actual_address.network_number)
            }
        }
        CommandOrigin::Local { .. } => "gateway".into(),
    }
}

impl BACnetObject for Guarded {
    fn object_identifier(&self) -> ObjectIdentifier {
        self.inner.object_identifier()
    }
    fn object_name(&self) -> &str {
        self.inner.object_name()
    }
    fn read_property(&self, p: P, i: Option<u32>) -> Result<PropertyValue, Error> {
        self.inner.read_property(p, i)
    }
    fn write_property(
        &mut self,
        p: P,
        i: Option<u32>,
        v: PropertyValue,
        prio: Option<u8>,
    ) -> Result<(), Error> {
        self.inner.write_property(p, i, v, prio)
    }
    fn write_property_from(
        &mut self,
        p: P,
        i: Option<u32>,
        v: PropertyValue,
        prio: Option<u8>,
        origin: &CommandOrigin,
    ) -> Result<(), Error> {
        if matches!(origin, CommandOrigin::Local { .. }) {
            return self.inner.write_property_from(p, i, v, prio, origin);
        }
        let level = match p {
            _ if !self.writable || i.is_some() => return Err(denied()),
            P::PRESENT_VALUE => prio.unwrap_or(16),
            P::RELINQUISH_DEFAULT => 17,
            _ => return Err(denied()),
        };
        if !(1..=16).contains(&level) && level != 17 {
            return Err(Error::protocol(
                ErrorClass::PROPERTY,
                ErrorCode::VALUE_OUT_OF_RANGE,
            ));
        }
        let value = engine_value(&v)?;
        if level == 17 && value.is_none() {
            // The relinquish default cannot itself be relinquished.
            return Err(Error::protocol(
                ErrorClass::PROPERTY,
                ErrorCode::INVALID_DATA_TYPE,
            ));
        }
        (self.sink)(self.point, level, value, &who(origin)).map_err(|_| denied())?;
        self.inner.write_property_from(p, i, v, prio, origin)
    }
    fn property_metadata(&self) -> Cow<'_, [PropertyMetadata]> {
        self.inner.property_metadata()
    }
    fn property_list(&self) -> Cow<'static, [P]> {
        self.inner.property_list()
    }
    fn supports_cov(&self) -> bool {
        self.inner.supports_cov()
    }
    fn cov_increment(&self) -> Option<f64> {
        self.inner.cov_increment()
    }
    fn is_createable(&self) -> bool {
        self.inner.is_createable()
    }
    fn creation_only_properties(&self) -> &'static [P] {
        self.inner.creation_only_properties()
    }
    fn initialize_property(&mut self, p: P, v: PropertyValue) -> Result<(), Error> {
        self.inner.initialize_property(p, v)
    }
    fn durable_writes_internal(&mut self) -> Option<&mut dyn DurableWrites> {
        self.inner.durable_writes_internal()
    }
    fn advance_monotonic_time_internal(&mut self, now: Duration) -> bool {
        self.inner.advance_monotonic_time_internal(now)
    }
    fn set_reliability_internal(&mut self, r: Reliability) -> Result<(), Error> {
        self.inner.set_reliability_internal(r)
    }
    fn reliability_evaluation_inhibited_internal(&self) -> bool {
        self.inner.reliability_evaluation_inhibited_internal()
    }
    fn evaluate_reliability_internal(&mut self) -> Result<ReliabilityEvaluation, Error> {
        self.inner.evaluate_reliability_internal()
    }
    fn set_present_value_internal(&mut self, v: PropertyValue) -> Result<(), Error> {
        self.inner.set_present_value_internal(v)
    }
    fn acknowledge_alarm(&mut self, bit: EventTransitionBits) -> Result<(), Error> {
        self.inner.acknowledge_alarm(bit)
    }
    fn acknowledge_alarm_correlated_internal(
        &mut self,
        state: EventState,
        ts: &BACnetTimeStamp,
    ) -> Result<(), Error> {
        self.inner
            .acknowledge_alarm_correlated_internal(state, ts)?;
        (self.ack)(self.point);
        Ok(())
    }
    fn acknowledge_alarm_correlated_detailed_internal(
        &mut self,
        state: EventState,
        ts: &BACnetTimeStamp,
    ) -> Result<Option<EventStateChange>, Error> {
        let r = self
            .inner
            .acknowledge_alarm_correlated_detailed_internal(state, ts)?;
        (self.ack)(self.point);
        Ok(r)
    }
    fn enrollment_summary_capability_internal(&self) -> Option<EnrollmentSummaryCapability> {
        self.inner.enrollment_summary_capability_internal()
    }
    fn evaluate_intrinsic_reporting(&mut self) -> Option<TransitionOutcome> {
        self.inner.evaluate_intrinsic_reporting()
    }
    fn tick_intrinsic_reporting(&mut self) -> Option<TransitionOutcome> {
        self.inner.tick_intrinsic_reporting()
    }
    fn event_algorithm_inhibit_reference_internal(&self) -> Option<BACnetObjectPropertyReference> {
        self.inner.event_algorithm_inhibit_reference_internal()
    }
    fn follow_event_algorithm_inhibit_internal(&mut self, inhibit: bool) -> bool {
        self.inner.follow_event_algorithm_inhibit_internal(inhibit)
    }
    fn commit_event_transition_internal(
        &mut self,
        commit: EventTransitionCommit,
    ) -> Result<(), EventTransitionCommitError> {
        self.inner.commit_event_transition_internal(commit)
    }
}
