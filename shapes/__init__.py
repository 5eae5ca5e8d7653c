"""SHACL validation: the shapes, and a typed, bilingual report per event.

`validate(graph, events)` runs pyshacl once over a whole feed (faster than one call per event: the
fixed cost per call dominates) and attributes each result to the events it concerns: the focus node
itself, or the events that reach it (a place, an offer, an address…).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Iterable

import pyshacl
from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.term import Node

from ontology import EVENT_TYPES, SCHEMA, SH, vocabulary

SEVERITIES = {SH.Violation: "violation", SH.Warning: "warning", SH.Info: "info"}
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Problem:
    severity: str  # "violation" | "warning" | "info"
    field: str  # "startDate", "location.address"…
    messages: dict[str, str]  # language -> message
    value: str | None = None

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


def validate(graph: Graph, events: Iterable[URIRef]) -> dict[URIRef, EventReport]:
    """Validate a normalised feed; return one report per event (empty when it conforms)."""
    events = list(events)
    reports = {event: EventReport(iri=event) for event in events}
    if not events:
        return reports
    data = Graph()
    data += graph
    data += _ontology_graph()  # pyshacl's ont_graph does not reach sh:class checks
    _, results_graph, _ = pyshacl.validate(
        data, shacl_graph=shapes_graph(), inference="none", advanced=True, allow_warnings=True,
    )
    owners = _owners(graph, events)
    for result in results_graph.subjects(RDF.type, SH.ValidationResult):
        focus = results_graph.value(result, SH.focusNode)
        problem = _problem(results_graph, result, graph, focus, owners)
        for event in owners.get(focus, ()):
            if problem not in reports[event].problems:
                reports[event].problems.append(problem)
    return reports


def _owners(graph: Graph, events: list[URIRef]) -> dict[Node, set[URIRef]]:
    """Every node reachable from an event (up to 3 hops), mapped to the events that reach it."""
    owners: dict[Node, set[URIRef]] = defaultdict(set)
    for event in events:
        frontier = [event]
        owners[event].add(event)
        for _ in range(3):
            next_frontier = []
            for node in frontier:
                for obj in graph.objects(node, None):
                    if isinstance(obj, Literal) or event in owners[obj] or obj in events:
                        continue
                    owners[obj].add(event)
                    next_frontier.append(obj)
            frontier = next_frontier
    return owners


def _local(term: Node | None) -> str:
    if term is None:
        return ""
    text = str(term)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _shape_messages(shape: Node | None) -> dict[str, str]:
    """The shape's sh:message per language, read from the shapes (pyshacl drops the language
    tags of messages it copies from SPARQL-based constraints)."""
    if shape is None:
        return {}
    return {m.language or "en": str(m) for m in shapes_graph().objects(shape, SH.message)}


def _problem(results: Graph, result: Node, data: Graph, focus: Node, owners: dict) -> Problem:
    severity = SEVERITIES.get(results.value(result, SH.resultSeverity), "violation")
    path = _local(results.value(result, SH.resultPath))
    field_name = path
    if not (isinstance(focus, URIRef) and focus in owners.get(focus, ())):
        link = next((p for p in data.predicates(None, focus) if p != RDF.type), None)
        if link is not None:
            field_name = f"{_local(link)}.{path}" if path else _local(link)
    messages = _shape_messages(results.value(result, SH.sourceShape))
    if not messages:  # a shape without sh:message: pyshacl's own (English) text
        for message in results.objects(result, SH.resultMessage):
            messages.setdefault(message.language or "en", str(message))
    value = results.value(result, SH.value)
    return Problem(
        severity=severity,
        field=field_name,
        messages=messages,
        value=str(value) if value is not None else None,
    )
