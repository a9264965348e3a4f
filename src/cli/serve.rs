//! `vgw run`, `vgw demo`, `vgw export`.

use crate::app::App;
use crate::graph::{formats, vocab};
use crate::model::kinds::Role;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The built-in demo site, compiled in so `vgw demo` works from anywhere.
pub const DEMO_SITE: &str = include_str!("../../config/demo.toml");
pub const DEMO_USER: (&str, &str) = ("demo", "demo");

/// `--bacnet`: an IPv4 `ADDR:PORT`, or `off` (`Ok(None)`).
fn bacnet_arg(arg: &str) -> anyhow::Result<Option<std::net::SocketAddrV4>> {
    if arg == "off" {
        return Ok(None);
    }
    arg.parse().map(Some).map_err(|_| {
        anyhow::anyhow!(
            "--bacnet `{arg}`: expected an IPv4 ADDR:PORT such as 127.0.0.1:47808, or `off`"
        )
    })
}

pub fn run(
    config: &Path,
    data_dir: &Path,
    http: Option<String>,
    bacnet: Option<String>,
    mqtt: Option<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let mut site =
        crate::model::load_site(config, Some(data_dir)).map_err(|e| anyhow::anyhow!("{e}"))?;
    mqtt_arg(&mut site, mqtt.as_deref())?;
    let mqtt_overridden = mqtt.is_some();
    let listen = http
        .or_else(|| site.settings.http_listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let bacnet = match bacnet {
        Some(arg) => bacnet_arg(&arg)?,
        None => site
            .settings
            .bacnet
            .enabled
            .then_some(site.settings.bacnet.listen),
    };
    // A reload re-reads the file; with --mqtt the command line owns MQTT
    // and a reload leaves it alone.
    let reload = Reload {
        config: config.to_path_buf(),
        mqtt_from_file: !mqtt_overridden,
    };
    start(site, &listen, bacnet, data_dir, Some(reload))
}

/// How `vgw run` reloads its site file on SIGHUP.
struct Reload {
    config: PathBuf,
    mqtt_from_file: bool,
}

pub fn demo(
    data_dir: Option<PathBuf>,
    http: &str,
    bacnet: &str,
    mqtt: Option<&str>,
) -> anyhow::Result<()> {
    let bacnet = bacnet_arg(bacnet)?;
    let data_dir = data_dir.unwrap_or_else(default_demo_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let loaded = crate::config::parse(Path::new("config/demo.toml"), DEMO_SITE.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut site = crate::model::build::build_with_registry(&loaded, Some(&data_dir))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    site.settings.anonymous_read = true;
    mqtt_arg(&mut site, mqtt)?;
    if let Some(m) = &mut site.settings.mqtt {
        // The demo's relays may be switched from MQTT (and Home Assistant).
        m.set_points = vec!["*.alarm-out-*".into()];
    }
    start(site, http, bacnet, &data_dir, None)
}

/// `--mqtt URL` publishes to that broker (over `[mqtt] broker`); `off`
/// turns MQTT off.
fn mqtt_arg(site: &mut crate::model::Site, arg: Option<&str>) -> anyhow::Result<()> {
    match arg {
        None => Ok(()),
        Some("off") => {
            site.settings.mqtt = None;
            Ok(())
        }
        Some(url) => {
            let ok = url::Url::parse(url).is_ok_and(|u| {
                matches!(u.scheme(), "mqtt" | "mqtts")
                    && u.host().is_some()
                    && u.password().is_none()
            });
            if !ok {
                anyhow::bail!("--mqtt `{url}`: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (login in the secrets file), or `off`");
            }
            let m = site
                .settings
                .mqtt
                .get_or_insert_with(|| crate::model::MqttSettings::new(url, &site.id));
            m.broker = url.to_string();
            Ok(())
        }
    }
}

fn default_demo_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("vgw/demo")
}

/// Runs the gateway on `site`; the demo first starts its simulated field
/// devices and points the site at them.
fn start(
    mut site: crate::model::Site,
    listen: &str,
    bacnet: Option<std::net::SocketAddrV4>,
    data_dir: &Path,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    let demo = reload.is_none();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        // The HTTP port first: the demo's simulators take ephemeral ports,
        // and one of them must not grab the port asked for in the meantime.
        let bound = crate::http::bind(listen, site.settings.tls.as_ref()).await?;
        let devices = if demo {
            Some(Arc::new(
                crate::sim::demo::start(&mut site)
                    .await
                    .context("starting the demo's simulated devices")?,
            ))
        } else {
            None
        };
        let mut app = App::build(site, Some(data_dir))?;
        if demo {
            app.add_memory_user(DEMO_USER.0, DEMO_USER.1, Role::Operator);
        }
        let url = bound.url();
        let app = Arc::new(app);
        let bacnet = match bacnet {
            Some(addr) => Some(crate::bacnet::start(app.clone(), Some(addr)).await?),
            None => None,
        };
        let s = &app.site;
        // The banner goes out in one write whose failure is ignored: a
        // gateway must not die because whoever started it closed stdout.
        use std::fmt::Write as _;
        let mut banner = String::new();
        let _ = writeln!(
            banner,
            "vgw {} — {} ({}): {} equipment, {} points, {} triples, model built in {:.2} s",
            if demo { "demo" } else { "run" },
            s.name,
            s.id,
            s.equipment.len(),
            s.points.len(),
            app.graph.len(),
            app.build_time.as_secs_f64()
        );
        let _ = writeln!(banner, "  Web UI:        {url}/");
        let _ = writeln!(
            banner,
            "  Topology API:  {url}/api/site   {url}/api/equipment"
        );
        let _ = writeln!(
            banner,
            "  SPARQL:        {url}/sparql   (model as Turtle: {url}/sparql/graph)"
        );
        let _ = writeln!(
            banner,
            "  Haystack:      {url}/haystack   (SCRAM login; read, nav, watches, pointWrite, hisRead)"
        );
        match &bacnet {
            Some(b) => {
                let _ = writeln!(
                    banner,
                    "  BACnet/IP:     udp {}   device {}, {} objects (point list: {url}/api/bacnet/ede.csv)",
                    b.listen, b.device_instance, b.objects
                );
            }
            None => {
                let _ = writeln!(banner, "  BACnet/IP:     off");
            }
        }
        if demo {
            let _ = writeln!(
                banner,
                "  Login:         {} / {} (operator, demo only); anonymous read is on",
                DEMO_USER.0, DEMO_USER.1
            );
        } else if s.settings.anonymous_read {
            let _ = writeln!(
                banner,
                "  Access:        anonymous read is on ([gateway] anonymous_read)"
            );
        }
        if let Some(d) = &devices {
            let _ = writeln!(
                banner,
                "  Field devices: {} ONVIF, {} Modbus UPS, {} NTP simulators on loopback, with a scripted scenario (docs/devices.md)",
                d.onvif.len(),
                d.ups.len(),
                d.ntp.len()
            );
            if let Some(c) = &d.cameras {
                let _ = writeln!(
                    banner,
                    "  Cameras:       simulated RTSP at rtsp://{}/h264/N and /h265/N, recorded (GET /api/cameras/cam-001/recordings, docs/recording.md)",
                    c.addr()
                );
            }
            if let Some(a) = d.discovery_addr() {
                let _ = writeln!(banner, "  Discovery:     vgw discover --target {a}");
            }
        }
        if let Some(m) = &s.settings.mqtt {
            let _ = writeln!(
                banner,
                "  MQTT:          {} → {}/{}/# (docs/mqtt.md)",
                crate::config::secrets::url_for_log(&m.broker),
                m.prefix,
                s.id
            );
        }
        let _ = writeln!(banner, "  Data dir:      {}", data_dir.display());
        let _ = writeln!(banner, "Stop with Ctrl-C.");
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(banner.as_bytes()).and_then(|_| out.flush());
        }
        app.spawn_background();
        crate::drivers::ntp::spawn(&app, crate::drivers::ntp::POLL);
        crate::drivers::modbus::spawn(&app);
        // Device logins: the secrets file (read once), or the demo's.
        let secrets =
            crate::config::secrets::Secrets::load(app.site.settings.secrets_file.as_deref())
                .unwrap_or_else(|e| {
                    tracing::warn!("{e}; devices are tried without credentials");
                    Default::default()
                });
        let demo_devices = devices.is_some();
        let credentials = |name: &str| {
            if demo_devices {
                crate::sim::demo::credential(name)
            } else {
                secrets.get(name)
            }
        };
        let onvif = crate::drivers::onvif::spawn(&app, &credentials, Default::default());
        let scenario = devices.as_ref().map(|d| d.run_scenario());
        let recording = start_recording(&app, data_dir, &credentials);
        // The broker login is looked up once, for the publisher and for
        // the reloader to compare against.
        let mqtt_login = app
            .site
            .settings
            .mqtt
            .as_ref()
            .and_then(|s| s.credential.as_deref())
            .and_then(credentials);
        let mqtt = start_mqtt(&app, mqtt_login.clone());
        let (reloader, mqtt) = match reload {
            Some(r) => {
                let reloader = super::reload::Reloader::new(
                    app.clone(),
                    r.config,
                    data_dir.to_path_buf(),
                    (mqtt, mqtt_login),
                    r.mqtt_from_file,
                );
                (Some(Arc::new(reloader)), None)
            }
            None => (None, mqtt),
        };
        let hangups = spawn_reload_on_sighup(reloader.clone());
        let served = crate::http::serve(app, bound).await;
        hangups.abort();
        let mqtt = match &reloader {
            Some(r) => r.mqtt.lock().await.take(),
            None => mqtt,
        };
        // MQTT consumers see the gateway go offline first.
        if let Some(m) = mqtt {
            m.shutdown(std::time::Duration::from_secs(3)).await;
        }
        // Unsubscribe from the devices' PullPoints, as far as they answer.
        onvif.shutdown(std::time::Duration::from_secs(3)).await;
        if let Some(s) = scenario {
            s.abort();
        }
        // Whatever the recorders hold reaches the disk and the index.
        if let Some(r) = recording {
            r.shutdown(std::time::Duration::from_secs(5)).await;
        }
        if let Some(b) = bacnet {
            b.stop().await;
        }
        served
    });
    // A query that outlived its limit may still run on a blocking thread;
    // it must not hold up shutdown.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

