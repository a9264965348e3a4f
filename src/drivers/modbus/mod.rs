//! Modbus TCP UPS monitoring: each UPS of the site with a `modbus`
//! endpoint is polled through its register map (built-in or a file), with
//! one task and one TCP connection per UPS. The map's registers are read
//! in coalesced blocks; roles become the UPS's points.
//!
//! Faults, as a user sees them:
//! - the UPS stops answering (refused, reset, silent past the call
//!   timeout): `online` goes false and every other point of the UPS goes to
//!   fault, keeping its last value, at the first failed poll; the driver
//!   reconnects with a backoff of at most `MAX_BACKOFF` and the points
//!   recover by themselves;
//! - a block answers with a Modbus exception: only the points read from
//!   that block go to fault; the rest of the UPS carries on;
//! - a register holds a "not available" sentinel (or an unknown status):
//!   that point goes to fault rather than showing a bogus number.
//!
//! Each outage or refusal is logged once when it starts and once when it
//! ends, not at every poll.

pub mod decode;
pub mod encode;
pub mod map;
pub mod plan;
pub mod transport;

use crate::app::App;
use crate::points::{Quality, Value};
use decode::Reading;
use map::{RegisterMap, Role};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use transport::{CallError, Connection};

/// How often each UPS is polled in service.
pub const POLL: Duration = Duration::from_secs(2);
/// Bound on every network call (resolve, connect, each read).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The UPS point (relative to the UPS id) each role feeds.
pub fn point_key(role: Role) -> Option<&'static str> {
    Some(match role {
        Role::OnBattery => "on-battery",
        Role::BatteryCharge => "battery.battery-charge",
        Role::Runtime => "runtime",
        Role::Load => "load",
        Role::InputVoltage => "input-voltage",
        Role::OutputVoltage => "output-voltage",
        Role::BatteryVoltage => "battery.battery-voltage",
        Role::LowBattery => "battery.low-battery",
        Role::ReplaceBattery => "battery.replace-battery",
        Role::Fault => "fault",
        Role::Status => return None,
    })
}

/// One UPS: its map, read plan, point indexes and connection.
pub struct Poller {
    id: String,
    address: String,
    unit: u8,
    map: RegisterMap,
    reads: Vec<plan::Read>,
    /// Roles that the status enum supplies.
    derived: Vec<Role>,
    points: BTreeMap<Role, usize>,
    online: Option<usize>,
    conn: Option<Connection>,
    timeout: Duration,
    /// The current outage has been logged.
    down_logged: bool,
    /// Per read: its current refusal has been logged.
    refusal_logged: Vec<bool>,
}

