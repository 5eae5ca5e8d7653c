"""The fast path: the shapes compiled once into SPARQL queries, run by an in-memory Oxigraph store.

pyshacl walks the graph in Python, one focus node and one constraint at a time; here each
constraint of each shape becomes one SELECT over the whole feed, answered by Oxigraph's indexes.
Only the constraint components our shapes use are compiled (targets: class, objectsOf, subjectsOf;
constraints: minCount, maxCount, datatype, class, nodeKind, in, pattern, min/maxInclusive,
min/maxExclusive, lessThan(OrEquals), or, SPARQL SELECT); a shape using anything else is refused
at compile time, so the shapes cannot silently outgrow this path. pyshacl stays the reference
(`shapes.reference`): a test and `bench/bench_validation.py` check that both find the same results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Iterable

import pyoxigraph as ox
from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from ontology import SH, XSD

from .results import RawResult

# Casts Oxigraph implements: a literal of these datatypes is well-formed iff it casts to itself.
_CASTABLE = {XSD.decimal, XSD.integer, XSD.dateTime, XSD.date, XSD.boolean, XSD.double,
             XSD.float, XSD.time}
_IGNORED = {RDF.type, SH.property, SH.path, SH.severity, SH.message, SH.name, SH.description,
            SH.order, SH.group, SH.targetClass, SH.targetObjectsOf, SH.targetSubjectsOf,
            SH.targetNode, RDFS.label, RDFS.comment, SH.deactivated}
_PREFIX_LINE = re.compile(r"^\s*PREFIX\s+\S*:\s*<[^>]*>\s*$", re.I | re.M)


class UnsupportedShape(ValueError):
    """A shape uses a SHACL feature this compiler does not translate."""


@dataclass(frozen=True)
class CompiledQuery:
    shape: Node  # the shape whose sh:message explains the result (sh:sourceShape)
    path: URIRef | None
    severity: URIRef
    sparql: str
    value_is_focus: bool = False  # node-level constraints report the focus node as the value
    has_value: bool = False  # the query binds ?value


def _term(node: Node) -> str:
    if isinstance(node, URIRef):
        return f"<{node}>"
    if isinstance(node, Literal):
        return node.n3()
    raise UnsupportedShape(f"blank node {node} used as a constant")


def _values(var: str, nodes) -> str:
    return f"VALUES {var} {{ {' '.join(_term(n) for n in sorted(nodes, key=str))} }}"


class Compiler:
    """Turns one shapes graph into queries; `classes` is the rdfs:subClassOf closure."""

    def __init__(self, shapes: Graph, ontology: Graph) -> None:
        self.shapes = shapes
        self.ontology = ontology

    def subclasses(self, cls: URIRef) -> set[URIRef]:
        found, frontier = {cls}, [cls]
        while frontier:
            current = frontier.pop()
            for sub in self.ontology.subjects(RDFS.subClassOf, current):
                if sub not in found:
                    found.add(sub)
                    frontier.append(sub)
        return found

    def compile(self) -> list[CompiledQuery]:
        queries: list[CompiledQuery] = []
        for shape in sorted(set(self.shapes.subjects(RDF.type, SH.NodeShape)), key=str):
            if self.shapes.value(shape, SH.deactivated) == Literal(True):
                continue
            target = self.target(shape)
            if target is None:
                continue
            severity = self.shapes.value(shape, SH.severity) or SH.Violation
            queries += self.node_constraints(shape, target, severity)
            for prop in self.shapes.objects(shape, SH.property):
                queries += self.property_constraints(prop, target)
        return queries

    # --- targets -------------------------------------------------------------------------------

    def target(self, shape: Node) -> str | None:
        """A graph pattern binding ?this to every focus node of the shape."""
        parts = []
        classes = set()
        for cls in self.shapes.objects(shape, SH.targetClass):
            classes |= self.subclasses(cls)
        if classes:
            parts.append(f"{{ ?this a ?_class . {_values('?_class', classes)} }}")
        for prop in self.shapes.objects(shape, SH.targetObjectsOf):
            parts.append(f"{{ ?_s {_term(prop)} ?this . }}")
        for prop in self.shapes.objects(shape, SH.targetSubjectsOf):
            parts.append(f"{{ ?this {_term(prop)} ?_o . }}")
        if (shape, SH.targetNode, None) in self.shapes:
            raise UnsupportedShape(f"{shape}: sh:targetNode")
        return " UNION ".join(parts) if parts else None

    # --- constraints ---------------------------------------------------------------------------

    def node_constraints(self, shape: Node, target: str, severity: URIRef) -> list[CompiledQuery]:
        queries = []
        for predicate, obj in self.shapes.predicate_objects(shape):
            if predicate in _IGNORED or predicate == SH.sparql:
                continue
            conforms = self.value_test(predicate, obj, "?this")
            queries.append(CompiledQuery(
                shape, None, severity, value_is_focus=True,
                sparql=f"SELECT DISTINCT ?this WHERE {{ {target} FILTER (!({conforms})) }}"))
        for constraint in self.shapes.objects(shape, SH.sparql):
            sparql, has_value = self.sparql_constraint(constraint, target)
            queries.append(CompiledQuery(shape, None, severity, sparql, value_is_focus=True,
                                         has_value=has_value))
        return queries

    def property_constraints(self, prop: Node, target: str) -> list[CompiledQuery]:
        path = self.shapes.value(prop, SH.path)
        if not isinstance(path, URIRef):
            raise UnsupportedShape(f"{prop}: only simple predicate paths are compiled")
        severity = self.shapes.value(prop, SH.severity) or SH.Violation
        p = _term(path)
        queries = []

        def query(sparql: str, has_value: bool = False) -> None:
            queries.append(CompiledQuery(prop, path, severity, sparql, has_value=has_value))

        for predicate, obj in self.shapes.predicate_objects(prop):
            if predicate in _IGNORED:
                continue
            if predicate == SH.minCount:
                count = int(obj)
                if count == 1:
                    query(f"SELECT DISTINCT ?this WHERE {{ {target} FILTER NOT EXISTS {{ ?this {p} ?_v }} }}")
                elif count > 1:
                    query(f"SELECT ?this WHERE {{ {target} OPTIONAL {{ ?this {p} ?_v }} }} "
                          f"GROUP BY ?this HAVING (COUNT(DISTINCT ?_v) < {count})")
            elif predicate == SH.maxCount:
                query(f"SELECT ?this WHERE {{ {target} ?this {p} ?_v }} "
                      f"GROUP BY ?this HAVING (COUNT(DISTINCT ?_v) > {int(obj)})")
            elif predicate in (SH.lessThan, SH.lessThanOrEquals):
                operator = "<" if predicate == SH.lessThan else "<="
                query(f"SELECT DISTINCT ?this ?value WHERE {{ {target} ?this {p} ?value . "
                      f"?this {_term(obj)} ?_other . "
                      f"FILTER (!COALESCE(?value {operator} ?_other, false)) }}", True)
            elif predicate == SH.sparql:
                query(*self.sparql_constraint(obj, target))
            else:
                conforms = self.value_test(predicate, obj, "?value")
                query(f"SELECT DISTINCT ?this ?value WHERE {{ {target} ?this {p} ?value . "
                      f"FILTER (!({conforms})) }}", True)
        return queries

    def value_test(self, predicate: URIRef, obj: Node, var: str) -> str:
        """A SPARQL expression true when `var` satisfies one value-level constraint."""
        if predicate == SH.datatype:
            test = f"(isLiteral({var}) && datatype({var}) = {_term(obj)})"
            if obj in _CASTABLE:
                test += f" && COALESCE(isLiteral({_term(obj)}(STR({var}))), false)"
            return test
        if predicate == SH["class"]:
            return f"EXISTS {{ {var} a ?_c . {_values('?_c', self.subclasses(obj))} }}"
        if predicate == SH.nodeKind:
            kinds = {SH.IRI: f"isIRI({var})", SH.Literal: f"isLiteral({var})",
                     SH.BlankNode: f"isBlank({var})", SH.BlankNodeOrIRI: f"!isLiteral({var})",
                     SH.IRIOrLiteral: f"!isBlank({var})", SH.BlankNodeOrLiteral: f"!isIRI({var})"}
            return kinds[obj]
        if predicate == SH["in"]:
            members = list(Collection(self.shapes, obj))
            return "(" + " || ".join(f"sameTerm({var}, {_term(m)})" for m in members) + ")"
        if predicate == SH.pattern:
            return f"(!isBlank({var}) && REGEX(STR({var}), {Literal(str(obj)).n3()}))"
        if predicate == SH.flags:
            raise UnsupportedShape("sh:flags")
        comparisons = {SH.minInclusive: ">=", SH.maxInclusive: "<=", SH.minExclusive: ">",
                       SH.maxExclusive: "<"}
        if predicate in comparisons:
            return f"COALESCE({var} {comparisons[predicate]} {_term(obj)}, false)"
        if predicate == SH["or"]:
            alternatives = []
            for member in Collection(self.shapes, obj):
                tests = [self.value_test(p, o, var) for p, o in self.shapes.predicate_objects(member)
                         if p not in _IGNORED]
                alternatives.append("(" + " && ".join(tests or ["true"]) + ")")
            return "(" + " || ".join(alternatives) + ")"
        raise UnsupportedShape(f"constraint {predicate} is not compiled")

    def sparql_constraint(self, constraint: Node, target: str) -> tuple[str, bool]:
        """An sh:sparql SELECT whose WHERE body is inlined beside the shape's targets, so that
        ?this is bound inside its FILTERs as SHACL's pre-binding does (a subquery would see ?this
        unbound); says whether it binds ?value."""
        select = str(self.shapes.value(constraint, SH.select))
        prefixes = "\n".join(m.group(0).strip() for m in _PREFIX_LINE.finditer(select))
        query = _PREFIX_LINE.sub("", select).replace("$this", "?this")
        head, _, where = query.partition("WHERE")
        where = where.strip()
        if not (where.startswith("{") and where.endswith("}")):
            raise UnsupportedShape(f"{constraint}: only a plain SELECT … WHERE {{ … }} is compiled")
        has_value = "?value" in head
        projection = "?this ?value" if has_value else "?this"
        return (f"{prefixes}\nSELECT DISTINCT {projection} WHERE {{ {target} {where[1:-1]} }}",
                has_value)


@cache
def compiled_queries(shapes_text: str) -> tuple[CompiledQuery, ...]:
    """Compile once per shapes text; the ontology closure comes with the shapes package."""
    from . import _ontology_graph, shapes_graph

    return tuple(Compiler(shapes_graph(), _ontology_graph()).compile())


@cache
def _ontology_ntriples() -> bytes:
    from . import _ontology_graph

    return _ontology_graph().serialize(format="nt", encoding="utf-8")


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", "\\r"))


def ntriples(graph: Iterable[tuple[Node, Node, Node]]) -> bytes:
    """N-Triples for Oxigraph, written with a per-term cache (rdflib's writer is slower)."""
    return _written(graph)[0]


def _written(graph: Iterable[tuple[Node, Node, Node]]) -> tuple[bytes, list[Node]]:
    """`ntriples`, and each distinct term object written.

    The cache is keyed by the term object's identity: a literal's hash is a Python call, and a
    normalised feed holds each repeated value as one object. The terms spelled are kept alive
    (`spelled`), so that no identity is reused while the cache lives."""
    cache_: dict[int, str] = {}
    spelled: list[Node] = []
    get = cache_.get

    def spell(term: Node) -> str:
        if isinstance(term, URIRef):
            text = f"<{term}>"
        elif isinstance(term, BNode):
            text = f"_:b{term}"
        elif term.language:
            text = f'"{_escape(str(term))}"@{term.language}'
        elif term.datatype:
            text = f'"{_escape(str(term))}"^^<{term.datatype}>'
        else:
            text = f'"{_escape(str(term))}"'
        cache_[id(term)] = text
        spelled.append(term)
        return text

    # a spelling is never empty: `or` only calls `spell` for a term not seen yet
    spo = getattr(graph, "spo", None)
    if spo is None:
        text = "".join([
            f"{get(id(s)) or spell(s)} {get(id(p)) or spell(p)} {get(id(o)) or spell(o)} .\n"
            for s, p, o in graph])
        return text.encode("utf-8"), spelled
    # triples held as subject -> predicate -> objects (the harvest's normalised `Triples`): each
    # subject and each of its properties spelled once
    lines: list[str] = []
    for s, po in spo.items():
        subject = get(id(s)) or spell(s)
        for p, objects in po.items():
            head = f"{subject} {get(id(p)) or spell(p)} "
            lines += [f"{head}{get(id(o)) or spell(o)} .\n" for o in objects]
    return "".join(lines).encode("utf-8"), spelled


def _to_rdflib(term) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        value = term.value
        return BNode(value[1:] if value.startswith("b") else value)
    if term.language:
        return Literal(term.value, lang=term.language)
    return Literal(term.value, datatype=URIRef(term.datatype.value))


def run(graph: Iterable[tuple[Node, Node, Node]], shapes_text: str) -> list[RawResult]:
    """Every SHACL result of the compiled shapes over the graph (or its triples)."""
    data, terms = _written(graph)
    store = ox.Store()
    store.load(data + _ontology_ntriples(), ox.RdfFormat.N_TRIPLES, lenient=True)
    results = []
    converted: dict = {}  # pyoxigraph term -> rdflib term: results name the same nodes again
    # the graph's IRIs are given back as the graph's own objects: whatever is keyed by them
    # afterwards (the events, their reports) finds them by identity (equality is a Python call)
    own = {str(term): term for term in terms if type(term) is URIRef}

    def back(term) -> Node:
        node = converted.get(term)
        if node is None:
            node = own.get(term.value) if type(term) is ox.NamedNode else None
            if node is None:
                node = _to_rdflib(term)
            converted[term] = node
        return node

    for query in compiled_queries(shapes_text):
        for row in store.query(query.sparql):
            focus = back(row["this"])
            bound = row["value"] if query.has_value else None
            if bound is not None:
                value = back(bound)
            else:
                value = focus if query.value_is_focus else None
            results.append(RawResult(focus=focus, path=query.path, value=value,
                                     severity=query.severity, shape=query.shape))
    return results