/// Reloads the site file on every SIGHUP (`vgw run`); the demo's site is
/// built in, so there it only says so. Without a handler SIGHUP would end
/// the process.
fn spawn_reload_on_sighup(
    reloader: Option<Arc<super::reload::Reloader>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let Some(r) = &reloader else {
                    tracing::info!("SIGHUP: the demo's site is built in; nothing to reload");
                    continue;
                };
                match r.reload().await {
                    Ok(o) => tracing::info!(
                        applied = ?o.applied,
                        restart_needed = ?o.restart_needed,
                        "site file reloaded{}",
                        if o.restart_needed.is_empty() { "" } else { "; some changes wait for a restart" }
                    ),
                    Err(e) => tracing::error!("site file not reloaded, running on as before:\n{e}"),
                }
            }
        }
        #[cfg(not(unix))]
        let _ = reloader;
    })
}

/// Starts the MQTT publisher when a broker is configured; a bad setting
/// (unreadable CA file) is logged and the gateway runs on without MQTT.
fn start_mqtt(
    app: &Arc<App>,
    login: Option<crate::config::secrets::Credential>,
) -> Option<crate::mqtt::Mqtt> {
    let s = app.site.settings.mqtt.as_ref()?;
    if s.credential.is_some() && login.is_none() {
        tracing::warn!(credential = ?s.credential, "[mqtt] credential not in the secrets file; connecting without a login");
    }
    match crate::mqtt::spawn(app, s, login) {
        Ok(m) => {
            *app.mqtt.write().unwrap_or_else(|p| p.into_inner()) = Some(m.stats.clone());
            Some(m)
        }
        Err(e) => {
            tracing::error!("MQTT is off: {e:#}");
            None
        }
    }
}

