//! Cross-reference rules over a parsed site file. Each rule adds located
//! errors; none stops the others, so `vgw check` shows every mistake at once.

use super::locate::KeyPath;
use super::schema::*;
use super::{ConfigError, Loaded};
use crate::model::kinds::{EquipKind, Role, RECORDER_VARIANTS, SPACE_KINDS};
use std::collections::{BTreeMap, HashMap};

/// One declared piece of equipment, uniform across config tables.
pub struct Decl<'a> {
    pub kind: EquipKind,
    pub path: KeyPath,
    pub common: CommonRef<'a>,
    pub streams_to: Option<&'a str>,
}

/// Every equipment declaration in file order, tables in `ALL_TABLES` order.
pub fn equipment_decls(f: &SiteFile) -> Vec<Decl<'_>> {
    fn push<'a, T: EquipmentTable>(
        out: &mut Vec<Decl<'a>>,
        table: &str,
        items: &'a [T],
        kind: impl Fn(&'a T) -> EquipKind,
        streams_to: impl Fn(&'a T) -> Option<&'a str>,
    ) {
        for (i, item) in items.iter().enumerate() {
            out.push(Decl {
                kind: kind(item),
                path: KeyPath::root().key(table).index(i),
                common: item.common(),
                streams_to: streams_to(item),
            });
        }
    }
    let mut out = Vec::new();
    let recorder_kind = |r: &RecorderCfg| {
        if r.variant.as_deref() == Some("hybrid") {
            EquipKind::HybridRecorder
        } else {
            EquipKind::Nvr
        }
    };
    push(&mut out, "nvr", &f.nvr, recorder_kind, |r| {
        r.streams_to.as_deref()
    });
    push(
        &mut out,
        "dvr",
        &f.dvr,
        |_| EquipKind::Dvr,
        |r| r.streams_to.as_deref(),
    );
    push(
        &mut out,
        "ip_camera",
        &f.ip_camera,
        |_| EquipKind::IpCamera,
        |c| c.streams_to.as_deref(),
    );
    push(
        &mut out,
        "analog_camera",
        &f.analog_camera,
        |_| EquipKind::AnalogCamera,
        |c| c.streams_to.as_deref(),
    );
    push(
        &mut out,
        "encoder",
        &f.encoder,
        |_| EquipKind::Encoder,
        |e| e.streams_to.as_deref(),
    );
    push(&mut out, "ups", &f.ups, |_| EquipKind::Ups, |_| None);
    push(&mut out, "pdu", &f.pdu, |_| EquipKind::Pdu, |_| None);
    push(
        &mut out,
        "poe_switch",
        &f.poe_switch,
        |_| EquipKind::PoeSwitch,
        |_| None,
    );
    push(
        &mut out,
        "ntp_server",
        &f.ntp_server,
        |_| EquipKind::NtpServer,
        |_| None,
    );
    push(
        &mut out,
        "vms_server",
        &f.vms_server,
        |_| EquipKind::VmsServer,
        |_| None,
    );
    push(
        &mut out,
        "workstation",
        &f.workstation,
        |_| EquipKind::Workstation,
        |_| None,
    );
    out
}

/// What an id names, for "is a …" messages and reference checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Named {
    Building,
    Floor,
    Space,
    Equip(EquipKind),
}

impl Named {
    fn noun(self) -> &'static str {
        match self {
            Named::Building => "a building",
            Named::Floor => "a floor",
            Named::Space => "a space",
            Named::Equip(k) => k.noun(),
        }
    }
}

struct Ctx<'a> {
    loaded: &'a Loaded,
    errors: Vec<ConfigError>,
    ids: HashMap<&'a str, (Named, KeyPath)>,
    /// Did-you-mean scans every id; only the first few dangling references
    /// get one, so a file with thousands of them is still checked quickly.
    suggestions_left: usize,
}

impl Ctx<'_> {
    fn err(&mut self, path: &KeyPath, msg: impl Into<String>) {
        let e = self.loaded.error(path, msg);
        self.errors.push(e);
    }
}

