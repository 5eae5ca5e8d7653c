"""An event's `affiche:harvestedAt` moves only when its description changes (the change log's
test), so that a re-harvest rewrites what changed and nothing else."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pyoxigraph as ox
import pytest

from harvester import pipeline
from harvester.changes import ChangeLog
from harvester.harvest_times import keep_harvest_times, kept_times
from harvester.pipeline import harvest
from harvester.sources import Source
from ontology import AFFICHE
from sparql.store import EmbeddedStore, NTriples

BASE = "http://affiche.test"
TIMES = [datetime(2027, 2, day, 8, 0, tzinfo=timezone.utc) for day in (1, 2, 3, 4)]

# Invented: the Centre culturel des Tanneurs (Namur) and the Kiosque du Parc (Namur).
TANNEURS = {"@type": "Place", "name": "Centre culturel des Tanneurs",
            "address": {"@type": "PostalAddress", "streetAddress": "5 rue des Tanneurs",
                        "addressLocality": "Namur", "postalCode": "5000", "addressCountry": "BE"}}
KIOSQUE = {"@type": "Place", "name": "Kiosque du Parc",
           "address": {"@type": "PostalAddress", "streetAddress": "1 allée du Parc",
                       "addressLocality": "Namur", "postalCode": "5000", "addressCountry": "BE"}}


def feed(names: dict[str, str], tanneurs_street: str = "5 rue des Tanneurs") -> str:
    tanneurs = {**TANNEURS, "address": {**TANNEURS["address"], "streetAddress": tanneurs_street}}
    places = {"jazz": tanneurs, "contes": tanneurs, "fanfare": KIOSQUE}
    return json.dumps({"@context": "https://schema.org", "@graph": [
        {"@type": "MusicEvent", "@id": f"https://tanneurs.example/agenda/{key}", "name": name,
         "startDate": f"2027-05-{10 + i}T20:00:00+02:00", "location": places[key]}
        for i, (key, name) in enumerate(names.items())]}, ensure_ascii=False)


NAMES = {"jazz": "Soirée jazz", "contes": "Contes d'hiver", "fanfare": "Fanfare au kiosque"}


class Site:
    """One source harvested again and again into a real embedded store, with its change log,
    each harvest at the next of `TIMES`."""

    def __init__(self, tmp_path, monkeypatch, changes: bool = True) -> None:
        self.feed = tmp_path / "tanneurs.jsonld"
        self.source = Source(id="tanneurs", name="Les Tanneurs", path=self.feed, format="jsonld")
        self.store = EmbeddedStore(tmp_path / "store")
        self.changes = ChangeLog(tmp_path) if changes else None
        self.reports = tmp_path / "reports"
        self.times = iter(TIMES)
        self.monkeypatch = monkeypatch

    def harvest(self, text: str) -> dict[str, str]:
        """Harvest `text`; each published event's name -> its harvestedAt."""
        moment = next(self.times)
        self.monkeypatch.setattr(pipeline, "_now", lambda: moment)
        self.feed.write_text(text, encoding="utf-8")
        report = harvest(self.source, self.store, BASE, self.reports, changes=self.changes)
        assert report.error is None and report.summary["published"] == 3
        return {event.name: self.time_of(event.iri) for event in report.events}

    def time_of(self, iri: str) -> str:
        [quad] = self.store.quads_about(ox.NamedNode(iri), ox.NamedNode(str(AFFICHE.harvestedAt)))
        return quad.object.value

    def source_modified(self) -> str:
        rows = self.store.select("SELECT ?m WHERE { ?s a <https://affiche.example/ns#Source> ; "
                                 "<http://purl.org/dc/terms/modified> ?m }")
        return str(rows[0]["m"])


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = Site(tmp_path, monkeypatch)
    yield site
    site.store.close()


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_an_unchanged_event_keeps_its_harvest_time(site):
    first = site.harvest(feed(NAMES))
    assert set(first.values()) == {stamp(TIMES[0])}
    second = site.harvest(feed({**NAMES, "contes": "Contes de printemps"}))
    assert second == {"Soirée jazz": stamp(TIMES[0]), "Contes de printemps": stamp(TIMES[1]),
                      "Fanfare au kiosque": stamp(TIMES[0])}
    assert site.source_modified().startswith(TIMES[1].isoformat()[:19])  # the source's does move
    assert [m.kind for m in site.changes.members_after(None)] == ["created"] * 3 + ["updated"]


