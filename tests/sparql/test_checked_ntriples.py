"""N-Triples a harvest worker wrote through Oxigraph (`NTriples.checked`) are bulk-loaded without
checking their IRIs again; any other N-Triples still are checked."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from sparql.store import EmbeddedStore, NTriples

GRAPH = "http://affiche.test/graph/kiosque"
GOOD = ('<http://affiche.test/event/kiosque-1> <http://schema.org/name> "Fanfare"@fr .\n'
        '<http://affiche.test/event/kiosque-1> <http://schema.org/startDate> '
        '"2027-06-21T18:00:00+02:00"^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n').encode()
SPACE_IN_IRI = b'<http://affiche.test/event/kiosque 2> <http://schema.org/name> "Bal"@fr .\n'


@pytest.fixture
def store(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    yield store
    store.close()


@pytest.mark.parametrize("checked", [False, True])
def test_checked_or_not_a_sound_graph_loads_the_same(store, checked):
    store.replace_graph(GRAPH, NTriples(GOOD, 2, checked=checked))
    quads = set(store.quads_about(None, graph=ox.NamedNode(GRAPH)))
    assert {(q.predicate.value, q.object.value) for q in quads} == {
        ("http://schema.org/name", "Fanfare"),
        ("http://schema.org/startDate", "2027-06-21T18:00:00+02:00")}


def test_unchecked_n_triples_with_an_invalid_iri_are_refused(store):
    with pytest.raises(SyntaxError):
        store.replace_graph(GRAPH, NTriples(GOOD + SPACE_IN_IRI, 3))
    assert GRAPH not in store.graphs()


def test_checked_n_triples_are_still_parsed(store):
    with pytest.raises(SyntaxError):
        store.replace_graph(GRAPH, NTriples(GOOD + b"<not closed .\n", 3, checked=True))
    assert GRAPH not in store.graphs()
