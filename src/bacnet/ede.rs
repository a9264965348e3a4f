//! Point list export: EDE (B.I.G.-EU Engineering Data Exchange, layout 2.3,
//! `;`-separated) with its state-text file, and a plain CSV for
//! spreadsheets. Both are written from the same `Plan` the server serves.

use super::plan::{Kind, Plan};
use std::fmt::Write as _;

/// EDE fields must not contain the separator or line breaks.
fn field(s: &str) -> String {
    s.replace([';', '\n', '\r'], " ")
}

/// State-text references: one row per distinct (inactive, active) pair,
/// numbered from 1 in order of first use.
fn state_refs(plan: &Plan) -> Vec<[&'static str; 2]> {
    let mut refs: Vec<[&'static str; 2]> = Vec::new();
    for o in &plan.objects {
        if let Some(s) = o.states {
            if !refs.contains(&s) {
                refs.push(s);
            }
        }
    }
    refs
}

/// The main EDE file. `date` is `YYYY-MM-DD` (the file's last change).
pub fn ede(plan: &Plan, project: &str, date: &str) -> String {
    let refs = state_refs(plan);
    let mut out = String::new();
    let _ = writeln!(out, "#Engineering-Data-Exchange - B.I.G.-EU");
    let _ = writeln!(out, "PROJECT_NAME;{}", field(project));
    let _ = writeln!(out, "VERSION_OF_REFERENCEFILE;1");
    let _ = writeln!(out, "TIMESTAMP_OF_LAST_CHANGE;{date}");
    let _ = writeln!(
        out,
        "AUTHOR_OF_LAST_CHANGE;vgw {}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "VERSION_OF_LAYOUT;2.3");
    let _ = writeln!(out, "#mandatory;mandatory;mandatory;mandatory;mandatory;optional;optional;optional;optional;optional;optional;optional;optional;optional;optional;optional");
    let _ = writeln!(out, "# keyname;device obj.-instance;object-name;object-type;object-instance;description;present-value-default;min-present-value;max-present-value;settable;supports COV;hi-limit;low-limit;state-text-reference;unit-code;vendor-specific-address");
    for o in &plan.objects {
        let is_point = o.point.is_some();
        let (hi, lo) = match &o.alarm {
            Some(super::plan::Alarm::OutOfRange { low, high, .. }) => {
                (high.to_string(), low.to_string())
            }
            _ => (String::new(), String::new()),
        };
        let default = match o.kind {
            Kind::BinaryOutput => "0".to_string(),
            _ => String::new(),
        };
        let state_ref = o
            .states
            .and_then(|s| refs.iter().position(|r| *r == s))
            .map(|i| (i + 1).to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{};{};{};{};{};{};{};;;{};{};{};{};{};{};",
            field(&o.key),
            plan.device_instance,
            field(&o.name),
            o.kind.code(),
            o.instance,
            field(&o.description),
            default,
            if o.writable { "Y" } else { "N" },
            if is_point { "Y" } else { "N" },
            hi,
            lo,
            state_ref,
            o.units.map(|u| u.to_string()).unwrap_or_default(),
        );
    }
    out
}

/// The state-text file the EDE's `state-text-reference` column points into.
pub fn state_texts(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#State-Text-Exchange - B.I.G.-EU");
    let _ = writeln!(
        out,
        "#Reference Number;Text 1 or Inactive-Text;Text 2 or Active-Text"
    );
    for (i, [inactive, active]) in state_refs(plan).iter().enumerate() {
        let _ = writeln!(out, "{};{inactive};{active}", i + 1);
    }
    out
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per object, comma-separated, with a header row.
pub fn plain_csv(plan: &Plan) -> String {
    let mut out = String::from(
        "key,object_type,instance,object_name,description,writable,units_code,inactive_text,active_text,notification_class,brick_class,haystack_markers\n",
    );
    for o in &plan.objects {
        let class = match &o.alarm {
            Some(super::plan::Alarm::ChangeOfState { class, .. })
            | Some(super::plan::Alarm::OutOfRange { class, .. }) => class.to_string(),
            None => String::new(),
        };
        let [inactive, active] = o.states.unwrap_or(["", ""]);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            csv(&o.key),
            o.kind.name(),
            o.instance,
            csv(&o.name),
            csv(&o.description),
            o.writable,
            o.units.map(|u| u.to_string()).unwrap_or_default(),
            csv(inactive),
            csv(active),
            class,
            csv(o.brick_class.as_deref().unwrap_or("")),
            csv(&o.markers.join(" ")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_never_break_the_layout() {
        assert_eq!(field("a;b\nc"), "a b c");
        assert_eq!(csv("say \"hi\", twice"), "\"say \"\"hi\"\", twice\"");
        assert_eq!(csv("plain"), "plain");
    }
}
