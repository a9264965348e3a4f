//! PullPoint subscriptions: bounded per-subscription queues, a long-poll
//! that wakes as soon as a message arrives, and termination times.
//!
//! Cost: a subscription is a queue, a `Notify` and a few fields; nothing
//! runs per subscription while idle, so hundreds of devices each with an
//! open PullPoint cost no threads or tasks (only the parked HTTP requests).

use super::topics::{Topic, TopicFilter};
use super::xml::esc;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Messages kept per subscription; the oldest are dropped beyond this.
pub const QUEUE_CAP: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyOp {
    Initialized,
    Changed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventMsg {
    pub topic: Topic,
    /// Device clock (real clock plus the device's offset).
    pub utc_time: DateTime<Utc>,
    pub op: PropertyOp,
    pub source_value: String,
    pub data_value: String,
}

impl EventMsg {
    /// One wsnt:NotificationMessage (WS-BaseNotification), its Message an
    /// ONVIF tt:Message (Core spec, "Notification structure").
    pub fn to_xml(&self) -> String {
        let (src_name, _, data_name, _) = self.topic.items();
        let op = match self.op {
            PropertyOp::Initialized => "Initialized",
            PropertyOp::Changed => "Changed",
        };
        format!(
            r#"<wsnt:NotificationMessage><wsnt:Topic Dialect="{}">{}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{}" PropertyOperation="{op}"><tt:Source><tt:SimpleItem Name="{src_name}" Value="{}"/></tt:Source><tt:Data><tt:SimpleItem Name="{data_name}" Value="{}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"#,
            super::topics::DIALECT_CONCRETE_SET,
            self.topic.expr(),
            self.utc_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            esc(&self.source_value),
            esc(&self.data_value),
        )
    }
}

pub struct Subscription {
    pub id: u64,
    /// The reference parameter a client must echo as a SOAP header.
    pub key: String,
    pub filter: Option<TopicFilter>,
    state: Mutex<SubState>,
    notify: Notify,
    closed: AtomicBool,
}

struct SubState {
    queue: VecDeque<EventMsg>,
    /// Real-clock instant the subscription ends (rendered with the device offset).
    termination: DateTime<Utc>,
    /// Set when the initial termination time was relative (or absent): each
    /// PullMessages then pushes termination out by this much again (Core
    /// spec, PullPoint: a pull request acts as a keep-alive).
    keepalive: Option<chrono::Duration>,
    dropped: u64,
}

impl Subscription {
    pub fn accepts(&self, topic: Topic) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(topic))
    }

    pub fn push(&self, msg: EventMsg) {
        if !self.accepts(msg.topic) {
            return;
        }
        {
            let mut st = self.state.lock().unwrap();
            if st.queue.len() >= QUEUE_CAP {
                st.queue.pop_front();
                st.dropped += 1;
            }
            st.queue.push_back(msg);
        }
        // notify_one keeps a permit when nobody waits, so no wake-up is lost
        // between a pull's empty check and its wait.
        self.notify.notify_one();
    }

    pub fn termination(&self) -> DateTime<Utc> {
        self.state.lock().unwrap().termination
    }

    pub fn set_termination(&self, t: DateTime<Utc>, keepalive: Option<chrono::Duration>) {
        let mut st = self.state.lock().unwrap();
        st.termination = t;
        st.keepalive = keepalive;
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.closed.load(Ordering::Acquire) || self.termination() <= now
    }

    /// Waits until a message is queued, the deadline passes or the
    /// subscription is closed; then takes up to `limit` messages.
    pub async fn pull(&self, limit: usize, wait: std::time::Duration) -> Vec<EventMsg> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut st = self.state.lock().unwrap();
                if let Some(k) = st.keepalive {
                    st.termination = st.termination.max(Utc::now() + k);
                }
                if !st.queue.is_empty() || self.closed.load(Ordering::Acquire) {
                    let n = limit.min(st.queue.len());
                    return st.queue.drain(..n).collect();
                }
            }
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return Vec::new();
            }
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// All PullPoints of one device.
pub struct Subscriptions {
    map: Mutex<HashMap<u64, Arc<Subscription>>>,
    next_id: AtomicU64,
    pub max: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct LimitReached;

impl Subscriptions {
    pub fn new(max: usize) -> Self {
        Subscriptions {
            map: Mutex::default(),
            next_id: AtomicU64::new(1),
            max,
        }
    }

