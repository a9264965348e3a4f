//! A simulated UPS on Modbus TCP: a small battery model (mains on/off,
//! charge draining on battery in proportion to the load and recharging on
//! mains, runtime following charge, low battery below a threshold) served
//! as the register image of a map (`apc`, `socomec` or a map file). The
//! image is encoded from the same map format the driver reads, so any map
//! a site can use, the simulator can impersonate; the driver is also
//! tested against a third-party server (pymodbus) written from the spec.

use crate::drivers::modbus::decode::{Block, Reading};
use crate::drivers::modbus::encode::{encode_into, status_for, Image};
use crate::drivers::modbus::map::{self, RegisterMap, Role, Table};
use crate::drivers::modbus::transport::{self, Registers};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(
    about = "Serve a simulated UPS over Modbus TCP",
    long_about = "Serve a simulated UPS over Modbus TCP. Its registers follow a vgw register map \
                  (built-in `apc` or `socomec`, or a map file), so a gateway with \
                  `[[ups]] modbus = \"<listen>\"` and the same `map` reads it. On battery the \
                  charge drains in proportion to the load (about 0.4 %/s at the default 40 % \
                  load); on mains it recharges. With --scenario the mains fail and return \
                  every --period seconds, forever."
)]
pub struct Args {
    /// Address to listen on (port 502 is the Modbus default but needs root).
    #[arg(long, default_value = "127.0.0.1:15020")]
    pub listen: SocketAddr,
    /// Register map: a built-in name (apc, socomec) or the path of a map file.
    #[arg(long, default_value = "apc")]
    pub map: String,
    /// Modbus unit (slave) id to answer; requests for other units get no answer.
    #[arg(long, default_value_t = 1)]
    pub unit: u8,
    /// Loop a scenario: mains failure, battery drain, mains back, recharge.
    #[arg(long)]
    pub scenario: bool,
    /// Seconds each half of the scenario lasts (mains off, then mains on).
    #[arg(long, default_value_t = 60)]
    pub period: u64,
}

/// Battery % per second drained at 100 % load (so at the default 40 % load
/// a full battery lasts about four minutes: long enough to watch, short
/// enough for a demo).
const DRAIN_PER_S_AT_FULL_LOAD: f64 = 1.0;
/// Battery % per second regained on mains.
const RECHARGE_PER_S: f64 = 0.5;
/// Minutes of runtime of a full battery at 100 % load.
const FULL_RUNTIME_MIN_AT_FULL_LOAD: f64 = 12.0;
/// Below this charge the UPS signals low battery.
pub const LOW_BATTERY_PCT: f64 = 25.0;
const TICK: Duration = Duration::from_millis(200);

/// What the simulated UPS is doing now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpsState {
    pub mains: bool,
    /// %
    pub charge: f64,
    /// % of nominal output power
    pub load: f64,
    pub runtime_min: f64,
    pub battery_voltage: f64,
    pub input_voltage: f64,
    pub output_voltage: f64,
    pub low_battery: bool,
    pub replace_battery: bool,
    pub fault: bool,
}

impl UpsState {
    fn new() -> Self {
        let mut s = UpsState {
            mains: true,
            charge: 100.0,
            load: 40.0,
            runtime_min: 0.0,
            battery_voltage: 0.0,
            input_voltage: 0.0,
            output_voltage: 0.0,
            low_battery: false,
            replace_battery: false,
            fault: false,
        };
        s.derive();
        s
    }

    /// Advances the battery by `dt` seconds.
    fn step(&mut self, dt: f64) {
        if self.mains {
            self.charge = (self.charge + RECHARGE_PER_S * dt).min(100.0);
        } else {
            self.charge =
                (self.charge - DRAIN_PER_S_AT_FULL_LOAD * self.load / 100.0 * dt).max(0.0);
        }
        self.derive();
    }

    /// Quantities that follow from mains, charge and load.
    fn derive(&mut self) {
        let load = self.load.max(1.0);
        self.runtime_min = self.charge / 100.0 * FULL_RUNTIME_MIN_AT_FULL_LOAD * 100.0 / load;
        // A 48 V string: about 54.6 V full on float charge, 42 V empty.
        self.battery_voltage = 42.0 + 12.6 * self.charge / 100.0;
        self.input_voltage = if self.mains { 230.0 } else { 0.0 };
        // Output stops when the battery is exhausted.
        self.output_voltage = if self.mains || self.charge > 0.0 {
            230.0
        } else {
            0.0
        };
        self.low_battery = !self.mains && self.charge < LOW_BATTERY_PCT;
    }

    fn reading(&self, role: Role) -> Reading {
        match role {
            Role::OnBattery => Reading::Bool(!self.mains),
            Role::BatteryCharge => Reading::Number(self.charge),
            Role::Runtime => Reading::Number(self.runtime_min),
            Role::Load => Reading::Number(self.load),
            Role::InputVoltage => Reading::Number(self.input_voltage),
            Role::OutputVoltage => Reading::Number(self.output_voltage),
            Role::BatteryVoltage => Reading::Number(self.battery_voltage),
            Role::LowBattery => Reading::Bool(self.low_battery),
            Role::ReplaceBattery => Reading::Bool(self.replace_battery),
            Role::Fault => Reading::Bool(self.fault),
            Role::Status => Reading::State(status_for(!self.mains, self.low_battery, self.fault)),
        }
    }
}

struct Shared {
    map: RegisterMap,
    state: Mutex<UpsState>,
    image: Mutex<Image>,
}

