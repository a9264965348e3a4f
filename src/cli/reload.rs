//! `SIGHUP` (systemd's `ExecReload`): re-read the site file and apply what
//! can change while the gateway runs, without touching recording:
//! users (a removed or changed user loses its tokens), recording retention
//! limits (enforced at once) and the MQTT connection. Everything else
//! (equipment, points, BACnet, HTTP) is named in the log as waiting for a
//! restart. A file with errors is refused as a whole, each error logged as
//! file:line:key, and the gateway runs on as it was.

use crate::app::App;
use crate::model::MqttSettings;
use crate::video::store::RetentionConfig;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Top-level sections a reload applies (the rest need a restart).
const LIVE_SECTIONS: [&str; 3] = ["user", "recording", "mqtt"];
/// Camera keys a reload applies.
const LIVE_CAMERA_KEYS: [&str; 2] = ["retention_days", "max_gb"];

/// What one reload did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub applied: Vec<String>,
    /// Sections that changed but take effect only after a restart.
    pub restart_needed: Vec<String>,
}

pub struct Reloader {
    app: Arc<App>,
    config: PathBuf,
    data_dir: PathBuf,
    /// The site file as last applied, and what was applied from it.
    text: Mutex<String>,
    retention: Mutex<RetentionConfig>,
    /// `[mqtt]` and the broker login (user, password) in force.
    mqtt_settings: Mutex<MqttApplied>,
    /// False when `--mqtt` set the broker: then the file's `[mqtt]` is not ours to apply.
    mqtt_from_file: bool,
    /// The running publisher, replaced when `[mqtt]` changes.
    pub mqtt: tokio::sync::Mutex<Option<crate::mqtt::Mqtt>>,
}

impl Reloader {
    pub fn new(
        app: Arc<App>,
        config: PathBuf,
        data_dir: PathBuf,
        (mqtt, mqtt_login): (
            Option<crate::mqtt::Mqtt>,
            Option<crate::config::secrets::Credential>,
        ),
        mqtt_from_file: bool,
    ) -> Self {
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        let retention = crate::video::service::store_config(&app.site).retention;
        let mqtt_settings = MqttApplied {
            settings: app.site.settings.mqtt.clone(),
            login: mqtt_login.map(|c| (c.username, c.password)),
        };
        Reloader {
            app,
            config,
            data_dir,
            text: Mutex::new(text),
            retention: Mutex::new(retention),
            mqtt_settings: Mutex::new(mqtt_settings),
            mqtt_from_file,
            mqtt: tokio::sync::Mutex::new(mqtt),
        }
    }

    /// Reloads once; `Err` carries the site file's errors (nothing applied).
    pub async fn reload(&self) -> Result<Outcome, String> {
        let (config, data_dir) = (self.config.clone(), self.data_dir.clone());
        let (text, site) = tokio::task::spawn_blocking(move || {
            let text = std::fs::read_to_string(&config)
                .map_err(|e| format!("{}: {e}", config.display()))?;
            // Read-only numbering: a reload never allocates BACnet numbers.
            let site = super::serve::site_for_export(&config, Some(&data_dir))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((text, site))
        })
        .await
        .map_err(|e| e.to_string())??;
        let mut out = Outcome {
            restart_needed: sections_needing_restart(&lock(&self.text), &text),
            ..Default::default()
        };
        // `vgw run` has no in-memory users (only the demo does, and its
        // site is built in): the file's users are all of them.
        let users = self
            .app
            .auth
            .replace_users(crate::auth::users_of(&site.settings), &[]);
        if !users.is_empty() {
            out.applied.push(format!(
                "users (added {:?}, changed {:?}, removed {:?})",
                users.added, users.changed, users.removed
            ));
        }
        self.apply_retention(&site, &mut out).await;
        self.apply_mqtt(&site, &mut out).await;
        *lock(&self.text) = text;
        Ok(out)
    }

    async fn apply_retention(&self, site: &crate::model::Site, out: &mut Outcome) {
        let new = crate::video::service::store_config(site).retention;
        if *lock(&self.retention) == new {
            return;
        }
        let Some(rec) = self.app.recording.get().cloned() else {
            return;
        };
        let applied = new.clone();
        match tokio::task::spawn_blocking(move || rec.set_retention(applied)).await {
            Ok(Ok(())) => {
                *lock(&self.retention) = new;
                out.applied.push("recording retention".into());
            }
            Ok(Err(e)) => tracing::error!("reload: retention not applied: {e:#}"),
            Err(e) => tracing::error!("reload: retention not applied: {e}"),
        }
    }

