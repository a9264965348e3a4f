//! Which Haystack library defines each tag: the standard Haystack 4 libs
//! (`haystack/standard-tags.tsv`, checked against the published defs) or
//! the vgw lib (`haystack/vgw.trio`). Both files ship in the binary.

use std::collections::HashMap;
use std::sync::OnceLock;

pub const STANDARD_TAGS_TSV: &str = include_str!("../../haystack/standard-tags.tsv");
pub const VGW_TRIO: &str = include_str!("../../haystack/vgw.trio");

fn standard() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        STANDARD_TAGS_TSV
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let mut cols = l.split('\t');
                Some((cols.next()?.trim(), cols.next()?.trim()))
            })
            .filter(|(tag, _)| *tag != "tag")
            .collect()
    })
}

/// The standard lib (`ph`, `phIoT`, `phScience`) defining `tag`, if any.
pub fn standard_lib(tag: &str) -> Option<&'static str> {
    standard().get(tag).copied()
}

/// Tag names defined by the vgw lib (`def: ^name` records of vgw.trio).
pub fn vgw_defs() -> Vec<&'static str> {
    VGW_TRIO
        .lines()
        .filter_map(|l| l.trim().strip_prefix("def:"))
        .map(|d| d.trim().trim_start_matches('^').trim())
        .filter(|d| !d.starts_with("lib:"))
        .collect()
}

/// Is there a def for this tag, standard or ours?
pub fn has_def(tag: &str) -> bool {
    standard_lib(tag).is_some() || vgw_defs().contains(&tag)
}
