use super::*;
use std::path::Path;

fn engine() -> (crate::model::Site, PointEngine) {
    let site = crate::model::load_site(Path::new("config/demo.toml"), None).unwrap();
    let engine = PointEngine::new(&site);
    (site, engine)
}

const RELAY: &str = "nvr-1.alarm-out-1";

#[test]
fn points_start_in_a_flagged_initial_state() {
    let (_, e) = engine();
    let online = e.get(e.index_of("nvr-1.online").unwrap()).unwrap();
    assert_eq!(
        (online.value, online.quality),
        (Value::Null, Quality::Initial)
    );
    assert!(online.priority.is_none());
    let relay = e.get(e.index_of(RELAY).unwrap()).unwrap();
    assert_eq!(
        relay.value,
        Value::Bool(false),
        "the relinquish default is in force"
    );
    assert!(relay.priority.is_some());
}

#[test]
fn the_highest_occupied_level_wins_and_relinquish_falls_back() {
    let (_, e) = engine();
    assert_eq!(
        e.command(RELAY, 16, Some(Value::Bool(false)), "bms", None),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        e.command(RELAY, 8, Some(Value::Bool(true)), "operator", None),
        Ok(Value::Bool(true))
    );
    let s = e.get(e.index_of(RELAY).unwrap()).unwrap();
    assert_eq!(s.quality, Quality::Overridden);
    // A lower priority write does not change what is in force.
    assert_eq!(
        e.command(RELAY, 10, Some(Value::Bool(false)), "bms", None),
        Ok(Value::Bool(true))
    );
    let pa = e.priority_array(RELAY).unwrap();
    assert_eq!(pa.level(8).unwrap().who, "operator");
    assert_eq!(pa.effective(), (Value::Bool(true), Some(8)));
    assert_eq!(
        e.command(RELAY, 8, None, "operator", None),
        Ok(Value::Bool(false))
    );
    assert_eq!(e.priority_array(RELAY).unwrap().effective().1, Some(10));
    e.command(RELAY, 10, None, "bms", None).unwrap();
    e.command(RELAY, 16, None, "bms", None).unwrap();
    let s = e.get(e.index_of(RELAY).unwrap()).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Bool(false), Quality::Ok),
        "back on the default"
    );
    // Level 17 is the relinquish default itself.
    assert_eq!(
        e.command(RELAY, 17, Some(Value::Bool(true)), "admin", None),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        e.get(e.index_of(RELAY).unwrap()).unwrap().quality,
        Quality::Ok
    );
}

#[test]
fn writes_are_refused_with_a_reason() {
    let (_, e) = engine();
    assert_eq!(
        e.command("nope", 8, Some(Value::Bool(true)), "x", None),
        Err(WriteError::UnknownPoint("nope".into()))
    );
    assert_eq!(
        e.command("nvr-1.online", 8, Some(Value::Bool(true)), "x", None),
        Err(WriteError::NotWritable("nvr-1.online".into()))
    );
    assert_eq!(
        e.command(RELAY, 0, Some(Value::Bool(true)), "x", None),
        Err(WriteError::BadLevel(0))
    );
    assert_eq!(
        e.command(RELAY, 18, Some(Value::Bool(true)), "x", None),
        Err(WriteError::BadLevel(18))
    );
    assert!(matches!(
        e.command(RELAY, 8, Some(Value::Number(0.5)), "x", None),
        Err(WriteError::WrongType { .. })
    ));
    // BACnet and Haystack clients write binaries as 1/0 too.
    assert_eq!(
        e.command(RELAY, 8, Some(Value::Number(1.0)), "x", None),
        Ok(Value::Bool(true))
    );
}