    /// Restarts the publisher when `[mqtt]` or the broker login changed.
    /// Only a publisher that started counts as applied, so a reload after
    /// fixing (say) an unreadable CA file tries again.
    async fn apply_mqtt(&self, site: &crate::model::Site, out: &mut Outcome) {
        let new = MqttApplied {
            settings: site.settings.mqtt.clone(),
            login: login_of(&site.settings),
        };
        if !self.mqtt_from_file || *lock(&self.mqtt_settings) == new {
            return;
        }
        let mut running = self.mqtt.lock().await;
        if let Some(old) = running.take() {
            old.shutdown(std::time::Duration::from_secs(3)).await;
        }
        *self.app.mqtt.write().unwrap_or_else(|p| p.into_inner()) = None;
        let login = new
            .login
            .clone()
            .map(|(username, password)| crate::config::secrets::Credential { username, password });
        let started = match &new.settings {
            Some(s) => match crate::mqtt::spawn(&self.app, s, login) {
                Ok(m) => {
                    *self.app.mqtt.write().unwrap_or_else(|p| p.into_inner()) =
                        Some(m.stats.clone());
                    *running = Some(m);
                    true
                }
                Err(e) => {
                    tracing::error!("reload: MQTT is off: {e:#}");
                    false
                }
            },
            None => true,
        };
        if started {
            *lock(&self.mqtt_settings) = new;
            out.applied.push("mqtt".into());
        }
    }
}

/// What MQTT was started with: compared on reload.
#[derive(PartialEq)]
struct MqttApplied {
    settings: Option<MqttSettings>,
    /// (user, password) from the secrets file, so a changed password
    /// reconnects too. Never logged.
    login: Option<(String, String)>,
}

fn login_of(s: &crate::model::Settings) -> Option<(String, String)> {
    let name = s.mqtt.as_ref()?.credential.as_deref()?;
    let secrets = crate::config::secrets::Secrets::load(s.secrets_file.as_deref())
        .inspect_err(|e| tracing::warn!("{e}; MQTT connects without a login"))
        .ok()?;
    secrets.get(name).map(|c| (c.username, c.password))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Top-level sections (`[bacnet]`, `[[nvr]]`, …) that differ between two
/// versions of the site file, leaving out what a reload applies.
pub fn sections_needing_restart(old: &str, new: &str) -> Vec<String> {
    let (Ok(old), Ok(new)) = (old.parse::<toml::Table>(), new.parse::<toml::Table>()) else {
        return vec!["the whole file (it did not parse before)".into()];
    };
    let strip = |mut t: toml::Table| {
        for k in LIVE_SECTIONS {
            t.remove(k);
        }
        if let Some(toml::Value::Array(cams)) = t.get_mut("ip_camera") {
            for c in cams.iter_mut().filter_map(|c| c.as_table_mut()) {
                for k in LIVE_CAMERA_KEYS {
                    c.remove(k);
                }
            }
        }
        t
    };
    let (old, new) = (strip(old), strip(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| match new.get(k).or_else(|| old.get(k)) {
            Some(toml::Value::Array(_)) => format!("[[{k}]]"),
            _ => format!("[{k}]"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sections_a_reload_cannot_apply_need_a_restart() {
        let old = "[site]\nid = \"a\"\n[mqtt]\nbroker = \"mqtt://x\"\n[[ip_camera]]\nid = \"c\"\nretention_days = 3\n[[user]]\nname = \"u\"\n";
        let live = old
            .replace("mqtt://x", "mqtt://y")
            .replace("retention_days = 3", "retention_days = 9")
            .replace("name = \"u\"", "name = \"v\"");
        assert_eq!(sections_needing_restart(old, &live), Vec::<String>::new());
        let moved = old.replace("id = \"c\"", "id = \"d\"") + "[bacnet]\nenabled = false\n";
        assert_eq!(
            sections_needing_restart(old, &moved),
            vec!["[bacnet]".to_string(), "[[ip_camera]]".to_string()]
        );
    }
}
