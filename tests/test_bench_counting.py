"""The bench's counting store counts the triples a write sends the store, not the graph's size:
a re-harvest that changes one event writes its difference."""

from __future__ import annotations

from bench.run import _counting_store
from sparql.store import NTriples

GRAPH = "http://bench.affiche.test/graph/s"


def _lines(count: int, changed: int | None = None) -> bytes:
    return b"".join(
        f'<http://bench.affiche.test/event/{i}> <http://schema.org/name> "{"new" if i == changed else "old"} {i}" .\n'.encode()
        for i in range(count))


def test_a_new_graph_counts_its_triples_and_a_change_only_the_difference(tmp_path) -> None:
    store = _counting_store(tmp_path / "store")
    store.replace_graph(GRAPH, NTriples(_lines(50), 50))
    assert (store.writes, store.triples) == (1, 50)
    store.replace_graph(GRAPH, NTriples(_lines(50, changed=7), 50))
    assert (store.writes, store.triples) == (2, 52)  # one deleted, one inserted
    store.replace_graph(GRAPH, NTriples(_lines(50, changed=7), 50))
    assert (store.writes, store.triples) == (3, 52)  # nothing changed: nothing sent
    assert len(store.select("SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }")) == 50
    store.close()
    assert store.triples == 52  # what the harvest's child process reads after closing it
