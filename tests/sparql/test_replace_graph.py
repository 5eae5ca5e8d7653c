"""Replacing a source's graph in the embedded store: what changed is written, the result is the new
graph exactly, in one transaction, and the write buffers are flushed once a source's worth is
written (the harvest writer's memory)."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

import sparql.store
from sparql.store import EmbeddedStore, NTriples, replacing_update

GRAPH = "http://affiche.test/graph/grange-aux-dimes"
S, XSD = "http://schema.org/", "http://www.w3.org/2001/XMLSchema#"


def event_lines(number: int, name: str, harvested: str = "2026-11-20T08:00:00+00:00") -> list[str]:
    event = f"<http://affiche.test/event/grange-{number}>"
    return [f"{event} <{S}name> \"{name}\"@fr .",
            f"{event} <{S}startDate> \"2027-03-{number:02d}T20:30:00+01:00\"^^<{XSD}dateTime> .",
            f"{event} <{S}location> <http://affiche.test/place/grange-aux-dimes> .",
            f"{event} <https://affiche.example/ns#harvestedAt> \"{harvested}\"^^<{XSD}dateTime> ."]


def ntriples(lines: list[str]) -> NTriples:
    return NTriples(("\n".join(lines) + "\n").encode("utf-8"), len(lines))


def graph_content(store: EmbeddedStore, graph_iri: str = GRAPH) -> set[ox.Quad]:
    return set(store.quads_about(None, graph=ox.NamedNode(graph_iri)))


def expected(lines: list[str], graph_iri: str = GRAPH) -> set[ox.Quad]:
    """What the store holds after loading `lines` alone into an empty graph (its own canonical
    forms: `+00:00` read back as `Z`)."""
    reference = EmbeddedStore(None)
    reference.replace_graph(graph_iri, ntriples(lines))
    return graph_content(reference, graph_iri)


@pytest.fixture()
def store(tmp_path):
    opened = EmbeddedStore(tmp_path / "store")
    yield opened
    opened.close()


def test_a_replaced_graph_holds_the_new_data_exactly(store) -> None:
    first = event_lines(1, "Le Cid") + event_lines(2, "Phèdre") + event_lines(3, "Bérénice")
    store.replace_graph(GRAPH, ntriples(first))
    # one event renamed, one gone, one new, every harvest time moved on
    second = (event_lines(1, "Le Cid (reprise)", "2026-11-21T08:00:00+00:00")
              + event_lines(3, "Bérénice", "2026-11-21T08:00:00+00:00")
              + event_lines(4, "Andromaque", "2026-11-21T08:00:00+00:00"))
    store.replace_graph(GRAPH, ntriples(second))
    assert graph_content(store) == expected(second)
    names = {str(r["n"]) for r in store.select(f"SELECT ?n WHERE {{ ?e <{S}name> ?n }}")}
    assert names == {"Le Cid (reprise)", "Bérénice", "Andromaque"}


def test_a_literal_read_back_in_another_form_stays_when_only_others_change(store) -> None:
    first = event_lines(1, "Le Cid") + event_lines(2, "Phèdre")
    store.replace_graph(GRAPH, ntriples(first))
    second = event_lines(1, "Le Cid") + event_lines(2, "Phèdre, tragédie")
    store.replace_graph(GRAPH, ntriples(second))
    assert graph_content(store) == expected(second)
    times = store.select("SELECT ?t WHERE { ?e <https://affiche.example/ns#harvestedAt> ?t }")
    assert len(times) == 2


def test_the_update_names_only_what_changed() -> None:
    before = "\n".join(event_lines(1, "Le Cid") + event_lines(2, "Phèdre")).encode()
    after = "\n".join(event_lines(1, "Le Cid") + event_lines(2, "Phèdre, tragédie")).encode()
    update = replacing_update(GRAPH, before, after)
    assert update.startswith("DELETE DATA")
    assert "DROP" not in update
    assert update.count(" .") == 2  # the old name and the new one, nothing else
    assert '"Phèdre"@fr' in update and '"Phèdre, tragédie"@fr' in update
    assert replacing_update(GRAPH, before, before) is None


def test_a_graph_with_blank_nodes_is_replaced_whole(store) -> None:
    offer = (f"<http://affiche.test/event/grange-1> <{S}offers> _:offre .\n"
             f"_:offre <{S}price> \"12.50\"^^<{XSD}decimal> .\n")
    store.replace_graph(GRAPH, NTriples(offer.encode(), 2))
    store.replace_graph(GRAPH, NTriples(offer.replace("12.50", "15.00").encode(), 2))
    prices = [str(r["p"]) for r in store.select(f"SELECT ?p WHERE {{ ?o <{S}price> ?p }}")]
    assert len(graph_content(store)) == 2
    assert [float(p) for p in prices] == [15.0]  # the old offer did not stay beside the new one


def test_broken_data_leaves_a_full_graph_as_it_was(store) -> None:
    first = event_lines(1, "Le Cid") + event_lines(2, "Phèdre")
    store.replace_graph(GRAPH, ntriples(first))
    before = graph_content(store)
    with pytest.raises(SyntaxError):
        store.replace_graph(GRAPH, ntriples(event_lines(1, "Le Cid (reprise)") + ["<not closed ."]))
    assert graph_content(store) == before


def test_writes_are_flushed_once_a_sources_worth_is_written(store, monkeypatch) -> None:
    flushes = []
    original = store.flush
    monkeypatch.setattr(store, "flush", lambda: (flushes.append(1), original()))
    data = ntriples(event_lines(1, "Le Cid") + event_lines(2, "Phèdre"))
    monkeypatch.setattr(sparql.store, "FLUSH_EVERY_BYTES", len(data.data) * 3)
    # the transactional path (a bulk load writes no memory table: nothing to flush)
    monkeypatch.setattr(sparql.store, "BULK_LOAD_MAX_TRIPLES", 0)
    store.replace_graph(GRAPH, data)  # loaded: 1 graph's worth
    store.replace_graph(f"{GRAPH}-bis", data)  # 2
    assert flushes == []
    store.replace_graph(f"{GRAPH}-ter", data)  # 3: flushed, and counting starts again
    assert flushes == [1]
    store.replace_graph(GRAPH, data)  # unchanged: nothing written, nothing counted
    store.replace_graph(f"{GRAPH}-quater", data)
    assert flushes == [1]


def test_a_new_graph_is_bulk_loaded_and_nothing_is_counted_for_flushing(store, monkeypatch) -> None:
    loads, flushes = [], []
    monkeypatch.setattr(store, "flush", lambda: flushes.append(1))
    real = store._store
    monkeypatch.setattr(store, "_store", _Recording(real, loads))
    monkeypatch.setattr(sparql.store, "FLUSH_EVERY_BYTES", 1)
    lines = event_lines(1, "Le Cid") + event_lines(2, "Phèdre")
    store.replace_graph(GRAPH, ntriples(lines))
    assert loads == ["bulk_load"] and flushes == []
    assert graph_content(store) == expected(lines)
    names = store.select("SELECT (COUNT(*) AS ?n) WHERE { ?e <http://schema.org/name> ?name }")
    assert names[0]["n"].toPython() == 2  # readers see the loaded graph


def test_a_new_graph_over_one_ingestion_is_loaded_in_a_transaction(store, monkeypatch) -> None:
    loads = []
    monkeypatch.setattr(store, "_store", _Recording(store._store, loads))
    monkeypatch.setattr(sparql.store, "BULK_LOAD_MAX_TRIPLES", 3)
    lines = event_lines(1, "Le Cid")  # 4 triples
    store.replace_graph(GRAPH, ntriples(lines))
    assert loads == ["load"] and graph_content(store) == expected(lines)


def test_a_broken_bulk_load_leaves_the_new_graph_empty_and_the_others_whole(store) -> None:
    kept = event_lines(1, "Le Cid")
    store.replace_graph(f"{GRAPH}-bis", ntriples(kept))
    broken = event_lines(2, "Phèdre") + ["<http://affiche.test/event/x> <http://schema.org/name> \"no end ."]
    with pytest.raises(SyntaxError, match="line 5"):  # as the transactional load says it
        store.replace_graph(GRAPH, ntriples(broken))
    assert graph_content(store) == set()
    assert graph_content(store, f"{GRAPH}-bis") == expected(kept, f"{GRAPH}-bis")
    store.replace_graph(GRAPH, ntriples(event_lines(2, "Phèdre")))  # the next harvest fills it
    assert graph_content(store) == expected(event_lines(2, "Phèdre"))


class _Recording:
    """The pyoxigraph store, noting which of its loaders is called."""

    def __init__(self, store: ox.Store, calls: list) -> None:
        self._store, self._calls = store, calls

    def load(self, *args, **kwargs):
        self._calls.append("load")
        return self._store.load(*args, **kwargs)

    def bulk_load(self, *args, **kwargs):
        self._calls.append("bulk_load")
        return self._store.bulk_load(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)
