"""Feeds that fail in the ways real feeds fail: the last good data stays published, the report
says what happened, and the next good harvest goes through."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rdflib import URIRef

from harvester.fetch import FetchPolicy
from harvester.identity import graph_iri
from harvester.incremental import FeedHistory
from harvester.pipeline import harvest, load_report
from harvester.sources import Source
from sparql.store import EmbeddedStore

from .conftest import programme
from .feed_server import Answer

BASE = "http://affiche.test"
POLICY = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=1.0)


def published_ids(store: EmbeddedStore, source_id: str) -> set[str]:
    rows = store.select(
        "PREFIX schema: <http://schema.org/> SELECT ?g ?id WHERE { GRAPH ?g { "
        "?e schema:startDate ?s ; schema:identifier ?id } }", {"g": URIRef(graph_iri(BASE, source_id))})
    return {str(row["id"]) for row in rows}


def harvest_once(script, tmp_path, store, policy=POLICY):
    source = Source(id="hirondelles", name="Théâtre des Hirondelles", url=f"{script.base}/agenda.csv",
                    format="csv")
    history = FeedHistory(tmp_path / "harvest", source.id, 3)
    return harvest(source, store, BASE, tmp_path / "reports", policy, history=history)


@pytest.fixture
def published(scripted_server, tmp_path):
    """Ten events harvested from the scripted server: the last good data."""
    store = EmbeddedStore(None)
    scripted_server.answers["/agenda.csv"] = Answer(body=programme(10))
    report = harvest_once(scripted_server, tmp_path, store)
    assert report.error is None and report.summary["published"] == 10
    before = published_ids(store, "hirondelles")
    assert len(before) == 10
    return store, before


FAULTS = {
    "hangs": (Answer(body=programme(10, first=50), delay_s=30), "no complete answer within 1 s"),
    "500": (Answer(500, b"Internal Server Error", "text/plain"), "500"),
    "zero events": (Answer(body=programme(0)), "no event at all"),
    "loses most events": (Answer(body=programme(3)), "would remove 7 of the 10"),
    "not csv any more": (Answer(body=b"<html><body>Maintenance</body></html>",
                                content_type="text/html"), "does not look like|no event"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_failing_feed_keeps_the_last_good_data_and_says_why(fault, published, scripted_server,
                                                              tmp_path):
    store, before = published
    answer, reason = FAULTS[fault]
    scripted_server.answers["/agenda.csv"] = answer
    report = harvest_once(scripted_server, tmp_path, store)
    assert report.error is not None

    assert re.search(reason, report.error), report.error
    assert "kept" in report.error
    assert published_ids(store, "hirondelles") == before
    saved = load_report(tmp_path / "reports", "hirondelles")
    assert saved["error"] == report.error
    # the feed comes back: the next harvest goes through (a changed programme, all of it new)
    scripted_server.answers["/agenda.csv"] = Answer(body=programme(12, first=1))
    recovered = harvest_once(scripted_server, tmp_path, store)
    assert recovered.error is None, recovered.error
    assert len(published_ids(store, "hirondelles")) == 12


def test_losing_a_share_under_the_limit_is_published(published, scripted_server, tmp_path):
    store, before = published
    scripted_server.answers["/agenda.csv"] = Answer(body=programme(6))  # 4 of 10 gone: 40 %
    report = harvest_once(scripted_server, tmp_path, store)
    assert report.error is None
    assert published_ids(store, "hirondelles") == {f"hir-{n:03d}" for n in range(1, 7)}


def test_the_loss_guard_follows_its_setting(published, scripted_server, tmp_path):
    store, _ = published
    scripted_server.answers["/agenda.csv"] = Answer(body=programme(3))
    strict = harvest_once(scripted_server, tmp_path, store, replace(POLICY, max_loss=0.8))
    assert strict.error is None  # 70 % lost, 80 % allowed
    assert len(published_ids(store, "hirondelles")) == 3
    scripted_server.answers["/agenda.csv"] = Answer(body=programme(1, first=40))
    guarded = harvest_once(scripted_server, tmp_path, store, replace(POLICY, max_loss=0.1))
    assert guarded.error and "would remove 2 of the 3" in guarded.error  # counted net: one new event


def test_the_setting_reaches_the_harvester(monkeypatch):
    from publisher.cli import fetch_policy
    from publisher.settings import load_settings
    monkeypatch.setenv("AFFICHE_HARVEST_MAX_LOSS", "0.25")
    assert fetch_policy(load_settings()).max_loss == 0.25
    monkeypatch.setenv("AFFICHE_HARVEST_MAX_LOSS", "1.5")
    with pytest.raises(ValueError):
        load_settings()
