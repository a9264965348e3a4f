//! Feeds point history. A historised point (template `his`) is recorded
//! either on every change (the default) or every N seconds
//! (`[[point]] his_interval_s`), and its samples older than its retention
//! are deleted once an hour. After a lag on the change bus the recorder
//! records the current value of every change-recorded point, so a burst can
//! thin the history but never leave a stale last value.

use super::history::{now_ms, to_ms, History, Sample};
use super::{PointEngine, PointState};
use crate::model::Site;
use std::time::{Duration, Instant};

/// How one historised point is recorded.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub interval: Option<Duration>,
    pub retention_days: u32,
}

/// Point index → its policy, for historised points only.
pub fn historised(site: &Site) -> Vec<Option<Policy>> {
    site.points
        .iter()
        .map(|p| {
            p.template.his.then(|| Policy {
                id: p.id.clone(),
                interval: p.his_interval_s.map(|s| Duration::from_secs(u64::from(s))),
                retention_days: p.his_retention_days,
            })
        })
        .collect()
}

const RETENTION_EVERY: Duration = Duration::from_secs(3600);

fn sample(s: &PointState, at_ms: i64) -> Sample {
    Sample {
        ts_ms: at_ms,
        value: s.value,
        quality: s.quality,
    }
}

/// Runs until the bus closes.
pub async fn run(engine: &PointEngine, his: &[Option<Policy>], history: &History) {
    let mut rx = engine.subscribe();
    let by_change = |i: usize| {
        his.get(i)
            .and_then(|p| p.as_ref())
            .filter(|p| p.interval.is_none())
    };
    // Interval points: when each is next due.
    let mut due: Vec<(usize, Duration, Instant)> = his
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.as_ref()?.interval?, Instant::now())))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            change = engine.next_change(&mut rx) => match change {
                Some(c) => {
                    if let Some(p) = by_change(c.point) {
                        history.record(&p.id, Sample { ts_ms: to_ms(c.at), value: c.value, quality: c.quality });
                    }
                }
                None if rx.is_closed() => return,
                None => {
                    tracing::warn!("history fell behind the change bus; recording a snapshot");
                    for (i, s) in engine.snapshot().iter().enumerate() {
                        if let Some(p) = by_change(i) {
                            history.record(&p.id, sample(s, to_ms(s.changed)));
                        }
                    }
                }
            },
            _ = tick.tick(), if !due.is_empty() => {
                let now = Instant::now();
                for (i, every, next) in due.iter_mut() {
                    if *next <= now {
                        if let (Some(Some(p)), Some(s)) = (his.get(*i), engine.get(*i)) {
                            history.record(&p.id, sample(&s, now_ms()));
                        }
                        *next = now + *every;
                    }
                }
            }
            _ = retention.tick() => {
                let now = now_ms();
                let cutoffs = his
                    .iter()
                    .flatten()
                    .map(|p| (p.id.clone(), now - i64::from(p.retention_days) * 86_400_000))
                    .collect();
                history.prune(cutoffs);
            }
        }
    }
}
