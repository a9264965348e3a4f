//! The one place Oxigraph is used (DESIGN.md §2: protocol crates are
//! wrapped once). Three named graphs: the ontology, the derived model, and
//! the user graph (SPARQL Update edits, persisted atomically).

use super::project::{project, HEntity, Obj, Sink};
use super::vocab::*;
use crate::model::Site;
use oxigraph::io::{RdfFormat, RdfParser, RdfSerializer};
use oxigraph::model::{
    GraphName, GraphNameRef, NamedNode, NamedNodeRef, NamedOrBlankNode, Quad, QuadRef, Term,
};
use oxigraph::sparql::{QueryResults, SparqlEvaluator, Variable};
use oxigraph::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use oxigraph::sparql::CancellationToken;

pub const USER_GRAPH_FILE: &str = "user-graph.nt";

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("loading {0}: {1}")]
    Load(String, String),
    #[error("store: {0}")]
    Store(String),
}

/// Why a query produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Syntax(String),
    #[error("query cancelled: it ran longer than the time limit")]
    Timeout,
    #[error("result has more than {0} rows; add a LIMIT or narrow the query")]
    TooLarge(usize),
    #[error("{0}")]
    Eval(String),
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Failed(String),
}

/// A fully evaluated answer (bounded by `QueryLimits::max_results`).
#[derive(Debug)]
pub enum Answer {
    Solutions {
        vars: Vec<Variable>,
        rows: Vec<Vec<Option<Term>>>,
    },
    Boolean(bool),
    Graph(Vec<oxigraph::model::Triple>),
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// SPARQL protocol `default-graph-uri`; empty = union of all graphs.
    pub default_graphs: Vec<String>,
    /// SPARQL protocol `named-graph-uri`; empty = all named graphs.
    pub named_graphs: Vec<String>,
}

pub struct GraphStore {
    store: Store,
    user_file: Option<PathBuf>,
    /// Serialises user-graph updates (read-modify-write of one graph).
    update_lock: Mutex<()>,
}

/// Writes projected triples into one graph of the store in batches, so a
/// million-entity site never holds all its quads in memory at once.
struct StoreSink<'a> {
    store: &'a Store,
    graph: GraphNameRef<'a>,
    base: &'a str,
    batch: Vec<Quad>,
    error: Option<String>,
}

const BATCH: usize = 100_000;

impl StoreSink<'_> {
    fn flush(&mut self) {
        if self.batch.is_empty() || self.error.is_some() {
            return;
        }
        if let Err(e) = self.store.extend(std::mem::take(&mut self.batch)) {
            self.error = Some(e.to_string());
        }
    }
}

impl Sink for StoreSink<'_> {
    fn triple(&mut self, subject: &str, predicate: &str, object: Obj<'_>) {
        let o: Term = match object {
            Obj::Id(id) => NamedNode::new_unchecked(format!("{}{id}", self.base)).into(),
            Obj::Iri(iri) => NamedNode::new_unchecked(iri).into(),
            Obj::Lit(l) => l.into(),
        };
        let q = QuadRef::new(
            NamedNodeRef::new_unchecked(subject),
            NamedNodeRef::new_unchecked(predicate),
            o.as_ref(),
            self.graph,
        );
        self.batch.push(q.into_owned());
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
}

impl GraphStore {
    /// Loads the ontology, projects the site, reloads the user graph.
    /// Returns the store and the Haystack entities of the same projection.
    pub fn build(site: &Site, data_dir: Option<&Path>) -> Result<(Self, Vec<HEntity>), GraphError> {
        let store = Store::new().map_err(|e| GraphError::Store(e.to_string()))?;
        let onto = NamedNode::new_unchecked(GRAPH_ONTOLOGY);
        for (name, text) in ONTOLOGY_FILES {
            let parser = RdfParser::from_format(RdfFormat::Turtle)
                .with_default_graph(onto.clone())
                .without_named_graphs();
            store
                .load_from_reader(parser, text.as_bytes())
                .map_err(|e| GraphError::Load(format!("ontology/{name}"), e.to_string()))?;
        }
        let model = NamedNode::new_unchecked(GRAPH_MODEL);
        let mut sink = StoreSink {
            store: &store,
            graph: model.as_ref().into(),
            base: &site.base_iri,
            batch: Vec::with_capacity(BATCH),
            error: None,
        };
        let entities = project(site, &mut sink, true);
        sink.flush();
        if let Some(e) = sink.error {
            return Err(GraphError::Store(e));
        }
        let user_file = data_dir.map(|d| d.join(USER_GRAPH_FILE));
        if let Some(path) = &user_file {
            if let Ok(bytes) = std::fs::read(path) {
                let parser = RdfParser::from_format(RdfFormat::NTriples)
                    .with_default_graph(NamedNode::new_unchecked(GRAPH_USER));
                store
                    .load_from_slice(parser, &bytes)
                    .map_err(|e| GraphError::Load(path.display().to_string(), e.to_string()))?;
            }
        }
        Ok((
            GraphStore {
                store,
                user_file,
                update_lock: Mutex::new(()),
            },
            entities,
        ))
    }

