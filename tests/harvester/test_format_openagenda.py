"""OpenAgenda (API v2/v3 JSON): timings become occurrences, languages are kept, unpublished and
broken events are reported by uid and field without stopping the others."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from harvester.fetch import Fetched
from harvester.formats import ParseContext, ParseError, detect_format
from harvester.formats.openagenda import parse, sniff
from harvester.pipeline import check_bytes
from harvester.sources import Source
from ontology import AFFICHE, DISCIPLINE, SCHEMA

FIXTURE = Path(__file__).parent.parent / "fixtures" / "openagenda" / "agenda-v3.json"
SAMPLE = Path("/work/shared/samples/openagenda/begles.event.json")
CONTEXT = ParseContext(source_id="oa-test")
BASE = "http://affiche.test"


def occurrences(graph: Graph, uid: int) -> list:
    prefix = f"openagenda:{uid}"
    return sorted(
        (n for n, ident in graph.subject_objects(SCHEMA.identifier)
         if (n, RDF.type, SCHEMA.Event) in graph
         and (str(ident) == prefix or str(ident).startswith(prefix + "/"))),
        key=lambda n: str(graph.value(n, SCHEMA.startDate)),
    )


def test_single_timing_event_keeps_languages_place_and_free_offer() -> None:
    parsed = parse(FIXTURE.read_bytes(), CONTEXT)
    [event] = occurrences(parsed.graph, 70010001)
    graph = parsed.graph
    assert set(graph.objects(event, SCHEMA.name)) == {
        Literal("La Nuit des lanternes", lang="fr"), Literal("The Night of Lanterns", lang="en")}
    assert graph.value(event, SCHEMA.startDate).toPython().isoformat() == "2027-07-14T21:30:00+02:00"
    assert graph.value(event, SCHEMA.eventStatus) == SCHEMA.EventScheduled
    assert Literal("", lang="fr") not in set(graph.objects(event, SCHEMA.keywords))
    place = graph.value(event, SCHEMA.location)
    address = graph.value(place, SCHEMA.address)
    assert str(graph.value(address, SCHEMA.streetAddress)) == "4 rue des Canuts"
    assert str(graph.value(address, SCHEMA.addressLocality)) == "Lyon"
    offer = graph.value(event, SCHEMA.offers)
    assert graph.value(offer, SCHEMA.price).toPython() == Decimal(0)
    assert graph.value(offer, SCHEMA.url) == URIRef("https://billets.example/lanternes")
    assert graph.value(event, SCHEMA.url) == URIRef(
        "https://openagenda.com/cour-des-tisserands/events/la-nuit-des-lanternes")
    assert str(graph.value(event, SCHEMA.typicalAgeRange)) == "6-"


def test_several_timings_become_occurrences_of_one_series_and_bad_timing_is_reported() -> None:
    parsed = parse(FIXTURE.read_bytes(), CONTEXT)
    events = occurrences(parsed.graph, 70010002)
    assert [str(parsed.graph.value(e, SCHEMA.startDate))[:10] for e in events] == [
        "2027-07-03", "2027-07-17"]
    series = {parsed.graph.value(e, SCHEMA.superEvent) for e in events}
    assert len(series) == 1
    [node] = series
    assert (node, RDF.type, SCHEMA.EventSeries) in parsed.graph
    assert all(parsed.graph.value(e, SCHEMA.eventStatus) == SCHEMA.EventCancelled for e in events)
    bad = [p for p in parsed.problems if p.where == "event uid=70010002"]
    assert [p.field for p in bad] == ["timings[1].begin"]
    assert "pas une date" in bad[0].message


def test_unpublished_and_malformed_items_are_reported_not_parsed() -> None:
    parsed = parse(FIXTURE.read_bytes(), CONTEXT)
    assert occurrences(parsed.graph, 70010003) == []
    fields = {(p.where, p.field) for p in parsed.problems}
    assert ("event uid=70010003", "state") in fields
    assert ("event 4", None) in fields


def test_whole_pipeline_publishes_with_disciplines_and_one_place() -> None:
    fetched = Fetched(content=FIXTURE.read_bytes(), location=str(FIXTURE))
    checked = check_bytes(fetched, Source(id="oa-test", name="OA"), BASE)
    assert checked.report.format == "openagenda"
    assert checked.report.summary["found"] == 3
    assert checked.report.summary["quarantined"] == 0
    graph = checked.published
    places = set(graph.subjects(RDF.type, SCHEMA.Place))
    assert len(places) == 1, "the same OpenAgenda location in two events is one place"
    disciplines = set(graph.objects(None, AFFICHE.discipline))
    assert {DISCIPLINE.theatre, DISCIPLINE.puppetry} <= disciplines


def test_v2_list_and_bare_event_are_read() -> None:
    event = json.loads(FIXTURE.read_text())["data"][0]
    for document in ({"events": [event], "total": 1}, event, [event]):
        parsed = parse(json.dumps(document).encode(), CONTEXT)
        assert len(occurrences(parsed.graph, 70010001)) == 1


def test_not_openagenda_is_a_parse_error_and_not_sniffed() -> None:
    with pytest.raises(ParseError, match="not an OpenAgenda export"):
        parse(b'{"hello": "world"}', CONTEXT)
    with pytest.raises(ParseError, match="not valid JSON"):
        parse(b'{"uid": 1, "timings": [', CONTEXT)
    assert not sniff(b'{"@context": "https://schema.org", "@type": "Event", "uid": 1, "timings": []}')
    assert sniff(FIXTURE.read_bytes())


@pytest.mark.skipif(not SAMPLE.exists(), reason="the shared samples are not here")
def test_real_begles_sample_gives_its_five_wednesdays() -> None:
    fetched = Fetched(content=SAMPLE.read_bytes(), location=str(SAMPLE),
                      content_type="application/json")
    assert detect_format(fetched).name == "openagenda"
    checked = check_bytes(fetched, Source(id="begles", name="Bègles"), BASE)
    assert checked.report.feed_problems == []
    assert checked.report.summary["published"] == 5
    starts = sorted(str(o) for o in checked.published.objects(None, SCHEMA.startDate))
    assert starts[0] == "2025-01-08T18:00:00+01:00"
    assert starts[-1] == "2025-02-26T17:00:00+01:00"
    localities = {str(o) for o in checked.published.objects(None, SCHEMA.addressLocality)}
    assert localities == {"Bègles"}