/// Ids become IRIs, Haystack refs and BACnet object names: keep them plain.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn check(loaded: &Loaded) -> Vec<ConfigError> {
    let f = &loaded.file;
    let mut cx = Ctx {
        loaded,
        errors: Vec::new(),
        ids: HashMap::new(),
        suggestions_left: 50,
    };
    check_site(&mut cx, f);
    collect_ids(&mut cx, f);
    check_locations(&mut cx, f);
    let decls = equipment_decls(f);
    for d in &decls {
        check_equipment_refs(&mut cx, d);
    }
    check_power_cycles(&mut cx, &decls);
    check_recorders(&mut cx, f);
    check_channels(&mut cx, f, &decls);
    check_users(&mut cx, f);
    check_ups_maps(&mut cx, f);
    check_onvif_urls(&mut cx, f);
    cx.errors
}

fn check_site(cx: &mut Ctx<'_>, f: &SiteFile) {
    let site = KeyPath::root().key("site");
    if !valid_id(&f.site.id) {
        cx.err(&site.key("id"), format!("site id `{}` must be 1-64 letters, digits, `-` or `_`, starting with a letter or digit", f.site.id));
    }
    if f.site.timezone.parse::<chrono_tz::Tz>().is_err() {
        cx.err(
            &site.key("timezone"),
            format!(
                "`{}` is not an IANA time zone name (for example `Europe/Berlin`)",
                f.site.timezone
            ),
        );
    }
    if let Some(iri) = &f.site.base_iri {
        if oxigraph::model::NamedNode::new(format!("{iri}x")).is_err() {
            cx.err(
                &site.key("base_iri"),
                format!("`{iri}` is not a valid IRI prefix"),
            );
        }
    }
    if let Some(n) = f.gateway.bacnet_device_instance {
        if n > 4_194_302 {
            cx.err(
                &KeyPath::root().key("gateway").key("bacnet_device_instance"),
                format!("BACnet device instance {n} is out of range 0..=4194302"),
            );
        }
    }
    check_bacnet(cx, &f.bacnet);
    check_recording(cx, f);
    check_mqtt(cx, &f.mqtt);
    if f.history.retention_days == Some(0) {
        cx.err(
            &KeyPath::root().key("history").key("retention_days"),
            "retention must be at least 1 day",
        );
    }
    let http = KeyPath::root().key("http");
    if f.http.tls_cert.is_some() != f.http.tls_key.is_some() {
        cx.err(&http, "TLS needs both `tls_cert` and `tls_key`");
    }
    if let Some(r) = &f.sparql.update_role {
        match Role::parse(r) {
            None => cx.err(
                &KeyPath::root().key("sparql").key("update_role"),
                format!("unknown role `{r}`: use operator or admin"),
            ),
            Some(Role::Viewer) => cx.err(
                &KeyPath::root().key("sparql").key("update_role"),
                "viewers only read; graph updates need `operator` or `admin`",
            ),
            Some(_) => {}
        }
    }
}

/// Notification classes the gateway serves (see `bacnet::plan`).
pub const NOTIFICATION_CLASSES: std::ops::RangeInclusive<u32> = 1..=2;