    pub fn len(&self) -> usize {
        self.store.len().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of triples in one named graph.
    pub fn graph_len(&self, graph: &str) -> usize {
        self.store
            .quads_for_pattern(
                None,
                None,
                None,
                Some(NamedNodeRef::new_unchecked(graph).into()),
            )
            .count()
    }

    /// Evaluates a SPARQL query, fully, within `max_results` rows; `cancel`
    /// stops it (the HTTP layer cancels on its timeout).
    pub fn query(
        &self,
        sparql: &str,
        dataset: &Dataset,
        max_results: usize,
        cancel: CancellationToken,
    ) -> Result<Answer, QueryError> {
        let mut prepared = SparqlEvaluator::new()
            .with_cancellation_token(cancel)
            .parse_query(sparql)
            .map_err(|e| QueryError::Syntax(e.to_string()))?;
        let ds = prepared.dataset_mut();
        // Precedence (SPARQL 1.1 Protocol): protocol graph parameters, then
        // the query's own FROM clauses, then our default (the union).
        if dataset.default_graphs.is_empty() {
            if ds.is_default_dataset() {
                ds.set_default_graph_as_union();
            }
        } else {
            ds.set_default_graph(
                dataset
                    .default_graphs
                    .iter()
                    .map(|g| GraphName::NamedNode(NamedNode::new_unchecked(g)))
                    .collect(),
            );
        }
        if !dataset.named_graphs.is_empty() {
            ds.set_available_named_graphs(
                dataset
                    .named_graphs
                    .iter()
                    .map(|g| NamedOrBlankNode::NamedNode(NamedNode::new_unchecked(g)))
                    .collect(),
            );
        }
        let results = prepared
            .on_store(&self.store)
            .execute()
            .map_err(eval_error)?;
        match results {
            QueryResults::Boolean(b) => Ok(Answer::Boolean(b)),
            QueryResults::Solutions(solutions) => {
                let vars = solutions.variables().to_vec();
                let mut rows = Vec::new();
                for s in solutions {
                    let s = s.map_err(eval_error)?;
                    if rows.len() >= max_results {
                        return Err(QueryError::TooLarge(max_results));
                    }
                    rows.push(vars.iter().map(|v| s.get(v).cloned()).collect());
                }
                Ok(Answer::Solutions { vars, rows })
            }
            QueryResults::Graph(triples) => {
                let mut out = Vec::new();
                for t in triples {
                    let t = t.map_err(eval_error)?;
                    if out.len() >= max_results {
                        return Err(QueryError::TooLarge(max_results));
                    }
                    out.push(t);
                }
                Ok(Answer::Graph(out))
            }
        }
    }

    /// Runs a canned query (ours, known to parse) and returns its rows.
    pub fn select(&self, sparql: &str) -> Result<Vec<Vec<Option<Term>>>, QueryError> {
        match self.query(
            sparql,
            &Dataset::default(),
            usize::MAX,
            CancellationToken::new(),
        )? {
            Answer::Solutions { rows, .. } => Ok(rows),
            _ => Err(QueryError::Eval("not a SELECT query".into())),
        }
    }

    /// Serialises one named graph (or the union of all with `None`).
    pub fn dump(
        &self,
        graph: Option<&str>,
        format: RdfFormat,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let mut ser = RdfSerializer::from_format(format);
        for (p, ns) in PREFIXES {
            ser = ser.with_prefix(*p, *ns).map_err(std::io::Error::other)?;
        }
        let mut w = ser.for_writer(out);
        let pattern = graph.map(|g| GraphNameRef::NamedNode(NamedNodeRef::new_unchecked(g)));
        // Sorted so each subject's triples stand together (Turtle groups
        // consecutive triples of one subject) and exports diff cleanly.
        let mut triples: Vec<oxigraph::model::Triple> = self
            .store
            .quads_for_pattern(None, None, None, pattern)
            .map(|q| q.map(oxigraph::model::Triple::from))
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        triples.sort_by_cached_key(|t| {
            (
                t.subject.to_string(),
                t.predicate.as_str().to_string(),
                t.object.to_string(),
            )
        });
        triples.dedup();
        for t in &triples {
            w.serialize_triple(t.as_ref())?;
        }
        w.finish()?;
        Ok(())
    }

    /// Applies a SPARQL Update to the user graph only: it runs against a
    /// scratch store whose default graph is a copy of the user graph, so it
    /// can never touch the derived model or the ontology; the result replaces
    /// the user graph and is saved atomically before it is visible.
    pub fn update_user_graph(&self, update: &str) -> Result<usize, UpdateError> {
        let prepared = SparqlEvaluator::new()
            .parse_update(update)
            .map_err(|e| UpdateError::Syntax(e.to_string()))?;
        let _guard = self.update_lock.lock().unwrap_or_else(|p| p.into_inner());
        let user = NamedNodeRef::new_unchecked(GRAPH_USER);
        let scratch = Store::new().map_err(|e| UpdateError::Failed(e.to_string()))?;
        for q in self
            .store
            .quads_for_pattern(None, None, None, Some(user.into()))
        {
            let q = q.map_err(|e| UpdateError::Failed(e.to_string()))?;
            scratch
                .insert(QuadRef::new(
                    q.subject.as_ref(),
                    q.predicate.as_ref(),
                    q.object.as_ref(),
                    GraphNameRef::DefaultGraph,
                ))
                .map_err(|e| UpdateError::Failed(e.to_string()))?;
        }
        prepared
            .on_store(&scratch)
            .execute()
            .map_err(|e| UpdateError::Rejected(e.to_string()))?;
        if scratch.named_graphs().next().is_some() {
            return Err(UpdateError::Rejected(
                "updates may only change the default graph, which is the user graph; GRAPH clauses are not allowed".into(),
            ));
        }
        let triples: Vec<Quad> = scratch
            .quads_for_pattern(None, None, None, Some(GraphNameRef::DefaultGraph))
            .filter_map(Result::ok)
            .map(|q| Quad::new(q.subject, q.predicate, q.object, user))
            .collect();
        if let Some(path) = &self.user_file {
            let mut buf = Vec::new();
            let mut w = RdfSerializer::from_format(RdfFormat::NTriples).for_writer(&mut buf);
            for q in &triples {
                w.serialize_triple(q.as_ref())
                    .map_err(|e| UpdateError::Failed(e.to_string()))?;
            }
            w.finish().map_err(|e| UpdateError::Failed(e.to_string()))?;
            crate::fsutil::write_atomic(path, &buf)
                .map_err(|e| UpdateError::Failed(format!("saving the user graph: {e}")))?;
        }
        let n = triples.len();
        let mut tx = self
            .store
            .start_transaction()
            .map_err(|e| UpdateError::Failed(e.to_string()))?;
        tx.clear_graph(user)
            .map_err(|e| UpdateError::Failed(e.to_string()))?;
        tx.extend(triples.iter().map(Quad::as_ref));
        tx.commit()
            .map_err(|e| UpdateError::Failed(e.to_string()))?;
        Ok(n)
    }
}

fn eval_error(e: oxigraph::sparql::QueryEvaluationError) -> QueryError {
    match e {
        oxigraph::sparql::QueryEvaluationError::Cancelled => QueryError::Timeout,
        other => QueryError::Eval(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_store() -> GraphStore {
        let site = crate::model::load_site(Path::new("config/demo.toml"), None).unwrap();
        GraphStore::build(&site, None).unwrap().0
    }

    /// The token is honoured (Oxigraph checks it when it reads the store).
    #[test]
    fn a_cancelled_token_stops_the_query() {
        let store = demo_store();
        let token = CancellationToken::new();
        token.cancel();
        let r = store.query(
            "SELECT * WHERE { ?s ?p ?o }",
            &Dataset::default(),
            usize::MAX,
            token,
        );
        assert!(matches!(r, Err(QueryError::Timeout)), "{r:?}");
    }

    #[test]
    fn results_over_the_row_limit_are_refused() {
        let store = demo_store();
        let r = store.query(
            "SELECT * WHERE { ?s ?p ?o }",
            &Dataset::default(),
            10,
            CancellationToken::new(),
        );
        assert!(matches!(r, Err(QueryError::TooLarge(10))), "{r:?}");
    }

    fn count(store: &GraphStore, q: &str) -> usize {
        match store
            .query(q, &Dataset::default(), usize::MAX, CancellationToken::new())
            .unwrap()
        {
            Answer::Solutions { rows, .. } => match &rows[0][0] {
                Some(Term::Literal(l)) => l.value().parse().unwrap(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    /// Without FROM the default graph is the union; a query's FROM wins.
    #[test]
    fn from_clauses_select_the_default_graph() {
        let store = demo_store();
        let union = count(&store, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }");
        let model = count(
            &store,
            &format!("SELECT (COUNT(*) AS ?n) FROM <{GRAPH_MODEL}> WHERE {{ ?s ?p ?o }}"),
        );
        assert_eq!(model, store.graph_len(GRAPH_MODEL));
        assert!(union > model);
    }
}
