"""Several sources read in worker processes, written by one: the same store, log and reports as
one source after another, and nothing written by anyone but the writing process."""

from __future__ import annotations

import io

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS

from bench import synthetic
from harvester.changes import ChangeLog
from harvester.fetch import FetchPolicy
from harvester.incremental import FeedHistory
from harvester import pipeline
from harvester.pipeline import HarvestTask, commit, harvest_all, prepare, worker_pool
from harvester.sources import Source, load_sources
from ontology import AFFICHE
from sparql.store import EmbeddedStore, NTriples

BASE = "http://affiche.test"
MOVING = (AFFICHE.harvestedAt, DCTERMS.modified)  # the harvest's own time, different every run


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Six small sources of every format (shared venues, invalid events…)."""
    directory = tmp_path_factory.mktemp("region")
    return load_sources(synthetic.write_region(synthetic.plan_region(600, seed=12), directory))


def _harvest(sources: list[Source], data_dir, workers: int, workers_after_s: float = 0.0):
    """With `workers`, every source goes to a worker process (these feeds are too small to
    reach the usual `WORKERS_AFTER_S`, after which workers start)."""
    store, changes = EmbeddedStore(data_dir / "store"), ChangeLog(data_dir)
    tasks = [HarvestTask(s, FeedHistory(data_dir / "harvest", s.id)) for s in sources]
    done = []
    reports = harvest_all(tasks, store, BASE, data_dir / "reports", FetchPolicy(), changes,
                          workers=workers, on_done=done.append, workers_after_s=workers_after_s)
    return store, changes, reports, done


def test_a_quick_harvest_starts_no_worker_process(region, tmp_path, monkeypatch) -> None:
    def no_pool(workers):
        raise AssertionError("worker processes started for a harvest of a few small feeds")

    monkeypatch.setattr(pipeline, "worker_pool", no_pool)
    store, _, reports, _ = _harvest(region, tmp_path, workers=2, workers_after_s=60)
    store.close()
    assert [r.source_id for r in reports] == [s.id for s in region]
    assert all(r.error is None for r in reports)


def test_sources_go_to_as_many_worker_processes_as_they_need(region, tmp_path, monkeypatch) -> None:
    pools = []

    def counting_pool(workers):
        pools.append(workers)
        return worker_pool(workers)

    monkeypatch.setattr(pipeline, "worker_pool", counting_pool)
    store, _, reports, _ = _harvest(region[:3], tmp_path, workers=4)
    store.close()
    assert pools == [3]  # three sources, so three workers, not four
    assert all(r.error is None and r.summary["published"] for r in reports)


def _graph(store: EmbeddedStore, graph_iri: str) -> Graph:
    out = io.BytesIO()
    store.dump_graph(out, graph_iri, "nt")
    graph = Graph().parse(data=out.getvalue().decode("utf-8"), format="nt")
    for moving in MOVING:
        graph.remove((None, moving, None))
    return graph


def test_workers_publish_what_one_process_publishes(region, tmp_path) -> None:
    alone, alone_log, alone_reports, _ = _harvest(region, tmp_path / "alone", workers=1)
    shared, shared_log, shared_reports, done = _harvest(region, tmp_path / "shared", workers=2)
    try:
        assert [r.source_id for r in shared_reports] == [s.id for s in region]
        assert sorted(r.source_id for r in done) == sorted(s.id for s in region)
        assert [r.summary for r in shared_reports] == [r.summary for r in alone_reports]
        assert all(r.error is None for r in shared_reports)
        assert shared.graphs() == alone.graphs() and len(alone.graphs()) == len(region)
        for graph_iri in alone.graphs():
            assert isomorphic(_graph(shared, graph_iri), _graph(alone, graph_iri)), graph_iri
        members = {(m.event, m.kind, m.digest) for m in shared_log.members_after(None)}
        assert members == {(m.event, m.kind, m.digest) for m in alone_log.members_after(None)}
        assert len(members) == sum(r.summary["published"] for r in alone_reports)
        for source in region:
            assert (tmp_path / "shared" / "reports" / f"{source.id}.json").exists()
    finally:
        alone.close()
        shared.close()


def test_an_unreadable_source_among_others_keeps_its_data_and_says_why(region, tmp_path) -> None:
    store, changes, first, _ = _harvest(region, tmp_path, workers=2)
    store.close()
    region[0].path.write_bytes(b"\x00\x01 not a feed at all")
    store, changes, second, _ = _harvest(region, tmp_path, workers=2)
    try:
        broken = second[0]
        assert broken.error and "previously published data is kept" in broken.error
        assert [r.unchanged for r in second[1:]] == [True] * (len(region) - 1)
        rows = store.select("SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { GRAPH ?g { ?e a "
                            "<http://schema.org/Event> } FILTER (?g = <%s/graph/%s>) }"
                            % (BASE, region[0].id))
        assert int(rows[0]["n"]) == first[0].summary["published"]
    finally:
        store.close()


def test_preparing_writes_nothing_and_commit_writes_it_all(region, tmp_path) -> None:
    """What a worker runs leaves the store and the log alone; the writer's commit does the rest."""
    source = region[1]
    prepared = prepare(HarvestTask(source), BASE, FetchPolicy())
    assert prepared.report.error is None and prepared.published.triples > 0
    assert len(prepared.descriptions) == prepared.report.summary["published"]
    assert not (tmp_path / "changes.sqlite").exists()
    store, changes = EmbeddedStore(tmp_path / "store"), ChangeLog(tmp_path)
    try:
        assert store.graphs() == []
        report = commit(prepared, store, BASE, tmp_path / "reports", FetchPolicy(), changes)
        assert report.error is None
        assert store.graphs() == [f"{BASE}/graph/{source.id}"]
        assert len(changes.members_after(None)) == report.summary["published"]
    finally:
        store.close()


def test_replace_graph_loads_an_empty_graph_and_replaces_a_full_one(tmp_path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    graph_iri = f"{BASE}/graph/grange"
    first = b'<http://affiche.test/event/1> <http://schema.org/name> "Le Malade imaginaire"@fr .\n'
    second = b'<http://affiche.test/event/2> <http://schema.org/name> "Tartuffe"@fr .\n'
    try:
        store.replace_graph(graph_iri, NTriples(first, 1))
        store.replace_graph(graph_iri, NTriples(second, 1))
        names = [str(r["n"]) for r in store.select("SELECT ?n WHERE { ?e <http://schema.org/name> ?n }")]
        assert names == ["Tartuffe"]
        with pytest.raises(SyntaxError):  # broken data: the graph keeps what it had
            store.replace_graph(graph_iri, NTriples(b"<not closed .\n", 1))
        with pytest.raises(SyntaxError):  # and an empty graph stays empty
            store.replace_graph(f"{BASE}/graph/vide", NTriples(second + b"<not closed .\n", 2))
        names = [str(r["n"]) for r in store.select("SELECT ?n WHERE { ?e <http://schema.org/name> ?n }")]
        assert names == ["Tartuffe"]
        assert store.graphs() == [graph_iri]
    finally:
        store.close()
