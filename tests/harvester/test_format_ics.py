"""The iCalendar parser: recurrences expanded in the window, times in their own zone, one bad VEVENT
never stopping the others."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from harvester.formats import ParseContext, ParseError, Parsed
from harvester.formats.ics import FORMAT, parse, sniff
from ontology import SCHEMA

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ics"
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
# The window runs from 2027-02-28T12:00Z to 2027-04-30T12:00Z.
CONTEXT = ParseContext(source_id="test-ics", now=NOW, recurrence_days=60)
SERIES_UID = "mardis-2027@quai-des-brumes.example"
# A plain Namespace: rdflib's DefinedNamespace XSD warns when pytest inspects module attributes.
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")


def parse_fixture(name: str, context: ParseContext = CONTEXT) -> Parsed:
    return parse((FIXTURES / name).read_bytes(), context)


@pytest.fixture(scope="module")
def season() -> Parsed:
    return parse_fixture("saison.ics")


def events(graph: Graph) -> list[Node]:
    return list(graph.subjects(RDF.type, SCHEMA.Event))


def event_by_identifier(graph: Graph, identifier: str) -> Node:
    found = [node for node in graph.subjects(SCHEMA.identifier, Literal(identifier))
             if (node, RDF.type, SCHEMA.Event) in graph]
    assert len(found) == 1, f"expected one event {identifier}, found {len(found)}"
    return found[0]


def occurrence_starts(graph: Graph) -> list[str]:
    query = """
        SELECT ?start WHERE {
            ?event a schema:Event ; schema:superEvent ?series ; schema:startDate ?start .
            ?series schema:identifier ?uid .
        } ORDER BY ?start
    """
    rows = graph.query(query, initNs={"schema": SCHEMA}, initBindings={"uid": Literal(SERIES_UID)})
    return [str(row.start) for row in rows]


def test_weekly_series_is_expanded_inside_the_window_only(season: Parsed) -> None:
    starts = occurrence_starts(season.graph)
    # February Tuesdays fall before the window, May and June ones after it; 16 March is an EXDATE.
    assert [start[:10] for start in starts] == [
        "2027-03-02", "2027-03-09", "2027-03-23", "2027-03-30",
        "2027-04-06", "2027-04-13", "2027-04-20", "2027-04-27",
    ]


def test_exdate_removes_the_occurrence(season: Parsed) -> None:
    assert not any(start.startswith("2027-03-16") for start in occurrence_starts(season.graph))


def test_occurrences_carry_offsets_of_their_own_season(season: Parsed) -> None:
    winter = event_by_identifier(season.graph, f"{SERIES_UID}/2027-03-09T20:30:00+01:00")
    summer = event_by_identifier(season.graph, f"{SERIES_UID}/2027-04-13T20:30:00+02:00")
    assert season.graph.value(winter, SCHEMA.startDate) == Literal(
        "2027-03-09T20:30:00+01:00", datatype=XSD.dateTime)
    assert season.graph.value(summer, SCHEMA.startDate) == Literal(
        "2027-04-13T20:30:00+02:00", datatype=XSD.dateTime)
    assert season.graph.value(summer, SCHEMA.endDate) == Literal(
        "2027-04-13T22:00:00+02:00", datatype=XSD.dateTime)


def test_custom_vtimezone_definition_is_applied(season: Parsed) -> None:
    concert = event_by_identifier(season.graph, "ouverture-2027@salle-des-glycines.example")
    assert str(season.graph.value(concert, SCHEMA.startDate)) == "2027-07-09T20:00:00+02:00"
    assert str(season.graph.value(concert, SCHEMA.endDate)) == "2027-07-09T22:00:00+02:00"


def test_override_moves_and_renames_one_occurrence_and_keeps_its_identifier(season: Parsed) -> None:
    moved = event_by_identifier(season.graph, f"{SERIES_UID}/2027-03-23T20:30:00+01:00")
    assert str(season.graph.value(moved, SCHEMA.startDate)) == "2027-03-23T21:00:00+01:00"
    assert season.graph.value(moved, SCHEMA.name) == Literal(
        "Les Mardis du Quai — soirée spéciale printemps")


def test_cancelled_occurrence_is_kept_with_its_status(season: Parsed) -> None:
    cancelled = event_by_identifier(season.graph, f"{SERIES_UID}/2027-04-06T20:30:00+02:00")
    assert season.graph.value(cancelled, SCHEMA.eventStatus) == SCHEMA.EventCancelled
    others = set(season.graph.subjects(SCHEMA.eventStatus, SCHEMA.EventCancelled))
    assert others == {cancelled}


def test_occurrences_share_one_series_node_that_is_not_an_event(season: Parsed) -> None:
    graph = season.graph
    series = {graph.value(node, SCHEMA.superEvent) for node in events(graph)} - {None}
    assert len(series) == 1
    (node,) = series
    assert set(graph.objects(node, RDF.type)) == {SCHEMA.EventSeries}
    assert graph.value(node, SCHEMA.identifier) == Literal(SERIES_UID)
    assert graph.value(node, SCHEMA.name) == Literal("Les Mardis du Quai")


def test_single_events_outside_the_window_are_kept(season: Parsed) -> None:
    # 5 single VEVENTs plus 8 occurrences of the series.
    assert len(events(season.graph)) == 13
    event_by_identifier(season.graph, "lanternes-2027@festival-des-lanternes.example")


def test_all_day_event_has_dates_and_an_inclusive_end(season: Parsed) -> None:
    festival = event_by_identifier(season.graph, "lanternes-2027@festival-des-lanternes.example")
    assert season.graph.value(festival, SCHEMA.startDate) == Literal(
        "2027-07-01", datatype=XSD.date)
    assert season.graph.value(festival, SCHEMA.endDate) == Literal("2027-07-03", datatype=XSD.date)
    one_day = event_by_identifier(season.graph, "portes-ouvertes-2027@quai-des-brumes.example")
    assert season.graph.value(one_day, SCHEMA.startDate).toPython() == date(2027, 3, 15)
    assert season.graph.value(one_day, SCHEMA.endDate) is None


def test_floating_time_stays_without_offset_and_duration_gives_the_end(season: Parsed) -> None:
    uid = "lecture-jardin-2027@bibliotheque-des-saules.example"
    reading = event_by_identifier(season.graph, uid)
    start = season.graph.value(reading, SCHEMA.startDate)
    assert start.datatype == XSD.dateTime
    assert start.toPython() == datetime(2027, 3, 20, 15, 0)
    assert start.toPython().tzinfo is None
    assert season.graph.value(reading, SCHEMA.endDate).toPython() == datetime(2027, 3, 20, 16, 30)


def test_place_geo_organizer_categories_url_and_status(season: Parsed) -> None:
    graph = season.graph
    concert = event_by_identifier(graph, "ouverture-2027@salle-des-glycines.example")
    place = graph.value(concert, SCHEMA.location)
    assert (place, RDF.type, SCHEMA.Place) in graph
    assert graph.value(place, SCHEMA.name) == Literal("Salle des Glycines")
    assert str(graph.value(place, SCHEMA.address)).endswith("1000 Bruxelles")
    geo = graph.value(place, SCHEMA.geo)
    assert (geo, RDF.type, SCHEMA.GeoCoordinates) in graph
    latitude = graph.value(geo, SCHEMA.latitude)
    assert latitude.datatype == XSD.decimal and latitude.toPython() == Decimal("50.8467")
    assert graph.value(geo, SCHEMA.longitude).toPython() == Decimal("4.3525")
    organizer = graph.value(concert, SCHEMA.organizer)
    assert (organizer, RDF.type, SCHEMA.Organization) in graph
    assert graph.value(organizer, SCHEMA.name) == Literal("Asbl Les Glycines")
    assert graph.value(organizer, SCHEMA.email) == Literal("billetterie@salle-des-glycines.example")
    keywords = set(graph.objects(concert, SCHEMA.keywords))
    assert keywords == {Literal("Musique"), Literal("Classique")}
    assert graph.value(concert, SCHEMA.url) == URIRef(
        "https://salle-des-glycines.example/agenda/ouverture-2027")
    assert graph.value(concert, SCHEMA.eventStatus) == SCHEMA.EventScheduled


def test_text_is_plain_unless_the_feed_names_its_language(season: Parsed) -> None:
    concert = event_by_identifier(season.graph, "ouverture-2027@salle-des-glycines.example")
    assert season.graph.value(concert, SCHEMA.name).language is None
    night = event_by_identifier(season.graph, "nuit-du-conte-2027@maison-du-conte.example")
    assert season.graph.value(night, SCHEMA.name) == Literal("Storytelling night", lang="en")
    assert str(season.graph.value(night, SCHEMA.startDate)) == "2027-04-10T00:00:00+00:00"


def test_origins_name_the_uid_and_its_line(season: Parsed) -> None:
    assert set(season.origins) == set(events(season.graph))
    concert = event_by_identifier(season.graph, "ouverture-2027@salle-des-glycines.example")
    lines = (FIXTURES / "saison.ics").read_text(encoding="utf-8").splitlines()
    where = season.origins[concert]
    assert where.startswith("VEVENT UID=ouverture-2027@salle-des-glycines.example (line ")
    line_number = int(where.rsplit("line ", 1)[1].rstrip(")"))
    assert lines[line_number - 1] == "UID:ouverture-2027@salle-des-glycines.example"


def test_identifiers_are_stable_across_harvests() -> None:
    later = ParseContext(source_id="test-ics", now=datetime(2027, 3, 20, tzinfo=timezone.utc),
                         recurrence_days=60)
    first = set(parse_fixture("saison.ics").graph.objects(None, SCHEMA.identifier))
    second = set(parse_fixture("saison.ics", later).graph.objects(None, SCHEMA.identifier))
    shared = Literal(f"{SERIES_UID}/2027-04-13T20:30:00+02:00")
    assert shared in first and shared in second
    assert Literal(f"{SERIES_UID}/2027-03-02T20:30:00+01:00") in first - second


@pytest.fixture(scope="module")
def broken() -> Parsed:
    return parse_fixture("broken.ics")


def test_broken_vevent_is_reported_and_the_others_still_parse(broken: Parsed) -> None:
    names = {str(broken.graph.value(node, SCHEMA.name)) for node in events(broken.graph)}
    assert names == {
        "Le Castelet enchanté",
        "Le Castelet enchanté (2e représentation)",
        "Spectacle sans date",
        "Marionnettes géantes",
    }
    unreadable = [p for p in broken.problems if "date-illisible@marionnette.example" in p.where]
    assert len(unreadable) == 1
    assert unreadable[0].where.startswith("VEVENT UID=date-illisible@marionnette.example")
    assert unreadable[0].field == "startDate"
    assert "le 14 mars vers 15h" in unreadable[0].message


def test_unreadable_recurrence_rule_is_reported(broken: Parsed) -> None:
    (problem,) = [p for p in broken.problems if "regle-cassee" in p.where]
    assert problem.field == "eventSchedule"
    assert "Atelier du mercredi" in problem.message


def test_event_without_dtstart_is_emitted_without_start_and_without_problem(broken: Parsed) -> None:
    node = event_by_identifier(broken.graph, "sans-date@marionnette.example")
    assert broken.graph.value(node, SCHEMA.startDate) is None
    assert broken.graph.value(node, SCHEMA.name) == Literal("Spectacle sans date")
    assert not [p for p in broken.problems if "sans-date" in p.where]


def test_bad_optional_values_are_dropped_and_reported(broken: Parsed) -> None:
    node = event_by_identifier(broken.graph, "fin-illisible@marionnette.example")
    assert broken.graph.value(node, SCHEMA.startDate) is not None
    assert broken.graph.value(node, SCHEMA.endDate) is None
    assert broken.graph.value(node, SCHEMA.url) is None
    fields = {p.field for p in broken.problems if "fin-illisible" in p.where}
    assert fields == {"endDate", "url"}


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><body>Agenda</body></html>",
        b"",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:sans-fin\n",
    ],
)
def test_non_icalendar_input_is_refused(content: bytes) -> None:
    with pytest.raises(ParseError):
        parse(content, CONTEXT)


def test_parse_error_names_the_bad_line() -> None:
    content = b"BEGIN:VCALENDAR\nVERSION:2.0\nceci n'est pas une ligne iCalendar\nEND:VCALENDAR\n"
    with pytest.raises(ParseError, match="line 3"):
        parse(content, CONTEXT)


def test_windows_1252_and_bom_are_decoded() -> None:
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:cp@example\r\n"
            "SUMMARY:Fête de la Musique à Liège\r\nDTSTART:20270621T180000\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    for content in (body.encode("cp1252"), b"\xef\xbb\xbf" + body.encode("utf-8")):
        graph = parse(content, CONTEXT).graph
        assert set(graph.objects(None, SCHEMA.name)) == {Literal("Fête de la Musique à Liège")}


def test_x_wr_timezone_puts_utc_times_in_the_calendar_zone() -> None:
    content = (b"BEGIN:VCALENDAR\nVERSION:2.0\nX-WR-TIMEZONE:Europe/Paris\nBEGIN:VEVENT\n"
               b"UID:google@example\nSUMMARY:Apero-concert\nDTSTART:20270415T170000Z\n"
               b"END:VEVENT\nEND:VCALENDAR\n")
    graph = parse(content, CONTEXT).graph
    starts = {str(start) for start in graph.objects(None, SCHEMA.startDate)}
    assert starts == {"2027-04-15T19:00:00+02:00"}


def test_sniff() -> None:
    content = (FIXTURES / "saison.ics").read_bytes()
    assert sniff(content)
    assert sniff(b"\xef\xbb\xbf\r\nbegin:vcalendar\r\n")
    assert not sniff(b"id;titre;debut\n1;Concert;12/03/2027\n")
    assert not sniff(b"<html>BEGIN:VCALENDAR</html>")
    assert FORMAT.name == "ics" and "text/calendar" in FORMAT.media_types
    assert FORMAT.sniff is sniff and FORMAT.parse is parse


def test_an_end_before_the_start_is_kept_so_validation_quarantines_the_event():
    from harvester.fetch import Fetched
    from harvester.pipeline import check_bytes
    from harvester.sources import Source

    feed = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
        "UID:a-rebours@example\r\nDTSTAMP:20261101T090000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20270710T210000\r\nDTEND;TZID=Europe/Paris:20270710T190000\r\n"
        "SUMMARY:Concert à rebours\r\nLOCATION:Salle des fêtes, 1 place de la Mairie, Dinan\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    report = check_bytes(Fetched(content=feed, location="rebours.ics"),
                         Source(id="t", name="T", path=None), "http://affiche.test").report
    [event] = report.events
    assert event.status == "quarantined"
    assert any(p.severity == "violation" and "before it starts" in p.message("en") for p in event.problems)
