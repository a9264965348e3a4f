"""Brick's own SHACL validation (brickschema) of vgw's exported model.

Peer: brickschema (https://github.com/BrickSchema/py-brickschema), with the
SHACL engine it picks by default (pyshifty if installed; pinned in
requirements.txt). Set VGW_SHACL_ENGINE=pyshacl|shifty|topquadrant to force one.

The validation graph is exactly what DESIGN.md section 4 prescribes:
    model + ontology/Brick.ttl + vgw.ttl + units.ttl + brick-1.4-rec-compat.ttl
loaded from local files into brickschema.Graph(load_brick=False); nothing is
fetched from the network (non-loopback connects are refused while these
tests run).

bad_models/good_minimal.ttl is a small valid model. Each bad_models/bad_*.ttl
is an OVERLAY: good_minimal.ttl plus one or two wrong triples. good_minimal
must pass and every overlay must be rejected with a violation that names one
of the overlay's own nodes, so the rejections cannot pass vacuously.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from functools import lru_cache
from pathlib import Path

import brickschema
import brickschema.shacl
import pytest
import rdflib
from rdflib import BNode, URIRef
from rdflib import namespace as ns

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE / "bad_models"
GOOD_MODEL = MODELS_DIR / "good_minimal.ttl"
BAD_MODELS = sorted(MODELS_DIR.glob("bad_*.ttl"))

# Order matters only for readability of failures; all go into one graph.
ONTOLOGY_FILES = ("Brick.ttl", "vgw.ttl", "units.ttl", "brick-1.4-rec-compat.ttl")

BRICK = rdflib.Namespace("https://brickschema.org/schema/Brick#")
VGW_NS = "https://w3id.org/vgw#"
ONTOLOGY_NAMESPACES = (
    str(BRICK),
    VGW_NS,
    "https://w3id.org/rec#",
    "http://qudt.org/vocab/unit/",
    "http://qudt.org/vocab/quantitykind/",
    "http://qudt.org/schema/qudt/",
    "https://brickschema.org/schema/Brick/ref#",
)

ENGINE = os.environ.get("VGW_SHACL_ENGINE") or None


# --------------------------------------------------------------------------
# offline guard: brickschema must not fetch anything
# --------------------------------------------------------------------------


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return True  # AF_UNIX and friends
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: would need DNS, i.e. the network


@pytest.fixture(scope="module", autouse=True)
def no_network():
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"interop Brick tests run offline; refused connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"interop Brick tests run offline; refused connect to {address!r}")
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        yield


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _ontology_triples(ontology_dir: str) -> rdflib.Graph:
    """All ontology files parsed once (Brick.ttl is ~2 MB)."""
    g = rdflib.Graph()
    missing = [n for n in ONTOLOGY_FILES if not (Path(ontology_dir) / n).is_file()]
    if missing:
        pytest.fail(f"missing ontology file(s) in {ontology_dir}: {', '.join(missing)}", pytrace=False)
    for name in ONTOLOGY_FILES:
        g.parse(Path(ontology_dir) / name, format="turtle")
    return g


def validation_graph(ontology_dir: Path, *model_files: Path) -> brickschema.Graph:
    g = brickschema.Graph(load_brick=False)  # local Brick.ttl only, never the network
    g += _ontology_triples(str(ontology_dir))
    for f in model_files:
        g.load_file(str(f), format="turtle")
    return g


class Outcome:
    def __init__(self, conforms: bool, report: rdflib.Graph, text: str, engine: str):
        self.conforms = conforms
        self.report = report
        self.text = text
        self.engine = engine
        self.violations = [
            r
            for r in report.subjects(ns.RDF.type, ns.SH.ValidationResult)
            if report.value(r, ns.SH.resultSeverity) == ns.SH.Violation
        ]

    def nodes_of(self, result) -> set:
        return {
            self.report.value(result, ns.SH.focusNode),
            self.report.value(result, ns.SH.value),
        } - {None}

    def describe(self, limit: int = 12000) -> str:
        text = self.text if len(self.text) <= limit else self.text[:limit] + "\n... (truncated)"
        return f"engine={self.engine}, violations={len(self.violations)}\n{text}"


def validate(g: brickschema.Graph) -> Outcome:
    engine = brickschema.shacl.resolve(ENGINE)
    conforms, report, text = g.validate(engine=engine)
    return Outcome(conforms, report, text, engine)


def overlay_nodes(path: Path) -> set:
    """IRIs a bad overlay talks about (subjects and non-class objects)."""
    g = rdflib.Graph().parse(path, format="turtle")
    nodes = set()
    for s, p, o in g:
        nodes.add(s)
        if p != ns.RDF.type and isinstance(o, (URIRef, BNode)):
            nodes.add(o)
    return nodes


# --------------------------------------------------------------------------
# the exported demo model
# --------------------------------------------------------------------------


def test_export_is_a_model_without_ontology(demo_export_ttl):
    g = rdflib.Graph().parse(demo_export_ttl, format="turtle")
    assert len(g) > 0, "vgw export produced an empty graph"
    assert any(g.triples((None, BRICK.hasPoint, None))), "demo model has no brick:hasPoint"
    assert any(g.triples((None, BRICK.hasLocation, None))), "demo model has no brick:hasLocation"
    leaked = sorted(
        {
            str(s)
            for s, p, _ in g
            if isinstance(s, URIRef)
            and (
                str(s).startswith(ONTOLOGY_NAMESPACES)
                or p in (ns.RDFS.subClassOf, ns.RDFS.subPropertyOf, ns.RDFS.domain, ns.RDFS.range)
                or str(p).startswith((str(ns.OWL), str(ns.SH)))
            )
        }
    )
    assert not leaked, (
        "`vgw export` must print only the derived model, but these subjects look like "
        f"ontology definitions: {leaked[:20]}"
    )


def test_demo_model_passes_brick_shacl(demo_export_ttl, ontology_dir):
    outcome = validate(validation_graph(ontology_dir, demo_export_ttl))
    if outcome.violations or not outcome.conforms:
        print(outcome.describe())
    assert not outcome.violations, (
        f"brickschema reports {len(outcome.violations)} violation(s) in the exported demo "
        f"model:\n{outcome.describe()}"
    )
    assert outcome.conforms, f"brickschema: does not conform\n{outcome.describe()}"


# --------------------------------------------------------------------------
# mini-models: one good, several bad
# --------------------------------------------------------------------------


def test_there_are_bad_models():
    assert GOOD_MODEL.is_file(), f"missing {GOOD_MODEL}"
    assert len(BAD_MODELS) >= 5, f"expected >= 5 bad_*.ttl overlays in {MODELS_DIR}"


def test_good_minimal_passes(ontology_dir):
    outcome = validate(validation_graph(ontology_dir, GOOD_MODEL))
    assert not outcome.violations and outcome.conforms, (
        "good_minimal.ttl must validate cleanly, otherwise the bad-model rejections "
        f"prove nothing:\n{outcome.describe()}"
    )


@pytest.mark.parametrize("bad", BAD_MODELS, ids=[p.stem for p in BAD_MODELS])
def test_bad_model_is_rejected(bad, ontology_dir):
    outcome = validate(validation_graph(ontology_dir, GOOD_MODEL, bad))
    wrong = "".join(
        line[len("# Wrong:"):].strip()
        for line in bad.read_text().splitlines()
        if line.startswith("# Wrong:")
    )
    assert outcome.violations and not outcome.conforms, (
        f"{bad.name} ({wrong}) was ACCEPTED by Brick SHACL validation. Does the ontology "
        "lack a shape for this relation? Note that an rdfs:range on a property whose range "
        "class is also an sh:NodeShape makes Brick's bsh:RDFSRangeRule infer the type "
        f"instead of rejecting the value.\n{outcome.describe()}"
    )
    named = overlay_nodes(bad)
    relevant = [r for r in outcome.violations if outcome.nodes_of(r) & named]
    assert relevant, (
        f"{bad.name} was rejected, but no violation names any of its nodes "
        f"{sorted(map(str, named))}; it failed for some other reason:\n{outcome.describe()}"
    )