impl Poller {
    /// The poller of UPS `equipment_id`, or why there is none.
    pub fn new(app: &App, equipment_id: &str) -> anyhow::Result<Self> {
        let e = app
            .site
            .equipment
            .iter()
            .find(|e| e.id == equipment_id)
            .ok_or_else(|| anyhow::anyhow!("no equipment `{equipment_id}`"))?;
        let target = e
            .modbus
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("`{equipment_id}` has no Modbus endpoint"))?;
        let map = map::load(&target.map)?;
        let point = |k: &str| app.points.index_of(&format!("{equipment_id}.{k}"));
        let mut points = BTreeMap::new();
        for role in [
            Role::OnBattery,
            Role::BatteryCharge,
            Role::Runtime,
            Role::Load,
            Role::InputVoltage,
            Role::OutputVoltage,
            Role::BatteryVoltage,
            Role::LowBattery,
            Role::ReplaceBattery,
            Role::Fault,
        ] {
            if let Some(i) = point_key(role).and_then(point) {
                points.insert(role, i);
            }
        }
        let reads = plan::plan(&map, plan::MAX_GAP);
        let derived = if map.register_for(Role::Status).is_some() {
            decode::derived_from_status(&map)
        } else {
            Vec::new()
        };
        Ok(Poller {
            id: equipment_id.into(),
            address: target.address.clone(),
            unit: target.unit,
            refusal_logged: vec![false; reads.len()],
            reads,
            derived,
            map,
            points,
            online: point("online"),
            conn: None,
            timeout: CALL_TIMEOUT,
            down_logged: false,
        })
    }

    /// Polls once: every block is read and its points reported. `Err` when
    /// the UPS could not be reached (its points are then in fault).
    pub async fn poll(&mut self, app: &App) -> Result<(), CallError> {
        if self.conn.is_none() {
            match Connection::connect(&self.address, self.unit, self.timeout).await {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    self.offline(app, &e);
                    return Err(e);
                }
            }
        }
        for i in 0..self.reads.len() {
            let (table, start, count) = {
                let r = &self.reads[i];
                (r.table, r.start, r.count)
            };
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            match conn.read(table, start, count).await {
                Ok(block) => {
                    if std::mem::take(&mut self.refusal_logged[i]) {
                        tracing::info!(ups = %self.id, "UPS answers {table:?} registers {start}..{} again", start + count - 1);
                    }
                    let readings = decode::decode_block(&self.map, &self.reads[i], &block);
                    for (role, reading) in readings {
                        self.put(app, role, reading);
                    }
                }
                Err(e) if e.is_exception() => {
                    // The UPS is up but refuses this block: only its points
                    // are unknown.
                    if !std::mem::replace(&mut self.refusal_logged[i], true) {
                        tracing::warn!(ups = %self.id, address = %self.address, "UPS refuses {table:?} registers {start}..{}: {e}; their points go to fault", start + count - 1);
                    }
                    let roles: Vec<Role> = self.reads[i]
                        .entries
                        .iter()
                        .map(|&k| self.map.registers[k].role)
                        .collect();
                    for role in roles {
                        self.put(app, role, Reading::Unavailable);
                    }
                }
                Err(e) => {
                    // A timeout or a broken connection: the next poll starts
                    // on a fresh connection.
                    if let Some(c) = self.conn.take() {
                        c.close().await;
                    }
                    self.offline(app, &e);
                    return Err(e);
                }
            }
        }
        if let Some(p) = self.online {
            app.points.report(p, Value::Bool(true), Quality::Ok);
        }
        if std::mem::take(&mut self.down_logged) {
            tracing::info!(ups = %self.id, address = %self.address, "UPS answers again");
        }
        Ok(())
    }

    fn put(&self, app: &App, role: Role, reading: Reading) {
        match (role, reading) {
            (Role::Status, Reading::State(s)) => {
                for r in &self.derived {
                    self.report(app, *r, Value::Bool(s.implies(*r)));
                }
            }
            (Role::Status, _) => {
                for r in &self.derived {
                    self.fault(app, *r);
                }
            }
            (_, Reading::Bool(b)) => self.report(app, role, Value::Bool(b)),
            (_, Reading::Number(n)) => self.report(app, role, Value::Number(n)),
            (_, Reading::State(_) | Reading::Unavailable) => self.fault(app, role),
        }
    }

    fn report(&self, app: &App, role: Role, v: Value) {
        if let Some(&p) = self.points.get(&role) {
            app.points.report(p, v, Quality::Ok);
        }
    }

    /// Fault with the last value kept, so a trend shows where it stopped.
    fn fault(&self, app: &App, role: Role) {
        if let Some(&p) = self.points.get(&role) {
            let last = app.points.get(p).map_or(Value::Null, |s| s.value);
            app.points.report(p, last, Quality::Fault);
        }
    }

    fn offline(&mut self, app: &App, e: &CallError) {
        // Offline is a fact the gateway knows; the measurements are not.
        if let Some(p) = self.online {
            app.points.report(p, Value::Bool(false), Quality::Ok);
        }
        for role in self.points.keys() {
            self.fault(app, *role);
        }
        if !std::mem::replace(&mut self.down_logged, true) {
            tracing::warn!(ups = %self.id, address = %self.address, unit = self.unit, "UPS does not answer over Modbus: {e}; its points go to fault until it does");
        } else {
            tracing::debug!(ups = %self.id, "UPS still silent: {e}");
        }
    }
}

/// Starts one polling task per UPS with a Modbus endpoint, every `POLL`.
pub fn spawn(app: &Arc<App>) {
    spawn_every(app, POLL);
}

/// Starts one polling task per UPS with a Modbus endpoint, polling every
/// `every`; after a failure the next attempt waits twice as long as the
/// last, up to `MAX_BACKOFF` (or `every`, if that is longer).
pub fn spawn_every(app: &Arc<App>, every: Duration) {
    for e in app.site.equipment.iter().filter(|e| e.modbus.is_some()) {
        let mut poller = match Poller::new(app, &e.id) {
            Ok(p) => p,
            Err(err) => {
                // `vgw check` reports bad maps; a site that got past it
                // still runs, without this UPS.
                tracing::error!(ups = %e.id, "UPS not polled: {err:#}");
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let mut backoff = every;
            loop {
                let started = tokio::time::Instant::now();
                let wait = match poller.poll(&app).await {
                    Ok(()) => {
                        backoff = every;
                        every
                    }
                    Err(_) => {
                        let w = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF.max(every));
                        w
                    }
                };
                tokio::time::sleep_until(started + wait).await;
            }
        });
    }
}