fn check_bacnet(cx: &mut Ctx<'_>, b: &BacnetSection) {
    let at = KeyPath::root().key("bacnet");
    let addr = |cx: &mut Ctx<'_>, key: &str, v: &Option<String>| {
        if let Some(v) = v {
            if v.parse::<std::net::SocketAddrV4>().is_err() {
                cx.err(
                    &at.key(key),
                    format!("`{v}` is not an IPv4 `ADDR:PORT` (for example `0.0.0.0:47808`)"),
                );
            }
        }
    };
    addr(cx, "listen", &b.listen);
    addr(cx, "bbmd", &b.bbmd);
    if let Some(v) = &b.broadcast {
        if v.parse::<std::net::Ipv4Addr>().is_err() {
            cx.err(
                &at.key("broadcast"),
                format!("`{v}` is not an IPv4 address (for example `192.168.1.255`)"),
            );
        }
    }
    if b.bbmd_ttl_s == Some(0) {
        cx.err(
            &at.key("bbmd_ttl_s"),
            "the registration time-to-live must be at least 1 s",
        );
    }
    for (i, r) in b.alarm_recipient.iter().enumerate() {
        let rp = at.key("alarm_recipient").index(i);
        match (&r.address, r.device) {
            (Some(_), Some(_)) | (None, None) => cx.err(
                &rp,
                "an alarm recipient needs exactly one of `address = \"ADDR:PORT\"` or `device = N`",
            ),
            (Some(a), None) if a.parse::<std::net::SocketAddrV4>().is_err() => cx.err(
                &rp.key("address"),
                format!("`{a}` is not an IPv4 `ADDR:PORT` (for example `192.168.1.20:47808`)"),
            ),
            (None, Some(d)) if d > 4_194_302 => cx.err(
                &rp.key("device"),
                format!("BACnet device instance {d} is out of range 0..=4194302"),
            ),
            _ => {}
        }
        for c in &r.classes {
            if !NOTIFICATION_CLASSES.contains(c) {
                cx.err(
                    &rp.key("classes"),
                    format!("notification class {c} does not exist: the gateway serves 1 (security alarms) and 2 (equipment status)"),
                );
            }
        }
    }
}

fn collect_ids<'a>(cx: &mut Ctx<'a>, f: &'a SiteFile) {
    let mut all: Vec<(&'a str, Named, KeyPath)> = Vec::new();
    for (i, b) in f.building.iter().enumerate() {
        all.push((
            &b.id,
            Named::Building,
            KeyPath::root().key("building").index(i),
        ));
    }
    for (i, x) in f.floor.iter().enumerate() {
        all.push((&x.id, Named::Floor, KeyPath::root().key("floor").index(i)));
    }
    for (i, s) in f.space.iter().enumerate() {
        all.push((&s.id, Named::Space, KeyPath::root().key("space").index(i)));
    }
    for d in equipment_decls(f) {
        all.push((d.common.id, Named::Equip(d.kind), d.path.clone()));
    }
    for (id, named, path) in all {
        let id_path = path.key("id");
        if id == "gateway" || id == crate::graph::project::SITE_ENTITY_ID {
            cx.err(
                &id_path,
                format!("`{id}` is reserved (it names the {id} entity itself)"),
            );
            continue;
        }
        if !valid_id(id) {
            cx.err(&id_path, format!("id `{id}` must be 1-64 letters, digits, `-` or `_`, starting with a letter or digit (ids become IRIs, Haystack refs and BACnet names)"));
            continue;
        }
        if let Some((_, first)) = cx.ids.get(id) {
            let line = cx.loaded.locator.line(&first.key("id"));
            cx.err(
                &id_path,
                format!("duplicate id `{id}`: already used at line {line}"),
            );
        } else {
            cx.ids.insert(id, (named, path));
        }
    }
}

