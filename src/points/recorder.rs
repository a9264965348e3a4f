//! Feeds point history from the change bus: every change of a historised
//! point (template `his`) becomes a sample. After a lag on the bus it
//! records the current value of every historised point, so a burst can thin
//! the history but never leave a stale last value.

use super::history::{to_ms, History, Sample};
use super::PointEngine;
use crate::model::Site;

/// Point index → id, for historised points only.
pub fn historised(site: &Site) -> Vec<Option<String>> {
    site.points
        .iter()
        .map(|p| p.template.his.then(|| p.id.clone()))
        .collect()
}

/// Runs until the bus closes.
pub async fn run(engine: &PointEngine, his: &[Option<String>], history: &History) {
    let mut rx = engine.subscribe();
    loop {
        match engine.next_change(&mut rx).await {
            Some(c) => {
                if let Some(Some(id)) = his.get(c.point) {
                    history.record(
                        id,
                        Sample {
                            ts_ms: to_ms(c.at),
                            value: c.value,
                            quality: c.quality,
                        },
                    );
                }
            }
            None if rx.is_closed() => return,
            None => {
                tracing::warn!("history fell behind the change bus; recording a snapshot");
                for (i, s) in engine.snapshot().iter().enumerate() {
                    if let Some(Some(id)) = his.get(i) {
                        history.record(
                            id,
                            Sample {
                                ts_ms: to_ms(s.changed),
                                value: s.value,
                                quality: s.quality,
                            },
                        );
                    }
                }
            }
        }
    }
}