    fn prune(map: &mut HashMap<u64, Arc<Subscription>>, now: DateTime<Utc>) {
        map.retain(|_, s| {
            let keep = !s.expired(now);
            if !keep {
                s.close();
            }
            keep
        });
    }

    pub fn create(
        &self,
        filter: Option<TopicFilter>,
        termination: DateTime<Utc>,
        keepalive: Option<chrono::Duration>,
        initial: Vec<EventMsg>,
    ) -> Result<Arc<Subscription>, LimitReached> {
        let mut map = self.map.lock().unwrap();
        Self::prune(&mut map, Utc::now());
        if map.len() >= self.max {
            return Err(LimitReached);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut key = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        let sub = Arc::new(Subscription {
            id,
            key: key.iter().map(|b| format!("{b:02x}")).collect(),
            filter,
            state: Mutex::new(SubState {
                queue: VecDeque::new(),
                termination,
                keepalive,
                dropped: 0,
            }),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        });
        for m in initial {
            sub.push(m);
        }
        map.insert(id, sub.clone());
        Ok(sub)
    }

    /// A live subscription by id; expired ones are gone.
    pub fn get(&self, id: u64) -> Option<Arc<Subscription>> {
        let mut map = self.map.lock().unwrap();
        Self::prune(&mut map, Utc::now());
        map.get(&id).cloned()
    }

    pub fn remove(&self, id: u64) -> bool {
        let sub = self.map.lock().unwrap().remove(&id);
        match sub {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    pub fn count(&self) -> usize {
        let mut map = self.map.lock().unwrap();
        Self::prune(&mut map, Utc::now());
        map.len()
    }

    pub fn publish(&self, msg: &EventMsg) {
        let subs: Vec<Arc<Subscription>> = self.map.lock().unwrap().values().cloned().collect();
        for s in subs {
            s.push(msg.clone());
        }
    }

    pub fn close_all(&self) {
        for (_, s) in self.map.lock().unwrap().drain() {
            s.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(v: &str) -> EventMsg {
        EventMsg {
            topic: Topic::DigitalInput,
            utc_time: Utc::now(),
            op: PropertyOp::Changed,
            source_value: "DigitalInput_1".into(),
            data_value: v.into(),
        }
    }

    #[tokio::test]
    async fn pull_returns_as_soon_as_a_message_arrives_and_honours_the_limit() {
        let subs = Subscriptions::new(2);
        let s = subs
            .create(
                None,
                Utc::now() + chrono::Duration::seconds(60),
                None,
                vec![msg("a"), msg("b"), msg("c")],
            )
            .unwrap();
        assert_eq!(s.pull(2, Duration::from_secs(5)).await.len(), 2);
        assert_eq!(s.pull(10, Duration::from_secs(5)).await.len(), 1);
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.pull(10, Duration::from_secs(600)).await });
        subs.publish(&msg("d"));
        // Bounded: if the wake-up were lost this would wait 600 s and fail here.
        let got = tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0].data_value, "d");
    }

    #[tokio::test]
    async fn limit_expiry_and_bounded_queue() {
        let subs = Subscriptions::new(2);
        let t = Utc::now() + chrono::Duration::seconds(60);
        let a = subs.create(None, t, None, vec![]).unwrap();
        subs.create(None, t, None, vec![]).unwrap();
        assert_eq!(subs.create(None, t, None, vec![]).err(), Some(LimitReached));
        // An expired subscription frees its slot.
        a.set_termination(Utc::now() - chrono::Duration::seconds(1), None);
        assert!(subs.get(a.id).is_none());
        let c = subs.create(None, t, None, vec![]).unwrap();
        for i in 0..(QUEUE_CAP + 5) {
            c.push(msg(&i.to_string()));
        }
        let got = c.pull(QUEUE_CAP * 2, Duration::from_secs(1)).await;
        assert_eq!(got.len(), QUEUE_CAP);
        assert_eq!(got[0].data_value, "5", "the oldest were dropped");
    }
}