/// Checks that `target` names something of an accepted kind.
fn expect_ref(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    target: &str,
    ok: &[Named],
    wanted: &str,
) -> Option<Named> {
    match cx.ids.get(target).map(|(n, _)| *n) {
        None => {
            let hint = if cx.suggestions_left > 0 {
                cx.suggestions_left -= 1;
                let known: Vec<&str> = cx
                    .ids
                    .iter()
                    .filter(|(_, (n, _))| ok.contains(n))
                    .map(|(k, _)| *k)
                    .collect();
                crate::config::did_you_mean(target, &known)
                    .map(|b| format!("; did you mean `{b}`?"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            cx.err(
                path,
                format!("`{target}` does not exist (expected {wanted}){hint}"),
            );
            None
        }
        Some(n) if ok.contains(&n) => Some(n),
        Some(n) => {
            cx.err(
                path,
                format!("`{target}` is {}, but this must name {wanted}", n.noun()),
            );
            None
        }
    }
}

fn check_locations(cx: &mut Ctx<'_>, f: &SiteFile) {
    for (i, fl) in f.floor.iter().enumerate() {
        let p = KeyPath::root().key("floor").index(i);
        expect_ref(
            cx,
            &p.key("building"),
            &fl.building,
            &[Named::Building],
            "a building",
        );
    }
    for (i, s) in f.space.iter().enumerate() {
        let p = KeyPath::root().key("space").index(i);
        match (&s.floor, &s.building) {
            (Some(fl), None) => {
                expect_ref(cx, &p.key("floor"), fl, &[Named::Floor], "a floor");
            }
            (None, Some(b)) => {
                expect_ref(cx, &p.key("building"), b, &[Named::Building], "a building");
            }
            (Some(_), Some(_)) => cx.err(
                &p,
                "a space is on a `floor` or (outdoors) at a `building`, not both",
            ),
            (None, None) => cx.err(
                &p,
                "a space needs `floor` (or `building` for outdoor areas)",
            ),
        }
        if !SPACE_KINDS.iter().any(|(k, _)| *k == s.kind) {
            let kinds: Vec<&str> = SPACE_KINDS.iter().map(|(k, _)| *k).collect();
            let hint = crate::config::did_you_mean(&s.kind, &kinds)
                .map(|b| format!("did you mean `{b}`?"))
                .unwrap_or_else(|| format!("use one of: {}", kinds.join(", ")));
            cx.err(
                &p.key("kind"),
                format!("unknown space kind `{}`; {hint}", s.kind),
            );
        }
    }
    if let Some(sp) = &f.gateway.space {
        expect_ref(
            cx,
            &KeyPath::root().key("gateway").key("space"),
            sp,
            &[Named::Space],
            "a space",
        );
    }
}

fn check_equipment_refs(cx: &mut Ctx<'_>, d: &Decl<'_>) {
    let c = d.common;
    if let Some(sp) = c.space {
        expect_ref(
            cx,
            &d.path.key("space"),
            sp,
            &[Named::Space],
            "a space (a room)",
        );
    }
    if let Some(src) = c.fed_by {
        let ok = [
            Named::Equip(EquipKind::Ups),
            Named::Equip(EquipKind::Pdu),
            Named::Equip(EquipKind::PoeSwitch),
        ];
        if src == c.id {
            cx.err(
                &d.path.key("fed_by"),
                format!("`{}` cannot feed itself", c.id),
            );
        } else {
            expect_ref(
                cx,
                &d.path.key("fed_by"),
                src,
                &ok,
                "a power source (UPS, PDU or PoE switch)",
            );
        }
    }
    if let Some(ts) = c.time_source {
        expect_ref(
            cx,
            &d.path.key("time_source"),
            ts,
            &[Named::Equip(EquipKind::NtpServer)],
            "an NTP server",
        );
    }
    if let Some(m) = c.managed_by {
        expect_ref(
            cx,
            &d.path.key("managed_by"),
            m,
            &[Named::Equip(EquipKind::VmsServer)],
            "a VMS server",
        );
    }
    if let Some(cred) = c.credential {
        if !valid_id(cred) {
            cx.err(
                &d.path.key("credential"),
                format!("credential name `{cred}` must be letters, digits, `-` or `_`"),
            );
        }
    }
    check_video_target(cx, d);
}

fn check_video_target(cx: &mut Ctx<'_>, d: &Decl<'_>) {
    let path = d.path.key("streams_to");
    let allowed = d.kind.video_targets();
    let Some(target) = d.streams_to else {
        if d.kind == EquipKind::AnalogCamera {
            cx.err(
                &d.path,
                format!(
                    "analog camera `{}` needs `streams_to` (an encoder, DVR or hybrid recorder)",
                    d.common.id
                ),
            );
        }
        return;
    };
    let Some((named, _)) = cx.ids.get(target).map(|x| (x.0, ())) else {
        let ok: Vec<Named> = allowed.iter().map(|k| Named::Equip(*k)).collect();
        expect_ref(cx, &path, target, &ok, "a video recorder");
        return;
    };
    let Named::Equip(tk) = named else {
        cx.err(
            &path,
            format!(
                "`{target}` is {}, not equipment that records video",
                named.noun()
            ),
        );
        return;
    };
    if allowed.contains(&tk) {
        return;
    }
    let msg = match (d.kind, tk) {
        (EquipKind::AnalogCamera, EquipKind::Nvr) => format!(
            "analog camera `{}` cannot be wired straight to `{target}`, an NVR without analog inputs; connect it through a video encoder, a DVR or a hybrid recorder (variant = \"hybrid\")",
            d.common.id
        ),
        (EquipKind::IpCamera, EquipKind::Dvr) => format!("`{target}` is a DVR, which records analog cameras only; stream IP cameras to an NVR or hybrid recorder"),
        _ => format!("{} cannot stream video to `{target}`, which is {}", d.kind.noun(), tk.noun()),
    };
    cx.err(&path, msg);
}

/// A power cycle (A feeds B feeds A) has no source; report each cycle once.
fn check_power_cycles(cx: &mut Ctx<'_>, decls: &[Decl<'_>]) {
    let fed_by: HashMap<&str, (&str, &KeyPath)> = decls
        .iter()
        .filter_map(|d| d.common.fed_by.map(|s| (d.common.id, (s, &d.path))))
        .collect();
    let mut reported: Vec<Vec<&str>> = Vec::new();
    let mut errs = Vec::new();
    for d in decls {
        let mut chain = vec![d.common.id];
        let mut cur = d.common.id;
        while let Some((next, _)) = fed_by.get(cur) {
            if *next == cur {
                break; // "cannot feed itself" is reported by the reference check
            }
            if *next == d.common.id {
                let mut members = chain.clone();
                members.sort();
                if !reported.contains(&members) {
                    reported.push(members);
                    chain.push(next);
                    chain.reverse();
                    errs.push((
                        d.path.key("fed_by"),
                        format!(
                            "power cycle: {} (each feeds the next, so none has a source)",
                            chain.join(" → ")
                        ),
                    ));
                }
                break;
            }
            if chain.contains(next) || chain.len() > decls.len() {
                break;
            }
            chain.push(next);
            cur = next;
        }
    }
    for (p, m) in errs {
        cx.err(&p, m);
    }
}

fn check_recorders(cx: &mut Ctx<'_>, f: &SiteFile) {
    for (table, list) in [("nvr", &f.nvr), ("dvr", &f.dvr)] {
        for (i, r) in list.iter().enumerate() {
            let p = KeyPath::root().key(table).index(i);
            if let Some(v) = &r.variant {
                if table == "dvr" {
                    cx.err(
                        &p.key("variant"),
                        "a DVR has no variant (variants are for [[nvr]])",
                    );
                } else if !RECORDER_VARIANTS.contains(&v.as_str()) {
                    let hint = crate::config::did_you_mean(v, RECORDER_VARIANTS)
                        .map(|b| format!("; did you mean `{b}`?"))
                        .unwrap_or_default();
                    let known = RECORDER_VARIANTS.join(", ");
                    cx.err(
                        &p.key("variant"),
                        format!("unknown variant `{v}`: use one of {known}{hint}"),
                    );
                }
            }
            if r.channels == 0 || r.channels > 1024 {
                cx.err(
                    &p.key("channels"),
                    format!("channel count {} must be between 1 and 1024", r.channels),
                );
            }
            for (key, n) in [
                ("alarm_inputs", r.alarm_inputs),
                ("alarm_outputs", r.alarm_outputs),
            ] {
                if n > 256 {
                    cx.err(&p.key(key), format!("{n} is more than the 256 supported"));
                }
            }
            for (key, range) in [
                ("operating_temp", &r.operating_temp),
                ("operating_humidity", &r.operating_humidity),
            ] {
                match range.as_deref() {
                    None => {}
                    Some([lo, hi]) if lo < hi && lo.is_finite() && hi.is_finite() => {}
                    Some(other) => cx.err(
                        &p.key(key),
                        format!("{other:?} must be [min, max]: two finite numbers with min < max"),
                    ),
                }
            }
        }
    }
    for (i, e) in f.encoder.iter().enumerate() {
        if e.inputs == 0 || e.inputs > 64 {
            cx.err(
                &KeyPath::root().key("encoder").index(i).key("inputs"),
                format!("input count {} must be between 1 and 64", e.inputs),
            );
        }
    }
}

/// More video sources than a recorder has channels, or than an encoder has
/// inputs; and two analog cameras on the same input.
fn check_channels(cx: &mut Ctx<'_>, f: &SiteFile, decls: &[Decl<'_>]) {
    // Channels a source takes on its recorder: an encoder takes one per
    // analog camera wired to it (at least one).
    let mut analog_on: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in &f.analog_camera {
        if let Some(t) = &c.streams_to {
            analog_on.entry(t.as_str()).or_default().push(&c.id);
        }
    }
    let mut load: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
    for d in decls {
        if let Some(t) = d.streams_to {
            let n = match d.kind {
                EquipKind::Encoder => analog_on
                    .get(d.common.id)
                    .map_or(1, |v| v.len().max(1) as u32),
                EquipKind::Nvr | EquipKind::HybridRecorder | EquipKind::Dvr => 0,
                _ => 1,
            };
            load.entry(t).or_default().push((d.common.id, n));
        }
    }
    for (table, list) in [("nvr", &f.nvr), ("dvr", &f.dvr)] {
        for (i, r) in list.iter().enumerate() {
            let sources = load.get(r.id.as_str()).cloned().unwrap_or_default();
            let used: u32 = sources.iter().map(|(_, n)| n).sum();
            if used > r.channels {
                let names: Vec<&str> = sources.iter().map(|(s, _)| *s).take(6).collect();
                let more = if sources.len() > 6 { ", …" } else { "" };
                cx.err(
                    &KeyPath::root().key(table).index(i).key("channels"),
                    format!(
                        "`{}` has {} channels but {used} video channels stream to it ({}{more})",
                        r.id,
                        r.channels,
                        names.join(", ")
                    ),
                );
            }
        }
    }
    for (i, e) in f.encoder.iter().enumerate() {
        let n = analog_on.get(e.id.as_str()).map_or(0, |v| v.len()) as u32;
        if n > e.inputs {
            cx.err(
                &KeyPath::root().key("encoder").index(i).key("inputs"),
                format!(
                    "`{}` has {} input(s) but {n} analog cameras are wired to it",
                    e.id, e.inputs
                ),
            );
        }
    }
    let inputs_of = |id: &str| -> Option<u32> {
        f.encoder
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.inputs)
            .or_else(|| {
                f.dvr
                    .iter()
                    .chain(&f.nvr)
                    .find(|r| r.id == id)
                    .map(|r| r.channels)
            })
    };
    let mut taken: HashMap<(&str, u32), &str> = HashMap::new();
    for (i, c) in f.analog_camera.iter().enumerate() {
        let (Some(t), Some(input)) = (&c.streams_to, c.input) else {
            continue;
        };
        let p = KeyPath::root().key("analog_camera").index(i).key("input");
        if let Some(max) = inputs_of(t) {
            if input == 0 || input > max {
                cx.err(
                    &p,
                    format!("input {input} does not exist on `{t}` (inputs 1..={max})"),
                );
            }
        }
        if let Some(other) = taken.insert((t.as_str(), input), &c.id) {
            cx.err(
                &p,
                format!("input {input} of `{t}` is already used by `{other}`"),
            );
        }
    }
}

