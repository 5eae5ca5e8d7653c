"""The saved harvest report keeps each distinct problem once; every reader still shows the same
report as when each event's problems were written out in full (the format before), and a report
saved that way is still read."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import httpx
import lxml.html
import pytest
from rdflib import Graph
from rdflib.namespace import RDF

from harvester.pipeline import (
    EventOutcome, Report, expand_report, harvest, load_history, load_report, save_report,
)
from harvester.sources import Source
from ontology import SH
from publisher.app import create_app
from publisher.routes import stats as stats_routes
from publisher.settings import Settings
from shapes import Problem
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"
SOURCE = "salle-des-pins"
EVENTS = 120

# Invented: the Salle des Pins (Rimouski, Québec) exports a spreadsheet; every row lacks the same
# recommended fields, a few end before they start, one has no date at all.
HEADER = "id;titre;description;debut;fin;lieu;adresse;code_postal;ville;pays\n"


def feed_text() -> str:
    rows = []
    for i in range(EVENTS):
        day = 1 + i % 28
        end = f"{day:02d}/03/2027 19h00" if i % 40 == 7 else f"{day:02d}/03/2027 22h00"
        start = "" if i == 13 else f"{day:02d}/03/2027 20h00"
        rows.append(f"sdp-{i};Soirée contes n° {i};Contes et musique du Bas-Saint-Laurent.;"
                    f"{start};{end};Salle des Pins;12 rue des Pins;G5L 1A1;Rimouski;CA\n")
    return HEADER + "".join(rows)


def legacy_json(report: Report, language: str = "en") -> dict:
    """The report as `Report.to_json` wrote it before problems were kept once (written out here,
    as it was): what the pages showed then."""
    return {
        "source": report.source_id, "input": report.location, "format": report.format,
        "started_at": report.started_at, "finished_at": report.finished_at,
        "error": report.error, "unchanged": report.unchanged, "archive": report.archive,
        "held_back": report.held_back, "summary": report.summary, "score": report.score,
        "feed_problems": [asdict(p) for p in report.feed_problems],
        "events": [{"iri": e.iri, "name": e.name, "status": e.status, "origin": e.origin,
                    "score": e.score,
                    "problems": [{"severity": p.severity, "field": p.field,
                                  "message": p.message(language), "messages": p.messages,
                                  "value": p.value, "shape": p.shape} for p in e.problems]}
                   for e in report.events],
    }


def round_trip(data: dict) -> dict:
    return json.loads(json.dumps(data, ensure_ascii=False))


@pytest.fixture
def harvested(tmp_path):
    """The feed harvested into a real embedded store, its report saved as harvests save it."""
    feed = tmp_path / "salle-des-pins.csv"
    feed.write_text(feed_text(), encoding="utf-8")
    settings = Settings(base_url=BASE, data_dir=tmp_path / "data")
    store = EmbeddedStore(None)
    report = harvest(Source(id=SOURCE, name="Salle des Pins", path=feed, format="csv",
                            timezone="America/Toronto"), store, BASE, settings.reports_dir)
    yield settings, store, report
    store.close()


def test_each_distinct_problem_is_saved_once(harvested):
    settings, _, report = harvested
    occurrences = [p for e in report.events for p in e.problems]
    distinct = {json.dumps(p, sort_keys=True)
                for e in legacy_json(report)["events"] for p in e["problems"]}
    assert len(report.events) == EVENTS and len(occurrences) > 5 * EVENTS
    assert sum(p.value is not None for p in occurrences) >= EVENTS // 40  # ends before starts
    raw = json.loads((settings.reports_dir / f"{SOURCE}.json").read_text(encoding="utf-8"))
    assert len(raw["problem_table"]) == len(distinct) < 20
    assert {json.dumps(p, sort_keys=True) for p in raw["problem_table"]} == distinct
    assert sum(len(e["problems"]) for e in raw["events"]) == len(occurrences)
    assert all(type(i) is int for e in raw["events"] for i in e["problems"])
    legacy_size = len(json.dumps(legacy_json(report), ensure_ascii=False))
    assert (settings.reports_dir / f"{SOURCE}.json").stat().st_size * 4 < legacy_size


def test_the_saved_report_reads_back_as_before(harvested):
    settings, _, report = harvested
    saved = load_report(settings.reports_dir, SOURCE)
    quarantined = saved.pop("quarantined_data")
    assert saved == round_trip(legacy_json(report))
    # one without a date, the ends before the starts
    assert len(quarantined) == report.summary["quarantined"] == 1 + EVENTS // 40
    # each event its own copies: a reader annotating one event's problem touches no other
    first, second = saved["events"][0]["problems"][0], saved["events"][1]["problems"][0]
    assert first == second and first is not second


@pytest.mark.parametrize("language", ["fr", "en"])
def test_to_json_is_the_report_written_out(harvested, language):
    """What the checker, the API's jobs and `affiche check --json` print."""
    _, _, report = harvested
    assert round_trip(report.to_json(language)) == round_trip(legacy_json(report, language))
    messages = {p["message"] for e in report.to_json(language)["events"] for p in e["problems"]}
    assert any(m.startswith("Pas d") for m in messages) == (language == "fr")