impl Shared {
    /// Re-encodes the whole image from the state, atomically for readers.
    fn refresh(&self) {
        let state = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut image = Image::new();
        for r in &self.map.registers {
            encode_into(&mut image, r, state.reading(r.role));
        }
        *self.image.lock().unwrap_or_else(|e| e.into_inner()) = image;
    }
}

impl Registers for Shared {
    fn read(&self, table: Table, start: u16, count: u16) -> Result<Block, u8> {
        let limit = if table.is_bits() { 2000 } else { 125 };
        if count == 0 || count > limit {
            return Err(3); // ILLEGAL DATA VALUE
        }
        let end = u32::from(start) + u32::from(count);
        if end > 0x1_0000 {
            return Err(2);
        }
        let image = self.image.lock().unwrap_or_else(|e| e.into_inner());
        let values: Vec<Option<u16>> = (u32::from(start)..end)
            .map(|a| image.get(&(table, a as u16)).copied())
            .collect();
        // Like APC cards: a block that holds no defined register is an
        // ILLEGAL DATA ADDRESS; undefined registers inside a block read 0.
        if values.iter().all(Option::is_none) {
            return Err(2);
        }
        let values = values.into_iter().map(|v| v.unwrap_or(0));
        Ok(if table.is_bits() {
            Block::Bits(values.map(|v| v != 0).collect())
        } else {
            Block::Words(values.collect())
        })
    }
}

/// A running simulator. Dropping it (or `stop`) closes the port and every
/// client connection, like pulling the UPS's network cable.
pub struct UpsSimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl UpsSimHandle {
    /// Where it listens (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Mains present (true) or failed (false).
    pub fn set_mains(&self, on: bool) {
        self.update(|s| s.mains = on);
    }

    /// Output load in % of nominal.
    pub fn set_load(&self, pct: f64) {
        self.update(|s| s.load = pct.clamp(0.0, 150.0));
    }

    /// Sets the battery charge in % (to skip ahead in a test or a demo).
    pub fn set_charge(&self, pct: f64) {
        self.update(|s| s.charge = pct.clamp(0.0, 100.0));
    }

    /// Raises or clears the replace-battery and fault alarms.
    pub fn set_alarms(&self, replace_battery: bool, fault: bool) {
        self.update(|s| {
            s.replace_battery = replace_battery;
            s.fault = fault;
        });
    }

    /// The current simulated state.
    pub fn state(&self) -> UpsState {
        *self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops serving; the port is free again when this returns.
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }

    fn update(&self, f: impl FnOnce(&mut UpsState)) {
        {
            let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s);
            s.derive();
        }
        // Visible at the next read, not the next tick.
        self.shared.refresh();
    }
}

impl Drop for UpsSimHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a simulated UPS serving `map` as unit `unit` on `listen`.
pub async fn start(listen: SocketAddr, map: &str, unit: u8) -> anyhow::Result<UpsSimHandle> {
    let map = map::load(map)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        map,
        state: Mutex::new(UpsState::new()),
        image: Mutex::new(Image::new()),
    });
    shared.refresh();
    let registers: Arc<dyn Registers> = shared.clone();
    let server = tokio::spawn(async move {
        if let Err(e) = transport::serve(listener, unit, registers).await {
            tracing::warn!("Modbus UPS simulator stopped: {e}");
        }
    });
    let physics = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                shared
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .step(TICK.as_secs_f64());
                shared.refresh();
            }
        })
    };
    Ok(UpsSimHandle {
        addr,
        shared,
        tasks: vec![server, physics],
    })
}

/// Loops the scenario on `handle`: mains fail for `period` (the battery
/// drains), then return for `period` (it recharges). Abort the returned
/// task to end it.
pub fn run_scenario(handle: &UpsSimHandle, period: Duration) -> tokio::task::JoinHandle<()> {
    let shared = handle.shared.clone();
    tokio::spawn(async move {
        loop {
            for mains in [false, true] {
                {
                    let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.mains = mains;
                    s.derive();
                }
                shared.refresh();
                tracing::info!(
                    mains,
                    "UPS simulator: mains {}",
                    if mains { "back" } else { "failed" }
                );
                tokio::time::sleep(period).await;
            }
        }
    })
}

pub fn run_cli(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sim = start(args.listen, &args.map, args.unit).await?;
        println!(
            "Modbus UPS simulator: map `{}`, unit {}, on {}{}. Stop with Ctrl-C.",
            args.map,
            args.unit,
            sim.addr(),
            if args.scenario {
                format!(" (scenario: mains off/on every {} s)", args.period)
            } else {
                String::new()
            }
        );
        let scenario = args
            .scenario
            .then(|| run_scenario(&sim, Duration::from_secs(args.period.max(1))));
        let _ = tokio::signal::ctrl_c().await;
        if let Some(s) = scenario {
            s.abort();
        }
        sim.stop().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_battery_the_charge_drains_with_load_and_recovers_on_mains() {
        let mut s = UpsState::new();
        s.mains = false;
        s.step(10.0);
        assert!((s.charge - 96.0).abs() < 1e-9, "40 % load drains 0.4 %/s");
        let rt = s.runtime_min;
        s.step(10.0);
        assert!(s.runtime_min < rt, "runtime follows charge");
        s.step(200.0);
        assert!(s.low_battery && s.charge < LOW_BATTERY_PCT);
        s.mains = true;
        s.step(10.0);
        assert!(!s.low_battery);
        assert_eq!(s.input_voltage, 230.0);
    }
}