fn check_users(cx: &mut Ctx<'_>, f: &SiteFile) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, u) in f.user.iter().enumerate() {
        let p = KeyPath::root().key("user").index(i);
        if let Some(first) = seen.insert(&u.name, i) {
            let line = cx
                .loaded
                .locator
                .line(&KeyPath::root().key("user").index(first).key("name"));
            cx.err(
                &p.key("name"),
                format!(
                    "duplicate user `{}`: already defined at line {line}",
                    u.name
                ),
            );
        }
        if Role::parse(&u.role).is_none() {
            cx.err(
                &p.key("role"),
                format!("unknown role `{}`: use viewer, operator or admin", u.role),
            );
        }
        if u.iterations < 4096 {
            cx.err(
                &p.key("iterations"),
                format!(
                    "{} SCRAM iterations is too weak; use at least 4096 (`vgw user add` does)",
                    u.iterations
                ),
            );
        }
        for (key, v, len) in [
            ("salt", &u.salt, None),
            ("stored_key", &u.stored_key, Some(32)),
            ("server_key", &u.server_key, Some(32)),
        ] {
            match b64.decode(v) {
                Ok(bytes) if len.is_none_or(|l| bytes.len() == l) && !bytes.is_empty() => {}
                _ => cx.err(
                    &p.key(key),
                    format!(
                        "`{key}` must be base64{}; write users with `vgw user add`",
                        len.map(|l| format!(" of {l} bytes")).unwrap_or_default()
                    ),
                ),
            }
        }
    }
}