def problem(severity: str, field: str, value: str | None = None) -> Problem:
    return Problem(severity=severity, field=field, value=value, shape=f"{BASE}/shapes#{field}",
                   messages={"fr": f"Il manque {field}.", "en": f"{field} is missing."})


def test_equal_problems_made_apart_are_kept_once_and_scores_counted_once(tmp_path):
    report = Report(source_id="grange-aux-dimes", location="grange.ics", format="ics",
                    started_at="2027-01-04T08:00:00+00:00")
    for i in range(30):  # a new but equal Problem for every event
        problems = [problem("warning", "image"), problem("info", "audience")]
        if i % 3 == 0:
            problems.append(problem("violation", "startDate", value=f"le {i} mars"))
        report.events.append(EventOutcome(iri=f"{BASE}/event/g-{i}", name=f"Bal {i}",
                                          status="quarantined" if i % 3 == 0 else "published",
                                          origin=f"https://grange.example/{i}", problems=problems))
    saved = report.to_file_json()
    assert len(saved["problem_table"]) == 2 + 10
    assert saved["summary"] == report.summary == {"found": 30, "published": 20, "quarantined": 10,
                                                  "warnings": 30}
    assert saved["score"] == report.score == round((20 * 88 + 10 * 48) / 30, 1)
    assert [e["score"] for e in saved["events"]] == [e.score for e in report.events]
    save_report(report, tmp_path, {})
    [line] = load_history(tmp_path, "grange-aux-dimes")
    assert line == {"started_at": report.started_at, "score": report.score, "error": None,
                    **report.summary}


def test_a_report_without_events_or_problems(tmp_path):
    report = Report(source_id="vide", location="vide.csv", error="cannot read the feed")
    save_report(report, tmp_path, {})
    saved = load_report(tmp_path, "vide")
    assert saved["events"] == [] and saved["score"] is None and saved["error"] == report.error
    assert "problem_table" not in saved


def test_a_report_saved_before_the_table_is_read_as_it_is(harvested):
    settings, _, report = harvested
    old = {**legacy_json(report), "quarantined_data": {}}
    (settings.reports_dir / "ancienne.json").write_text(json.dumps(old, ensure_ascii=False),
                                                        encoding="utf-8")
    assert load_report(settings.reports_dir, "ancienne") == round_trip(old)


