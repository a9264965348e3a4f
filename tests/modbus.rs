//! The Modbus UPS driver against the simulator, through a real gateway
//! `App` built from the demo site: the points a user sees follow the UPS
//! through a mains failure, go to fault when it stops answering and come
//! back by themselves when it returns. Waits are bounded polls, never
//! fixed sleeps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vgw::points::{Quality, Value};
use vgw::sim::modbus_ups;

const LOW: f64 = modbus_ups::LOW_BATTERY_PCT;

/// The demo site with `ups` pointed at `addr`, its map set to `map`.
fn app_with_ups(ups: &str, addr: SocketAddr, map: &str) -> Arc<vgw::app::App> {
    let mut site = vgw::model::load_site(Path::new("config/demo.toml"), None).unwrap();
    for e in &mut site.equipment {
        if e.id == ups {
            let t = e.modbus.as_mut().expect("demo UPS has a Modbus target");
            t.address = addr.to_string();
            t.map = map.into();
        } else {
            // Only the UPS under test is polled.
            e.modbus = None;
        }
    }
    Arc::new(vgw::app::App::build(site, None).unwrap())
}

struct Points {
    app: Arc<vgw::app::App>,
    ups: String,
}

impl Points {
    fn get(&self, key: &str) -> vgw::points::PointState {
        let i = self
            .app
            .points
            .index_of(&format!("{}.{key}", self.ups))
            .unwrap_or_else(|| panic!("no point {}.{key}", self.ups));
        self.app.points.get(i).unwrap()
    }
    fn num(&self, key: &str) -> f64 {
        match self.get(key).value {
            Value::Number(n) => n,
            v => panic!("{key} is {v:?}"),
        }
    }
    /// Waits (bounded) until `f` holds; the async runtime keeps polling.
    async fn wait_for(&self, what: &str, f: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f(self) {
            assert!(Instant::now() < deadline, "{what} never happened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn is_ok(p: &Points, key: &str) -> bool {
    p.get(key).quality == Quality::Ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apc_ups_points_follow_mains_failure_outage_and_recovery() {
    let sim = modbus_ups::start("127.0.0.1:0".parse().unwrap(), "apc", 1)
        .await
        .unwrap();
    let addr = sim.addr();
    let app = app_with_ups("ups-1", addr, "apc");
    vgw::drivers::modbus::spawn_every(&app, Duration::from_millis(200));
    let p = Points {
        app,
        ups: "ups-1".into(),
    };

    p.wait_for("ups-1 online with a charge", |p| {
        p.get("online").value == Value::Bool(true) && is_ok(p, "battery.battery-charge")
    })
    .await;
    assert_eq!(p.get("on-battery").value, Value::Bool(false));
    assert_eq!(p.num("input-voltage"), 230.0);
    assert_eq!(p.num("output-voltage"), 230.0);
    assert!((p.num("load") - 40.0).abs() < 0.01);
    assert_eq!(p.get("battery.low-battery").value, Value::Bool(false));
    assert_eq!(p.get("fault").value, Value::Bool(false));
    let full = p.num("battery.battery-charge");
    assert!(full > 99.0, "{full}");
    // 100 % at 40 % load: 30 min of runtime in the simulator's model.
    assert!(
        (p.num("runtime") - 30.0).abs() < 0.5,
        "{}",
        p.num("runtime")
    );

    // Mains failure: on battery, mains voltage gone, charge and runtime fall.
    sim.set_mains(false);
    p.wait_for("on battery", |p| {
        p.get("on-battery").value == Value::Bool(true)
    })
    .await;
    let rt0 = p.num("runtime");
    p.wait_for("charge falling", |p| {
        p.num("battery.battery-charge") < full - 0.5 && p.num("runtime") < rt0
    })
    .await;
    assert_eq!(p.num("input-voltage"), 0.0);

    sim.set_alarms(true, false);
    p.wait_for("replace battery", |p| {
        p.get("battery.replace-battery").value == Value::Bool(true)
    })
    .await;

    // The UPS stops answering: offline, the rest in fault with last values.
    sim.stop().await;
    p.wait_for("ups-1 offline", |p| {
        p.get("online").value == Value::Bool(false)
    })
    .await;
    for key in [
        "on-battery",
        "runtime",
        "load",
        "input-voltage",
        "output-voltage",
        "fault",
        "battery.battery-charge",
        "battery.battery-voltage",
        "battery.low-battery",
        "battery.replace-battery",
    ] {
        assert_eq!(p.get(key).quality, Quality::Fault, "{key}");
    }
    assert_eq!(
        p.get("on-battery").value,
        Value::Bool(true),
        "last value kept"
    );

    // Back on the same address: recovers without anyone's help.
    let sim = modbus_ups::start(addr, "apc", 1).await.unwrap();
    p.wait_for("ups-1 back online", |p| {
        p.get("online").value == Value::Bool(true) && is_ok(p, "battery.battery-charge")
    })
    .await;
    assert_eq!(p.get("on-battery").value, Value::Bool(false));
    assert!(is_ok(&p, "runtime") && is_ok(&p, "battery.replace-battery"));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socomec_style_status_enum_drives_on_battery_and_low_battery() {
    let sim = modbus_ups::start("127.0.0.1:0".parse().unwrap(), "socomec", 1)
        .await
        .unwrap();
    let app = app_with_ups("ups-2", sim.addr(), "socomec");
    vgw::drivers::modbus::spawn_every(&app, Duration::from_millis(200));
    let p = Points {
        app,
        ups: "ups-2".into(),
    };
    p.wait_for("ups-2 online", |p| {
        p.get("online").value == Value::Bool(true) && is_ok(p, "on-battery")
    })
    .await;
    assert_eq!(p.get("on-battery").value, Value::Bool(false));
    assert_eq!(p.num("input-voltage"), 230.0);
    // A nearly empty battery under load: on battery, then low battery.
    sim.set_charge(LOW + 2.0);
    sim.set_load(100.0);
    sim.set_mains(false);
    p.wait_for("low battery from the status enum", |p| {
        p.get("on-battery").value == Value::Bool(true)
            && p.get("battery.low-battery").value == Value::Bool(true)
    })
    .await;
    // This map carries whole percent: 24.6 % reads as 25.
    assert!(p.num("battery.battery-charge") <= LOW);
    sim.stop().await;
}

#[tokio::test]
async fn a_unit_the_gateway_does_not_front_never_answers() {
    // A client asking the wrong unit id gets silence, which the driver
    // bounds with its call timeout instead of hanging.
    let sim = modbus_ups::start("127.0.0.1:0".parse().unwrap(), "apc", 7)
        .await
        .unwrap();
    let app = app_with_ups("ups-1", sim.addr(), "apc");
    let mut poller = vgw::drivers::modbus::Poller::new(&app, "ups-1").unwrap();
    let started = Instant::now();
    let e = poller.poll(&app).await.unwrap_err();
    assert!(e.to_string().contains("no answer"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded");
    let i = app.points.index_of("ups-1.online").unwrap();
    assert_eq!(app.points.get(i).unwrap().value, Value::Bool(false));
}

/// The site check names the `[[ups]] map` a user must fix, and carries the
/// map file's own line and key.
#[test]
fn vgw_check_reports_unknown_and_invalid_maps_at_ups_map() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("maps")).unwrap();
    std::fs::write(
        dir.path().join("maps/bad.toml"),
        "[[registers]]\nrole = \"runtime\"\naddress = 128\ntype = \"u24\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("maps/good.toml"),
        "[[registers]]\nrole = \"load\"\naddress = 1\n",
    )
    .unwrap();
    let site = r#"[site]
id = "t"
name = "T"
timezone = "Europe/Berlin"

[[ups]]
id = "ups-1"
modbus = "127.0.0.1:502"
map = "eaton"

[[ups]]
id = "ups-2"
modbus = "127.0.0.1:502"
map = "maps/bad.toml"

[[ups]]
id = "ups-3"
modbus = "127.0.0.1:502"
map = "maps/good.toml"

[[ups]]
id = "ups-4"
map = "maps/missing.toml"
"#;
    let path = dir.path().join("site.toml");
    let errors = match vgw::config::parse(&path, site.to_string()) {
        Err(e) => e.0,
        Ok(_) => panic!("bad maps accepted"),
    };
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let find = |key: &str| {
        errors
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no error at {key}: {text:#?}"))
    };
    let e = find("ups[0].map");
    assert_eq!(e.line, 9);
    assert!(
        e.message.contains("no built-in register map `eaton`"),
        "{e}"
    );
    let e = find("ups[1].map");
    assert_eq!(e.line, 14);
    assert!(
        e.message.contains("bad.toml:4: registers[0].type") && e.message.contains("u24"),
        "{e}"
    );
    let e = find("ups[3].map");
    assert!(e.message.contains("cannot read"), "{e}");
    assert!(
        !errors.iter().any(|e| e.key == "ups[2].map"),
        "a valid map file passes: {text:#?}"
    );
}