/// A UPS register map must exist and be valid before the gateway starts,
/// or that UPS would silently never be polled. The map's own error (its
/// file, line and key) is carried in the message.
fn check_ups_maps(cx: &mut Ctx<'_>, f: &SiteFile) {
    for (i, u) in f.ups.iter().enumerate() {
        let Some(map) = u.map.as_deref() else {
            continue;
        };
        let spec = crate::model::build::resolve_map(cx.loaded, Some(map));
        if let Err(e) = crate::drivers::modbus::map::load(&spec) {
            cx.err(
                &KeyPath::root().key("ups").index(i).key("map"),
                format!("register map `{map}`: {e}"),
            );
        }
    }
}

/// An `onvif` address must be an http(s) URL the driver can POST to; a
/// typo here would otherwise show only as a device that never comes online.
fn check_onvif_urls(cx: &mut Ctx<'_>, f: &SiteFile) {
    let tables: [(&str, Vec<Option<&String>>); 4] = [
        ("nvr", f.nvr.iter().map(|r| r.onvif.as_ref()).collect()),
        ("dvr", f.dvr.iter().map(|r| r.onvif.as_ref()).collect()),
        (
            "ip_camera",
            f.ip_camera.iter().map(|c| c.onvif.as_ref()).collect(),
        ),
        (
            "encoder",
            f.encoder.iter().map(|e| e.onvif.as_ref()).collect(),
        ),
    ];
    for (table, urls) in tables {
        for (i, u) in urls.into_iter().enumerate() {
            let Some(u) = u else { continue };
            let ok = url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                cx.err(
                    &KeyPath::root().key(table).index(i).key("onvif"),
                    format!("`{u}` is not an http(s) URL; ONVIF devices are addressed by their device service, e.g. `http://10.0.0.5/onvif/device_service`"),
                );
            }
        }
    }
}

