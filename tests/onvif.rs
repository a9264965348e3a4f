//! The ONVIF driver against the spec-following ONVIF simulator (src/sim):
//! alarm inputs, relay writes with feedback, clock offset, offline and
//! recovery, HTTP Digest fallback, wrong credentials. The simulator itself
//! is cross-checked by an independent client (tests/interop/test_onvif_sim.py).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vgw::config::secrets::Credential;
use vgw::drivers::onvif::{self, Timing};
use vgw::points::{Quality, Value};
use vgw::sim::onvif as sim;

const USER: &str = "admin";
const PASSWORD: &str = "sim-pass";

fn timing() -> Timing {
    Timing {
        request_timeout: Duration::from_secs(2),
        pull_wait: Duration::from_secs(1),
        subscription_ttl: Duration::from_secs(6),
        clock_every: Duration::from_secs(1),
    }
}

async fn device(auth: sim::AuthMode) -> sim::SimHandle {
    sim::start(
        "127.0.0.1:0".parse().unwrap(),
        sim::DeviceConfig {
            name: "nvr-1".into(),
            username: USER.into(),
            password: PASSWORD.into(),
            inputs: 16,
            relays: 4,
            auth,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The demo site with nvr-1 pointed at `url`, the driver running with
/// `password`, alarms evaluated.
fn gateway(url: &str, password: &'static str) -> (Arc<vgw::app::App>, onvif::OnvifDrivers) {
    let mut site = vgw::model::load_site(Path::new("config/demo.toml"), None).unwrap();
    for e in site.equipment.iter_mut() {
        e.onvif = (e.id == "nvr-1").then(|| url.to_string());
    }
    let app = Arc::new(vgw::app::App::build(site, None).unwrap());
    app.spawn_background();
    let creds = move |_: &str| {
        Some(Credential {
            username: USER.into(),
            password: password.into(),
        })
    };
    let drivers = onvif::spawn(&app, &creds, timing());
    (app, drivers)
}

fn state(app: &vgw::app::App, id: &str) -> vgw::points::PointState {
    app.points
        .get(
            app.points
                .index_of(id)
                .unwrap_or_else(|| panic!("no point {id}")),
        )
        .unwrap()
}

/// Waits (bounded) until `f` holds; the message says what never happened.
async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_contact_closing_reaches_its_point_and_raises_the_alarm() {
    let dev = device(sim::AuthMode::Any).await;
    let (app, _d) = gateway(&dev.device_url(), PASSWORD);
    wait_for("nvr-1 online", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    // The Initialized snapshot gives every input its state at once.
    wait_for("alarm-in-3 initialised", || {
        state(&app, "nvr-1.alarm-in-3").value == Value::Bool(false)
    })
    .await;
    dev.set_input(3, true);
    wait_for("alarm-in-3 active", || {
        state(&app, "nvr-1.alarm-in-3").value == Value::Bool(true)
    })
    .await;
    let p = app.points.index_of("nvr-1.alarm-in-3").unwrap();
    wait_for("the alarm", || {
        app.alarms
            .state(p)
            .is_some_and(|a| a.state == vgw::points::alarms::EventState::Offnormal)
    })
    .await;
    // What the device said about itself is kept for the equipment API.
    let facts = app.onvif_facts.get("nvr-1").unwrap();
    assert_eq!(facts.serial, "SIM-0001");
    assert!(
        facts
            .stream_uri
            .as_deref()
            .is_some_and(|u| u.starts_with("rtsp://")),
        "{facts:?}"
    );
    // Other inputs are untouched.
    assert_eq!(state(&app, "nvr-1.alarm-in-4").value, Value::Bool(false));
    dev.set_input(3, false);
    wait_for("alarm-in-3 back to normal", || {
        state(&app, "nvr-1.alarm-in-3").value == Value::Bool(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_the_alarm_output_switches_the_relay_and_the_feedback_follows() {
    let dev = device(sim::AuthMode::Any).await;
    let (app, _d) = gateway(&dev.device_url(), PASSWORD);
    wait_for("nvr-1 online", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    app.points
        .command("nvr-1.alarm-out-1", 8, Some(Value::Bool(true)), "bms", None)
        .unwrap();
    wait_for("relay 1 on at the device", || dev.relay(1) == Some(true)).await;
    wait_for("feedback on", || {
        state(&app, "nvr-1.alarm-out-state-1").value == Value::Bool(true)
    })
    .await;
    assert_eq!(dev.relay(2), Some(false), "only relay 1 moved");
    assert_eq!(
        state(&app, "nvr-1.alarm-out-1").quality,
        Quality::Overridden,
        "written at 8, carried out: no fault"
    );
    app.points
        .command("nvr-1.alarm-out-1", 8, None, "bms", None)
        .unwrap();
    wait_for("relay 1 off again", || dev.relay(1) == Some(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_answering_faults_its_points_and_recovers() {
    let dev = device(sim::AuthMode::Any).await;
    let (app, _d) = gateway(&dev.device_url(), PASSWORD);
    wait_for("nvr-1 online", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    wait_for("alarm-in-1 initialised", || {
        state(&app, "nvr-1.alarm-in-1").quality == Quality::Ok
    })
    .await;
    dev.set_online(false);
    wait_for("nvr-1 offline", || {
        state(&app, "nvr-1.online").value == Value::Bool(false)
    })
    .await;
    assert_eq!(state(&app, "nvr-1.alarm-in-1").quality, Quality::Fault);
    assert_eq!(
        state(&app, "nvr-1.alarm-out-1").quality,
        Quality::Fault,
        "an output that cannot be carried out shows fault"
    );
    // A write while it is away cannot land; once back, it does.
    app.points
        .command("nvr-1.alarm-out-2", 8, Some(Value::Bool(true)), "bms", None)
        .unwrap();
    dev.set_online(true);
    wait_for("nvr-1 back online", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    wait_for("alarm-in-1 trusted again", || {
        state(&app, "nvr-1.alarm-in-1").quality == Quality::Ok
    })
    .await;
    wait_for("the pending write reaches relay 2", || {
        dev.relay(2) == Some(true)
    })
    .await;
    wait_for("relay 1's fault clears", || {
        state(&app, "nvr-1.alarm-out-1").quality == Quality::Ok
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifting_device_clock_raises_the_time_sync_alarm_and_login_still_works() {
    let dev = device(sim::AuthMode::Any).await;
    dev.set_clock_offset_ms(30_000);
    let (app, _d) = gateway(&dev.device_url(), PASSWORD);
    // WS-Security Created must be the device's time: 30 s off would be
    // refused if the driver did not correct for the skew.
    wait_for("nvr-1 online despite a 30 s skew", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    wait_for("alarm-in-1 initialised", || {
        state(&app, "nvr-1.alarm-in-1").quality == Quality::Ok
    })
    .await;
    let off = match state(&app, "nvr-1.time-offset").value {
        Value::Number(ms) => ms,
        v => panic!("{v:?}"),
    };
    assert!((off - 30_000.0).abs() < 1500.0, "offset {off} ms");
    assert_eq!(
        state(&app, "nvr-1.time-sync-alarm").value,
        Value::Bool(true)
    );
    dev.set_clock_offset_ms(3_000);
    wait_for("3 s of drift still alarms", || {
        matches!(state(&app, "nvr-1.time-offset").value, Value::Number(ms) if (ms - 3000.0).abs() < 1500.0)
    })
    .await;
    assert_eq!(
        state(&app, "nvr-1.time-sync-alarm").value,
        Value::Bool(true)
    );
    dev.set_clock_offset_ms(0);
    wait_for("in sync again", || {
        state(&app, "nvr-1.time-sync-alarm").value == Value::Bool(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_only_speaks_http_digest_is_driven_too() {
    let dev = device(sim::AuthMode::HttpDigestOnly).await;
    let (app, _d) = gateway(&dev.device_url(), PASSWORD);
    wait_for("nvr-1 online over HTTP Digest", || {
        state(&app, "nvr-1.online").value == Value::Bool(true)
    })
    .await;
    dev.set_input(2, true);
    wait_for("alarm-in-2 active", || {
        state(&app, "nvr-1.alarm-in-2").value == Value::Bool(true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_leave_the_device_offline() {
    let dev = device(sim::AuthMode::Any).await;
    let (app, _d) = gateway(&dev.device_url(), "wrong");
    wait_for("nvr-1 marked offline", || {
        state(&app, "nvr-1.online").value == Value::Bool(false)
    })
    .await;
    assert_eq!(dev.subscriptions(), 0, "no subscription without a login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_unsubscribes() {
    let dev = device(sim::AuthMode::Any).await;
    let (app, drivers) = gateway(&dev.device_url(), PASSWORD);
    wait_for("a subscription", || dev.subscriptions() == 1).await;
    drop(app);
    drivers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(dev.subscriptions(), 0);
}

#[tokio::test]
async fn discovery_finds_the_simulated_device_by_unicast_probe() {
    let dev = device(sim::AuthMode::Any).await;
    let d = sim::start_discovery(
        "127.0.0.1:0".parse().unwrap(),
        vec![("Lobby NVR".into(), dev.device_url())],
    )
    .await
    .unwrap();
    let found = onvif::discovery::probe(&[d.addr()], Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name.as_deref(), Some("Lobby NVR"));
    assert_eq!(found[0].xaddrs, vec![dev.device_url()]);
}
