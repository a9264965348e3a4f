//! One running gateway: the site model, its RDF store, the Haystack view
//! of the same projection, and the users. Built once at start.

use crate::auth::{scram::ScramCredential, Auth, User};
use crate::graph::{GraphStore, HEntity, HVal};
use crate::model::kinds::Role;
use crate::model::Site;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Queries evaluated at once (the machine has few cores; more would only
/// queue inside the store).
pub const QUERY_SLOTS: usize = 4;

pub struct App {
    pub site: Site,
    pub graph: GraphStore,
    pub haystack: Vec<HEntity>,
    haystack_index: HashMap<String, usize>,
    pub auth: Auth,
    /// Live values and priority arrays of every point.
    pub points: crate::points::PointEngine,
    /// The Haystack API's entity index and login handshakes.
    pub hs: crate::haystack::Haystack,
    /// Event state and acknowledgement of every alarm point.
    pub alarms: crate::points::alarms::Alarms,
    /// The BACnet device, once started (weak: stopping it must not wait
    /// for the app).
    pub bacnet: std::sync::OnceLock<std::sync::Weak<crate::bacnet::Stack>>,
    /// What ONVIF devices reported about themselves (model, firmware,
    /// stream URI), filled in by their driver.
    pub onvif_facts: std::sync::Arc<crate::drivers::onvif::DeviceFacts>,
    /// The recording service, once started (needs a data dir).
    pub recording: std::sync::OnceLock<std::sync::Arc<crate::video::service::Recording>>,
    /// The running MQTT publisher's counters (replaced when a reload
    /// restarts it).
    pub mqtt: std::sync::RwLock<Option<std::sync::Arc<crate::mqtt::Stats>>>,
    /// Point history (only with a data dir).
    pub history: Option<crate::points::history::History>,
    /// Shared with query workers, which hold a permit until evaluation
    /// really ends (even past the HTTP time limit).
    pub query_slots: std::sync::Arc<tokio::sync::Semaphore>,
    pub build_time: std::time::Duration,
    /// Set once the gateway is stopping: endless responses (live streams)
    /// end, so the HTTP server's graceful shutdown can finish.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// When the gateway started (for uptime).
    pub started: Instant,
    /// HTTP requests by API family and status (for `/metrics`).
    pub http_stats: crate::http::metrics::HttpStats,
    /// Alarm transitions, acknowledgements and bookmarks, for consumers
    /// that pass them on (MQTT events, the dashboard). A broadcast: a slow
    /// consumer loses old events, the gateway never waits.
    pub events: tokio::sync::broadcast::Sender<SiteEvent>,
}

/// Events a consumer may fall behind before it loses the oldest.
pub const EVENT_CAPACITY: usize = 1024;

/// Something that happened on the site, as consumers see it (serialised as
/// JSON with a `type` field; point and camera ids, times in ms since 1970).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SiteEvent {
    Alarm {
        point: String,
        from: crate::points::alarms::EventState,
        to: crate::points::alarms::EventState,
        ts: i64,
    },
    Ack {
        point: String,
        who: String,
        ts: i64,
    },
    Bookmark {
        point: String,
        cameras: Vec<String>,
        start: i64,
        end: i64,
        locked_until: i64,
    },
}