@pytest.mark.parametrize("damage", [
    lambda raw: raw[: len(raw) // 2],  # cut short (not a harvest's doing: those replace atomically)
    lambda raw: raw.replace('"problems": [0', '"problems": [9999', 1),
    lambda raw: raw.replace('"problems": [0', '"problems": [-1', 1),
    lambda raw: raw.replace('"problems": [0', '"problems": ["0"', 1),
    lambda raw: raw.replace('"problems": [0', '"problems": [true', 1),
    lambda raw: raw.replace('"problem_table": [', '"problem_table": {"x": [', 1).replace(
        '], "events"', ']}, "events"', 1),
])
def test_a_damaged_report_is_refused_clearly(harvested, damage):
    settings, _, _ = harvested
    path = settings.reports_dir / f"{SOURCE}.json"
    raw = path.read_text(encoding="utf-8")
    damaged = damage(raw)
    assert damaged != raw
    path.write_text(damaged, encoding="utf-8")
    with pytest.raises(ValueError):
        load_report(settings.reports_dir, SOURCE)
    assert stats_routes.report_score(settings.reports_dir, SOURCE) is None


def test_expand_report_leaves_other_documents_alone():
    assert expand_report({"score": 50.0}) == {"score": 50.0}
    assert expand_report([1, 2]) == [1, 2]
    with pytest.raises(ValueError):
        expand_report({"problem_table": [], "events": [{"iri": "x"}]})


# --- every reader: the source page (HTML in French and English, JSON, RDF), /stats ---------------


def legacy_copy(settings: Settings, report: Report, tmp_path: Path) -> Settings:
    """Another data directory whose report file is the same report in the format before."""
    legacy = Settings(base_url=BASE, data_dir=tmp_path / "legacy")
    saved = json.loads((settings.reports_dir / f"{SOURCE}.json").read_text(encoding="utf-8"))
    legacy.reports_dir.mkdir(parents=True)
    (legacy.reports_dir / f"{SOURCE}.json").write_text(json.dumps(
        {**legacy_json(report), "quarantined_data": saved["quarantined_data"]},
        ensure_ascii=False), encoding="utf-8")
    (legacy.reports_dir / "history").mkdir()
    for history in (settings.reports_dir / "history").iterdir():
        (legacy.reports_dir / "history" / history.name).write_bytes(history.read_bytes())
    return legacy


def shacl_results(turtle: str) -> list[tuple]:
    """The SHACL report's results, each as the sorted (property, value) pairs of its blank node,
    sorted: a comparison of graphs with thousands of blank nodes, without an isomorphism test."""
    graph = Graph().parse(data=turtle, format="turtle")
    [report] = graph.subjects(RDF.type, SH.ValidationReport)
    return sorted(tuple(sorted((str(p), o.n3()) for p, o in graph.predicate_objects(result)))
                  for result in graph.objects(report, SH.result))


async def pages(settings: Settings, store: EmbeddedStore, language: str) -> dict:
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        html = await http.get(f"/source/{SOURCE}?lang={language}", headers={"Accept": "text/html"})
        as_json = await http.get(f"/source/{SOURCE}", headers={"Accept": "application/json"})
        turtle = await http.get(f"/source/{SOURCE}", headers={"Accept": "text/turtle"})
        stats = await http.get(f"/stats?format=json&lang={language}")
    assert {r.status_code for r in (html, as_json, turtle, stats)} == {200}
    tree = lxml.html.fromstring(html.text)
    rows = [[" ".join(td.text_content().split()) for td in tr.xpath("td")]
            for tr in tree.xpath('//table[@class="report"]/tbody/tr')]
    return {"rows": rows, "score": tree.xpath("string(//*[@data-score]/@data-score)"),
            "json": as_json.json(), "rdf": shacl_results(turtle.text),
            "stats": stats.json()}


@pytest.mark.anyio
@pytest.mark.parametrize("language", ["fr", "en"])
async def test_every_reader_shows_the_same_report(harvested, tmp_path, language):
    settings, store, report = harvested
    now = await pages(settings, store, language)
    before = await pages(legacy_copy(settings, report, tmp_path), store, language)
    assert len(now["rows"]) == sum(len(e.problems) for e in report.events)
    assert now["rows"] == before["rows"]
    shown = {row[-1] for row in now["rows"]}
    assert any(m.startswith("Pas d") for m in shown) == (language == "fr")
    assert now["score"] == before["score"] == str(report.score)
    assert now["json"] == before["json"]
    assert len(now["rdf"]) == len(now["rows"]) and now["rdf"] == before["rdf"]
    assert now["stats"] == before["stats"]


@pytest.mark.anyio
async def test_the_source_page_answers_a_damaged_report_as_a_damaged_file(harvested):
    settings, store, _ = harvested
    path = settings.reports_dir / f"{SOURCE}.json"
    raw = path.read_text(encoding="utf-8")
    statuses = []
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        out_of_table = raw.replace('"problems": [0', '"problems": [9999', 1)
        for damaged in (raw[: len(raw) // 2], out_of_table):
            assert damaged != raw
            path.write_text(damaged, encoding="utf-8")
            answer = await http.get(f"/source/{SOURCE}", headers={"Accept": "application/json"})
            statuses.append(answer.status_code)
    assert statuses[0] == statuses[1] != 200
