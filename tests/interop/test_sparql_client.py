"""vgw's SPARQL 1.1 Protocol endpoint, seen by an independent client.

Peers:
  * SPARQLWrapper (https://github.com/RDFLib/sparqlwrapper): the protocol
    client. It does the HTTP (GET, POST form, POST application/sparql-query)
    and content negotiation; the JSON and XML result documents it receives
    are parsed here with json / ElementTree, not by vgw code.
  * rdflib's own SPARQL engine: the reference answer. It runs the same query
    over the exported demo model (`vgw export --format ttl`) plus
    ontology/Brick.ttl, vgw.ttl and units.ttl in one graph, which is what the
    endpoint's default graph is (model + ontology + an empty user graph), so
    rdfs:subClassOf* paths behave the same on both sides.

Rows are compared as multisets of canonical terms (literals by datatype,
language and value), so 1.50 and 1.5 as xsd:decimal are equal but "1" and 1
are not.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pytest
import rdflib
import requests
from rdflib import BNode, Literal, URIRef
from rdflib.compare import graph_diff, to_isomorphic
from rdflib import namespace as ns
from SPARQLWrapper import GET, JSON, POST, POSTDIRECTLY, TURTLE, URLENCODED, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

# The endpoint's default graph = model + these (not brick-1.4-rec-compat.ttl,
# which is a validation-only patch).
SERVED_ONTOLOGY_FILES = ("Brick.ttl", "vgw.ttl", "units.ttl")
MODEL_GRAPH = "urn:vgw:graph:model"

PREFIXES = """\
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX brick: <https://brickschema.org/schema/Brick#>
PREFIX rec: <https://w3id.org/rec#>
PREFIX ref: <https://brickschema.org/schema/Brick/ref#>
PREFIX bacnet: <http://data.ashrae.org/bacnet/2020#>
PREFIX unit: <http://qudt.org/vocab/unit/>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX vgw: <https://w3id.org/vgw#>
"""


@dataclass(frozen=True)
class Q:
    name: str
    text: str  # may contain {nvr}
    form: str = "select"  # select | ask | construct
    nonempty: bool = True  # the reference answer must not be empty (no vacuous passes)
    expect: bool | None = None  # for ASK

    def render(self, **kw) -> str:
        return PREFIXES + self.text.format(**kw)


QUERIES = [
    Q(
        "cameras_by_class",
        """SELECT ?class (COUNT(?cam) AS ?cameras) WHERE {{
             ?cam a ?class .
             ?class rdfs:subClassOf* brick:Surveillance_Camera .
           }} GROUP BY ?class""",
    ),
    Q(
        "cameras_per_nvr",
        """SELECT ?nvr (COUNT(DISTINCT ?cam) AS ?cameras) WHERE {{
             ?nvr a/rdfs:subClassOf* brick:Network_Video_Recorder .
             ?cam a/rdfs:subClassOf* brick:Surveillance_Camera ;
                  vgw:streamsVideoTo+ ?nvr .
           }} GROUP BY ?nvr""",
    ),
    Q(
        "ups_feeds_transitively",
        """SELECT ?ups ?load ?loadClass WHERE {{
             ?ups a/rdfs:subClassOf* vgw:Uninterruptible_Power_Supply ;
                  brick:feeds+ ?load .
             ?load a ?loadClass .
           }}""",
    ),
    Q(
        "points_of_one_nvr_with_bacnet_id",
        """SELECT ?point ?oid ?name WHERE {{
             <{nvr}> brick:hasPoint ?point .
             ?point ref:hasExternalReference ?ref .
             ?ref a ref:BACnetReference ;
                  bacnet:object-identifier ?oid .
             OPTIONAL {{ ?ref bacnet:object-name ?name }}
           }}""",
    ),
    Q(
        "rooms_per_floor",
        """SELECT ?floor (COUNT(?room) AS ?rooms) WHERE {{
             ?floor a rec:Level .
             OPTIONAL {{ ?room rec:isPartOf ?floor }}
           }} GROUP BY ?floor""",
    ),
    Q(
        "rooms_with_floor_and_building",
        """SELECT ?room ?roomClass ?floor ?building WHERE {{
             ?room rec:isPartOf ?floor ; a ?roomClass .
             ?floor a rec:Level ; rec:isPartOf ?building .
             ?building a rec:Building .
           }}""",
    ),
    Q(
        "equipment_optional_filter",
        """SELECT ?eq ?room ?model ?hot WHERE {{
             ?eq brick:hasLocation ?room .
             OPTIONAL {{ ?eq vgw:model ?model }}
             OPTIONAL {{ ?eq vgw:operatingTempMax ?hot FILTER(?hot >= 40) }}
             FILTER(isIRI(?eq) && STRSTARTS(STR(?eq), "urn:"))
             FILTER NOT EXISTS {{ ?eq a/rdfs:subClassOf* brick:Point }}
           }}""",
    ),
    Q(
        "time_sync_targets",
        """SELECT ?x ?server WHERE {{
             ?x vgw:synchronizesTimeWith ?server .
             ?server a/rdfs:subClassOf* vgw:Time_Server .
           }}""",
    ),
    Q(
        "points_by_kind",
        """SELECT ?kind (COUNT(DISTINCT ?p) AS ?points) WHERE {{
             VALUES ?kind {{ brick:Alarm brick:Sensor brick:Status brick:Command }}
             ?p a/rdfs:subClassOf* ?kind .
           }} GROUP BY ?kind""",
    ),
    Q(
        "ask_camera_streams_to_recorder",
        """ASK {{ ?cam a/rdfs:subClassOf* brick:Surveillance_Camera ;
                       vgw:streamsVideoTo+ ?r .
                  ?r a/rdfs:subClassOf* brick:Network_Video_Recorder }}""",
        form="ask",
        expect=True,
    ),
    Q(
        "ask_video_into_ups",
        """ASK {{ ?x vgw:streamsVideoTo ?u .
                  ?u a/rdfs:subClassOf* vgw:Uninterruptible_Power_Supply }}""",
        form="ask",
        expect=False,
    ),
    Q(
        "ask_ontology_in_default_graph",
        """ASK {{ brick:Surveillance_Camera rdfs:subClassOf+ brick:Equipment .
                  vgw:NTP_Server rdfs:subClassOf+ brick:Server }}""",
        form="ask",
        expect=True,
    ),
    Q(
        "construct_video_topology",
        """CONSTRUCT {{ ?src vgw:streamsVideoTo ?dst . ?src rdfs:label ?label }}
           WHERE {{
             ?src vgw:streamsVideoTo ?dst .
             OPTIONAL {{ ?src rdfs:label ?label }}
           }}""",
        form="construct",
    ),
]

SELECTS = [q for q in QUERIES if q.form == "select"]
ASKS = [q for q in QUERIES if q.form == "ask"]
CONSTRUCTS = [q for q in QUERIES if q.form == "construct"]

# (SPARQLWrapper method, request method) — GET, POST form, POST direct
METHODS = {
    "get": (GET, URLENCODED),
    "post-form": (POST, URLENCODED),
    "post-direct": (POST, POSTDIRECTLY),
}

SRX = "{http://www.w3.org/2005/sparql-results#}"
NUMERIC = {
    str(ns.XSD[t])
    for t in (
        "integer decimal double float int long short byte nonNegativeInteger "
        "positiveInteger negativeInteger nonPositiveInteger unsignedInt "
        "unsignedLong unsignedShort unsignedByte boolean"
    ).split()
}


# --------------------------------------------------------------------------
# canonical terms
# --------------------------------------------------------------------------


def canon_literal(lexical: str, datatype: str | None, lang: str | None):
    lang = lang.lower() if lang else None
    if datatype is None:
        datatype = str(ns.RDF.langString) if lang else str(ns.XSD.string)
    value: object = lexical
    if datatype in NUMERIC:
        py = Literal(lexical, datatype=URIRef(datatype)).toPython()
        if isinstance(py, (int, float, Decimal, bool)):
            value = py
    return ("literal", datatype, lang, value)


def canon(term):
    if term is None:
        return None
    if isinstance(term, URIRef):
        return ("uri", str(term))
    if isinstance(term, BNode):
        return ("bnode",)  # blank node labels are local to each answer
    if isinstance(term, Literal):
        return canon_literal(
            str(term), str(term.datatype) if term.datatype else None, term.language
        )
    raise TypeError(f"unexpected term {term!r}")


def canon_json(b: dict | None):
    if b is None:
        return None
    t = b["type"]
    if t == "uri":
        return ("uri", b["value"])
    if t == "bnode":
        return ("bnode",)
    if t in ("literal", "typed-literal"):
        return canon_literal(b["value"], b.get("datatype"), b.get("xml:lang"))
    raise AssertionError(f"unknown SPARQL JSON term type {t!r} in {b}")


def canon_xml(binding: ET.Element):
    (node,) = list(binding)
    tag = node.tag.removeprefix(SRX)
    if tag == "uri":
        return ("uri", node.text or "")
    if tag == "bnode":
        return ("bnode",)
    if tag == "literal":
        return canon_literal(
            node.text or "",
            node.get("datatype"),
            node.get("{http://www.w3.org/XML/1998/namespace}lang"),
        )
    raise AssertionError(f"unknown SPARQL XML term <{tag}>")


# --------------------------------------------------------------------------
# reference (rdflib) side
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def reference_graph(demo_export_ttl, ontology_dir) -> rdflib.Graph:
    g = rdflib.Graph()
    g.parse(demo_export_ttl, format="turtle")
    for name in SERVED_ONTOLOGY_FILES:
        path = Path(ontology_dir) / name
        if not path.is_file():
            pytest.fail(f"missing ontology file {path}", pytrace=False)
        g.parse(path, format="turtle")
    return g


@pytest.fixture(scope="session")
def query_vars(reference_graph) -> dict:
    """Values substituted into query templates, chosen from the export."""
    rows = reference_graph.query(
        PREFIXES
        + """SELECT DISTINCT ?nvr WHERE {
               ?nvr a/rdfs:subClassOf* brick:Network_Video_Recorder ; brick:hasPoint ?p .
             }"""
    )
    nvrs = sorted(str(r[0]) for r in rows)
    assert nvrs, "the demo model has no NVR with points; the SPARQL queries would be vacuous"
    return {"nvr": nvrs[0]}


@pytest.fixture(scope="session")
def reference(reference_graph):
    @lru_cache(maxsize=None)
    def run(query: str):
        return reference_graph.query(query)

    return run


def reference_rows(result) -> tuple[list[str], Counter]:
    names = [str(v) for v in result.vars]
    return names, Counter(tuple(canon(t) for t in row) for row in result)


# --------------------------------------------------------------------------
# client (SPARQLWrapper) side
# --------------------------------------------------------------------------


def client(gateway, query: str, fmt: str, method: str = "get", only_conneg: bool = True):
    sw = SPARQLWrapper(gateway.sparql_url)
    sw.setQuery(query)
    sw.setReturnFormat(fmt)
    http_method, request_method = METHODS[method]
    sw.setMethod(http_method)
    sw.setRequestMethod(request_method)
    sw.setOnlyConneg(only_conneg)
    sw.setTimeout(60)
    return sw


def fetch(sw: SPARQLWrapper) -> tuple[str, bytes]:
    result = sw.query()
    ctype = result.info().get("content-type", "")
    return ctype, result.response.read()


def parse_select(fmt: str, ctype: str, body: bytes) -> tuple[list[str], Counter]:
    if fmt == JSON:
        assert ctype.startswith("application/sparql-results+json"), ctype
        doc = json.loads(body)
        names = doc["head"]["vars"]
        rows = Counter(
            tuple(canon_json(b.get(n)) for n in names) for b in doc["results"]["bindings"]
        )
        return names, rows
    assert ctype.startswith("application/sparql-results+xml"), ctype
    root = ET.fromstring(body)
    names = [v.get("name") for v in root.iter(f"{SRX}variable")]
    rows = Counter()
    for result in root.iter(f"{SRX}result"):
        by_name = {b.get("name"): canon_xml(b) for b in result.findall(f"{SRX}binding")}
        rows[tuple(by_name.get(n) for n in names)] += 1
    return names, rows


def parse_ask(fmt: str, ctype: str, body: bytes) -> bool:
    if fmt == JSON:
        assert ctype.startswith("application/sparql-results+json"), ctype
        return bool(json.loads(body)["boolean"])
    assert ctype.startswith("application/sparql-results+xml"), ctype
    node = ET.fromstring(body).find(f"{SRX}boolean")
    assert node is not None, body[:500]
    return (node.text or "").strip() == "true"


def diff_message(expected: Counter, got: Counter, limit: int = 15) -> str:
    missing = list((expected - got).elements())[:limit]
    extra = list((got - expected).elements())[:limit]
    return (
        f"rdflib rows: {sum(expected.values())}, endpoint rows: {sum(got.values())}\n"
        f"only in rdflib (first {limit}): {missing}\n"
        f"only in endpoint (first {limit}): {extra}"
    )


# --------------------------------------------------------------------------
# tests: answers agree with rdflib
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("fmt", [JSON, XML])
@pytest.mark.parametrize("q", SELECTS, ids=[q.name for q in SELECTS])
def test_select_matches_rdflib(gateway, reference, query_vars, q, fmt, method):
    query = q.render(**query_vars)
    ref_names, ref_rows = reference_rows(reference(query))
    if q.nonempty:
        assert ref_rows, f"reference answer for {q.name} is empty; the demo site lacks what it asks"
    names, rows = parse_select(fmt, *fetch(client(gateway, query, fmt, method)))
    assert names == ref_names, f"projection differs: endpoint {names}, rdflib {ref_names}"
    assert rows == ref_rows, f"{q.name} ({fmt}, {method}):\n{diff_message(ref_rows, rows)}"


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("fmt", [JSON, XML])
@pytest.mark.parametrize("q", ASKS, ids=[q.name for q in ASKS])
def test_ask_matches_rdflib(gateway, reference, query_vars, q, fmt, method):
    query = q.render(**query_vars)
    expected = bool(reference(query).askAnswer)
    assert expected == q.expect, f"rdflib says {expected} for {q.name}; the demo site changed?"
    got = parse_ask(fmt, *fetch(client(gateway, query, fmt, method)))
    assert got == expected


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("q", CONSTRUCTS, ids=[q.name for q in CONSTRUCTS])
def test_construct_turtle_matches_rdflib(gateway, reference, query_vars, q, method):
    query = q.render(**query_vars)
    expected = reference(query).graph
    assert len(expected) > 0, f"reference CONSTRUCT {q.name} is empty"
    ctype, body = fetch(client(gateway, query, TURTLE, method))
    assert ctype.startswith("text/turtle") or ctype.startswith("application/x-turtle"), ctype
    got = rdflib.Graph().parse(data=body, format="turtle")
    if to_isomorphic(got) != to_isomorphic(expected):
        _, only_ref, only_got = graph_diff(to_isomorphic(expected), to_isomorphic(got))
        pytest.fail(
            f"CONSTRUCT {q.name} differs (rdflib {len(expected)} triples, endpoint {len(got)})\n"
            f"only in rdflib:\n{only_ref.serialize(format='nt')[:3000]}\n"
            f"only in endpoint:\n{only_got.serialize(format='nt')[:3000]}"
        )


def test_served_model_graph_equals_export(gateway, demo_export_ttl):
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{MODEL_GRAPH}> {{ ?s ?p ?o }} }}"
    ctype, body = fetch(client(gateway, query, TURTLE))
    served = rdflib.Graph().parse(data=body, format="turtle")
    exported = rdflib.Graph().parse(demo_export_ttl, format="turtle")
    assert len(served) > 0, f"named graph <{MODEL_GRAPH}> is empty or missing"
    if to_isomorphic(served) != to_isomorphic(exported):
        _, only_exp, only_srv = graph_diff(to_isomorphic(exported), to_isomorphic(served))
        pytest.fail(
            f"<{MODEL_GRAPH}> ({len(served)} triples) differs from `vgw export` "
            f"({len(exported)} triples)\nonly in export:\n"
            f"{only_exp.serialize(format='nt')[:3000]}\nonly served:\n"
            f"{only_srv.serialize(format='nt')[:3000]}"
        )


def test_sparqlwrapper_default_settings(gateway, reference, query_vars):
    """SPARQLWrapper by default also sends format=/output=/results= parameters
    (for Virtuoso & co.); the endpoint must ignore parameters it does not know."""
    q = SELECTS[0]
    query = q.render(**query_vars)
    _, ref_rows = reference_rows(reference(query))
    sw = client(gateway, query, JSON, "get", only_conneg=False)
    doc = sw.queryAndConvert()
    names = doc["head"]["vars"]
    rows = Counter(tuple(canon_json(b.get(n)) for n in names) for b in doc["results"]["bindings"])
    assert rows == ref_rows, diff_message(ref_rows, rows)


# --------------------------------------------------------------------------
# tests: protocol details (plain HTTP)
# --------------------------------------------------------------------------


def test_get_and_post_agree(gateway, query_vars):
    query = SELECTS[1].render(**query_vars)
    accept = {"Accept": "application/sparql-results+json"}
    url = gateway.sparql_url
    answers = {
        "GET": requests.get(url, params={"query": query}, headers=accept, timeout=60),
        "POST form": requests.post(url, data={"query": query}, headers=accept, timeout=60),
        "POST direct": requests.post(
            url,
            data=query.encode(),
            headers={**accept, "Content-Type": "application/sparql-query"},
            timeout=60,
        ),
    }
    for how, r in answers.items():
        assert r.status_code == 200, f"{how}: HTTP {r.status_code}: {r.text[:500]}"
    bodies = {
        how: Counter(json.dumps(b, sort_keys=True) for b in r.json()["results"]["bindings"])
        for how, r in answers.items()
    }
    assert bodies["GET"] == bodies["POST form"] == bodies["POST direct"]


@pytest.mark.parametrize(
    "accept, ctype, header",
    [
        ("text/csv", "text/csv", lambda names: ",".join(names)),
        ("text/tab-separated-values", "text/tab-separated-values", lambda names: "\t".join("?" + n for n in names)),
    ],
    ids=["csv", "tsv"],
)
def test_csv_tsv_by_accept(gateway, reference, query_vars, accept, ctype, header):
    q = next(q for q in SELECTS if q.name == "points_of_one_nvr_with_bacnet_id")
    query = q.render(**query_vars)
    ref_names, ref_rows = reference_rows(reference(query))
    r = requests.get(gateway.sparql_url, params={"query": query}, headers={"Accept": accept}, timeout=60)
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith(ctype), r.headers.get("content-type")
    text = r.content.decode("utf-8")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    assert first_line == header(ref_names), f"header line {first_line!r}"
    if accept == "text/csv":
        rows = list(csv.reader(io.StringIO(text)))[1:]
    else:
        rows = [line for line in text.split("\n")[1:] if line.strip("\r")]
    assert len(rows) == sum(ref_rows.values()), f"{len(rows)} data rows, rdflib has {sum(ref_rows.values())}"


MALFORMED = "SELECT ?x WHERE { ?x a }"


@pytest.mark.parametrize("how", ["GET", "POST form", "POST direct"])
def test_malformed_query_is_400_with_parse_error(gateway, how):
    url = gateway.sparql_url
    if how == "GET":
        r = requests.get(url, params={"query": MALFORMED}, timeout=30)
    elif how == "POST form":
        r = requests.post(url, data={"query": MALFORMED}, timeout=30)
    else:
        r = requests.post(
            url, data=MALFORMED.encode(), headers={"Content-Type": "application/sparql-query"}, timeout=30
        )
    assert r.status_code == 400, f"{how}: HTTP {r.status_code}: {r.text[:500]}"
    body = r.text.lower()
    assert body.strip(), "400 without a message"
    assert any(w in body for w in ("parse", "syntax", "expected", "unexpected", "error")), (
        f"400 body does not look like a parse error: {r.text[:500]}"
    )


def test_malformed_query_via_sparqlwrapper(gateway):
    with pytest.raises(QueryBadFormed):
        client(gateway, MALFORMED, JSON).query()


def test_construct_turtle_via_accept(gateway, query_vars):
    query = CONSTRUCTS[0].render(**query_vars)
    r = requests.get(gateway.sparql_url, params={"query": query}, headers={"Accept": "text/turtle"}, timeout=60)
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("text/turtle"), r.headers.get("content-type")
    g = rdflib.Graph().parse(data=r.content, format="turtle")
    assert len(g) > 0


def test_demo_prints_sparql_url(gateway):
    lines = gateway.stdout_path.read_text(errors="replace").splitlines()
    hits = [line for line in lines if "SPARQL:" in line]
    assert hits, f"`vgw demo` printed no 'SPARQL:' line; stdout was:\n" + "\n".join(lines[:40])
    assert any(str(gateway) in line for line in hits), f"'SPARQL:' line lacks {gateway}: {hits}"
