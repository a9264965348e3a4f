//! One test per config rule: the error names the key and the line a user
//! must fix, in a sentence. Sites are small TOML strings built per test.

use std::path::Path;
use vgw::config::ConfigError;

/// A valid little site; tests append or replace lines to break it.
const BASE: &str = r#"[site]
id = "t"
name = "Test site"
timezone = "Europe/Berlin"

[[building]]
id = "b1"

[[floor]]
id = "f1"
building = "b1"
level = 1

[[space]]
id = "srv"
floor = "f1"
kind = "server_room"

[[ups]]
id = "ups-1"
space = "srv"

[[ntp_server]]
id = "ntp-1"
space = "srv"

[[nvr]]
id = "nvr-1"
space = "srv"
channels = 2
alarm_inputs = 2
alarm_outputs = 1
fed_by = "ups-1"
time_source = "ntp-1"

[[ip_camera]]
id = "cam-1"
space = "srv"
streams_to = "nvr-1"
"#;

/// All errors of a site file: parse, validation and model building.
fn errors(text: &str) -> Vec<ConfigError> {
    match vgw::config::parse(Path::new("site.toml"), text.to_string()) {
        Err(e) => e.0,
        Ok(loaded) => match vgw::model::build::build_with_registry(&loaded, None) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        },
    }
}

/// 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in text"))
}

/// Asserts exactly one error, at `key`, on the line of `needle`, saying `says`.
fn assert_one(text: &str, key: &str, needle: &str, says: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got: {errs:#?}");
    let e = &errs[0];
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.line, line_of(text, needle), "{e}");
    assert!(
        e.message.contains(says),
        "message `{}` lacks `{says}`",
        e.message
    );
    assert_eq!(e.file, "site.toml");
    assert!(
        e.to_string()
            .starts_with(&format!("site.toml:{}: {key}: ", e.line)),
        "{e}"
    );
}

#[test]
fn the_base_site_is_valid() {
    assert_eq!(errors(BASE), Vec::new());
}