/// `[mqtt]`: a broker URL we can reach, a prefix that is a plain topic
/// level, a priority level a `/set` may use.
fn check_mqtt(cx: &mut Ctx<'_>, m: &MqttSection) {
    let at = KeyPath::root().key("mqtt");
    if let Some(b) = &m.broker {
        match url::Url::parse(b) {
            Ok(u) if !matches!(u.scheme(), "mqtt" | "mqtts") || u.host().is_none() => cx.err(
                &at.key("broker"),
                format!("`{b}`: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"),
            ),
            Ok(u) if u.password().is_some() || !u.username().is_empty() => cx.err(
                &at.key("broker"),
                "a login in the URL would reach the logs; name a `credential` instead",
            ),
            Ok(_) => {}
            Err(e) => cx.err(&at.key("broker"), format!("`{b}` is not a URL: {e}")),
        }
    }
    let level = |cx: &mut Ctx<'_>, key: &str, v: &Option<String>| {
        if let Some(p) = v {
            let bad = p.is_empty()
                || p.starts_with('/')
                || p.ends_with('/')
                || p.contains(['+', '#', '\0']);
            if bad {
                cx.err(
                    &at.key(key),
                    format!("`{p}`: a topic prefix must be non-empty, without `+`, `#` or a leading/trailing `/`"),
                );
            }
        }
    };
    level(cx, "prefix", &m.prefix);
    level(cx, "discovery_prefix", &m.discovery_prefix);
    if let Some(id) = &m.client_id {
        if id.is_empty() || id.len() > 128 {
            cx.err(&at.key("client_id"), "must be 1 to 128 characters");
        }
    }
    if let Some(p) = m.set_priority {
        if !(1..=16).contains(&p) {
            cx.err(
                &at.key("set_priority"),
                format!("{p}: expected a priority level 1..=16"),
            );
        }
    }
    if m.queue_limit == Some(0) {
        cx.err(&at.key("queue_limit"), "must be at least 1");
    }
    if m.ca_file.is_some()
        && m.broker
            .as_deref()
            .is_some_and(|b| !b.starts_with("mqtts:"))
    {
        cx.err(
            &at.key("ca_file"),
            "a CA file only makes sense with an mqtts:// broker",
        );
    }
}

