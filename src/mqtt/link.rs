//! The connection to the broker: the only user of rumqttc. It keeps one
//! persistent session (fixed client id, clean session off) alive with
//! backoff, and tells the publisher when a new connection is up so it can
//! republish its retained state.

use crate::config::secrets::Credential;
use crate::model::MqttSettings;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, Transport};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Requests (publishes, subscriptions) waiting for the connection; the
/// publisher never queues more than this (it keeps the newest state of
/// each point itself and republishes all of it after a reconnect).
pub const REQUEST_CAPACITY: usize = 512;
/// Messages from the broker (`/set`, HA status) waiting to be handled.
const INCOMING_CAPACITY: usize = 256;
/// Bound on one publish or subscribe reaching the request queue.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A message from the broker.
#[derive(Debug)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    /// A retained message (replayed by the broker to every new subscriber).
    pub retain: bool,
}

/// The connection's state as the publisher sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    pub connected: bool,
    /// Connections made so far; a new number is a new connection.
    pub connections: u64,
    /// Whether the broker still had our session (subscriptions) at the
    /// latest connection.
    pub session_present: bool,
}

pub struct Link {
    client: AsyncClient,
    pub state: watch::Receiver<LinkState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the broker connection's queue stayed full for {0:?}")]
    Timeout(Duration),
    #[error("the broker connection is closed")]
    Closed,
}

/// Host, port and TLS of `mqtt://` / `mqtts://` URLs (validated by config).
fn endpoint(broker: &str) -> anyhow::Result<(String, u16, bool)> {
    let u = url::Url::parse(broker)?;
    let tls = u.scheme() == "mqtts";
    let host = u
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("`{broker}` has no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    Ok((host, u.port().unwrap_or(if tls { 8883 } else { 1883 }), tls))
}

/// The system's CA bundle on Debian, used for `mqtts://` without `ca_file`.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Starts connecting (in the background; it retries forever with backoff).
/// `will` is the retained message the broker publishes if we vanish.
pub fn start(
    s: &MqttSettings,
    login: Option<Credential>,
    will: (String, &'static str),
) -> anyhow::Result<(Link, mpsc::Receiver<Incoming>)> {
    let (host, port, tls) = endpoint(&s.broker)?;
    let mut o = MqttOptions::new(&s.client_id, host, port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_max_packet_size(256 * 1024, 256 * 1024)
        .set_last_will(LastWill::new(will.0, will.1, QoS::AtLeastOnce, true));
    if let Some(c) = login {
        o.set_credentials(c.username, c.password);
    }
    if tls {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let path = s
            .ca_file
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from(SYSTEM_CA));
        let ca = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("MQTT CA file {}: {e}", path.display()))?;
        o.set_transport(Transport::tls(ca, None, None));
    }
    let (client, mut eventloop) = AsyncClient::new(o, REQUEST_CAPACITY);
    let (state_tx, state) = watch::channel(LinkState::default());
    let (in_tx, in_rx) = mpsc::channel(INCOMING_CAPACITY);
    let broker = crate::config::secrets::url_for_log(&s.broker);
    let task = tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        let mut connections = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connections += 1;
                    backoff = BACKOFF_MIN;
                    tracing::info!(%broker, session_present = ack.session_present, "MQTT connected");
                    state_tx.send_replace(LinkState {
                        connected: true,
                        connections,
                        session_present: ack.session_present,
                    });
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let msg = Incoming {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    };
                    if in_tx.try_send(msg).is_err() {
                        tracing::warn!(topic = %p.topic, "MQTT message dropped: too many waiting");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let was = state_tx.borrow().connected;
                    state_tx.send_modify(|s| s.connected = false);
                    if was {
                        tracing::warn!(%broker, "MQTT connection lost: {e}");
                    } else {
                        tracing::debug!(%broker, "MQTT connect failed: {e}");
                    }
                    if matches!(e, rumqttc::ConnectionError::RequestsDone) {
                        return; // the client was dropped: we are shutting down
                    }
                    // Jitter spreads the reconnects of many gateways.
                    let jitter = rand::random::<f64>() * 0.5 + 0.75;
                    tokio::time::sleep(backoff.mul_f64(jitter)).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    });
    Ok((
        Link {
            client,
            state,
            task,
        },
        in_rx,
    ))
}

impl Link {
    /// Queues one publish (QoS 1); waits at most `SEND_TIMEOUT` for room.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), LinkError> {
        let send = self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload);
        match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => Err(LinkError::Timeout(SEND_TIMEOUT)),
        }
    }

    pub async fn subscribe(&self, filter: &str) -> Result<(), LinkError> {
        let send = self.client.subscribe(filter, QoS::AtLeastOnce);
        match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => Err(LinkError::Timeout(SEND_TIMEOUT)),
        }
    }

    /// Says goodbye: `offline` on the status topic (retained), then a clean
    /// DISCONNECT (after which the broker does not send the last will).
    /// Everything within `limit`; the connection task ends in any case.
    pub async fn close(self, status_topic: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut state = self.state.clone();
        if state.borrow().connected {
            let bye = async {
                let _ = self.publish(status_topic, b"offline".to_vec(), true).await;
                let _ = self.client.disconnect().await;
                // The event loop reports the closed connection once the
                // DISCONNECT is written.
                while state.borrow().connected {
                    if state.changed().await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout_at(deadline, bye).await;
        }
        // Drop aborts the connection task.
    }
}

impl Drop for Link {
    /// A link dropped any way (a publisher aborted mid-shutdown included)
    /// stops reconnecting: otherwise two connections with one client id
    /// would take the session from each other forever.
    fn drop(&mut self) {
        self.task.abort();
    }
}
