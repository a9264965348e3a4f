//! Which keys a config table accepts, read from the serde structs themselves
//! so the did-you-mean list can never drift from the schema.

use super::schema::*;
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Field names of a serde struct, captured from `deserialize_struct`.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

/// Accepted keys of the table at `tables` (e.g. `["nvr"]`, `[]` for the top).
pub fn keys_of_table(tables: &[&str]) -> &'static [&'static str] {
    match tables {
        [] => fields_of::<SiteFile>(),
        ["site"] => fields_of::<SiteSection>(),
        ["gateway"] => fields_of::<GatewaySection>(),
        ["http"] => fields_of::<HttpSection>(),
        ["sparql"] => fields_of::<SparqlSection>(),
        ["bacnet"] => fields_of::<BacnetSection>(),
        ["history"] => fields_of::<HistorySection>(),
        ["recording"] => fields_of::<RecordingSection>(),
        ["mqtt"] => fields_of::<MqttSection>(),
        ["bacnet", "alarm_recipient"] => fields_of::<AlarmRecipientCfg>(),
        ["building"] => fields_of::<BuildingCfg>(),
        ["floor"] => fields_of::<FloorCfg>(),
        ["space"] => fields_of::<SpaceCfg>(),
        ["nvr"] | ["dvr"] => fields_of::<RecorderCfg>(),
        ["ip_camera"] => fields_of::<IpCameraCfg>(),
        ["analog_camera"] => fields_of::<AnalogCameraCfg>(),
        ["encoder"] => fields_of::<EncoderCfg>(),
        ["ups"] => fields_of::<UpsCfg>(),
        ["poe_switch"] => fields_of::<PoeSwitchCfg>(),
        ["ntp_server"] => fields_of::<NtpServerCfg>(),
        ["pdu"] | ["vms_server"] | ["workstation"] => fields_of::<PlainEquipCfg>(),
        ["point"] => fields_of::<PointOverrideCfg>(),
        ["user"] => fields_of::<UserCfg>(),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keys_come_from_the_struct() {
        let keys = keys_of_table(&["nvr"]);
        assert!(keys.contains(&"channels"));
        assert!(keys.contains(&"fed_by"));
        assert!(!keys.contains(&"password"));
    }
}
