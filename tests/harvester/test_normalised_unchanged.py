"""The harvest publishes exactly what it did before it was made faster (issue #9).

Each feed (the demo's, the format fixtures, odd JSON-LD and Turtle, a synthetic region of every
format) is parsed, normalised, validated and described for the change log by the current code, and
compared with what the code wrote before the speed work (`tests/fixtures/normalised/`, written by
`normalised_outputs.py`): graphs by isomorphism, reports and lists as data.
"""

from __future__ import annotations

import json

import pytest
from rdflib import Graph
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

from . import normalised_outputs as recorded

FEEDS = {feed.name: feed for feed in recorded.feeds()}


def _graph(ntriples: str) -> Graph:
    graph = Graph()
    graph.parse(data=ntriples, format="nt")
    return graph


def assert_same_graph(now: str, before: str, what: str) -> None:
    new, old = _graph(now), _graph(before)
    if not isomorphic(new, old):
        _, only_new, only_old = graph_diff(to_isomorphic(new), to_isomorphic(old))
        pytest.fail(f"{what} differs:\n  only now: {sorted(only_new)[:5]}\n"
                    f"  only before: {sorted(only_old)[:5]}")


def _comparable(report: dict, keys) -> dict:
    """The report's recorded fields (fields added since are others' business), feed problems in
    a fixed order: theirs follows the parsed graph's order, which never meant anything."""
    kept = {key: report[key] for key in keys}
    return {**kept, "feed_problems": sorted(report["feed_problems"],
                                             key=lambda p: json.dumps(p, sort_keys=True))}


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_outputs_are_those_recorded_before_the_speed_work(name: str) -> None:
    now, before = recorded.outputs(FEEDS[name]), recorded.expected(name)
    assert_same_graph(now["normalised"], before["normalised"], "the normalised graph")
    assert now["events"] == before["events"]
    assert now["dropped"] == before["dropped"]
    if FEEDS[name].format == "graph":
        return
    assert now["origins"] == before["origins"]
    assert now["warnings"] == before["warnings"]
    assert_same_graph(now["published"], before["published"], "the published graph")
    assert sorted(now["quarantined"]) == sorted(before["quarantined"])
    for iri, description in before["quarantined"].items():
        assert_same_graph(now["quarantined"][iri], description, f"quarantined {iri}")
    assert _comparable(now["report"], before["report"]) == _comparable(before["report"], before["report"])
    assert sorted(now["descriptions"]) == sorted(before["descriptions"])
    for iri, description in before["descriptions"].items():
        assert_same_graph(now["descriptions"][iri], description, f"the change log's {iri}")


def test_a_changed_output_is_caught() -> None:
    """The comparison is not blind: a feed whose output differs from its record fails it."""
    now = recorded.outputs(FEEDS["demo-salle-erable"])
    before = recorded.expected("demo-theatre-lumiere")
    with pytest.raises(pytest.fail.Exception):
        assert_same_graph(now["normalised"], before["normalised"], "the normalised graph")
    altered = now["published"].replace('"@fr', '"@en', 1)
    with pytest.raises(pytest.fail.Exception):
        assert_same_graph(altered, now["published"], "the published graph")


def test_the_region_covers_every_format_and_the_odd_corners() -> None:
    formats = {feed.format for feed in FEEDS.values()}
    assert {"html", "jsonld", "ics", "csv", "rdf", "openagenda", "uitdatabank", "graph"} <= formats
    odd = recorded.expected("unusable-iris")
    assert any("not a valid absolute IRI" in d for d in odd["dropped"])
    assert "https://schema.org/" not in recorded.expected("https-turtle")["normalised"]
