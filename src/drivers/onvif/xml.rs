//! A small namespace-resolved element tree over quick-xml (the only
//! quick-xml user of the ONVIF driver). SOAP answers are small, so a tree
//! is simpler and safer than streaming: lookups by (namespace, local name)
//! never depend on the prefixes a device happens to choose.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deepest nesting accepted: a hostile device cannot make us recurse
/// without bound.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// Namespace URI ("" when none).
    pub ns: String,
    pub name: String,
    /// Attributes by local name (namespaces dropped: ONVIF attributes we
    /// read are unqualified or unambiguous).
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

impl Element {
    /// First child with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }
    /// Children with this local name, whatever their namespace.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// First child with this local name, any namespace.
    pub fn child_named(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Follows a path of local names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child_named(n))
    }
    /// Depth-first search by local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// Serialises the element again, declaring each element's namespace on
    /// itself (needed to echo reference parameters back verbatim in meaning
    /// whatever prefixes the device used).
    pub fn to_xml(&self, out: &mut String) {
        out.push_str("<v:");
        out.push_str(&self.name);
        if !self.ns.is_empty() {
            out.push_str(" xmlns:v=\"");
            out.push_str(&escape(&self.ns));
            out.push('"');
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape(v));
            out.push('"');
        }
        out.push('>');
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.to_xml(out);
        }
        out.push_str("</v:");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes text and attribute values.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn ns_of(r: ResolveResult<'_>) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

/// Parses a whole document into its root element.
pub fn parse(doc: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(doc);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError(e.to_string()))?;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!("nested deeper than {MAX_DEPTH}")));
                }
                let mut el = Element {
                    ns: ns_of(resolved),
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Default::default()
                };
                for a in s.attributes().flatten() {
                    let key = a.key.local_name();
                    let key = String::from_utf8_lossy(key.as_ref()).into_owned();
                    if a.key.as_ref().starts_with(b"xmlns") {
                        continue;
                    }
                    let v = a
                        .decoded_and_normalized_value(
                            quick_xml::XmlVersion::Implicit1_0,
                            reader.decoder(),
                        )
                        .map_err(|e| XmlError(e.to_string()))?;
                    el.attrs.push((key, v.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError("stray end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError(e.to_string()))?;
                    let s = quick_xml::escape::unescape(&s).map_err(|e| XmlError(e.to_string()))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                // Entity and character references inside text.
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let entity = format!("&{name};");
                    let s = quick_xml::escape::unescape(&entity)
                        .map_err(|e| XmlError(e.to_string()))?;
                    top.text.push_str(&s);
                }
            }
            Event::Eof => return Err(XmlError("document ended inside an element".into())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_resolve_whatever_the_prefix() {
        let doc = r#"<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope"><a:Body><x:R xmlns:x="urn:x" k="v">t &amp; u</x:R><R xmlns="urn:y"/></a:Body></a:Envelope>"#;
        let e = parse(doc).unwrap();
        assert_eq!(e.name, "Envelope");
        let body = e
            .child("http://www.w3.org/2003/05/soap-envelope", "Body")
            .unwrap();
        let r = body.child("urn:x", "R").unwrap();
        assert_eq!((r.text(), r.attr("k")), ("t & u", Some("v")));
        assert!(body.child("urn:y", "R").is_some());
    }

    #[test]
    fn hostile_documents_are_errors_not_panics() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn reserialised_elements_keep_namespace_and_text() {
        let e = parse(r#"<p:Id xmlns:p="urn:dev" n="1">abc&lt;</p:Id>"#).unwrap();
        let mut s = String::new();
        e.to_xml(&mut s);
        assert_eq!(parse(&s).unwrap(), e);
    }
}
