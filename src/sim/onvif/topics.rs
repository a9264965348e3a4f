//! The device's event topics and the topic-expression filter of
//! CreatePullPointSubscription.
//!
//! Dialects (events.wsdl says both are mandatory for a device):
//! - Concrete (WS-Topics 1.3 §7.2): one topic path, e.g.
//!   `tns1:Device/Trigger/DigitalInput`.
//! - ONVIF ConcreteSet: concrete paths joined by `|`, each optionally ending
//!   in `//.` meaning "this topic and everything below it", e.g.
//!   `tns1:Device/Trigger//.|tns1:VideoSource/MotionAlarm`.
//!
//! Prefixes resolve against the namespace bindings in scope at the
//! TopicExpression element. Child segments may be bare NCNames (they belong
//! to the root topic's namespace) or carry the same namespace's prefix.

use super::soap::ns;
use super::xml::Element;

pub const DIALECT_CONCRETE: &str = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete";
pub const DIALECT_CONCRETE_SET: &str = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    DigitalInput,
    Relay,
    MotionAlarm,
    /// Tamper: global scene change detected by the imaging service.
    GlobalSceneChange,
    SignalLoss,
    StorageFailure,
    RecordingJobState,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::DigitalInput,
        Topic::Relay,
        Topic::MotionAlarm,
        Topic::GlobalSceneChange,
        Topic::SignalLoss,
        Topic::StorageFailure,
        Topic::RecordingJobState,
    ];

    /// Path below the tns1 root (ONVIF topic namespace).
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Topic::DigitalInput => &["Device", "Trigger", "DigitalInput"],
            Topic::Relay => &["Device", "Trigger", "Relay"],
            Topic::MotionAlarm => &["VideoSource", "MotionAlarm"],
            Topic::GlobalSceneChange => &["VideoSource", "GlobalSceneChange", "ImagingService"],
            Topic::SignalLoss => &["VideoSource", "SignalLoss"],
            Topic::StorageFailure => &["Device", "HardwareFailure", "StorageFailure"],
            Topic::RecordingJobState => &["RecordingConfig", "JobState"],
        }
    }

    /// The topic as a Concrete expression with the `tns1` prefix.
    pub fn expr(self) -> String {
        format!("tns1:{}", self.path().join("/"))
    }

    /// (Source item name, its XML type; Data item name, its XML type), as the
    /// ONVIF specs describe each topic's message.
    pub fn items(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Topic::DigitalInput => (
                "InputToken",
                "tt:ReferenceToken",
                "LogicalState",
                "xs:boolean",
            ),
            Topic::Relay => (
                "RelayToken",
                "tt:ReferenceToken",
                "LogicalState",
                "tt:RelayLogicalState",
            ),
            Topic::MotionAlarm | Topic::GlobalSceneChange | Topic::SignalLoss => {
                ("Source", "tt:ReferenceToken", "State", "xs:boolean")
            }
            Topic::StorageFailure => ("Token", "tt:ReferenceToken", "Failed", "xs:boolean"),
            Topic::RecordingJobState => (
                "RecordingJobToken",
                "tt:RecordingJobReference",
                "State",
                "xs:string",
            ),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum FilterError {
    DialectUnknown,
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    /// Local names below the root, root first; None if the root is not in
    /// the ONVIF topic namespace (matches nothing).
    segments: Option<Vec<String>>,
    descendants: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    alternatives: Vec<Alternative>,
}

impl TopicFilter {
    /// `el` is the wsnt:TopicExpression element (for its text, Dialect and
    /// prefix scope).
    pub fn parse(el: &Element) -> Result<TopicFilter, FilterError> {
        let dialect = el.attr("Dialect").unwrap_or("").trim();
        let set = match dialect {
            DIALECT_CONCRETE_SET => true,
            DIALECT_CONCRETE => false,
            _ => return Err(FilterError::DialectUnknown),
        };
        let text = el.text_trim();
        if text.is_empty() {
            return Err(FilterError::Invalid("empty topic expression".into()));
        }
        let parts: Vec<&str> = text.split('|').collect();
        if !set && parts.len() > 1 {
            return Err(FilterError::Invalid(
                "'|' is not allowed in the Concrete dialect".into(),
            ));
        }
        let mut alternatives = Vec::new();
        for part in parts {
            let part = part.trim();
            let (path, descendants) = match part.strip_suffix("//.") {
                Some(p) if set => (p, true),
                Some(_) => {
                    return Err(FilterError::Invalid(
                        "'//.' needs the ConcreteSet dialect".into(),
                    ))
                }
                None => (part, false),
            };
            alternatives.push(parse_path(path, descendants, el)?);
        }
        Ok(TopicFilter { alternatives })
    }

    pub fn matches(&self, topic: Topic) -> bool {
        let path = topic.path();
        self.alternatives.iter().any(|a| {
            let Some(segs) = &a.segments else {
                return false;
            };
            let len_ok = if a.descendants {
                segs.len() <= path.len()
            } else {
                segs.len() == path.len()
            };
            len_ok && segs.iter().zip(path).all(|(s, p)| s == p)
        })
    }

    pub fn matches_any(&self) -> bool {
        Topic::ALL.iter().any(|t| self.matches(*t))
    }
}

fn parse_path(path: &str, descendants: bool, el: &Element) -> Result<Alternative, FilterError> {
    let mut segments = Vec::new();
    let mut in_onvif_ns = true;
    for (i, seg) in path.split('/').enumerate() {
        let seg = seg.trim();
        if seg.is_empty()
            || !seg
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.:".contains(c))
        {
            return Err(FilterError::Invalid(format!(
                "bad topic path segment {seg:?}"
            )));
        }
        let local = match seg.split_once(':') {
            Some(_) => {
                let (ns_uri, local) = el
                    .resolve_qname(seg)
                    .ok_or_else(|| FilterError::Invalid(format!("unbound prefix in {seg:?}")))?;
                if ns_uri != ns::TNS1 {
                    in_onvif_ns = false;
                }
                local
            }
            // A bare root has no namespace: not an ONVIF topic.
            None if i == 0 => {
                in_onvif_ns = el.resolve_qname(seg).is_some_and(|(n, _)| n == ns::TNS1);
                seg.to_string()
            }
            None => seg.to_string(),
        };
        if local.contains(':') || local.is_empty() {
            return Err(FilterError::Invalid(format!(
                "bad topic path segment {seg:?}"
            )));
        }
        segments.push(local);
    }
    Ok(Alternative {
        segments: in_onvif_ns.then_some(segments),
        descendants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::onvif::xml;

    fn filter(dialect: &str, expr: &str) -> Result<TopicFilter, FilterError> {
        let doc = format!(
            r#"<wsnt:TopicExpression xmlns:wsnt="{}" xmlns:tns1="{}" xmlns:other="urn:x" Dialect="{dialect}">{expr}</wsnt:TopicExpression>"#,
            ns::WSNT,
            ns::TNS1
        );
        TopicFilter::parse(&xml::parse(&doc).unwrap())
    }

    #[test]
    fn concrete_set_with_descendants_and_alternatives() {
        let f = filter(DIALECT_CONCRETE_SET, "tns1:Device/Trigger//.").unwrap();
        assert!(f.matches(Topic::DigitalInput));
        assert!(f.matches(Topic::Relay));
        assert!(!f.matches(Topic::StorageFailure));
        assert!(!f.matches(Topic::MotionAlarm));

        let f = filter(
            DIALECT_CONCRETE_SET,
            "tns1:VideoSource/MotionAlarm | tns1:Device//.",
        )
        .unwrap();
        assert!(f.matches(Topic::MotionAlarm));
        assert!(f.matches(Topic::StorageFailure));
        assert!(!f.matches(Topic::SignalLoss));
        assert!(!f.matches(Topic::RecordingJobState));
    }

    #[test]
    fn concrete_path_matches_exactly_and_prefixes_resolve_by_namespace() {
        let f = filter(DIALECT_CONCRETE, "tns1:Device/Trigger/DigitalInput").unwrap();
        assert!(f.matches(Topic::DigitalInput));
        assert!(!f.matches(Topic::Relay));
        // A parent topic alone does not match its children without //.
        let f = filter(DIALECT_CONCRETE_SET, "tns1:Device/Trigger").unwrap();
        assert!(!f.matches_any());
        // Same names in another namespace are not ONVIF topics.
        let f = filter(DIALECT_CONCRETE_SET, "other:Device/Trigger//.").unwrap();
        assert!(!f.matches_any());
        // Prefixed child segments are accepted.
        let f = filter(DIALECT_CONCRETE, "tns1:Device/tns1:Trigger/tns1:Relay").unwrap();
        assert!(f.matches(Topic::Relay));
    }

    #[test]
    fn bad_dialects_and_expressions_are_refused() {
        assert_eq!(
            filter("urn:nope", "tns1:Device").unwrap_err(),
            FilterError::DialectUnknown
        );
        assert!(matches!(
            filter(DIALECT_CONCRETE, "tns1:A|tns1:B"),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            filter(DIALECT_CONCRETE, "tns1:Device//."),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            filter(DIALECT_CONCRETE_SET, "tns1:Device//Trigger"),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            filter(DIALECT_CONCRETE_SET, "nope:Device"),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            filter(DIALECT_CONCRETE_SET, ""),
            Err(FilterError::Invalid(_))
        ));
    }
}
