//! Field drivers: they read devices and report into the point engine.
//!
//! - `modbus`: UPS over Modbus TCP, through register-map files.
//! - `ntp`: NTP server monitoring over SNTP.
//! - `onvif`: NVRs, cameras and encoders over ONVIF (SOAP): events, alarm I/O, clock.

pub mod modbus;
pub mod ntp;
pub mod onvif;
