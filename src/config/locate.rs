//! Maps config paths (`ip_camera[3].streams_to`) and byte spans back to
//! line numbers, so every config error can name `file:line:key`.
//!
//! serde tells us *what* is wrong and at which logical path; toml_edit's
//! span-preserving document tells us *where* that path is in the file.

use std::fmt;
use std::ops::Range;
use toml_edit::{ImDocument, Item, Value};

/// One step of a path into the config document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A logical position in the config: `nvr[1].channels`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Key(k.to_string()));
        KeyPath(p)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        KeyPath(p)
    }
    /// The table names along the path with indexes dropped: `nvr.onvif`.
    pub fn table_names(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            match s {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A parsed document that answers "which line is this key on?".
pub struct Locator {
    doc: ImDocument<String>,
    line_starts: Vec<usize>,
}

/// A container in the document: the three TOML forms of "table" and arrays.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

fn node_of_item(item: &Item) -> Node<'_> {
    match item {
        Item::Table(t) => Node::Table(t),
        Item::ArrayOfTables(a) => Node::Tables(a),
        Item::Value(v) => node_of_value(v),
        Item::None => Node::Leaf,
    }
}

fn node_of_value(v: &Value) -> Node<'_> {
    match v {
        Value::InlineTable(t) => Node::Inline(t),
        Value::Array(a) => Node::Array(a),
        _ => Node::Leaf,
    }
}

/// One child of a node: its segment, the spans of its key and value.
type Child<'a> = (Seg, Option<Range<usize>>, Option<Range<usize>>, Node<'a>);

/// One child by segment, looked up directly (a site can have 64 000
/// cameras: no scan per lookup). Returns the key's span and the child.
fn child<'a>(node: Node<'a>, seg: &Seg) -> Option<(Option<Range<usize>>, Node<'a>)> {
    match (node, seg) {
        (Node::Table(t), Seg::Key(k)) => t
            .get_key_value(k)
            .map(|(key, it)| (key.span(), node_of_item(it))),
        (Node::Inline(t), Seg::Key(k)) => t
            .get_key_value(k)
            .map(|(key, it)| (key.span(), node_of_item(it))),
        (Node::Tables(a), Seg::Index(i)) => a.get(*i).map(|t| (t.span(), Node::Table(t))),
        (Node::Array(a), Seg::Index(i)) => a.get(*i).map(|v| (v.span(), node_of_value(v))),
        _ => None,
    }
}

/// Children of a node, in document order.
fn children(node: Node<'_>) -> Vec<Child<'_>> {
    match node {
        Node::Table(t) => t
            .iter()
            .filter_map(|(k, _)| t.get_key_value(k))
            .map(|(k, it)| {
                (
                    Seg::Key(k.get().to_string()),
                    k.span(),
                    it.span(),
                    node_of_item(it),
                )
            })
            .collect(),
        Node::Inline(t) => t
            .iter()
            .filter_map(|(k, _)| t.get_key_value(k))
            .map(|(k, it)| {
                (
                    Seg::Key(k.get().to_string()),
                    k.span(),
                    it.span(),
                    node_of_item(it),
                )
            })
            .collect(),
        Node::Tables(a) => a
            .iter()
            .enumerate()
            .map(|(i, t)| (Seg::Index(i), t.span(), t.span(), Node::Table(t)))
            .collect(),
        Node::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (Seg::Index(i), v.span(), v.span(), node_of_value(v)))
            .collect(),
        Node::Leaf => Vec::new(),
    }
}

impl Locator {
    pub fn new(doc: ImDocument<String>) -> Self {
        let line_starts = line_starts(doc.raw());
        Locator { doc, line_starts }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(&self.line_starts, offset)
    }

    /// Line of the key at `path`; falls back to the nearest existing parent,
    /// so a missing key is reported where its table starts.
    pub fn line(&self, path: &KeyPath) -> usize {
        let mut best = 1;
        let mut node = Node::Table(self.doc.as_table());
        for seg in &path.0 {
            let Some((key_span, next)) = child(node, seg) else {
                break;
            };
            if let Some(s) = key_span {
                best = self.line_of(s.start);
            }
            node = next;
        }
        best
    }

    /// The key path whose key or value span contains `offset`.
    pub fn path_at(&self, offset: usize) -> Option<KeyPath> {
        find_offset(Node::Table(self.doc.as_table()), offset, &KeyPath::root())
    }
}

fn find_offset(node: Node<'_>, offset: usize, here: &KeyPath) -> Option<KeyPath> {
    let inside = |s: &Option<Range<usize>>| {
        s.as_ref()
            .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
    };
    for (seg, key_span, value_span, child) in children(node) {
        let mut p = here.clone();
        p.0.push(seg);
        if inside(&key_span) && !matches!(child, Node::Table(_)) {
            return Some(p);
        }
        if let Some(found) = find_offset(child, offset, &p) {
            return Some(found);
        }
        if inside(&value_span) || inside(&key_span) {
            return Some(p);
        }
    }
    None
}

pub fn line_starts(src: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

pub fn line_of(starts: &[usize], offset: usize) -> usize {
    match starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}
