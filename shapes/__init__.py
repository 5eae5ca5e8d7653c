"""SHACL validation: the shapes, and a typed, bilingual report per event.

`validate(graph, events)` validates a whole feed at once and attributes each result to the events
it concerns: the focus node itself, or the events that reach it (a place, an offer, an address…).
It runs the shapes compiled into SPARQL over an in-memory Oxigraph store (`shapes.compiled`, several
times faster); `validate(..., engine="pyshacl")` runs pyshacl (`shapes.reference`), which the tests
and `bench/bench_validation.py` keep as the reference both must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Iterable

from rdflib import RDF, RDFS, Graph, URIRef
from rdflib.term import Node

from ontology import EVENT_TYPES, SCHEMA, SH, vocabulary

from . import compiled, reference
from .results import RawResult

SEVERITIES = {SH.Violation: "violation", SH.Warning: "warning", SH.Info: "info"}
SEVERITY_ORDER = ("violation", "warning", "info")
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Problem:
    severity: str  # "violation" | "warning" | "info"
    field: str  # "startDate", "location.address"…
    messages: dict[str, str]  # language -> message
    value: str | None = None
    shape: str | None = None  # the shape's IRI: its sh:path, severity and messages

    def message(self, language: str = "en") -> str:
        return self.messages.get(language) or next(iter(self.messages.values()), "")


@dataclass
class EventReport:
    iri: URIRef
    problems: list[Problem] = field(default_factory=list)

    @property
    def publishable(self) -> bool:
        return not any(p.severity == "violation" for p in self.problems)


@cache
def shapes_graph() -> Graph:
    """The shapes, parsed once (read-only by convention)."""
    graph = Graph()
    text = resources.files(__package__).joinpath("affiche-shapes.ttl").read_text(encoding="utf-8")
    graph.parse(data=text, format="turtle")
    return graph


def shapes_turtle() -> str:
    return resources.files(__package__).joinpath("affiche-shapes.ttl").read_text(encoding="utf-8")


@cache
def _ontology_graph() -> Graph:
    """Subclass triples for schema.org event types, and the discipline scheme for sh:class."""
    graph = Graph()
    for event_type in EVENT_TYPES - {SCHEMA.EventSeries}:  # a series need not have one date
        graph.add((event_type, RDFS.subClassOf, SCHEMA.Event))
    for place_type in ("EventVenue", "PerformingArtsTheater", "MusicVenue", "Museum",
                       "CivicStructure", "LocalBusiness"):
        graph.add((SCHEMA[place_type], RDFS.subClassOf, SCHEMA.Place))
    for org_type in ("PerformingGroup", "TheaterGroup", "DanceGroup", "MusicGroup"):
        graph.add((SCHEMA[org_type], RDFS.subClassOf, SCHEMA.Organization))
    graph += vocabulary()
    return graph


def validate(graph: Graph, events: Iterable[URIRef], engine: str = "compiled") -> dict[URIRef, EventReport]:
    """Validate a normalised feed; return one report per event (empty when it conforms).

    `engine` is "compiled" (SPARQL over Oxigraph, the default) or "pyshacl" (the reference).
    """
    events = list(events)
    reports = {event: EventReport(iri=event) for event in events}
    if not events:
        return reports
    if engine not in ("compiled", "pyshacl"):
        raise ValueError(f"unknown validation engine {engine!r}")
    results = None
    if engine == "compiled":
        try:
            results = compiled.run(graph, shapes_turtle())
        except SyntaxError:  # a term Oxigraph will not read (an IRI with a space…): the reference
            results = None
    if results is None:
        results = reference.run(graph, shapes_graph(), _ontology_graph())
    event_set = frozenset(events)
    owners: dict[Node, frozenset[URIRef]] = {}
    for result in results:
        if result.focus not in owners:
            owners[result.focus] = _owners(graph, result.focus, event_set)
        problem = _problem(result, graph, event_set)
        for event in owners[result.focus]:
            if problem not in reports[event].problems:
                reports[event].problems.append(problem)
    for report in reports.values():
        report.problems.sort(key=_problem_order)
    return reports


def _problem_order(problem: Problem) -> tuple:
    return (SEVERITY_ORDER.index(problem.severity), problem.field, problem.shape or "",
            problem.value or "")


def _owners(graph: Graph, focus: Node, events: frozenset[URIRef]) -> frozenset[URIRef]:
    """The events that reach a node in at most 3 hops without passing through another event:
    walked backwards from the node, so only the nodes that have problems are visited."""
    if focus in events:
        return frozenset({focus})
    owners: set[URIRef] = set()
    seen, frontier = {focus}, [focus]
    for _ in range(3):
        next_frontier = []
        for node in frontier:
            for subject in graph.subjects(None, node):
                if subject in events:
                    owners.add(subject)
                elif subject not in seen:
                    seen.add(subject)
                    next_frontier.append(subject)
        frontier = next_frontier
    return frozenset(owners)


def _local(term: Node | None) -> str:
    if term is None:
        return ""
    text = str(term)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


@cache
def _shape_messages(shape: Node | None) -> tuple[tuple[str, str], ...]:
    """The shape's sh:message per language, read from the shapes (pyshacl drops the language
    tags of messages it copies from SPARQL-based constraints). Every shape has them (meta-test)."""
    if shape is None:
        return ()
    return tuple(sorted((m.language or "en", str(m)) for m in shapes_graph().objects(shape, SH.message)))


def _problem(result: RawResult, data: Graph, events: frozenset[URIRef]) -> Problem:
    severity = SEVERITIES.get(result.severity, "violation")
    focus = result.focus
    path = _local(result.path)
    field_name = path
    if focus not in events:
        link = min((p for p in data.predicates(None, focus) if p != RDF.type), default=None, key=str)
        if link is not None:
            field_name = f"{_local(link)}.{path}" if path else _local(link)
    return Problem(
        severity=severity,
        field=field_name,
        messages=dict(_shape_messages(result.shape)),
        value=str(result.value) if result.value is not None else None,
        shape=str(result.shape) if isinstance(result.shape, URIRef) else None,
    )
