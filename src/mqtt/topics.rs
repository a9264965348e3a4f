//! Topic names, in one place so the publisher, the `/set` handler and the
//! Home Assistant configs can never disagree (docs/mqtt.md lists them).

/// `{prefix}/{site}` and everything below it.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
    discovery_prefix: String,
}

impl Topics {
    pub fn new(prefix: &str, site: &str, discovery_prefix: &str) -> Self {
        Topics {
            base: format!("{prefix}/{site}"),
            discovery_prefix: discovery_prefix.to_string(),
        }
    }

    /// Retained state of point `<equip>.<key>`: `{prefix}/{site}/{equip}/{key}`.
    /// Site ids, equipment ids and point keys are plain (letters, digits,
    /// `-`, `_`), so they are safe as topic levels.
    pub fn state(&self, point_id: &str) -> String {
        let (equip, key) = point_id.split_once('.').unwrap_or((point_id, ""));
        format!("{}/{equip}/{key}", self.base)
    }

    /// Where a point's writes arrive.
    pub fn set(&self, point_id: &str) -> String {
        format!("{}/set", self.state(point_id))
    }

    /// The subscription that receives every `/set`.
    pub fn set_filter(&self) -> String {
        format!("{}/+/+/set", self.base)
    }

    /// The point id a `/set` topic addresses, if it is one of ours.
    pub fn point_of_set(&self, topic: &str) -> Option<String> {
        let rest = topic.strip_prefix(&self.base)?.strip_prefix('/')?;
        let mut levels = rest.split('/');
        let (equip, key, set) = (levels.next()?, levels.next()?, levels.next()?);
        if set != "set" || levels.next().is_some() || equip.is_empty() || key.is_empty() {
            return None;
        }
        Some(format!("{equip}.{key}"))
    }

    /// The gateway's availability (`online`/`offline`, retained; the last
    /// will sets `offline`).
    pub fn gateway_status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// One device's availability, from its `online` point.
    pub fn device_status(&self, equip: &str) -> String {
        format!("{}/{equip}/availability", self.base)
    }

    /// Alarm transitions, acknowledgements, bookmarks (not retained).
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    /// Home Assistant announces itself here (`online`) after a restart.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// `{discovery_prefix}/{component}/{node}/{object}/config`.
    pub fn ha_config(&self, component: &str, node: &str, object: &str) -> String {
        format!(
            "{}/{component}/{node}/{object}/config",
            self.discovery_prefix
        )
    }
}

/// `pattern` matches `id` where each `*` stands for any run of characters.
pub fn glob_match(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || id.len() < first.len() + last.len() || !id.ends_with(last) {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_topics_round_trip_and_foreign_topics_are_refused() {
        let t = Topics::new("vgw", "hq", "homeassistant");
        assert_eq!(t.state("door-1.alarm-out-1"), "vgw/hq/door-1/alarm-out-1");
        assert_eq!(
            t.point_of_set(&t.set("door-1.alarm-out-1")).as_deref(),
            Some("door-1.alarm-out-1")
        );
        for bad in [
            "vgw/hq/door-1/alarm-out-1",
            "vgw/hq/door-1/alarm-out-1/set/x",
            "vgw/other/door-1/alarm-out-1/set",
            "vgw/hqx/door-1/alarm-out-1/set",
            "vgw/hq//alarm-out-1/set",
        ] {
            assert_eq!(t.point_of_set(bad), None, "{bad}");
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("*", "nvr-1.alarm-out-1"));
        assert!(glob_match("nvr-1.alarm-out-*", "nvr-1.alarm-out-12"));
        assert!(glob_match("*.alarm-out-*", "cam-3.alarm-out-1"));
        // `*` is greedy across `-`: the feedback points match this too.
        assert!(glob_match("*.alarm-out-*", "cam-3.alarm-out-state-1"));
        assert!(!glob_match("*.alarm-out-*", "cam-3.alarm-in-1"));
        assert!(glob_match("nvr-1.alarm-out-1", "nvr-1.alarm-out-1"));
        assert!(!glob_match("nvr-1.alarm-out-1", "nvr-1.alarm-out-10"));
        assert!(!glob_match("nvr-*-x", "nvr-1"));
        assert!(!glob_match("a*a", "a"));
    }
}