def test_a_change_to_a_node_the_event_reaches_is_a_change_of_the_event(site):
    """The venue's street is part of each event's description (and of its page)."""
    site.harvest(feed(NAMES))
    third = site.harvest(feed(NAMES, tanneurs_street="7 rue des Tanneurs"))
    assert third == {"Soirée jazz": stamp(TIMES[1]), "Contes d'hiver": stamp(TIMES[1]),
                     "Fanfare au kiosque": stamp(TIMES[0])}


def test_an_event_changed_back_gets_a_new_time(site):
    site.harvest(feed(NAMES))
    site.harvest(feed({**NAMES, "jazz": "Soirée jazz manouche"}))
    back = site.harvest(feed(NAMES))
    assert back["Soirée jazz"] == stamp(TIMES[2])
    assert back["Fanfare au kiosque"] == stamp(TIMES[0])


def test_a_feed_read_again_unchanged_writes_nothing_to_its_events(site):
    site.harvest(feed(NAMES))
    before = site.store.graphs()
    dump = io_dump(site.store, f"{BASE}/graph/tanneurs")
    site.harvest(feed(NAMES))
    after = io_dump(site.store, f"{BASE}/graph/tanneurs")
    changed = set(after.splitlines()) ^ set(dump.splitlines())
    assert site.store.graphs() == before
    assert changed and all(b"/source/tanneurs>" in line and b"modified" in line for line in changed)


def io_dump(store: EmbeddedStore, graph: str) -> bytes:
    out = io.BytesIO()
    store.dump_graph(out, graph, "nt")
    return out.getvalue()


def test_without_a_change_log_every_time_moves(tmp_path, monkeypatch):
    site = Site(tmp_path, monkeypatch, changes=False)
    try:
        site.harvest(feed(NAMES))
        second = site.harvest(feed(NAMES))
    finally:
        site.store.close()
    assert set(second.values()) == {stamp(TIMES[1])}


# --- keep_harvest_times on its own --------------------------------------------------------------


HARVESTED = f"<{AFFICHE.harvestedAt}>"
XSD_DATETIME = "<http://www.w3.org/2001/XMLSchema#dateTime>"


def lines(times: dict[str, str]) -> bytes:
    out = []
    for key, time in times.items():
        out.append(f"<{BASE}/event/{key}> <http://schema.org/name> \"{key}\" .")
        if time:
            out.append(f"<{BASE}/event/{key}> {HARVESTED} \"{time}\"^^{XSD_DATETIME} .")
    return ("\n".join(out) + "\n").encode("utf-8")


def test_keep_harvest_times_takes_the_stored_time_when_there_is_one(tmp_path):
    graph = f"{BASE}/graph/essai"
    store = EmbeddedStore(None)
    try:
        store.replace_graph(graph, NTriples(lines({"a": "2027-01-01T00:00:00Z", "b":
                                                    "2027-01-01T00:00:00Z", "c": ""}), 5))
        new = NTriples(lines({k: "2027-03-03T00:00:00Z" for k in "abc"}), 6)
        kept = keep_harvest_times(store, graph, new, frozenset(f"{BASE}/event/{k}" for k in "ac"))
        assert kept.triples == 6
        assert kept.data == lines({"a": "2027-01-01T00:00:00Z", "b": "2027-03-03T00:00:00Z",
                                   "c": "2027-03-03T00:00:00Z"})  # c: nothing stored to keep
        assert keep_harvest_times(store, graph, new, frozenset()) is new
        assert keep_harvest_times(store, f"{BASE}/graph/vide", new,
                                  frozenset({f"{BASE}/event/a"})).data == new.data
    finally:
        store.close()


def test_a_description_quoting_the_time_line_is_left_alone():
    """An organiser's text may quote what looks like a time line: only real subjects' lines move."""
    event = f"{BASE}/event/a"
    quoted = f'<{event}> <http://schema.org/description> "voir > {HARVESTED} \\"2020\\"" .'
    held = lines({"a": "2027-01-01T00:00:00Z"})
    new = (lines({"a": "2027-03-03T00:00:00Z"}).decode() + quoted + "\n").encode("utf-8")
    kept = kept_times(held, new, frozenset({event})).decode("utf-8")
    assert quoted in kept.splitlines()
    assert f"<{event}> {HARVESTED} \"2027-01-01T00:00:00Z\"^^{XSD_DATETIME} ." in kept.splitlines()
    assert "2027-03-03" not in kept
