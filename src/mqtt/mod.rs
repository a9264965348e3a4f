//! MQTT publishing (docs/mqtt.md): every point's state retained at
//! `{prefix}/{site}/{equip}/{point}`, `/set` for the points the site lets
//! MQTT write, gateway and device availability, an events topic for alarms
//! and bookmarks, and Home Assistant discovery.
//!
//! The publisher keeps the newest state of each changed point (a set of
//! point numbers, so it is bounded by the site) and a bounded queue of
//! events; while the broker is away nothing else piles up, and after every
//! reconnect it republishes all retained state.

pub mod discovery;
mod link;
pub mod payload;
pub mod topics;

use crate::app::App;
use crate::model::MqttSettings;
use crate::points::{Quality, Value};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use topics::Topics;

/// Counters for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct Stats {
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    pub published: AtomicU64,
    pub events_dropped: AtomicU64,
    pub sets_accepted: AtomicU64,
    pub sets_refused: AtomicU64,
}

/// A running publisher.
pub struct Mqtt {
    pub stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Mqtt {
    /// Publishes `offline`, disconnects cleanly (so the last will is not
    /// sent) and stops, within `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Starts publishing `app`'s points to the broker in `s`.
pub fn spawn(
    app: &Arc<App>,
    s: &MqttSettings,
    login: Option<crate::config::secrets::Credential>,
) -> anyhow::Result<Mqtt> {
    let topics = Topics::new(&s.prefix, &app.site.id, &s.discovery_prefix);
    let (link, incoming) = link::start(s, login, (topics.gateway_status(), "offline"))?;
    let settable: Vec<bool> = app
        .site
        .points
        .iter()
        .map(|p| p.template.writable && s.set_points.iter().any(|g| topics::glob_match(g, &p.id)))
        .collect();
    if !s.set_points.is_empty() && !settable.contains(&true) {
        tracing::warn!(patterns = ?s.set_points, "[mqtt] set_points matches no writable point");
    }
    let stats = Arc::new(Stats::default());
    let (stop, stop_rx) = watch::channel(false);
    let publisher = Publisher {
        app: app.clone(),
        topics,
        settings: s.clone(),
        settable,
        online_point: online_points(app),
        stats: stats.clone(),
        dirty: BTreeSet::new(),
        events: VecDeque::new(),
        announce: false,
    };
    let task = tokio::spawn(publisher.run(link, incoming, stop_rx));
    Ok(Mqtt { stats, stop, task })
}

/// For each point: whether it is its equipment's `online` point (it drives
/// the device's availability topic).
fn online_points(app: &App) -> Vec<bool> {
    app.site.points.iter().map(|p| p.key == "online").collect()
}

struct Publisher {
    app: Arc<App>,
    topics: Topics,
    settings: MqttSettings,
    /// Per point: `/set` is obeyed.
    settable: Vec<bool>,
    online_point: Vec<bool>,
    stats: Arc<Stats>,
    /// Points whose newest state is not on the broker yet.
    dirty: BTreeSet<usize>,
    /// Event payloads not on the broker yet (at most `queue_limit`).
    events: VecDeque<Vec<u8>>,
    /// Discovery configs and availability are due (new connection, or
    /// Home Assistant restarted).
    announce: bool,
}

impl Publisher {
    async fn run(
        mut self,
        link: link::Link,
        mut incoming: mpsc::Receiver<link::Incoming>,
        mut stop: watch::Receiver<bool>,
    ) {
        let app = self.app.clone();
        let mut changes = app.points.subscribe();
        let mut events = self.app.events.subscribe();
        let mut state = link.state.clone();
        let mut seen_connection = 0u64;
        loop {
            let now = *state.borrow_and_update();
            self.stats.connected.store(now.connected, Relaxed);
            self.stats.connections.store(now.connections, Relaxed);
            if now.connected && now.connections != seen_connection {
                seen_connection = now.connections;
                self.on_connect(&link).await;
            }
            if now.connected {
                self.flush(&link, &mut incoming, &stop).await;
            }
            tokio::select! {
                c = app.points.next_change(&mut changes) => match c {
                    Some(c) => { self.dirty.insert(c.point); }
                    // Fell behind the bus: everything may have changed.
                    None => self.dirty.extend(0..app.site.points.len()),
                },
                e = events.recv() => match e {
                    Ok(e) => self.queue_event(serde_json::to_vec(&e).unwrap_or_default()),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.stats.events_dropped.fetch_add(n, Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                Some(m) = incoming.recv() => self.on_message(m),
                r = state.changed() => if r.is_err() { break },
                _ = stop.changed() => break,
            }
        }
        link.close(&self.topics.gateway_status(), Duration::from_secs(3))
            .await;
        self.stats.connected.store(false, Relaxed);
    }

    /// A new connection: the broker may have lost anything (a restarted
    /// broker without persistence), so everything is said again.
    async fn on_connect(&mut self, link: &link::Link) {
        for filter in [self.topics.set_filter(), self.topics.ha_status()] {
            if let Err(e) = link.subscribe(&filter).await {
                tracing::warn!(%filter, "MQTT subscribe failed: {e}");
            }
        }
        self.announce = true;
        self.dirty.extend(0..self.app.site.points.len());
    }

    fn queue_event(&mut self, payload: Vec<u8>) {
        if self.events.len() >= self.settings.queue_limit {
            self.events.pop_front();
            self.stats.events_dropped.fetch_add(1, Relaxed);
        }
        self.events.push_back(payload);
    }

    /// Sends what is due; stops at the first failure (the connection is
    /// going) and keeps the rest for the next connection. A long republish
    /// (every point after a reconnect) still handles `/set` between
    /// messages and gives way to a stop.
    async fn flush(
        &mut self,
        link: &link::Link,
        incoming: &mut mpsc::Receiver<link::Incoming>,
        stop: &watch::Receiver<bool>,
    ) {
        if self.announce {
            if link
                .publish(&self.topics.gateway_status(), b"online".to_vec(), true)
                .await
                .is_err()
            {
                return;
            }
            if self.settings.home_assistant && !self.publish_discovery(link).await {
                return;
            }
            self.announce = false;
        }
        while let Some(&p) = self.dirty.first() {
            if *stop.borrow() {
                return;
            }
            while let Ok(m) = incoming.try_recv() {
                self.on_message(m);
            }
            if self.publish_point(link, p).await.is_err() {
                return;
            }
            self.dirty.pop_first();
        }
        while let Some(e) = self.events.front() {
            if link
                .publish(&self.topics.events(), e.clone(), false)
                .await
                .is_err()
            {
                return;
            }
            self.events.pop_front();
            self.stats.published.fetch_add(1, Relaxed);
        }
    }

    async fn publish_point(&self, link: &link::Link, p: usize) -> Result<(), link::LinkError> {
        let (Some(point), Some(s)) = (self.app.site.points.get(p), self.app.points.get(p)) else {
            return Ok(());
        };
        let unit = point.template.unit.and_then(|u| u.haystack);
        link.publish(
            &self.topics.state(&point.id),
            payload::state(&s, unit),
            true,
        )
        .await?;
        self.stats.published.fetch_add(1, Relaxed);
        if self.online_point[p] {
            let up = s.value == Value::Bool(true) && s.quality != Quality::Fault;
            let word: &[u8] = if up { b"online" } else { b"offline" };
            link.publish(
                &self.topics.device_status(&point.equip),
                word.to_vec(),
                true,
            )
            .await?;
        }
        Ok(())
    }

    async fn publish_discovery(&self, link: &link::Link) -> bool {
        let site = &self.app.site;
        let has_online: std::collections::HashSet<&str> = site
            .points
            .iter()
            .zip(&self.online_point)
            .filter(|(_, o)| **o)
            .map(|(p, _)| p.equip.as_str())
            .collect();
        for (i, p) in site.points.iter().enumerate() {
            let available = has_online.contains(p.equip.as_str());
            let (topic, cfg) =
                discovery::config(site, p, &self.topics, self.settable[i], available);
            if link.publish(&topic, cfg, true).await.is_err() {
                return false;
            }
        }
        true
    }

    fn on_message(&mut self, m: link::Incoming) {
        if m.topic == self.topics.ha_status() {
            if m.payload.trim_ascii() == b"online" {
                tracing::info!("Home Assistant came online: discovery and state again");
                self.announce = true;
                self.dirty.extend(0..self.app.site.points.len());
            }
            return;
        }
        let Some(id) = self.topics.point_of_set(&m.topic) else {
            return;
        };
        let outcome = if m.retain {
            // The broker would replay it at every reconnect and re-command
            // the relay each time.
            Err("a retained /set is not obeyed (it would be replayed at every reconnect): publish it without the retain flag".to_string())
        } else {
            self.apply_set(&id, &m.payload)
        };
        match outcome {
            Ok(v) => {
                self.stats.sets_accepted.fetch_add(1, Relaxed);
                tracing::info!(point = %id, value = ?v, "MQTT set");
            }
            Err(e) => {
                self.stats.sets_refused.fetch_add(1, Relaxed);
                tracing::warn!(point = %id, "MQTT set refused: {e}");
                let refusal = serde_json::json!({
                    "type": "set_refused",
                    "point": id,
                    "error": e,
                    "ts": payload::rfc3339_ms(std::time::SystemTime::now()),
                });
                self.queue_event(refusal.to_string().into_bytes());
            }
        }
    }

    /// A `/set` into the point's priority array at the configured level.
    fn apply_set(&self, id: &str, body: &[u8]) -> Result<Value, String> {
        let p = self
            .app
            .points
            .index_of(id)
            .ok_or_else(|| format!("no point `{id}`"))?;
        if !self.settable[p] {
            return Err(format!(
                "`{id}` is not writable over MQTT (see [mqtt] set_points)"
            ));
        }
        let req = payload::parse_set(body)?;
        self.app
            .points
            .command(
                id,
                self.settings.set_priority,
                req.value,
                "mqtt",
                req.duration,
            )
            .map_err(|e| e.to_string())
    }
}
