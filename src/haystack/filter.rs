//! Haystack filters evaluated on our own indexes. libhaystack parses the
//! filter; evaluation is ours because the library's compares values of
//! different kinds by enum order (`curVal < 50` would match records without
//! `curVal`) and its dict resolver does not follow refs.
//!
//! Semantics (Haystack 4 "Filters"): `tag` has a value; `not tag` has none;
//! comparisons are false when the value is missing or of another kind, and
//! numbers compare only with equal units; `a->b` follows refs; a list on
//! the left matches when any element does (refs in lists). Each `and` runs
//! on the smallest candidate set its terms give (a tag index for `tag`, a
//! ref index for `xRef==@id`), so a selective filter never scans the site.

use super::wire::{Dict, Value};
use libhaystack::filter::nodes::{And, CmpOp, Or, Term};
use libhaystack::filter::path::Path;
use libhaystack::filter::Filter;
use std::collections::HashMap;
use std::time::Instant;

/// Entities as Haystack dicts, with the indexes filters run on.
pub struct Index {
    pub dicts: Vec<Dict>,
    by_id: HashMap<String, usize>,
    by_tag: HashMap<String, Vec<usize>>,
    by_ref: HashMap<(String, String), Vec<usize>>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filter: {0}")]
    Parse(String),
    #[error("{0} is not supported in filters here")]
    Unsupported(String),
    #[error("the filter took longer than its time limit")]
    Timeout,
}

pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let f = Filter::try_from(text).map_err(|e| FilterError::Parse(e.to_string()))?;
    check_or(&f.or)?;
    Ok(f)
}

fn check_or(or: &Or) -> Result<(), FilterError> {
    for and in &or.ands {
        for t in &and.terms {
            match t {
                Term::Parens(p) => check_or(&p.or)?,
                Term::IsA(_) => {
                    return Err(FilterError::Unsupported(
                        "`^symbol` (def reflection)".into(),
                    ))
                }
                Term::Relation(_) => {
                    return Err(FilterError::Unsupported(
                        "a relationship query (`rel?`)".into(),
                    ))
                }
                Term::WildcardEq(_) => return Err(FilterError::Unsupported("`*==`".into())),
                _ => {}
            }
        }
    }
    Ok(())
}

