"""Withdrawal: an organiser takes a source, or one event, out of everything Affiche publishes.

The data leaves the store at once (so pages, `/sparql` and the next dumps no longer have it), the
change log gets a tombstone per event (so `/feed` carries the removal and the pages answer 410),
and the dumps are rewritten before the call returns. A withdrawn event stays out of later
harvests of its source (`harvester.pipeline.withhold`); a withdrawn source is no longer harvested.
"""

from __future__ import annotations

import io

from rdflib import Graph, URIRef

from harvester import identity
from harvester.changes import ChangeLog
from harvester.pipeline import describe
from ontology import SCHEMA
from sparql.queries import load_query
from sparql.store import Store


def event_in_source(store: Store, base_url: str, source_id: str, event_iri: str) -> bool:
    rows = store.select(load_query("event_in_graph"),
                        {"event": URIRef(event_iri),
                         "graph": URIRef(identity.graph_iri(base_url, source_id))})
    return bool(rows) and int(rows[0]["count"]) > 0


def drop_source(store: Store, changes: ChangeLog, base_url: str, source_id: str) -> int:
    """Empty the source's graph and record a removal for each of its events; how many."""
    store.drop_graph(identity.graph_iri(base_url, source_id))
    return len(changes.record(source_id, {}))


def drop_event(store: Store, changes: ChangeLog, base_url: str, source_id: str, event_iri: str) -> int:
    """Rewrite the source's graph without the event (and what only it reached); 1 if removed."""
    graph_iri = identity.graph_iri(base_url, source_id)
    buffer = io.BytesIO()
    store.dump_graph(buffer, graph_iri, "nt")
    graph = Graph().parse(data=buffer.getvalue().decode("utf-8"), format="nt")
    event = URIRef(event_iri)
    events = set(graph.subjects(SCHEMA.startDate, None)) | {event}
    roots = [e for e in events if e != event]
    roots.append(URIRef(identity.iri(base_url, "source", source_id)))
    store.replace_graph(graph_iri, describe(graph, roots, stop=frozenset({event})))
    return len(changes.withdraw(source_id, [event_iri]))
