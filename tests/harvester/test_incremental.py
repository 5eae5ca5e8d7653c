"""Incremental harvests over a real HTTP server: a conditional GET answered 304, or the same bytes,
cost one request and no store write; the raw bytes are archived with bounded retention."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harvester.incremental import FeedHistory
from harvester.pipeline import harvest
from harvester.sources import Source
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"
FEED = (Path(__file__).parent.parent / "fixtures" / "openagenda" / "agenda-v3.json").read_bytes()
JSON = {"Content-Type": "application/json"}


class CountingStore(EmbeddedStore):
    """The embedded store, counting graph replacements (the store writes a harvest makes)."""

    writes = 0

    def replace_graph(self, graph_iri: str, graph) -> None:
        self.writes += 1
        super().replace_graph(graph_iri, graph)


def events_in(store: EmbeddedStore) -> int:
    rows = store.select("SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { GRAPH ?g { ?e a <http://schema.org/Event> } }")
    return int(rows[0]["n"])


def serve_feed(site_server, tmp_path: Path) -> tuple[Source, CountingStore, FeedHistory]:
    """The OpenAgenda fixture served over HTTP, with an empty store and feed history for it."""
    site_server.routes["/agenda.json"] = (200, JSON, FEED)
    source = Source(id="oa", name="OA", url=site_server.base + "/agenda.json")
    return source, CountingStore(None), FeedHistory(tmp_path / "harvest", source.id)


def test_unchanged_feed_costs_one_conditional_request_and_no_write(site_server, local_policy, tmp_path) -> None:
    source, store, history = serve_feed(site_server, tmp_path)
    first = harvest(source, store, BASE, tmp_path / "reports", local_policy, history=history)
    assert first.error is None and not first.unchanged
    assert store.writes == 1 and events_in(store) == 3
    site_server.requests.clear()
    second = harvest(source, store, BASE, tmp_path / "reports", local_policy, history=history)
    assert second.unchanged and second.error is None
    assert store.writes == 1
    assert len(site_server.requests) == 1
    assert site_server.requests[0][1].get("If-None-Match")
    assert second.archive == first.archive


def test_same_bytes_without_etag_support_are_unchanged_by_hash(site_server, local_policy, tmp_path) -> None:
    source, store, history = serve_feed(site_server, tmp_path)
    harvest(source, store, BASE, None, local_policy, history=history)
    state = history.state()
    state.etag = state.last_modified = None  # a server without validators: only the hash tells
    history.state_path.write_text(json.dumps(asdict(state)))
    report = harvest(source, store, BASE, None, local_policy, history=history)
    assert report.unchanged
    assert store.writes == 1


def test_changed_feed_is_harvested_and_archived_with_bounded_retention(site_server, local_policy, tmp_path) -> None:
    source = Source(id="oa", name="OA", url=site_server.base + "/agenda.json")
    store = CountingStore(None)
    history = FeedHistory(tmp_path / "harvest", source.id, keep=2)
    archives = []
    for version in range(3):
        body = FEED.replace(b"La Nuit des lanternes", f"La Nuit des lanternes {version}".encode())
        site_server.routes["/agenda.json"] = (200, JSON, body)
        report = harvest(source, store, BASE, None, local_policy, history=history)
        assert not report.unchanged and report.error is None
        archives.append(report.archive)
        assert (history.archive_dir / report.archive).read_bytes() == body
    assert store.writes == 3
    assert sorted(p.name for p in history.archive_dir.iterdir()) == sorted(archives[1:])


def test_failed_harvest_is_archived_but_not_remembered(site_server, local_policy, tmp_path) -> None:
    source = Source(id="oa", name="OA", url=site_server.base + "/agenda.json", format="openagenda")
    store = CountingStore(None)
    history = FeedHistory(tmp_path / "harvest", source.id)
    site_server.routes["/agenda.json"] = (200, JSON, b'{"uid": 1, "timings": [')
    broken = harvest(source, store, BASE, None, local_policy, history=history)
    assert broken.error and "not valid JSON" in broken.error
    assert (history.archive_dir / broken.archive).read_bytes() == b'{"uid": 1, "timings": ['
    assert history.state().sha256 is None
    broken_again = harvest(source, store, BASE, None, local_policy, history=history)
    assert not broken_again.unchanged and broken_again.error  # retried in full, not skipped


def test_store_without_the_source_data_gets_a_full_harvest(site_server, local_policy, tmp_path) -> None:
    site_server.routes["/agenda.json"] = (200, JSON, FEED)
    source = Source(id="oa", name="OA", url=site_server.base + "/agenda.json")
    history = FeedHistory(tmp_path / "harvest", source.id)
    harvest(source, CountingStore(None), BASE, None, local_policy, history=history)
    fresh = CountingStore(None)
    site_server.requests.clear()
    report = harvest(source, fresh, BASE, None, local_policy, history=history)
    assert not report.unchanged
    assert "If-None-Match" not in site_server.requests[0][1]
    assert events_in(fresh) == 3


def test_same_bytes_read_with_another_timezone_are_harvested_again(site_server, local_policy, tmp_path) -> None:
    source, store, history = serve_feed(site_server, tmp_path)
    harvest(source, store, BASE, None, local_policy, history=history)
    moved = Source(id="oa", name="OA", url=source.url, timezone="America/Montreal")
    report = harvest(moved, store, BASE, None, local_policy, history=history)
    assert not report.unchanged and store.writes == 2
    assert harvest(moved, store, BASE, None, local_policy, history=history).unchanged


def test_crawled_sites_are_always_harvested_in_full(site_server, local_policy, tmp_path) -> None:
    source = Source(id="cirque", name="Cirque", url=site_server.base + "/sitemap_index.xml",
                    format="sitemap")
    store = CountingStore(None)
    history = FeedHistory(tmp_path / "harvest", source.id)
    first = harvest(source, store, BASE, None, local_policy, history=history)
    second = harvest(source, store, BASE, None, local_policy, history=history)
    assert first.summary["published"] == second.summary["published"] == 2
    assert not second.unchanged and store.writes == 2
    assert second.archive.endswith(".xml")