impl Index {
    pub fn build(dicts: Vec<Dict>) -> Index {
        let mut by_id = HashMap::new();
        let mut by_tag: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_ref: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, d) in dicts.iter().enumerate() {
            if let Some(Value::Ref(r)) = d.get("id") {
                by_id.insert(r.value.clone(), i);
            }
            for (k, v) in d.iter() {
                by_tag.entry(k.clone()).or_default().push(i);
                if let Value::Ref(r) = v {
                    by_ref
                        .entry((k.clone(), r.value.clone()))
                        .or_default()
                        .push(i);
                }
            }
        }
        Index {
            dicts,
            by_id,
            by_tag,
            by_ref,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Dict> {
        self.by_id.get(id).map(|i| &self.dicts[*i])
    }

    /// Entities whose `tag` refers to `id`, in index order.
    pub fn referrers(&self, tag: &str, id: &str) -> &[usize] {
        self.by_ref
            .get(&(tag.to_string(), id.to_string()))
            .map_or(&[], |v| v)
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Entities matching `f`, in index order, at most `limit`; gives up
    /// with `Timeout` past `deadline`.
    pub fn query(
        &self,
        f: &Filter,
        limit: usize,
        deadline: Instant,
    ) -> Result<Vec<usize>, FilterError> {
        let mut hits = Vec::new();
        let mut checked = 0usize;
        for i in self.candidates(&f.or) {
            checked += 1;
            if checked % 1024 == 0 && Instant::now() > deadline {
                return Err(FilterError::Timeout);
            }
            if self.eval_or(&f.or, &self.dicts[i]) {
                hits.push(i);
                if hits.len() >= limit {
                    break;
                }
            }
        }
        Ok(hits)
    }

    /// A superset of the matches of `or`, sorted.
    fn candidates(&self, or: &Or) -> Vec<usize> {
        let mut all: Vec<usize> = Vec::new();
        for and in &or.ands {
            match self.and_candidates(and) {
                Some(c) => all.extend_from_slice(c),
                None => return (0..self.dicts.len()).collect(),
            }
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The smallest index list one of the `and`'s terms allows, if any.
    fn and_candidates(&self, and: &And) -> Option<&[usize]> {
        static NONE: [usize; 0] = [];
        and.terms
            .iter()
            .filter_map(|t| match t {
                Term::Has(h) if h.path.len() == 1 => Some(
                    self.by_tag
                        .get(&h.path[0].to_string())
                        .map_or(&NONE[..], |v| v),
                ),
                Term::Cmp(c) if c.path.len() == 1 && c.op == CmpOp::Eq => match &c.value {
                    Value::Ref(r) => Some(
                        self.by_ref
                            .get(&(c.path[0].to_string(), r.value.clone()))
                            .map_or(&NONE[..], |v| v),
                    ),
                    _ => self
                        .by_tag
                        .get(&c.path[0].to_string())
                        .map(|v| &v[..])
                        .or(Some(&NONE[..])),
                },
                _ => None,
            })
            .min_by_key(|c| c.len())
    }

    /// The value at `path`, following refs between segments.
    fn resolve(&self, root: &Dict, path: &Path) -> Value {
        let mut cur: Option<&Dict> = Some(root);
        let mut value = Value::Null;
        for (n, seg) in path.iter().enumerate() {
            let Some(d) = cur else { return Value::Null };
            value = d.get(&seg.to_string()).cloned().unwrap_or(Value::Null);
            if n + 1 < path.len() {
                cur = match &value {
                    Value::Ref(r) => self.get(&r.value),
                    Value::Dict(_) => None,
                    _ => None,
                };
            }
        }
        value
    }

    fn eval_or(&self, or: &Or, d: &Dict) -> bool {
        or.ands
            .iter()
            .any(|a| a.terms.iter().all(|t| self.eval_term(t, d)))
    }

    fn eval_term(&self, t: &Term, d: &Dict) -> bool {
        match t {
            Term::Parens(p) => self.eval_or(&p.or, d),
            Term::Has(h) => !self.resolve(d, &h.path).is_null(),
            Term::Missing(m) => self.resolve(d, &m.path).is_null(),
            Term::Cmp(c) => {
                let lhs = self.resolve(d, &c.path);
                match (&lhs, &c.value) {
                    (Value::Null, _) => false,
                    (Value::List(items), rhs) if !matches!(rhs, Value::List(_)) => {
                        items.iter().any(|x| compare(x, &c.op, rhs))
                    }
                    _ => compare(&lhs, &c.op, &c.value),
                }
            }
            // Rejected by `parse`.
            Term::IsA(_) | Term::Relation(_) | Term::WildcardEq(_) => false,
        }
    }
}

/// Same kind only; numbers with equal units (libhaystack's Number ordering
/// is undefined across units, so `<` and `>` are then false too).
fn compare(a: &Value, op: &CmpOp, b: &Value) -> bool {
    if std::mem::discriminant(a) != std::mem::discriminant(b) {
        return false;
    }
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        if x.unit != y.unit {
            return false;
        }
    }
    match op {
        CmpOp::Eq => a == b,
        CmpOp::NotEq => a != b,
        CmpOp::LessThan => a < b,
        CmpOp::LessThanEq => a <= b,
        CmpOp::GreatThan => a > b,
        CmpOp::GreatThanEq => a >= b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn demo() -> (crate::model::Site, Index) {
        let site = crate::model::load_site(std::path::Path::new("config/demo.toml"), None).unwrap();
        let (_, haystack) = crate::graph::GraphStore::build(&site, None).unwrap();
        let dis: HashMap<String, String> = haystack
            .iter()
            .map(|h| (h.id.clone(), h.dis.clone()))
            .collect();
        let dicts = haystack
            .iter()
            .map(|h| super::super::wire::entity_dict(&site.id, h, &|id| dis.get(id).cloned()))
            .collect();
        (site, Index::build(dicts))
    }

    fn ids(ix: &Index, f: &str) -> Vec<String> {
        let f = parse(f).unwrap();
        let far = Instant::now() + Duration::from_secs(10);
        ix.query(&f, usize::MAX, far)
            .unwrap()
            .into_iter()
            .map(|i| match ix.dicts[i].get("id") {
                Some(Value::Ref(r)) => r.value.trim_start_matches("hq.").to_string(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn a_table_of_filters_and_the_ids_they_select() {
        let (site, ix) = demo();
        let nvr1_points: Vec<String> = site
            .points
            .iter()
            .filter(|p| p.equip == "nvr-1")
            .map(|p| p.id.clone())
            .collect();
        let mut got = ids(&ix, "point and equipRef==@hq.nvr-1");
        got.sort();
        let mut want = nvr1_points.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(ids(&ix, "site"), ["site"], "the site entity is `@hq.site`");
        // `->` follows refs: points whose equipment is an NVR.
        let via_path = ids(&ix, "point and equipRef->nvr");
        assert!(via_path.contains(&"nvr-1.online".to_string()));
        assert!(!via_path.iter().any(|i| i.starts_with("cam-")));
        // `not`, or, parens.
        let not_nvr = ids(&ix, "equip and not nvr");
        assert!(!not_nvr.contains(&"nvr-1".to_string()));
        // An NVR's disk is equipment without the nvr marker.
        assert!(not_nvr.contains(&"nvr-1.disk-1".to_string()), "{not_nvr:?}");
        let either = ids(&ix, "ups or ntp");
        assert!(either.contains(&"ups-1".to_string()));
        // A comparison on a missing tag is false, never true by enum order.
        assert!(ids(&ix, "site and curVal < 50").is_empty());
        assert!(ids(&ix, "site and area != 5").is_empty());
        // Strings compare as strings; a number never equals a string.
        assert_eq!(
            ids(&ix, "dis == \"Harbour Tower\""),
            ["site", "tower"],
            "the site and its building"
        );
        assert!(ids(&ix, "dis == 5").is_empty());
        // Unknown ref: nothing.
        assert!(ids(&ix, "equipRef==@hq.nope").is_empty());
    }

    #[test]
    fn numbers_compare_only_with_equal_units() {
        let mut a = Dict::new();
        a.insert("id".into(), Value::make_ref("a"));
        a.insert(
            "t".into(),
            Value::make_number_unit(20.0, libhaystack::units::get_unit("°C").unwrap()),
        );
        let ix = Index::build(vec![a]);
        assert_eq!(ids(&ix, "t > 10°C"), ["a"]);
        assert!(ids(&ix, "t > 10").is_empty(), "no unit is another unit");
        assert!(ids(&ix, "t > 10°F").is_empty());
    }

    #[test]
    fn bad_and_unsupported_filters_are_errors() {
        assert!(matches!(parse("point and"), Err(FilterError::Parse(_))));
        assert!(matches!(parse(""), Err(FilterError::Parse(_))));
        assert!(matches!(parse("^site"), Err(FilterError::Unsupported(_))));
    }
}
