"""Finding the events in a parsed graph, whichever schema.org namespace the feed used."""

from __future__ import annotations

from rdflib import RDF, Graph, URIRef
from rdflib.term import Node

from ontology import EVENT_TYPES, SCHEMA, SCHEMA_HTTPS

_HTTPS_EVENT_TYPES = {URIRef(SCHEMA_HTTPS + str(t)[len(str(SCHEMA)):]) for t in EVENT_TYPES}
SERIES_TYPES = {SCHEMA.EventSeries, URIRef(SCHEMA_HTTPS + "EventSeries")}


def event_nodes(graph: Graph) -> list[Node]:
    """Every node typed as a schema.org Event (or subtype), in a stable order; series excluded."""
    nodes = set()
    for etype in EVENT_TYPES | _HTTPS_EVENT_TYPES:
        if etype in SERIES_TYPES:
            continue
        nodes.update(graph.subjects(RDF.type, etype))
    series_only = {n for n in nodes if set(graph.objects(n, RDF.type)) <= SERIES_TYPES}
    return sorted(nodes - series_only, key=str)
