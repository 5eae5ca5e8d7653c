"""The whole path, stage by stage and end to end, with bad inputs beside good ones."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rdflib import URIRef

from harvester import identity
from harvester.fetch import FetchError, FetchPolicy, fetch
from harvester.formats import ParseError
from harvester.pipeline import check, harvest, load_report
from harvester.sources import Source, SourceConfigError, load_sources
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"
DEMO = Path(__file__).parents[2] / "publisher" / "demo"


def names_in_graph(store: EmbeddedStore, source_id: str) -> set[str]:
    rows = store.select(
        "PREFIX schema: <http://schema.org/> SELECT ?graph ?n WHERE { GRAPH ?graph { ?e schema:startDate ?d ; schema:name ?n } }",
        {"graph": URIRef(identity.graph_iri(BASE, source_id))},
    )
    return {str(r["n"]) for r in rows}


@pytest.mark.parametrize("source_id, quarantined, field", [
    ("theatre-lumiere", "Lecture publique : nouvelles écritures", "startDate"),
    ("festival-marees", "Atelier cerfs-volants pour les enfants", "location"),
    ("salle-erable", "Soirée slam", "startDate"),
])
def test_check_reports_each_demo_feeds_incomplete_event_by_name_and_field(demo_sources, source_id,
                                                                          quarantined, field):
    source = next(s for s in demo_sources if s.id == source_id)
    report = check(source.location, source, BASE, source.format).report
    bad = [e for e in report.events if e.status == "quarantined"]
    assert [e.name for e in bad] == [quarantined]
    assert field in {p.field for p in bad[0].problems if p.severity == "violation"}
    assert report.summary["published"] == len(report.events) - 1


def test_harvest_loads_one_named_graph_per_source(demo_data):
    settings, store, reports = demo_data
    assert sorted(store.graphs()) == sorted(identity.graph_iri(BASE, s) for s in reports)
    assert "Le Phare des songes" in names_in_graph(store, "theatre-lumiere")
    assert "Lecture publique : nouvelles écritures" not in names_in_graph(store, "theatre-lumiere")
    saved = load_report(settings.reports_dir, "salle-erable")
    assert saved["summary"]["quarantined"] == 1
    assert "Soirée slam" in saved["quarantined_data"][saved["events"][-1]["iri"]] or any(
        "Soirée slam" in text for text in saved["quarantined_data"].values())


def test_a_bad_feed_leaves_the_last_good_data_in_place(tmp_path):
    feed = tmp_path / "agenda.html"
    feed.write_bytes((DEMO / "theatre-lumiere.html").read_bytes())
    source = Source(id="t", name="T", path=feed)
    store = EmbeddedStore(None)
    assert harvest(source, store, BASE).error is None
    before = names_in_graph(store, "t")
    assert "Le Phare des songes" in before

    feed.write_bytes(b"\x89PNG\r\n\x1a\n not a feed at all")  # a feed that is not what it claims
    report = harvest(Source(id="t", name="T", path=feed, format="html"), store, BASE, tmp_path / "r")
    assert report.error and "kept" in report.error
    assert names_in_graph(store, "t") == before

    feed.unlink()  # an unreadable file
    report = harvest(source, store, BASE)
    assert "no such file" in report.error
    assert names_in_graph(store, "t") == before


def test_reharvest_gives_the_same_iris(tmp_path):
    source = Source(id="f", name="F", path=DEMO / "festival-marees.ics")
    first = check(source.location, source, BASE).report
    second = check(source.location, source, BASE).report
    assert [e.iri for e in first.events] == [e.iri for e in second.events]


def test_events_that_disappear_from_the_feed_leave_the_graph(tmp_path):
    feed = tmp_path / "f.csv"
    rows = (DEMO / "salle-erable.csv").read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join(rows), encoding="utf-8")
    source = Source(id="s", name="S", path=feed, format="csv", timezone="America/Toronto")
    store = EmbeddedStore(None)
    harvest(source, store, BASE)
    assert "Snow Stories" in names_in_graph(store, "s")
    feed.write_text("\n".join(rows[:2] + rows[3:]), encoding="utf-8")
    harvest(source, store, BASE)
    assert "Snow Stories" not in names_in_graph(store, "s")
    assert "Les Saisons de Vivaldi revisitées" in names_in_graph(store, "s")


def test_undetectable_format_is_a_clear_error(tmp_path):
    blob = tmp_path / "mystery.bin"
    blob.write_bytes(b"\x00\x01\x02 binary")
    with pytest.raises(ParseError, match="cannot tell the feed's format"):
        check(blob, Source(id="x", name="x", path=blob), BASE)


# --- sources ----------------------------------------------------------------------------------


def test_sources_file_errors_name_the_source_and_field(tmp_path):
    config = tmp_path / "sources.toml"
    config.write_text('[[source]]\nid = "ok-1"\nname = "A"\npath = "a.html"\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(SourceConfigError, match=r"source 'ok-1'.*Mars/Olympus"):
        load_sources(config)
    config.write_text('[[source]]\nid = "Bad Id"\nname = "A"\npath = "a.html"\n')
    with pytest.raises(SourceConfigError, match="`id` must be"):
        load_sources(config)
    config.write_text('[[source]]\nid = "a"\nname = "A"\n')
    with pytest.raises(SourceConfigError, match="exactly one of `url` or `path`"):
        load_sources(config)
    config.write_text('[[source]]\nid = "a"\nname = "A"\npath = "x"\ncolour = "red"\n')
    with pytest.raises(SourceConfigError, match="unknown field.*colour"):
        load_sources(config)


def test_relative_paths_are_relative_to_the_config_file(demo_sources):
    assert all(s.path and s.path.is_absolute() and s.path.exists() for s in demo_sources)


# --- fetch over real HTTP on 127.0.0.1 ---------------------------------------------------------


class FeedHandler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict, bytes]] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, headers, body = self.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FeedHandler.routes
    server.shutdown()
    FeedHandler.routes = {}


ALLOW_LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))


def test_harvest_over_http_detects_the_format_from_the_content_type(feed_server):
    base, routes = feed_server
    routes["/programme"] = (200, {"Content-Type": "text/calendar; charset=utf-8", "ETag": '"v1"'},
                            (DEMO / "festival-marees.ics").read_bytes())
    routes["/old"] = (301, {"Location": "/programme"}, b"")
    store = EmbeddedStore(None)
    report = harvest(Source(id="fm", name="FM", url=f"{base}/old"), store, BASE, policy=ALLOW_LOCAL)
    assert report.error is None and report.format == "ics"
    assert report.location == f"{base}/programme"
    assert "Cirque sous les remparts" in names_in_graph(store, "fm")


def test_fetch_refuses_loopback_unless_allowed(feed_server):
    base, routes = feed_server
    routes["/x"] = (200, {}, b"hello")
    with pytest.raises(FetchError, match="non-public address"):
        fetch(f"{base}/x")
    assert fetch(f"{base}/x", ALLOW_LOCAL).content == b"hello"


def test_fetch_reports_http_errors_and_size_caps(feed_server):
    base, routes = feed_server
    routes["/gone"] = (500, {}, b"oops")
    routes["/big"] = (200, {}, b"x" * 5000)
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch(f"{base}/gone", ALLOW_LOCAL)
    with pytest.raises(FetchError, match="over the limit"):
        fetch(f"{base}/big", FetchPolicy(max_bytes=1000, allow_hosts=frozenset({"127.0.0.1"})))


def test_fetch_refuses_other_schemes():
    with pytest.raises(FetchError, match="only http and https"):
        from harvester.fetch import check_address
        check_address("file:///etc/passwd", FetchPolicy())


def test_json_report_shape_for_scripts(demo_sources):
    source = next(s for s in demo_sources if s.id == "salle-erable")
    data = check(source.location, source, BASE, source.format).report.to_json("fr")
    json.dumps(data)  # serialisable
    assert set(data["summary"]) == {"found", "published", "quarantined", "warnings"}
    for event in data["events"]:
        assert set(event) >= {"iri", "name", "status", "problems"}
        assert event["status"] in ("published", "quarantined")
        for problem in event["problems"]:
            assert set(problem) >= {"severity", "field", "message"}
    slam = next(e for e in data["events"] if e["name"] == "Soirée slam")
    assert any("date de début" in p["message"] for p in slam["problems"])  # French, as asked


def test_a_feed_that_suddenly_holds_no_event_keeps_the_published_ones(tmp_path):
    feed = tmp_path / "agenda.html"
    feed.write_bytes((DEMO / "theatre-lumiere.html").read_bytes())
    source = Source(id="t", name="T", path=feed)
    store = EmbeddedStore(None)
    harvest(source, store, BASE)
    before = names_in_graph(store, "t")
    feed.write_text("<!DOCTYPE html><html><body><p>Site en travaux</p></body></html>")
    report = harvest(source, store, BASE)
    assert report.error and "no event" in report.error
    assert names_in_graph(store, "t") == before
