//! SOAP 1.2 envelopes and faults as the ONVIF Core specification uses them.
//!
//! Fault mapping (Core spec, "Error handling"): a fault whose Code is
//! env:Sender is sent with HTTP 400, env:Receiver with HTTP 500. ONVIF puts
//! its own fault names (ter:...) in the Subcode chain, most generic first.

use super::xml::{self, esc, Element};
use axum::http::StatusCode;

/// Namespace URIs, by the prefixes the ONVIF specifications use.
pub mod ns {
    pub const ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
    pub const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    pub const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
    pub const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    pub const TMD: &str = "http://www.onvif.org/ver10/deviceIO/wsdl";
    pub const TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
    pub const TT: &str = "http://www.onvif.org/ver10/schema";
    pub const TER: &str = "http://www.onvif.org/ver10/error";
    pub const TNS1: &str = "http://www.onvif.org/ver10/topics";
    pub const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
    pub const WSTOP: &str = "http://docs.oasis-open.org/wsn/t-1";
    pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
    pub const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    pub const WSU: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    pub const WSRF_R: &str = "http://docs.oasis-open.org/wsrf/r-2";
    pub const WSRF_BF: &str = "http://docs.oasis-open.org/wsrf/bf-2";
    /// Our own namespace, for the subscription reference parameter.
    pub const SIM: &str = "urn:vgw:onvif-sim";
}

/// Every prefix a response may use, declared once on the Envelope.
const NS_DECLS: &str = concat!(
    r#"xmlns:env="http://www.w3.org/2003/05/soap-envelope" "#,
    r#"xmlns:xs="http://www.w3.org/2001/XMLSchema" "#,
    r#"xmlns:tds="http://www.onvif.org/ver10/device/wsdl" "#,
    r#"xmlns:trt="http://www.onvif.org/ver10/media/wsdl" "#,
    r#"xmlns:tmd="http://www.onvif.org/ver10/deviceIO/wsdl" "#,
    r#"xmlns:tev="http://www.onvif.org/ver10/events/wsdl" "#,
    r#"xmlns:tt="http://www.onvif.org/ver10/schema" "#,
    r#"xmlns:ter="http://www.onvif.org/ver10/error" "#,
    r#"xmlns:tns1="http://www.onvif.org/ver10/topics" "#,
    r#"xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" "#,
    r#"xmlns:wstop="http://docs.oasis-open.org/wsn/t-1" "#,
    r#"xmlns:wsa="http://www.w3.org/2005/08/addressing" "#,
    r#"xmlns:wsrf-r="http://docs.oasis-open.org/wsrf/r-2" "#,
    r#"xmlns:wsrf-bf="http://docs.oasis-open.org/wsrf/bf-2" "#,
    r#"xmlns:sim="urn:vgw:onvif-sim""#,
);

pub const CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

pub fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope {NS_DECLS}><env:Body>{body}</env:Body></env:Envelope>"#
    )
}

/// A parsed request: its header blocks and the single Body child.
#[derive(Debug)]
pub struct Request {
    pub headers: Vec<Element>,
    pub op: Element,
}

impl Request {
    pub fn header(&self, ns: &str, name: &str) -> Option<&Element> {
        self.headers.iter().find(|h| h.is(ns, name))
    }
}

/// Header blocks we process; any other with mustUnderstand="true" must be
/// refused (SOAP 1.2 part 1, §5.2.3).
fn understood(h: &Element) -> bool {
    h.ns == ns::WSSE || h.ns == ns::WSA || h.ns == ns::SIM
}

pub fn parse_request(text: &str) -> Result<Request, Fault> {
    let root = xml::parse(text)
        .map_err(|e| Fault::sender(&["ter:WellFormed"], &format!("XML not well-formed: {e}")))?;
    if root.is(ns::SOAP11_ENV, "Envelope") {
        return Err(Fault::version_mismatch());
    }
    if !root.is(ns::ENV, "Envelope") {
        return Err(Fault::sender(
            &["ter:Namespace"],
            "the root element is not a SOAP 1.2 env:Envelope",
        ));
    }
    let mut headers = Vec::new();
    if let Some(h) = root.child(ns::ENV, "Header") {
        for block in &h.children {
            let must = block.attrs.iter().any(|a| {
                a.ns == ns::ENV
                    && a.name == "mustUnderstand"
                    && (a.value == "true" || a.value == "1")
            });
            if must && !understood(block) {
                return Err(Fault::must_understand(&block.name));
            }
        }
        headers = h.children.clone();
    }
    let body = root
        .child(ns::ENV, "Body")
        .ok_or_else(|| Fault::sender(&["ter:TagMismatch"], "no env:Body"))?;
    let mut ops = body.children.iter();
    let op = ops
        .next()
        .ok_or_else(|| Fault::sender(&["ter:InvalidArgs"], "empty env:Body"))?
        .clone();
    if ops.next().is_some() {
        return Err(Fault::sender(
            &["ter:InvalidArgs"],
            "more than one element in env:Body",
        ));
    }
    Ok(Request { headers, op })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// "env:Sender", "env:Receiver", "env:VersionMismatch", "env:MustUnderstand".
    pub code: &'static str,
    /// ONVIF subcodes, outermost first, e.g. ["ter:InvalidArgVal", "ter:NoProfile"].
    pub subcodes: Vec<String>,
    pub reason: String,
    /// Raw XML put inside env:Detail.
    pub detail: Option<String>,
}