/// Starts recording every camera that records; a store that cannot open
/// is logged and the gateway runs on without video.
fn start_recording(
    app: &Arc<App>,
    data_dir: &Path,
    credentials: &dyn Fn(&str) -> Option<crate::config::secrets::Credential>,
) -> Option<Arc<crate::video::service::Recording>> {
    if !app.site.settings.recording.enabled {
        return None;
    }
    match crate::video::service::start(app, data_dir, credentials, Default::default()) {
        Ok(r) => {
            let r = Arc::new(r);
            let _ = app.recording.set(r.clone());
            crate::video::service::spawn_health(app, &r);
            Some(r)
        }
        Err(e) => {
            tracing::error!("recording is off: {e:#}");
            None
        }
    }
}

pub fn export(
    config: &Path,
    format: &str,
    output: Option<&Path>,
    data_dir: Option<&Path>,
    graph: &str,
) -> anyhow::Result<()> {
    if format == "ede" || format == "csv" {
        return export_point_list(config, format, output, data_dir);
    }
    let rdf_format = formats::graph_format_by_name(format).ok_or_else(|| {
        anyhow::anyhow!("unknown format `{format}`: use ttl, nt, jsonld, rdfxml, ede or csv")
    })?;
    let graph_iri = match graph {
        "model" => Some(vocab::GRAPH_MODEL),
        "ontology" => Some(vocab::GRAPH_ONTOLOGY),
        "user" if data_dir.is_none() => {
            anyhow::bail!("the user graph lives in a data dir: add --data-dir DIR")
        }
        "user" => Some(vocab::GRAPH_USER),
        "all" => None,
        other => anyhow::bail!("unknown graph `{other}`: use model, ontology, user or all"),
    };
    let site = site_for_export(config, data_dir)?;
    let (store, _) = crate::graph::GraphStore::build(&site, data_dir)?;
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    store.dump(graph_iri, rdf_format, &mut out)?;
    out.flush()?;
    Ok(())
}

