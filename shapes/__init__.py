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

from rdflib import RDF, RDFS, Graph, Literal, URIRef
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


def validate(graph: Iterable[tuple[Node, Node, Node]], events: Iterable[URIRef],
             engine: str = "compiled") -> dict[URIRef, EventReport]:
    """Validate a normalised feed (a graph, or its triples read once); return one report per
    event (empty when it conforms).

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
        results = reference.run(_as_graph(graph), shapes_graph(), _ontology_graph())
    event_set = frozenset(events)
    attribution = _Attribution(graph, event_set, results)
    seen: set[tuple[URIRef, int]] = set()
    for result in results:
        problem = attribution.problem(result)
        for event in attribution.owners(result.focus):
            if (event, id(problem)) not in seen:  # one object per distinct problem
                seen.add((event, id(problem)))
                reports[event].problems.append(problem)
    for report in reports.values():
        if len(report.problems) > 1:
            report.problems.sort(key=_problem_order)
    return reports


def _as_graph(triples: Iterable[tuple[Node, Node, Node]]) -> Graph:
    if isinstance(triples, Graph):
        return triples
    graph = Graph()
    for triple in triples:
        graph.add(triple)
    return graph


def _problem_order(problem: Problem) -> tuple:
    return (SEVERITY_ORDER.index(problem.severity), problem.field, problem.shape or "",
            problem.value or "")


class _Attribution:
    """Who a result concerns and what it says, for the results of one feed.

    The nodes that point at each result's focus node are read in one pass over the triples, and
    only when some result is about a node that is not an event (a place, an offer…); a graph
    answers from its own index. Problems are made once per distinct content: most events share
    the same few warnings."""

    def __init__(self, graph: Iterable[tuple[Node, Node, Node]], events: frozenset[URIRef],
                 results: list[RawResult]) -> None:
        self.events = events
        self._owners: dict[Node, frozenset[URIRef]] = {}
        self._links: dict[Node, str | None] = {}
        self._problems: dict[tuple, Problem] = {}
        self._said: dict[tuple, tuple] = {}
        if isinstance(graph, Graph):  # rdflib indexes its graph by object already
            self._pointing = lambda node: graph.subject_predicates(node)
        else:
            foci = {r.focus for r in results if r.focus not in events}
            literals = {f for f in foci if isinstance(f, Literal)}
            pointing = _pointing_at(graph, literals) if foci else {}
            self._pointing = lambda node: pointing.get(node, ())

    def owners(self, focus: Node) -> frozenset[URIRef]:
        """The events that reach a node in at most 3 hops without passing through another event:
        walked backwards from the node, so only the nodes that have problems are visited."""
        known = self._owners.get(focus)
        if known is not None:
            return known
        if focus in self.events:
            known = frozenset({focus})
        else:
            owners: set[URIRef] = set()
            seen, frontier = {focus}, [focus]
            for _ in range(3):
                next_frontier = []
                for node in frontier:
                    for subject, _ in self._pointing(node):
                        if subject in self.events:
                            owners.add(subject)
                        elif subject not in seen:
                            seen.add(subject)
                            next_frontier.append(subject)
                frontier = next_frontier
            known = frozenset(owners)
        self._owners[focus] = known
        return known

    def link(self, focus: Node) -> str | None:
        """The local name of the first property (by IRI) that points at a node, types aside."""
        if focus not in self._links:
            # a set first: a place is pointed at by each of its events, through a few properties
            links = {p for _, p in self._pointing(focus)} - {RDF.type}
            self._links[focus] = _local(min(links, key=str)) if links else None
        return self._links[focus]

    def problem(self, result: RawResult) -> Problem:
        # what the shape says is the same for all its results: read once per shape
        shape_key = (result.shape, result.path, result.severity)
        said = self._said.get(shape_key)
        if said is None:
            said = self._said[shape_key] = (
                SEVERITIES.get(result.severity, "violation"), _local(result.path),
                _shape_messages(result.shape),
                str(result.shape) if isinstance(result.shape, URIRef) else None)
        severity, path, messages, shape = said
        field_name = path
        if result.focus not in self.events:
            link = self.link(result.focus)
            if link is not None:
                field_name = f"{link}.{path}" if path else link
        value = str(result.value) if result.value is not None else None
        key = (severity, field_name, messages, value, shape)
        problem = self._problems.get(key)
        if problem is None:
            problem = self._problems[key] = Problem(
                severity=severity, field=field_name, messages=dict(messages), value=value,
                shape=shape)
        return problem


def _pointing_at(graph: Iterable[tuple[Node, Node, Node]],
                 literals: set[Node]) -> dict[Node, list[tuple[Node, Node]]]:
    """Each node's (subject, predicate) pairs pointing at it; literals only those asked for."""
    pointing: dict[Node, list[tuple[Node, Node]]] = {}
    spo = getattr(graph, "spo", None)
    if spo is not None:  # held as subject -> predicate -> objects (the harvest's `Triples`)
        for s, po in spo.items():
            for p, objects in po.items():
                pair = (s, p)
                for o in objects:
                    if type(o) is Literal and not (literals and o in literals):
                        continue
                    pairs = pointing.get(o)
                    if pairs is None:
                        pointing[o] = [pair]
                    else:
                        pairs.append(pair)
        return pointing
    for s, p, o in graph:
        # `type(o) is`: isinstance(…, Literal) and a Literal's hash are Python calls; a subclass
        # of Literal would merely be kept in vain
        if type(o) is Literal and not (literals and o in literals):
            continue
        pairs = pointing.get(o)
        if pairs is None:
            pointing[o] = [(s, p)]
        else:
            pairs.append((s, p))
    return pointing


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