#[test]
fn timed_writes_lapse() {
    let (_, e) = engine();
    let mut rx = e.subscribe();
    e.command(
        RELAY,
        8,
        Some(Value::Bool(true)),
        "haystack",
        Some(Duration::from_millis(10)),
    )
    .unwrap();
    assert_eq!(e.expire_writes(Instant::now()), 0, "not yet");
    assert_eq!(e.expire_writes(Instant::now() + Duration::from_secs(1)), 1);
    assert_eq!(
        e.get(e.index_of(RELAY).unwrap()).unwrap().value,
        Value::Bool(false)
    );
    let first = rx.try_recv().unwrap();
    let second = rx.try_recv().unwrap();
    assert_eq!(
        (first.value, second.value),
        (Value::Bool(true), Value::Bool(false))
    );
    assert_eq!(second.seq, first.seq + 1);
}

#[test]
fn reports_publish_only_changes() {
    let (_, e) = engine();
    let p = e.index_of("ups-1.on-battery").unwrap();
    let mut rx = e.subscribe();
    assert!(e.report(p, Value::Bool(false), Quality::Ok));
    assert!(
        !e.report(p, Value::Bool(false), Quality::Ok),
        "same value, no change"
    );
    assert!(
        e.report(p, Value::Bool(false), Quality::Fault),
        "quality alone is a change"
    );
    assert_eq!(rx.try_recv().unwrap().quality, Quality::Ok);
    assert_eq!(rx.try_recv().unwrap().quality, Quality::Fault);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_slow_consumer_never_blocks_and_its_losses_are_counted() {
    let (_, e) = engine();
    let p = e.index_of("nvr-1.temp").unwrap();
    let mut slow = e.subscribe();
    let mut fast = e.subscribe();
    let total = BUS_CAPACITY + 10;
    let mut seen = 0;
    for i in 0..total {
        // Publishing returns at once whatever the consumers do.
        assert!(e.report(p, Value::Number(i as f64), Quality::Ok));
        if e.next_change(&mut fast).await.is_some() {
            seen += 1;
        }
    }
    assert_eq!(seen, total, "a consumer that keeps up sees every change");
    assert_eq!(
        e.next_change(&mut slow).await,
        None,
        "the laggard is told it lagged"
    );
    assert_eq!(e.dropped_changes(), 10);
    // After the lag it continues with the oldest change still buffered,
    // and can resynchronise from the snapshot.
    let next = e.next_change(&mut slow).await.unwrap();
    assert_eq!(next.value, Value::Number(10.0));
    assert_eq!(e.snapshot()[p].value, Value::Number((total - 1) as f64));
}

#[test]
fn an_operator_override_wins_over_the_driver_until_released() {
    let (_, e) = engine();
    let door = e.index_of("nvr-1.alarm-in-1").unwrap();
    e.report(door, Value::Bool(false), Quality::Ok);
    e.override_input("nvr-1.alarm-in-1", Some(Value::Bool(true)))
        .unwrap();
    // The device reports while the override is in force: not shown.
    assert!(!e.report(door, Value::Bool(false), Quality::Fault));
    let s = e.get(door).unwrap();
    assert_eq!(
        (s.value, s.quality),
        (Value::Bool(true), Quality::Overridden)
    );
    // Released: the driver's latest report is back at once.
    e.override_input("nvr-1.alarm-in-1", None).unwrap();
    let s = e.get(door).unwrap();
    assert_eq!((s.value, s.quality), (Value::Bool(false), Quality::Fault));
}

#[test]
fn an_output_the_device_did_not_follow_shows_fault_until_it_does() {
    let (_, e) = engine();
    let relay = e.index_of(RELAY).unwrap();
    e.command(RELAY, 8, Some(Value::Bool(true)), "bms", None)
        .unwrap();
    assert!(e.set_output_fault(relay, true));
    let s = e.get(relay).unwrap();
    assert_eq!((s.value, s.quality), (Value::Bool(true), Quality::Fault));
    // Another command keeps the fault flag until the driver clears it.
    e.command(RELAY, 8, Some(Value::Bool(false)), "bms", None)
        .unwrap();
    assert_eq!(e.get(relay).unwrap().quality, Quality::Fault);
    e.set_output_fault(relay, false);
    assert_eq!(e.get(relay).unwrap().quality, Quality::Overridden);
}
