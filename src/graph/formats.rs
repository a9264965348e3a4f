//! Content negotiation and serialisation of SPARQL answers and graphs.

use super::store::Answer;
use oxigraph::io::{JsonLdProfileSet, RdfFormat, RdfSerializer};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};

/// Result formats by media type, first = default.
const RESULT_TYPES: &[(&str, QueryResultsFormat)] = &[
    ("application/sparql-results+json", QueryResultsFormat::Json),
    ("application/json", QueryResultsFormat::Json),
    ("application/sparql-results+xml", QueryResultsFormat::Xml),
    ("application/xml", QueryResultsFormat::Xml),
    ("text/xml", QueryResultsFormat::Xml),
    ("text/csv", QueryResultsFormat::Csv),
    ("text/tab-separated-values", QueryResultsFormat::Tsv),
];

pub const JSON_LD: RdfFormat = RdfFormat::JsonLd {
    profile: JsonLdProfileSet::empty(),
};

/// Graph formats by media type, first = default.
const GRAPH_TYPES: &[(&str, RdfFormat)] = &[
    ("text/turtle", RdfFormat::Turtle),
    ("application/x-turtle", RdfFormat::Turtle),
    ("application/n-triples", RdfFormat::NTriples),
    ("text/plain", RdfFormat::NTriples),
    ("application/ld+json", JSON_LD),
    ("application/json", JSON_LD),
    ("application/rdf+xml", RdfFormat::RdfXml),
    ("application/xml", RdfFormat::RdfXml),
];

/// The chosen representation: media type to send and how to write it.
#[derive(Debug, Clone, Copy)]
pub enum Chosen {
    Results(&'static str, QueryResultsFormat),
    Graph(&'static str, RdfFormat),
}

impl Chosen {
    pub fn media_type(&self) -> &'static str {
        match self {
            Chosen::Results(m, _) | Chosen::Graph(m, _) => m,
        }
    }
}

/// Media ranges from an Accept header, best first (q-values honoured).
fn ranges(accept: &str) -> Vec<String> {
    let mut items: Vec<(f32, usize, String)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let media = it.next()?.trim().to_ascii_lowercase();
            let q = it
                .filter_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .next()
                .unwrap_or(1.0);
            (q > 0.0 && !media.is_empty()).then_some((q, i, media))
        })
        .collect();
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    items.into_iter().map(|(_, _, m)| m).collect()
}

fn pick<T: Copy>(accept: Option<&str>, table: &[(&'static str, T)]) -> Option<(&'static str, T)> {
    let accept = accept.unwrap_or("*/*");
    for r in ranges(accept) {
        if r == "*/*" {
            return table.first().copied();
        }
        if let Some(prefix) = r.strip_suffix("/*") {
            if let Some(hit) = table.iter().find(|(m, _)| {
                m.starts_with(prefix) && m.as_bytes().get(prefix.len()) == Some(&b'/')
            }) {
                return Some(*hit);
            }
            continue;
        }
        if let Some(hit) = table.iter().find(|(m, _)| *m == r) {
            return Some(*hit);
        }
    }
    None
}

/// Picks the format for a SELECT/ASK result; None = 406.
pub fn negotiate_results(accept: Option<&str>) -> Option<Chosen> {
    pick(accept, RESULT_TYPES).map(|(m, f)| Chosen::Results(m, f))
}

/// Picks the format for a graph (CONSTRUCT/DESCRIBE, graph store); None = 406.
pub fn negotiate_graph(accept: Option<&str>) -> Option<Chosen> {
    pick(accept, GRAPH_TYPES).map(|(m, f)| Chosen::Graph(m, f))
}

/// Picks by the kind of answer.
pub fn negotiate(answer: &Answer, accept: Option<&str>) -> Option<Chosen> {
    match answer {
        Answer::Graph(_) => negotiate_graph(accept),
        _ => negotiate_results(accept),
    }
}

/// Names accepted by `--format` and `?format=`.
pub fn graph_format_by_name(name: &str) -> Option<RdfFormat> {
    match name {
        "ttl" | "turtle" => Some(RdfFormat::Turtle),
        "nt" | "ntriples" | "n-triples" => Some(RdfFormat::NTriples),
        "jsonld" | "json-ld" => Some(JSON_LD),
        "rdf" | "rdfxml" | "xml" => Some(RdfFormat::RdfXml),
        _ => None,
    }
}

pub fn serialize(answer: &Answer, chosen: Chosen) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match (answer, chosen) {
        (Answer::Boolean(b), Chosen::Results(_, f)) => {
            QueryResultsSerializer::from_format(f).serialize_boolean_to_writer(&mut out, *b)?;
        }
        (Answer::Solutions { vars, rows }, Chosen::Results(_, f)) => {
            let mut w = QueryResultsSerializer::from_format(f)
                .serialize_solutions_to_writer(&mut out, vars.clone())?;
            for row in rows {
                w.serialize(
                    vars.iter()
                        .zip(row)
                        .filter_map(|(v, t)| t.as_ref().map(|t| (v, t))),
                )?;
            }
            w.finish()?;
        }
        (Answer::Graph(triples), Chosen::Graph(_, f)) => {
            let mut ser = RdfSerializer::from_format(f);
            for (p, ns) in super::vocab::PREFIXES {
                ser = ser.with_prefix(*p, *ns).map_err(std::io::Error::other)?;
            }
            let mut w = ser.for_writer(&mut out);
            for t in triples {
                w.serialize_triple(t)?;
            }
            w.finish()?;
        }
        _ => {
            return Err(std::io::Error::other(
                "format does not fit the kind of answer",
            ))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_picks_by_quality_and_wildcards() {
        let c = negotiate_results(Some("text/csv;q=0.5, application/sparql-results+xml")).unwrap();
        assert_eq!(c.media_type(), "application/sparql-results+xml");
        assert_eq!(
            negotiate_results(None).unwrap().media_type(),
            "application/sparql-results+json"
        );
        assert_eq!(
            negotiate_graph(Some("text/*")).unwrap().media_type(),
            "text/turtle"
        );
        assert!(negotiate_results(Some("image/png")).is_none());
        assert_eq!(
            negotiate_graph(Some("application/ld+json"))
                .unwrap()
                .media_type(),
            "application/ld+json"
        );
    }
}