impl App {
    pub fn build(site: Site, data_dir: Option<&Path>) -> anyhow::Result<App> {
        let started = Instant::now();
        let (graph, haystack) = GraphStore::build(&site, data_dir)?;
        let haystack_index = haystack
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id.clone(), i))
            .collect();
        let auth = Auth::from_settings(&site.settings);
        let hs = crate::haystack::Haystack::build(&site.id, &haystack);
        let points = crate::points::PointEngine::new(&site);
        let alarms = crate::points::alarms::Alarms::new(&site);
        let history = match data_dir {
            Some(d) => Some(
                crate::points::history::History::open(d)
                    .map_err(|e| anyhow::anyhow!("point history: {e}"))?,
            ),
            None => None,
        };
        Ok(App {
            site,
            graph,
            haystack,
            haystack_index,
            auth,
            points,
            hs,
            alarms,
            bacnet: std::sync::OnceLock::new(),
            onvif_facts: Default::default(),
            recording: std::sync::OnceLock::new(),
            mqtt: std::sync::RwLock::new(None),
            history,
            query_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(QUERY_SLOTS)),
            build_time: started.elapsed(),
            started,
            stopping: tokio::sync::watch::channel(false).0,
            http_stats: Default::default(),
            events: tokio::sync::broadcast::channel(EVENT_CAPACITY).0,
        })
    }

    /// Adds a user that exists only in memory (the demo's fixed login).
    pub fn add_memory_user(&mut self, name: &str, password: &str, role: Role) {
        self.auth.add_user(User {
            name: name.into(),
            role,
            credential: ScramCredential::from_password(password, 4096),
        });
    }

    /// Starts the background work of a running gateway: timed commands
    /// lapse on a 1 s tick, alarms follow point changes (and their time
    /// delays the tick), and point changes are recorded as history.
    pub fn spawn_background(self: &std::sync::Arc<Self>) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = std::time::Instant::now();
                app.points.expire_writes(now);
                for t in app.alarms.tick(now) {
                    app.log_transition(&t);
                }
            }
        });
        let app = self.clone();
        tokio::spawn(async move {
            let mut rx = app.points.subscribe();
            loop {
                let changed: Vec<usize> = match app.points.next_change(&mut rx).await {
                    Some(c) => vec![c.point],
                    None if rx.is_closed() => return,
                    None => (0..app.site.points.len()).collect(),
                };
                for p in changed {
                    let Some(s) = app.points.get(p) else { continue };
                    let now = std::time::Instant::now();
                    if let Some(t) = app.alarms.evaluate(p, s.value, s.quality, now) {
                        app.log_transition(&t);
                    }
                }
            }
        });
        if self.history.is_some() {
            let app = self.clone();
            tokio::spawn(async move {
                let his = crate::points::recorder::historised(&app.site);
                if let Some(h) = &app.history {
                    crate::points::recorder::run(&app.points, &his, h).await;
                }
            });
        }
    }

    fn log_transition(&self, t: &crate::points::alarms::Transition) {
        let id = self.site.points.get(t.point).map_or("?", |p| p.id.as_str());
        tracing::info!(point = %id, from = ?t.from, to = ?t.to, "alarm transition");
        let _ = self.events.send(SiteEvent::Alarm {
            point: id.to_string(),
            from: t.from,
            to: t.to,
            ts: crate::video::store::now_ms(),
        });
        if t.to != crate::points::alarms::EventState::Normal
            && t.to != crate::points::alarms::EventState::Fault
        {
            self.bookmark(t.point);
        }
    }

    /// An alarm was acknowledged (API, BACnet): consumers hear of it.
    pub fn note_ack(&self, point: usize, who: &str) {
        let id = self.site.points.get(point).map_or("?", |p| p.id.as_str());
        let _ = self.events.send(SiteEvent::Ack {
            point: id.to_string(),
            who: who.to_string(),
            ts: crate::video::store::now_ms(),
        });
    }

    /// An alarm of a point linked to cameras (`[[point]] cameras`) marks
    /// their recordings: a bookmark from `pre_alarm_s` before to
    /// `post_alarm_s` after now, locked against retention for `lock_days`.
    fn bookmark(&self, point: usize) {
        let (Some(p), Some(rec)) = (self.site.points.get(point), self.recording.get()) else {
            return;
        };
        if p.cameras.is_empty() {
            return;
        }
        let r = &self.site.settings.recording;
        let now = crate::video::store::now_ms();
        let (start, end) = (
            now - i64::from(r.pre_alarm_s) * 1000,
            now + i64::from(r.post_alarm_s) * 1000,
        );
        let until = now + i64::from(r.lock_days) * 86_400_000;
        let reason = format!("{}{}", crate::http::video::BOOKMARK, p.id);
        let _ = self.events.send(SiteEvent::Bookmark {
            point: p.id.clone(),
            cameras: p.cameras.clone(),
            start,
            end,
            locked_until: until,
        });
        // `on_alarm` cameras write from now until the post-alarm time.
        for c in &p.cameras {
            if let Some(st) = rec.stats(c) {
                use std::sync::atomic::Ordering::Relaxed;
                // A new window starts at this alarm; an open one is extended.
                if st.armed_until_ms.load(Relaxed) < now {
                    st.armed_from_ms.store(now, Relaxed);
                }
                st.armed_until_ms.fetch_max(end, Relaxed);
            }
        }
        let (rec, cameras) = (rec.clone(), p.cameras.clone());
        // An index write: off the async workers.
        tokio::task::spawn_blocking(move || {
            for c in cameras {
                if let Err(e) = rec
                    .store
                    .lock(&c, start, end, &reason, "alarm", Some(until))
                {
                    tracing::warn!(camera = %c, "alarm bookmark not stored: {e}");
                }
            }
        });
    }

    pub fn haystack_entity(&self, id: &str) -> Option<&HEntity> {
        self.haystack_index.get(id).map(|i| &self.haystack[*i])
    }

    /// Haystack tags of one entity as JSON (Haystack 4 JSON encoding).
    pub fn haystack_tags(&self, id: &str) -> Value {
        let Some(h) = self.haystack_entity(id) else {
            return Value::Null;
        };
        let site = &self.site.id;
        let mut m = serde_json::Map::new();
        m.insert(
            "id".into(),
            json!({ "_kind": "ref", "val": format!("{site}.{}", h.id), "dis": h.dis }),
        );
        m.insert("dis".into(), json!(h.dis));
        for (tag, v) in &h.tags {
            let val = match v {
                HVal::Marker => json!({ "_kind": "marker" }),
                HVal::Str(s) => json!(s),
                HVal::Num(n, Some(u)) => json!({ "_kind": "number", "val": n, "unit": u }),
                HVal::Num(n, None) => json!(n),
                HVal::Bool(b) => json!(b),
                HVal::Ref(r) => json!({ "_kind": "ref", "val": format!("{site}.{r}") }),
                HVal::List(items) => json!(items),
            };
            m.insert((*tag).to_string(), val);
        }
        Value::Object(m)
    }
}