impl Fault {
    pub fn sender(subcodes: &[&str], reason: &str) -> Fault {
        Fault {
            code: "env:Sender",
            subcodes: subcodes.iter().map(|s| s.to_string()).collect(),
            reason: reason.to_string(),
            detail: None,
        }
    }

    pub fn receiver(subcodes: &[&str], reason: &str) -> Fault {
        Fault {
            code: "env:Receiver",
            ..Fault::sender(subcodes, reason)
        }
    }

    fn version_mismatch() -> Fault {
        Fault {
            code: "env:VersionMismatch",
            subcodes: vec![],
            reason: "ONVIF uses SOAP 1.2".into(),
            detail: None,
        }
    }

    fn must_understand(block: &str) -> Fault {
        Fault {
            code: "env:MustUnderstand",
            subcodes: vec![],
            reason: format!("header block {block} is not understood"),
            detail: None,
        }
    }

    /// Core spec: the sender is not authorized (bad or missing credentials
    /// when WS-UsernameToken is the method in use).
    pub fn not_authorized() -> Fault {
        Fault::sender(&["ter:NotAuthorized"], "Sender not Authorized")
    }

    /// Core spec: an operation of the service's WSDL this device does not
    /// implement.
    pub fn action_not_supported(op: &str) -> Fault {
        Fault::receiver(
            &["ter:ActionNotSupported"],
            &format!("{op} is not supported by this device"),
        )
    }

    pub fn invalid_arg(sub: &str, reason: &str) -> Fault {
        Fault::sender(&["ter:InvalidArgVal", sub], reason)
    }

    pub fn with_detail(mut self, detail: String) -> Fault {
        self.detail = Some(detail);
        self
    }

    pub fn status(&self) -> StatusCode {
        match self.code {
            "env:Receiver" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn to_xml(&self) -> String {
        // Nested env:Subcode chain, innermost last.
        let mut sub = String::new();
        for s in self.subcodes.iter().rev() {
            sub = format!(
                "<env:Subcode><env:Value>{}</env:Value>{sub}</env:Subcode>",
                esc(s)
            );
        }
        let detail = self
            .detail
            .as_ref()
            .map(|d| format!("<env:Detail>{d}</env:Detail>"))
            .unwrap_or_default();
        envelope(&format!(
            r#"<env:Fault><env:Code><env:Value>{}</env:Value>{sub}</env:Code><env:Reason><env:Text xml:lang="en">{}</env:Text></env:Reason>{detail}</env:Fault>"#,
            self.code,
            esc(&self.reason)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(body: &str) -> String {
        format!(
            r#"<e:Envelope xmlns:e="{}"><e:Body>{body}</e:Body></e:Envelope>"#,
            ns::ENV
        )
    }

    #[test]
    fn malformed_xml_is_a_sender_wellformed_fault_with_http_400() {
        let f = parse_request("<e:Envelope").unwrap_err();
        assert_eq!(f.code, "env:Sender");
        assert_eq!(f.subcodes, vec!["ter:WellFormed"]);
        assert_eq!(f.status(), StatusCode::BAD_REQUEST);
        let xml = f.to_xml();
        let root = xml::parse(&xml).unwrap();
        let fault = &root.child(ns::ENV, "Body").unwrap().children[0];
        let code = fault.child(ns::ENV, "Code").unwrap();
        let subv = code
            .child(ns::ENV, "Subcode")
            .unwrap()
            .child(ns::ENV, "Value")
            .unwrap();
        assert_eq!(subv.resolve_qname(subv.text_trim()).unwrap().0, ns::TER);
    }

    #[test]
    fn receiver_faults_are_http_500_and_subcodes_nest_in_order() {
        let f = Fault::action_not_supported("SetHostname");
        assert_eq!(f.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let f = Fault::invalid_arg("ter:NoProfile", "x");
        let xml = f.to_xml();
        let a = xml.find("ter:InvalidArgVal").unwrap();
        let b = xml.find("ter:NoProfile").unwrap();
        assert!(a < b);
    }

    #[test]
    fn soap11_is_version_mismatch_and_unknown_must_understand_header_refused() {
        let s11 = format!(
            r#"<e:Envelope xmlns:e="{}"><e:Body><x/></e:Body></e:Envelope>"#,
            ns::SOAP11_ENV
        );
        assert_eq!(parse_request(&s11).unwrap_err().code, "env:VersionMismatch");
        let mu = format!(
            r#"<e:Envelope xmlns:e="{}"><e:Header><h xmlns="urn:other" e:mustUnderstand="true"/></e:Header><e:Body><x/></e:Body></e:Envelope>"#,
            ns::ENV
        );
        assert_eq!(parse_request(&mu).unwrap_err().code, "env:MustUnderstand");
        let r = parse_request(&env(r#"<GetScopes xmlns="urn:d"/>"#)).unwrap();
        assert!(r.op.is("urn:d", "GetScopes"));
    }
}