/// `[recording]` and each camera's recording keys.
fn check_recording(cx: &mut Ctx<'_>, f: &SiteFile) {
    let at = KeyPath::root().key("recording");
    let r = &f.recording;
    let mode = |cx: &mut Ctx<'_>, path: KeyPath, v: &Option<String>, off_ok: bool| {
        if let Some(m) = v {
            let ok = match m.as_str() {
                "continuous" | "on_alarm" => true,
                "off" => off_ok,
                _ => false,
            };
            if !ok {
                let choices = if off_ok {
                    "`continuous`, `on_alarm` or `off`"
                } else {
                    "`continuous` or `on_alarm`"
                };
                cx.err(&path, format!("`{m}`: expected {choices}"));
            }
        }
    };
    mode(cx, at.key("mode"), &r.mode, false);
    let days = |cx: &mut Ctx<'_>, path: KeyPath, v: Option<u32>| {
        if v == Some(0) {
            cx.err(&path, "must be at least 1 day");
        }
    };
    days(cx, at.key("retention_days"), r.retention_days);
    days(cx, at.key("lock_days"), r.lock_days);
    let positive = |cx: &mut Ctx<'_>, path: KeyPath, v: Option<f64>| {
        if v.is_some_and(|g| !(g.is_finite() && g > 0.0)) {
            cx.err(&path, "must be a positive number of GB");
        }
    };
    positive(cx, at.key("max_gb_per_camera"), r.max_gb_per_camera);
    positive(cx, at.key("disk_budget_gb"), r.disk_budget_gb);
    if r.min_free_percent
        .is_some_and(|p| !(0.0..=50.0).contains(&p))
    {
        cx.err(&at.key("min_free_percent"), "must be between 0 and 50 (%)");
    }
    for (i, c) in f.ip_camera.iter().enumerate() {
        let p = KeyPath::root().key("ip_camera").index(i);
        mode(cx, p.key("record"), &c.record, true);
        days(cx, p.key("retention_days"), c.retention_days);
        positive(cx, p.key("max_gb"), c.max_gb);
        if let Some(u) = &c.rtsp {
            let ok = url::Url::parse(u).is_ok_and(|p| p.scheme() == "rtsp" && p.host().is_some());
            if !ok {
                cx.err(&p.key("rtsp"), format!("`{u}` is not an rtsp:// URL"));
            } else if url::Url::parse(u).is_ok_and(|p| p.password().is_some()) {
                cx.err(
                    &p.key("rtsp"),
                    "a password in the URL would reach the model and the logs; name a `credential` instead",
                );
            }
        }
    }
}
