"""Caps per feed: too many triples or events is refused with a message naming the feed and the
setting, and the last good data stays published."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harvester.fetch import FetchPolicy
from harvester.formats import ParseError
from harvester.pipeline import check, harvest
from harvester.sources import Source
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"
FEED = Path(__file__).parent.parent / "fixtures" / "openagenda" / "agenda-v3.json"  # 3 events
SOURCE = Source(id="oa", name="OA", path=FEED)


def test_a_feed_within_the_caps_is_read() -> None:
    checked = check(FEED, SOURCE, BASE, policy=FetchPolicy(max_events=3, max_triples=1000))
    assert checked.report.summary["found"] == 3


def test_too_many_events_is_refused_naming_feed_and_setting() -> None:
    with pytest.raises(ParseError, match=r"agenda-v3.json: 3 events, over the cap of 2 .*HARVEST_MAX_EVENTS"):
        check(FEED, SOURCE, BASE, policy=FetchPolicy(max_events=2))


def test_too_many_triples_is_refused_and_published_data_stays(tmp_path) -> None:
    store = EmbeddedStore(None)
    assert harvest(SOURCE, store, BASE).error is None
    report = harvest(SOURCE, store, BASE, policy=replace(FetchPolicy(), max_triples=10))
    assert "over the cap of 10" in report.error and "HARVEST_MAX_TRIPLES" in report.error
    rows = store.select("SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { GRAPH ?g { ?e a <http://schema.org/Event> } }")
    assert int(rows[0]["n"]) == 3



def test_recurrence_window_comes_from_the_policy() -> None:
    feed = Path(__file__).parent.parent / "fixtures" / "ics" / "saison.ics"
    source = Source(id="ics", name="ICS", path=feed)
    wide = check(feed, source, BASE, policy=FetchPolicy(recurrence_days=3000)).report.summary["found"]
    narrow = check(feed, source, BASE, policy=FetchPolicy(recurrence_days=1)).report.summary["found"]
    assert narrow < wide
