//! Simulated field devices for `vgw demo`, `vgw sim ...` and the tests:
//! an ONVIF device, a Modbus UPS and an NTP server. Each follows its
//! protocol's specification, not our client: the drivers are tested
//! against them and, where one exists, against a third-party peer too.

pub mod demo;
pub mod digest;
pub mod modbus_ups;
pub mod ntp;
pub mod onvif;
pub mod rtsp;
