//! A small namespace-aware XML tree for incoming SOAP envelopes, and text
//! escaping for the responses we write by hand.
//!
//! SOAP requests are tiny, so a tree is simpler than streaming. The parser
//! resolves namespaces itself (prefix scopes per element) because ONVIF puts
//! QNames inside text too (topic expressions, fault codes), and those need
//! the prefix bindings in scope at that element. Limits on depth and element
//! count keep hostile input cheap; DOCTYPEs are refused outright so no entity
//! tricks reach us.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

const XMLNS: &str = "http://www.w3.org/2000/xmlns/";
const MAX_DEPTH: usize = 48;
const MAX_ELEMENTS: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default)]
pub struct Element {
    /// Namespace URI ("" when unqualified).
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element.
    pub text: String,
    /// Prefix bindings in scope here ("" = default namespace).
    pub scope: Vec<(String, String)>,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// First child with this local name in any namespace; for request
    /// parameters, whose namespace the WSDL fixes but which some clients
    /// write unqualified.
    pub fn child_local(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn text_trim(&self) -> &str {
        self.text.trim()
    }

    /// Resolves a `prefix:local` QName written in text against this
    /// element's scope. An unprefixed name takes the default namespace.
    pub fn resolve_qname(&self, qname: &str) -> Option<(String, String)> {
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", qname),
        };
        let ns = self
            .scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, n)| n.clone());
        match ns {
            Some(ns) => Some((ns, local.to_string())),
            None if prefix.is_empty() => Some((String::new(), local.to_string())),
            None => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct XmlError(pub String);

fn err(msg: impl Into<String>) -> XmlError {
    XmlError(msg.into())
}

/// Parses a document into its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let ev = reader.read_event().map_err(|e| err(e.to_string()))?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(err("content after the root element"));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err("too many elements"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err("nesting too deep"));
                }
                let parent_scope = stack.last().map(|p| p.scope.as_slice()).unwrap_or(&[]);
                let el = open_element(start, parent_scope)?;
                if matches!(ev, Event::Empty(_)) {
                    close(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| err("unbalanced end tag"))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| err(e.to_string()))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| err(e.to_string()))?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| err(e.to_string()))?;
                let raw = format!("&{name};");
                let s = quick_xml::escape::unescape(&raw).map_err(|e| err(e.to_string()))?;
                push_text(&mut stack, &s)?;
            }
            Event::DocType(_) => return Err(err("DOCTYPE is not allowed in SOAP")),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(err("unclosed element"));
    }
    root.ok_or_else(|| err("no root element"))
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(err("text outside the root element")),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn open_element(
    start: &BytesStart,
    parent_scope: &[(String, String)],
) -> Result<Element, XmlError> {
    let mut scope: Vec<(String, String)> = parent_scope.to_vec();
    let mut raw_attrs: Vec<(String, String)> = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| err(e.to_string()))?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| err("attribute name is not UTF-8"))?
            .to_string();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| err(e.to_string()))?
            .into_owned();
        if key == "xmlns" {
            scope.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            if value.is_empty() {
                return Err(err("a prefix cannot be bound to the empty namespace"));
            }
            scope.push((p.to_string(), value));
        } else {
            raw_attrs.push((key, value));
        }
    }
    let lookup = |prefix: &str| -> Option<String> {
        scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, n)| n.clone())
    };
    let qname = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| err("element name is not UTF-8"))?
        .to_string();
    let (ns, name) = match qname.split_once(':') {
        Some((p, l)) => (
            lookup(p).ok_or_else(|| err(format!("unbound prefix {p}")))?,
            l.to_string(),
        ),
        None => (lookup("").unwrap_or_default(), qname),
    };
    let mut attrs = Vec::with_capacity(raw_attrs.len());
    for (key, value) in raw_attrs {
        // Unprefixed attributes are in no namespace (XML Namespaces §6.2).
        let (ans, aname) = match key.split_once(':') {
            Some(("xml", l)) => (
                "http://www.w3.org/XML/1998/namespace".to_string(),
                l.to_string(),
            ),
            Some((p, l)) => (
                lookup(p).ok_or_else(|| err(format!("unbound prefix {p}")))?,
                l.to_string(),
            ),
            None => (String::new(), key),
        };
        if ans == XMLNS {
            continue;
        }
        attrs.push(Attr {
            ns: ans,
            name: aname,
            value,
        });
    }
    Ok(Element {
        ns,
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
        scope,
    })
}

/// Escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_of_elements_attributes_and_text_qnames() {
        let doc = r#"<?xml version="1.0"?>
            <s:Envelope xmlns:s="urn:s" xmlns:t="urn:t"><s:Body>
              <Op xmlns="urn:d" a="1" t:b="2"><T Dialect="x">t:Dev/Trig &amp; more</T></Op>
            </s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert!(root.is("urn:s", "Envelope"));
        let op = &root.child("urn:s", "Body").unwrap().children[0];
        assert!(op.is("urn:d", "Op"));
        assert_eq!(op.attr("a"), Some("1"));
        assert_eq!(op.attrs[1].ns, "urn:t");
        let t = op.child("urn:d", "T").unwrap();
        assert_eq!(t.text_trim(), "t:Dev/Trig & more");
        assert_eq!(
            t.resolve_qname("t:Dev"),
            Some(("urn:t".to_string(), "Dev".to_string()))
        );
        assert_eq!(t.resolve_qname("zz:Dev"), None);
    }

    #[test]
    fn rejects_hostile_or_broken_input() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>").is_err());
        assert!(parse("<a>&x;</a>").is_err());
        assert!(parse("<p:a/>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