#[test]
fn unknown_key_suggests_the_closest() {
    let text = BASE.replace("channels = 2", "chanels = 2\nchannels = 2");
    assert_one(
        &text,
        "nvr[0].chanels",
        "chanels",
        "did you mean `channels`?",
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let text = BASE
        .replace("level = 1", "level = 1\nheight = 3")
        .replace("kind = \"server_room\"", "kind = \"server_room\"\nsize = 4");
    let errs = errors(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["floor[0].height", "space[0].size"]);
}

#[test]
fn inline_password_is_refused_with_a_pointer_to_credentials() {
    let text = BASE.replace(
        "streams_to = \"nvr-1\"",
        "streams_to = \"nvr-1\"\npassword = \"hunter2\"",
    );
    assert_one(
        &text,
        "ip_camera[0].password",
        "hunter2",
        "credential = \"NAME\"",
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let text = BASE.replace("level = 1", "level = = 1");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, line_of(&text, "level = = 1"));
    assert!(
        errs[0].message.starts_with("TOML syntax error"),
        "{}",
        errs[0]
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = BASE.replace("channels = 2", "channels = \"two\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, line_of(&text, "\"two\""));
    assert_eq!(errs[0].key, "nvr[0].channels");
    assert!(errs[0].message.contains("invalid type"), "{}", errs[0]);
}

#[test]
fn duplicate_id_points_at_the_first_use() {
    let text = format!("{BASE}\n[[ip_camera]]\nid = \"nvr-1\"\nspace = \"srv\"\n");
    let errs = errors(&text);
    let e = errs
        .iter()
        .find(|e| e.message.contains("duplicate id"))
        .expect("duplicate reported");
    assert_eq!(e.key, "ip_camera[1].id");
    let first = line_of(&text, "id = \"nvr-1\"");
    assert!(
        e.message.contains(&format!("already used at line {first}")),
        "{e}"
    );
    assert!(e.line > first);
}

#[test]
fn dangling_reference_suggests_an_existing_id() {
    let text = BASE.replace("fed_by = \"ups-1\"", "fed_by = \"ups-l\"");
    assert_one(&text, "nvr[0].fed_by", "ups-l", "`ups-l` does not exist");
    assert!(errors(&text)[0].message.contains("did you mean `ups-1`?"));
}

#[test]
fn camera_cannot_stream_to_a_ups() {
    let text = BASE.replace("streams_to = \"nvr-1\"", "streams_to = \"ups-1\"");
    assert_one(
        &text,
        "ip_camera[0].streams_to",
        "streams_to = \"ups-1\"",
        "which is a UPS",
    );
}

#[test]
fn power_cycle_is_named() {
    let text = format!("{BASE}\n[[pdu]]\nid = \"pdu-1\"\nfed_by = \"pdu-2\"\n\n[[pdu]]\nid = \"pdu-2\"\nfed_by = \"pdu-1\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].message.contains("power cycle"), "{}", errs[0]);
    assert!(errs[0].message.contains("pdu-1") && errs[0].message.contains("pdu-2"));
    assert!(errs[0].key.ends_with(".fed_by"));
}

#[test]
fn more_cameras_than_channels() {
    let text = format!("{BASE}\n[[ip_camera]]\nid = \"cam-2\"\nstreams_to = \"nvr-1\"\n\n[[ip_camera]]\nid = \"cam-3\"\nstreams_to = \"nvr-1\"\n");
    assert_one(
        &text,
        "nvr[0].channels",
        "channels = 2",
        "has 2 channels but 3 video channels stream to it",
    );
}

#[test]
fn analog_camera_straight_to_a_plain_nvr() {
    let text =
        format!("{BASE}\n[[analog_camera]]\nid = \"acam-1\"\nstreams_to = \"nvr-1\" # coax\n");
    assert_one(
        &text,
        "analog_camera[0].streams_to",
        "# coax",
        "cannot be wired straight to `nvr-1`",
    );
}

#[test]
fn analog_camera_on_a_hybrid_recorder_is_fine() {
    let text = format!("{BASE}\n[[analog_camera]]\nid = \"acam-1\"\nstreams_to = \"nvr-1\"\n")
        .replace("channels = 2", "channels = 2\nvariant = \"hybrid\"");
    assert_eq!(errors(&text), Vec::new());
}

#[test]
fn time_source_must_be_an_ntp_server() {
    let text = BASE.replace("time_source = \"ntp-1\"", "time_source = \"cam-1\"");
    assert_one(
        &text,
        "nvr[0].time_source",
        "time_source = \"cam-1\"",
        "`cam-1` is an IP camera, but this must name an NTP server",
    );
}

#[test]
fn bacnet_instance_clash_between_pins() {
    let text = format!(
        "{BASE}\n[[point]]\nid = \"nvr-1.alarm-in-1\"\nbacnet_instance = 7\n\n[[point]]\nid = \"nvr-1.alarm-in-2\"\nbacnet_instance = 7\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "point[1].bacnet_instance");
    assert!(
        errs[0]
            .message
            .contains("binary-input 7 is already pinned to `nvr-1.alarm-in-1`"),
        "{}",
        errs[0]
    );
}

#[test]
fn override_of_a_point_that_does_not_exist() {
    let text = format!("{BASE}\n[[point]]\nid = \"nvr-1.alarm-in-9\"\nname = \"Door\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "point[0].id");
    assert!(
        errs[0].message.contains("no point `nvr-1.alarm-in-9`"),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_time_zone() {
    let text = BASE.replace("Europe/Berlin", "Europe/Hamburg");
    assert_one(
        &text,
        "site.timezone",
        "Europe/Hamburg",
        "not an IANA time zone",
    );
}

#[test]
fn unknown_space_kind_suggests_one() {
    let text = BASE.replace("kind = \"server_room\"", "kind = \"server-room\"");
    assert_one(
        &text,
        "space[0].kind",
        "server-room",
        "did you mean `server_room`?",
    );
}

#[test]
fn ids_must_be_plain() {
    let text = BASE.replace("id = \"cam-1\"", "id = \"cam 1\"");
    assert_one(&text, "ip_camera[0].id", "cam 1", "must be 1-64 letters");
}

#[test]
fn many_mistakes_are_all_reported_in_line_order() {
    let text = BASE
        .replace("Europe/Berlin", "Mars/Olympus")
        .replace("streams_to = \"nvr-1\"", "streams_to = \"ups-1\"")
        .replace("time_source = \"ntp-1\"", "time_source = \"nope\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn vgw_check_exits_non_zero_and_prints_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, BASE.replace("channels = 2", "chanels = 2")).unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, BASE).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vgw"))
        .arg("check")
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:{}: nvr[0].chanels: unknown key",
            bad.display(),
            line_of(BASE, "channels = 2")
        )),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.toml: ok"));
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_vgw"))
        .arg("check")
        .arg(&good)
        .output()
        .unwrap();
    assert!(ok.status.success());
}

#[test]
fn shipped_sites_are_valid() {
    for f in ["config/demo.toml", "config/examples/small.toml"] {
        let site = vgw::model::load_site(Path::new(f), None).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(site.points.len() > 50, "{f} has too few points");
    }
}

#[test]
fn reserved_ids_are_refused() {
    let text = BASE
        .replace("id = \"b1\"\n", "id = \"site\"\n")
        .replace("building = \"b1\"", "building = \"site\"");
    let errs = errors(&text);
    let e = errs
        .iter()
        .find(|e| e.key == "building[0].id")
        .expect("reserved id reported");
    assert!(e.message.contains("reserved"), "{e}");
    assert_eq!(e.line, line_of(&text, "id = \"site\""));
}

#[test]
fn an_operating_range_is_two_numbers() {
    let text = BASE.replace("channels = 2", "channels = 2\noperating_temp = [1, 2, 3]");
    assert_one(
        &text,
        "nvr[0].operating_temp",
        "operating_temp",
        "must be [min, max]",
    );
}

#[test]
fn graph_updates_cannot_be_given_to_viewers() {
    let text = BASE.replace(
        "[[building]]",
        "[sparql]\nupdate_role = \"viewer\"\n\n[[building]]",
    );
    assert_one(
        &text,
        "sparql.update_role",
        "update_role",
        "need `operator` or `admin`",
    );
}

#[test]
fn a_missing_site_table_is_named() {
    let text = BASE.replace(
        "[site]\nid = \"t\"\nname = \"Test site\"\ntimezone = \"Europe/Berlin\"\n",
        "",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.contains("missing field `site`"),
        "{}",
        errs[0]
    );
    assert_eq!(errs[0].key, "");
}

/// Hostile input: thousands of damaged variants of the demo site (lines
/// dropped, duplicated, truncated, bytes flipped) never panic, and every
/// error points at a line that exists.
#[test]
fn damaged_site_files_never_panic_and_errors_point_into_the_file() {
    let demo = std::fs::read_to_string("config/demo.toml").unwrap();
    let lines: Vec<&str> = demo.lines().collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let junk = [
        "=",
        "[[",
        "]]",
        "\"",
        "nvr",
        "-1",
        "1e999",
        "[site]",
        "id = \"nvr-1\"",
        "\u{0}",
        "ü",
        "streams_to = \"ups-1\"",
    ];
    for round in 0..400 {
        let mut ls: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..1 + next(4) {
            let i = next(ls.len());
            match next(5) {
                0 => {
                    ls.remove(i);
                }
                1 => ls.insert(i, ls[next(ls.len())].clone()),
                2 => {
                    let cut = next(ls[i].len() + 1);
                    let cut = (0..=cut)
                        .rev()
                        .find(|c| ls[i].is_char_boundary(*c))
                        .unwrap_or(0);
                    ls[i].truncate(cut);
                }
                3 => ls[i].push_str(junk[next(junk.len())]),
                _ => ls.insert(i, junk[next(junk.len())].to_string()),
            }
        }
        let text = ls.join("\n");
        let n_lines = text.lines().count().max(1);
        for e in errors(&text) {
            assert!(
                e.line >= 1 && e.line <= n_lines + 1,
                "round {round}: line {} outside the file: {e}",
                e.line
            );
            assert!(!e.message.is_empty(), "round {round}: empty message");
        }
    }
}

/// Thousands of mistakes in a large file are all reported, each located.
/// (Also exercises the locator and did-you-mean at a size where a scan per
/// error would be quadratic.)
#[test]
fn a_large_file_full_of_mistakes_reports_every_one() {
    let mut text = BASE.replace("channels = 2", "channels = 1024");
    for i in 0..5000 {
        text.push_str(&format!(
            "\n[[ip_camera]]\nid = \"bulk-{i}\"\ntime_source = \"ntp-9\"\n"
        ));
    }
    let errs = errors(&text);
    assert_eq!(errs.len(), 5000);
    assert!(errs
        .iter()
        .all(|e| e.key.ends_with(".time_source") && e.message.contains("`ntp-9` does not exist")));
    let last = errs.last().unwrap();
    assert_eq!(
        last.line,
        text.lines().count(),
        "the last camera's time_source is the file's last line"
    );
}

#[test]
fn bacnet_addresses_must_be_ipv4_addr_port() {
    let text = format!("{BASE}[bacnet]\nlisten = \"localhost:47808\"\n");
    assert_one(
        &text,
        "bacnet.listen",
        "localhost",
        "not an IPv4 `ADDR:PORT`",
    );
    let text = format!("{BASE}[bacnet]\nbroadcast = \"10.0.0.255:47808\"\n");
    assert_one(
        &text,
        "bacnet.broadcast",
        "10.0.0.255",
        "not an IPv4 address",
    );
}

#[test]
fn alarm_recipients_need_one_target_and_an_existing_class() {
    let text = format!(
        "{BASE}[bacnet]\n[[bacnet.alarm_recipient]]\naddress = \"10.0.0.5:47808\"\ndevice = 7\n"
    );
    assert_one(
        &text,
        "bacnet.alarm_recipient[0]",
        "[[bacnet.alarm_recipient]]",
        "exactly one of",
    );
    let text = format!("{BASE}[bacnet]\n[[bacnet.alarm_recipient]]\ndevice = 7\nclasses = [3]\n");
    assert_one(
        &text,
        "bacnet.alarm_recipient[0].classes",
        "classes",
        "notification class 3 does not exist",
    );
}

#[test]
fn history_settings_only_on_historised_points() {
    let text = format!("{BASE}[[point]]\nid = \"cam-1.last-frame-age\"\nhis_interval_s = 60\n");
    assert_one(
        &text,
        "point[0].his_interval_s",
        "his_interval_s",
        "keeps no history",
    );
    let text = format!("{BASE}[[point]]\nid = \"cam-1.online\"\nhis_retention_days = 0\n");
    assert_one(
        &text,
        "point[0].his_retention_days",
        "his_retention_days",
        "at least 1 day",
    );
    let text = format!("{BASE}[history]\nretention_days = 0\n");
    assert_one(
        &text,
        "history.retention_days",
        "retention_days",
        "at least 1 day",
    );
}

#[test]
fn an_onvif_address_must_be_a_device_service_url() {
    let text = BASE.replace(
        "time_source = \"ntp-1\"\n",
        "time_source = \"ntp-1\"\nonvif = \"10.0.0.5:80\"\n",
    );
    assert_one(&text, "nvr[0].onvif", "onvif =", "not an http(s) URL");
    let ok = BASE.replace(
        "time_source = \"ntp-1\"\n",
        "time_source = \"ntp-1\"\nonvif = \"http://10.0.0.5/onvif/device_service\"\n",
    );
    assert_eq!(errors(&ok), Vec::new());
}

#[test]
fn an_alarm_input_mapping_names_a_known_class_state_and_cameras() {
    let map = |body: &str| format!("{BASE}\n[[point]]\nid = \"nvr-1.alarm-in-1\"\n{body}\n");
    assert_eq!(
        errors(&map(
            "brick_class = \"Contact_Sensor\"\nnormal = \"active\"\nnotification_class = 2\ncameras = [\"cam-1\"]"
        )),
        Vec::new()
    );
    let t = map("brick_class = \"Contact_Sensr\"");
    assert_one(
        &t,
        "point[0].brick_class",
        "Contact_Sensr",
        "did you mean `Contact_Sensor`?",
    );
    let t = map("normal = \"closed\"");
    assert_one(&t, "point[0].normal", "closed", "expected `inactive`");
    let t = map("notification_class = 7");
    assert_one(&t, "point[0].notification_class", "= 7", "does not exist");
    let t = map("cameras = [\"cam-9\"]");
    assert_one(&t, "point[0].cameras", "cam-9", "no camera `cam-9`");
    // Only alarm inputs take a class or a normal state.
    let t = format!("{BASE}\n[[point]]\nid = \"nvr-1.online\"\nbrick_class = \"Contact_Sensor\"\n");
    assert_one(
        &t,
        "point[0].brick_class",
        "Contact_Sensor",
        "only alarm inputs",
    );
}

#[test]
fn a_normally_active_input_alarms_when_it_opens() {
    let text = format!(
        "{BASE}\n[[point]]\nid = \"nvr-1.alarm-in-2\"\nnormal = \"active\"\nnotification_class = 2\n"
    );
    let loaded = vgw::config::parse(Path::new("site.toml"), text).unwrap();
    let site = vgw::model::build::build_with_registry(&loaded, None).unwrap();
    let p = site.point("nvr-1.alarm-in-2").unwrap();
    assert_eq!(
        vgw::points::alarms::definition(p),
        Some(vgw::points::alarms::Definition::ChangeOfState {
            alarm_value: false,
            class: 2
        })
    );
}

#[test]
fn mqtt_settings_are_checked_where_they_are_written() {
    let mqtt = |body: &str| format!("{BASE}\n[mqtt]\n{body}\n");
    assert_eq!(
        errors(&mqtt(
            "broker = \"mqtts://broker.example:8883\"\nca_file = \"ca.pem\"\nset_points = [\"nvr-1.alarm-out-*\"]\nset_priority = 8"
        )),
        Vec::new()
    );
    assert_one(
        &mqtt("broker = \"tcp://broker:1883\""),
        "mqtt.broker",
        "broker =",
        "expected mqtt://",
    );
    assert_one(
        &mqtt("broker = \"mqtt://u:pw@broker\""),
        "mqtt.broker",
        "broker =",
        "name a `credential`",
    );
    assert_one(
        &mqtt("broker = \"mqtt://broker\"\nprefix = \"vgw/#\""),
        "mqtt.prefix",
        "prefix =",
        "without `+`, `#`",
    );
    assert_one(
        &mqtt("broker = \"mqtt://broker\"\nset_priority = 17"),
        "mqtt.set_priority",
        "set_priority =",
        "1..=16",
    );
    assert_one(
        &mqtt("broker = \"mqtt://broker\"\nca_file = \"ca.pem\""),
        "mqtt.ca_file",
        "ca_file =",
        "mqtts://",
    );
    // A misspelt key gets the closest real one.
    let e = errors(&mqtt("broker = \"mqtt://broker\"\nset_point = [\"x\"]"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].to_string().contains("set_points"), "{}", e[0]);
}
