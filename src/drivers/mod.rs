//! Field drivers: they read devices and report into the point engine.
//!
//! - `ntp`: NTP server monitoring over SNTP.

pub mod ntp;
