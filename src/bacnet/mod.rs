//! The gateway's BACnet/IP device: every point of the site model as a
//! BACnet object, kept in step with the point engine (`docs/bacnet.md`).
//!
//! - `plan`: which objects exist (from the model; stack-independent);
//! - `ede`: the EDE / CSV point list written from the same plan;
//! - `stack`: the only user of the rusty-bacnet crates.
//!
//! Engine → BACnet: one task follows the change bus and puts each change
//! into its object (inputs: value and reliability; outputs: the priority
//! array). BACnet → engine: a write to a binary output goes into the
//! engine's priority array first (`stack::WriteSink`), so a BACnet write and
//! a Haystack or API write land in the same array.

pub mod ede;
pub mod plan;
mod stack;

use crate::app::App;
use crate::points::{PointEngine, Value};
use std::sync::Arc;

pub use stack::Stack;

/// The running BACnet side; dropping it leaves the server running until
/// `stop`.
pub struct Bacnet {
    stack: Arc<Stack>,
    sync: tokio::task::JoinHandle<()>,
    pub listen: std::net::SocketAddrV4,
    pub device_instance: u32,
    pub objects: usize,
}

/// Starts the BACnet/IP server for `app` (address from the config unless
/// `listen` overrides it) and the task that keeps it in step.
pub async fn start(
    app: Arc<App>,
    listen: Option<std::net::SocketAddrV4>,
) -> anyhow::Result<Bacnet> {
    let s = &app.site.settings.bacnet;
    let dcc_password = match &s.dcc_credential {
        None => None,
        Some(name) => {
            let secrets =
                crate::config::secrets::Secrets::load(app.site.settings.secrets_file.as_deref())
                    .map_err(|e| anyhow::anyhow!(e))?;
            let c = secrets.get(name).ok_or_else(|| {
                anyhow::anyhow!("[bacnet] dcc_credential `{name}` is in neither the secrets file nor the environment")
            })?;
            Some(c.password)
        }
    };
    let plan = plan::plan(&app.site, &app.haystack);
    let listen = listen.unwrap_or(s.listen);
    let opts = stack::Options {
        listen,
        broadcast: s.broadcast,
        bbmd: s.bbmd,
        dcc_password,
        recipients: s.recipients.clone(),
    };
    // Subscribe before the snapshot, so no change falls between the two.
    let mut rx = app.points.subscribe();
    let initial: Vec<stack::Initial> = app
        .points
        .snapshot()
        .into_iter()
        .map(|p| stack::Initial {
            value: p.value,
            quality: p.quality,
        })
        .collect();
    let engine_app = app.clone();
    let sink: stack::WriteSink = Arc::new(move |point, level, value, who| {
        let id = &engine_app.site.points[point].id;
        engine_app
            .points
            .command(id, level, value.map(Value::Bool), who, None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let ack_app = app.clone();
    let ack: stack::AckSink = Arc::new(move |point| {
        // The BMS acknowledged; the gateway's list follows (a second
        // acknowledgement of the same transition is no news).
        if ack_app.alarms.acknowledge(point, "bacnet").is_ok() {
            tracing::info!(point = %ack_app.site.points[point].id, "alarm acknowledged over BACnet");
            ack_app.note_ack(point, "bacnet");
        }
    });
    let stack = Arc::new(
        Stack::start(&plan, opts, &initial, stack::Sinks { write: sink, ack })
            .await
            .map_err(|e| anyhow::anyhow!(e))?,
    );
    let _ = app.bacnet.set(Arc::downgrade(&stack));
    let follower = stack.clone();
    let sync = tokio::spawn(async move {
        loop {
            match app.points.next_change(&mut rx).await {
                Some(c) => put(&follower, &app.points, c.point).await,
                None if rx.is_closed() => return,
                None => {
                    tracing::warn!(
                        "BACnet fell behind the change bus; resynchronising every point"
                    );
                    for p in 0..app.site.points.len() {
                        put(&follower, &app.points, p).await;
                    }
                }
            }
        }
    });
    Ok(Bacnet {
        stack,
        sync,
        listen,
        device_instance: plan.device_instance,
        objects: plan.objects.len(),
    })
}

/// Puts the engine's current state of `point` into its object.
async fn put(stack: &Stack, engine: &PointEngine, point: usize) {
    let Some(state) = engine.get(point) else {
        return;
    };
    let result = match &state.priority {
        Some(pa) => {
            let levels: [Value; crate::points::priority::LEVELS] =
                std::array::from_fn(|i| pa.levels()[i].as_ref().map_or(Value::Null, |s| s.value));
            stack.mirror_priority(point, &levels).await
        }
        None => stack.put(point, state.value, state.quality).await,
    };
    if let Err(e) = result {
        tracing::warn!("BACnet: point {point} not updated: {e}");
    }
}

impl Bacnet {
    pub async fn stop(self) {
        self.sync.abort();
        let _ = self.sync.await;
        if let Ok(stack) = Arc::try_unwrap(self.stack) {
            stack.stop().await;
        }
    }
}
