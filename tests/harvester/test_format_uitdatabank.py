"""UiTdatabank JSON-LD read model: the four calendar types, sub-events, prices, terms mapped to
disciplines, and unpublished or broken events reported by event and field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from harvester.fetch import Fetched
from harvester.formats import ParseContext, ParseError, detect_format
from harvester.formats.uitdatabank import parse, sniff
from harvester.pipeline import check_bytes
from harvester.sources import Source
from ontology import AFFICHE, DISCIPLINE, SCHEMA

FIXTURE = Path(__file__).parent.parent / "fixtures" / "uitdatabank" / "zoekresultaat.json"
SAMPLE = Path("/work/shared/samples/uitdatabank/readmodel-event-jsonld.json")
CONTEXT = ParseContext(source_id="udb-test", language="nl")
BASE = "http://affiche.test"
EVENT = "https://io.uitdatabank.example/event/11111111-aaaa-4bbb-8ccc-00000000000{}"


@pytest.fixture(scope="module")
def parsed():
    return parse(FIXTURE.read_bytes(), CONTEXT)


def events_named(graph: Graph, name: str) -> list:
    return sorted((n for n in graph.subjects(SCHEMA.name, Literal(name, lang="nl"))
                   if (n, RDF.type, SCHEMA.Event) in graph),
                  key=lambda n: str(graph.value(n, SCHEMA.startDate)))


def test_single_event_keeps_its_iri_dates_place_and_one_offer_per_tariff(parsed) -> None:
    graph = parsed.graph
    event = URIRef(EVENT.format(1))
    assert (event, RDF.type, SCHEMA.Event) in graph
    assert Literal("La Mer silencieuse", lang="fr") in set(graph.objects(event, SCHEMA.name))
    assert str(graph.value(event, SCHEMA.startDate)) == "2027-10-02T20:00:00+02:00"
    assert graph.value(event, SCHEMA.eventStatus) == SCHEMA.EventScheduled
    prices = sorted(graph.value(o, SCHEMA.price).toPython() for o in graph.objects(event, SCHEMA.offers))
    assert prices == [Decimal(12), Decimal("18.5")]
    place = graph.value(event, SCHEMA.location)
    address = graph.value(place, SCHEMA.address)
    assert str(graph.value(address, SCHEMA.addressLocality)) == "Gent"
    assert Literal("Theatervoorstelling", lang="nl") in set(graph.objects(event, SCHEMA.keywords))


def test_multiple_gives_one_occurrence_per_subevent_with_its_own_status(parsed) -> None:
    graph = parsed.graph
    occurrences = events_named(graph, "Zomerconcerten in het park")
    assert [str(graph.value(o, SCHEMA.startDate))[:10] for o in occurrences] == [
        "2027-07-01", "2027-07-08", "2027-07-15"]
    assert [graph.value(o, SCHEMA.eventStatus) for o in occurrences] == [
        SCHEMA.EventScheduled, SCHEMA.EventCancelled, SCHEMA.EventScheduled]
    assert {graph.value(o, SCHEMA.superEvent) for o in occurrences} == {URIRef(EVENT.format(2))}
    assert (URIRef(EVENT.format(2)), RDF.type, SCHEMA.EventSeries) in graph


def test_periodic_keeps_its_span_and_opening_hours(parsed) -> None:
    graph = parsed.graph
    event = URIRef(EVENT.format(3))
    assert str(graph.value(event, SCHEMA.endDate)) == "2027-12-15T23:59:59+01:00"
    schedule = graph.value(event, SCHEMA.eventSchedule)
    assert graph.value(schedule, SCHEMA.byDay) == SCHEMA.Wednesday
    assert str(graph.value(schedule, SCHEMA.startTime)) == "18:00"
    assert Literal("Atelier d'aquarelle", lang="fr") in set(graph.objects(event, SCHEMA.name))


def test_permanent_broken_and_deleted_events_are_reported(parsed) -> None:
    fields = {(p.where, p.field) for p in parsed.problems}
    assert ("event 11111111-aaaa-4bbb-8ccc-000000000004", "calendarType") in fields
    assert ("event 11111111-aaaa-4bbb-8ccc-000000000005", "subEvent[0].startDate") in fields
    assert ("event 11111111-aaaa-4bbb-8ccc-000000000006", "workflowStatus") in fields
    assert (URIRef(EVENT.format(6)), None, None) not in parsed.graph


def test_whole_pipeline_maps_terms_to_disciplines_and_quarantines_undated_events() -> None:
    fetched = Fetched(content=FIXTURE.read_bytes(), location=str(FIXTURE),
                      content_type="application/ld+json")
    checked = check_bytes(fetched, Source(id="udb-test", name="UiT", language="nl"), BASE)
    report = checked.report
    assert report.format == "uitdatabank"
    by_status = {}
    for event in report.events:
        by_status.setdefault(event.status, []).append(event.name)
    assert sorted(by_status["quarantined"]) == ["Kapotte datum", "Vaste collectie"]
    assert len(by_status["published"]) == 5  # single, three concerts, the course
    disciplines = set(checked.published.objects(None, AFFICHE.discipline))
    assert {DISCIPLINE.theatre, DISCIPLINE.music} <= disciplines
    same_as = set(checked.published.objects(None, SCHEMA.sameAs))
    assert URIRef(EVENT.format(1)) in same_as


def test_generic_jsonld_is_not_taken_for_uitdatabank() -> None:
    event = b'{"@context": "https://schema.org", "@type": "Event", "name": "Concert"}'
    assert not sniff(event)
    assert detect_format(Fetched(content=event, location="x.jsonld")).name == "jsonld"
    with pytest.raises(ParseError, match="not a UiTdatabank export"):
        parse(b'{"hello": 1}', CONTEXT)


@pytest.mark.skipif(not SAMPLE.exists(), reason="the shared samples are not here")
def test_real_read_model_sample() -> None:
    content = SAMPLE.read_bytes()
    fetched = Fetched(content=content, location=str(SAMPLE), content_type="application/ld+json")
    assert detect_format(fetched).name == "uitdatabank"
    draft = parse(content, CONTEXT)
    assert [(p.field, "DRAFT" in p.message) for p in draft.problems] == [("workflowStatus", True)]
    approved = json.loads(content)
    approved["workflowStatus"] = "APPROVED"
    graph = parse(json.dumps(approved).encode(), CONTEXT).graph
    occurrences = sorted(str(graph.value(o, SCHEMA.startDate))
                         for o in graph.subjects(SCHEMA.superEvent, None))
    assert occurrences == ["2015-01-26T13:25:21+01:00", "2015-01-28T13:25:21+01:00"]
    names = set(graph.objects(None, SCHEMA.name))
    assert Literal("some representative title", lang="en") in names
    assert Literal("Concert", lang="nl") in set(graph.objects(None, SCHEMA.keywords))