/// The site as the running gateway numbers it. Reading the registry without
/// saving keeps the gateway's numbers authoritative: export never allocates
/// numbers into its data dir.
pub(crate) fn site_for_export(
    config: &Path,
    data_dir: Option<&Path>,
) -> anyhow::Result<crate::model::Site> {
    let loaded = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut registry = match data_dir {
        Some(d) => crate::model::instances::InstanceRegistry::open(d)
            .map_err(|e| anyhow::anyhow!(e))?
            .read_only(),
        None => crate::model::instances::InstanceRegistry::ephemeral(),
    };
    crate::model::build(&loaded, &mut registry).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `vgw export --format ede|csv`: the BACnet point list.
fn export_point_list(
    config: &Path,
    format: &str,
    output: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let site = site_for_export(config, data_dir)?;
    let (_, haystack) = crate::graph::GraphStore::build(&site, None)?;
    let plan = crate::bacnet::plan::plan(&site, &haystack);
    if format == "csv" {
        let text = crate::bacnet::ede::plain_csv(&plan);
        return match output {
            Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
            None => {
                use std::io::Write as _;
                std::io::stdout().lock().write_all(text.as_bytes())?;
                Ok(())
            }
        };
    }
    let Some(path) = output else {
        anyhow::bail!(
            "EDE is two files (the point list and its state texts): give -o NAME_EDE.csv"
        );
    };
    let texts = state_texts_path(path);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    std::fs::write(path, crate::bacnet::ede::ede(&plan, &site.name, &today))
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(&texts, crate::bacnet::ede::state_texts(&plan))
        .with_context(|| format!("writing {}", texts.display()))?;
    eprintln!(
        "wrote {} ({} objects) and {}",
        path.display(),
        plan.objects.len(),
        texts.display()
    );
    Ok(())
}

/// `site_EDE.csv` → `site_StateTexts.csv`; anything else gets
/// `_StateTexts.csv` after its stem.
pub fn state_texts_path(ede: &Path) -> PathBuf {
    let name = ede
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("points.csv");
    let stem = name
        .strip_suffix("_EDE.csv")
        .or_else(|| name.strip_suffix(".csv"))
        .unwrap_or(name);
    ede.with_file_name(format!("{stem}_StateTexts.csv"))
}
