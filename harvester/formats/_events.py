"""Finding the events in a parsed graph, whichever schema.org namespace the feed used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from rdflib import RDF, Graph, URIRef
from rdflib.term import Node

from ontology import EVENT_TYPES, SCHEMA, SCHEMA_HTTPS

from . import canonical

if TYPE_CHECKING:
    from . import FeedTriples

_HTTPS_EVENT_TYPES = {URIRef(SCHEMA_HTTPS + str(t)[len(str(SCHEMA)):]) for t in EVENT_TYPES}
SERIES_TYPES = {SCHEMA.EventSeries, URIRef(SCHEMA_HTTPS + "EventSeries")}
# A node with one of these types is an event, whatever else it is; a series alone is not.
EVENT_NODE_TYPES = frozenset(canonical(t)
                             for t in (EVENT_TYPES | _HTTPS_EVENT_TYPES) - SERIES_TYPES)


def event_nodes(graph: Graph | FeedTriples) -> list[Node]:
    """Every node typed as a schema.org Event (or subtype), in a stable order; series excluded."""
    from . import FeedTriples

    if isinstance(graph, FeedTriples):  # as a parser read them
        return sorted(graph.subjects_typed(EVENT_NODE_TYPES), key=str)
    nodes = set()
    for etype in EVENT_NODE_TYPES:
        nodes.update(graph.subjects(RDF.type, etype))
    return sorted(nodes, key=str)


def events_in(triples: Iterable[tuple[Node, Node, Node]]) -> list[Node]:
    """The events among some triples (one document's, one page block's), as `event_nodes` finds
    them in a graph, without looking at the rest of the graph."""
    # a set: an IRI's hash is cached, its equality is a Python call
    rdf_type, event_types = {RDF.type}, EVENT_NODE_TYPES
    return sorted({s for s, p, o in triples if p in rdf_type and o in event_types}, key=str)
