"""The CSV parser: French and English spreadsheets, their encodings and ways of writing dates and
prices, and bad cells reported by line and field without losing the row."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from harvester.formats import ParseContext, ParseError, Parsed
from harvester.formats.csv import FORMAT, parse, parse_price, parse_when, sniff
from ontology import SCHEMA

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csv"
CONTEXT = ParseContext(source_id="test-csv")
# A plain Namespace: rdflib's DefinedNamespace XSD warns when pytest inspects module attributes.
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
PLUS_ONE = timezone(timedelta(hours=1))


def date_time(lexical: str) -> Literal:
    return Literal(lexical, datatype=XSD.dateTime)


def parse_fixture(name: str) -> Parsed:
    return parse((FIXTURES / name).read_bytes(), CONTEXT)


def events(graph: Graph) -> list[Node]:
    return list(graph.subjects(RDF.type, SCHEMA.Event))


def event_named(graph: Graph, name: str) -> Node:
    found = [node for node in events(graph) if str(graph.value(node, SCHEMA.name)) == name]
    assert len(found) == 1, f"expected one event named {name!r}, found {len(found)}"
    return found[0]


def path_value(graph: Graph, node: Node, *predicates: URIRef) -> Node | None:
    for predicate in predicates:
        node = graph.value(node, predicate)
        if node is None:
            return None
    return node


@pytest.fixture(scope="module")
def french() -> Parsed:
    return parse_fixture("programme-fr-cp1252.csv")


@pytest.fixture(scope="module")
def english() -> Parsed:
    return parse_fixture("programme-en-bom.csv")


def test_french_semicolon_windows_1252_rows_become_events(french: Parsed) -> None:
    names = {str(french.graph.value(node, SCHEMA.name)) for node in events(french.graph)}
    assert names == {
        "Les Fourberies imaginaires", "Journée portes ouvertes", "Bal folk de printemps"}


def test_french_dates_and_end_time_alone(french: Parsed) -> None:
    graph = french.graph
    play = event_named(graph, "Les Fourberies imaginaires")
    assert graph.value(play, SCHEMA.startDate) == date_time("2027-03-12T20:30:00")
    assert graph.value(play, SCHEMA.endDate) == date_time("2027-03-12T22:30:00")
    open_day = event_named(graph, "Journée portes ouvertes")
    start = graph.value(open_day, SCHEMA.startDate)
    assert start.datatype == XSD.date and start.toPython() == date(2027, 3, 15)


def test_french_price_with_comma_and_euro_sign(french: Parsed) -> None:
    graph = french.graph
    play = event_named(graph, "Les Fourberies imaginaires")
    offer = graph.value(play, SCHEMA.offers)
    assert (offer, RDF.type, SCHEMA.Offer) in graph
    price = graph.value(offer, SCHEMA.price)
    assert price.datatype == XSD.decimal and price.toPython() == Decimal("12.50")
    assert graph.value(offer, SCHEMA.priceCurrency) == Literal("EUR")
    assert graph.value(offer, SCHEMA.url) == URIRef(
        "https://billetterie.quai-des-brumes.example/fourberies")


def test_free_event(french: Parsed) -> None:
    graph = french.graph
    open_day = event_named(graph, "Journée portes ouvertes")
    offer = graph.value(open_day, SCHEMA.offers)
    assert graph.value(offer, SCHEMA.price).toPython() == Decimal(0)
    assert graph.value(open_day, SCHEMA.isAccessibleForFree) == Literal(True)


def test_price_range_becomes_an_aggregate_offer(french: Parsed) -> None:
    graph = french.graph
    ball = event_named(graph, "Bal folk de printemps")
    offer = graph.value(ball, SCHEMA.offers)
    assert (offer, RDF.type, SCHEMA.AggregateOffer) in graph
    assert graph.value(offer, SCHEMA.lowPrice).toPython() == Decimal(10)
    assert graph.value(offer, SCHEMA.highPrice).toPython() == Decimal(25)
    assert graph.value(ball, SCHEMA.eventStatus) == SCHEMA.EventCancelled


def test_place_address_geo_and_agents(french: Parsed) -> None:
    graph = french.graph
    play = event_named(graph, "Les Fourberies imaginaires")
    place = graph.value(play, SCHEMA.location)
    assert (place, RDF.type, SCHEMA.Place) in graph
    assert graph.value(place, SCHEMA.name) == Literal("Théâtre du Quai des Brumes")
    address = graph.value(place, SCHEMA.address)
    assert (address, RDF.type, SCHEMA.PostalAddress) in graph
    assert graph.value(address, SCHEMA.streetAddress) == Literal("4 quai des Tilleuls")
    assert graph.value(address, SCHEMA.postalCode) == Literal("44000")
    assert graph.value(address, SCHEMA.addressLocality) == Literal("Nantes")
    assert graph.value(address, SCHEMA.addressCountry) == Literal("FR")
    geo = graph.value(place, SCHEMA.geo)
    assert graph.value(geo, SCHEMA.latitude).toPython() == Decimal("47.2125")
    assert graph.value(geo, SCHEMA.longitude).toPython() == Decimal("-1.5536")
    organizer = path_value(graph, play, SCHEMA.organizer, SCHEMA.name)
    assert organizer == Literal("Théâtre du Quai des Brumes")
    performers = {str(graph.value(p, SCHEMA.name)) for p in graph.objects(play, SCHEMA.performer)}
    assert performers == {"Compagnie du Hérisson", "Troupe des Saules"}
    assert all((p, RDF.type, SCHEMA.PerformingGroup) in graph
               for p in graph.objects(play, SCHEMA.performer))
    assert graph.value(play, SCHEMA.keywords) == Literal("Théâtre")
    assert graph.value(play, SCHEMA.eventStatus) == SCHEMA.EventScheduled
    assert graph.value(play, SCHEMA.identifier) == Literal("QDB-2027-014")
    assert graph.value(play, SCHEMA.url) == URIRef(
        "https://quai-des-brumes.example/saison/fourberies")


def test_origins_are_physical_lines_and_unknown_columns_are_reported_once(french: Parsed) -> None:
    graph = french.graph
    # The first row's description spans two lines, and line 5 is an empty row.
    assert french.origins[event_named(graph, "Les Fourberies imaginaires")] == "line 2"
    assert french.origins[event_named(graph, "Journée portes ouvertes")] == "line 4"
    assert french.origins[event_named(graph, "Bal folk de printemps")] == "line 6"
    header_problems = [p for p in french.problems if p.where == "header"]
    assert len(header_problems) == 1 and "Remarques internes" in header_problems[0].message
    assert french.problems == header_problems


def test_english_comma_utf8_bom(english: Parsed) -> None:
    graph = english.graph
    assert {str(graph.value(n, SCHEMA.identifier)) for n in events(graph)} == {
        "mtl-042", "bxl-007", "bxl-008"}
    assert english.problems == []
    jazz = event_named(graph, "Jazz aux Glycines")
    assert graph.value(jazz, SCHEMA.startDate) == date_time("2027-03-12T20:30:00")
    assert path_value(graph, jazz, SCHEMA.offers, SCHEMA.price).toPython() == Decimal("12.50")
    assert graph.value(jazz, SCHEMA.eventStatus) == SCHEMA.EventPostponed


def test_offset_currency_column_and_row_language(english: Parsed) -> None:
    graph = english.graph
    tale = event_named(graph, "Nuit du conte boréal")
    assert graph.value(tale, SCHEMA.name).language == "fr-CA"
    start = graph.value(tale, SCHEMA.startDate).toPython()
    assert start == datetime(2027, 6, 20, 19, 30, tzinfo=timezone(timedelta(hours=-4)))
    assert start.utcoffset() == timedelta(hours=-4)
    offer = graph.value(tale, SCHEMA.offers)
    assert graph.value(offer, SCHEMA.price).toPython() == Decimal(25)
    assert graph.value(offer, SCHEMA.priceCurrency) == Literal("CAD")
    performers = {graph.value(p, SCHEMA.name) for p in graph.objects(tale, SCHEMA.performer)}
    assert performers == {
        Literal("Les Voix du Fleuve", lang="fr-CA"), Literal("Quatuor Boréal", lang="fr-CA")}
    cinema = event_named(graph, "Open-air cinema: The Imaginary Harbour")
    assert graph.value(cinema, SCHEMA.name).language == "en"
    assert graph.value(cinema, SCHEMA.isAccessibleForFree) == Literal(True)
    assert graph.value(cinema, SCHEMA.image) == URIRef(
        "https://cinema-des-glycines.example/poster.jpg")
    jazz = event_named(graph, "Jazz aux Glycines")
    assert graph.value(jazz, SCHEMA.name).language is None


@pytest.fixture(scope="module")
def bad_rows() -> Parsed:
    return parse_fixture("lignes-fautives.csv")


def test_bad_date_is_reported_with_line_and_field_and_the_row_is_kept(bad_rows: Parsed) -> None:
    graph = bad_rows.graph
    assert len(events(graph)) == 4
    shadows = event_named(graph, "Ombres chinoises")
    assert graph.value(shadows, SCHEMA.startDate) is None
    assert bad_rows.origins[shadows] == "line 3"
    (problem,) = [p for p in bad_rows.problems if p.where == "line 3"]
    assert problem.field == "startDate"
    assert "le 31 février" in problem.message
    good = event_named(graph, "Le Castelet enchanté (reprise)")
    assert graph.value(good, SCHEMA.startDate).toPython() == datetime(2027, 3, 13, 15, 0)


def test_each_bad_cell_of_a_row_is_reported(bad_rows: Parsed) -> None:
    problems = {p.field: p.message for p in bad_rows.problems if p.where == "line 4"}
    assert set(problems) == {"startDate", "price", "url"}
    assert "30/02/2027" in problems["startDate"]
    assert "'abc'" in problems["price"]
    giant = event_named(bad_rows.graph, "Marionnettes géantes")
    assert bad_rows.graph.value(giant, SCHEMA.offers) is None
    assert bad_rows.graph.value(giant, SCHEMA.url) is None


def test_missing_required_columns_are_named() -> None:
    content = "titre;lieu;prix\nConcert;Salle des Glycines;10\n".encode()
    with pytest.raises(ParseError) as raised:
        parse(content, CONTEXT)
    message = str(raised.value)
    assert "start" in message and "date_debut" in message
    assert "required column(s) start;" in message


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"  \r\n\r\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        bytes(range(128, 256)) * 4,
    ],
)
def test_empty_or_garbage_input_is_refused(content: bytes) -> None:
    with pytest.raises(ParseError):
        parse(content, CONTEXT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-12T20:30", datetime(2027, 3, 12, 20, 30)),
        ("2027-03-12 20:30", datetime(2027, 3, 12, 20, 30)),
        ("2027-03-12T20:30+01:00", datetime(2027, 3, 12, 20, 30, tzinfo=PLUS_ONE)),
        ("2027-03-12", date(2027, 3, 12)),
        ("12/03/2027 20h30", datetime(2027, 3, 12, 20, 30)),
        ("12/03/2027 20:30", datetime(2027, 3, 12, 20, 30)),
        ("12/03/2027 20h", datetime(2027, 3, 12, 20, 0)),
        ("12/03/2027", date(2027, 3, 12)),
        ("12.03.2027", date(2027, 3, 12)),
        ("31/02/2027", None),
        ("12/03/2027 25h00", None),
        ("mardi prochain", None),
    ],
)
def test_parse_when(text: str, expected: date | None) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize(
    ("text", "low", "high", "currency"),
    [
        ("12,50 €", "12.50", None, "EUR"),
        ("12.50", "12.50", None, None),
        ("€12.50", "12.50", None, "EUR"),
        ("1 200,00 €", "1200.00", None, "EUR"),
        ("10-25", "10", "25", None),
        ("de 10 à 25 €", "10", "25", "EUR"),
        ("Gratuit", "0", None, None),
        ("free", "0", None, None),
        ("0", "0", None, None),
    ],
)
def test_parse_price(text: str, low: str, high: str | None, currency: str | None) -> None:
    price = parse_price(text)
    assert price is not None
    assert price.low == Decimal(low)
    assert price.high == (Decimal(high) if high else None)
    assert price.currency == currency


@pytest.mark.parametrize("text", ["abc", "25-10", "sur place", "12,50,30 €x"])
def test_parse_price_refuses_what_is_not_a_price(text: str) -> None:
    assert parse_price(text) is None


def test_dollar_without_currency_column_is_reported() -> None:
    content = "name,start,price\nJazz au Vieux-Port,2027-06-20 19:30,25 $\n".encode()
    parsed = parse(content, CONTEXT)
    offer = parsed.graph.value(events(parsed.graph)[0], SCHEMA.offers)
    assert parsed.graph.value(offer, SCHEMA.price).toPython() == Decimal(25)
    assert parsed.graph.value(offer, SCHEMA.priceCurrency) is None
    assert [(p.where, p.field) for p in parsed.problems] == [("line 2", "priceCurrency")]


def test_tab_separated_headers_with_mixed_spelling() -> None:
    content = "NOM\tDate_Début\tInterprète\nRécital\t2027-05-01T18:00\tDuo Aube\n".encode()
    parsed = parse(content, CONTEXT)
    (event,) = events(parsed.graph)
    assert parsed.graph.value(event, SCHEMA.name) == Literal("Récital")
    assert path_value(parsed.graph, event, SCHEMA.performer, SCHEMA.name) == Literal("Duo Aube")


def test_end_time_alone_after_midnight_is_on_the_next_day() -> None:
    content = "titre;début;fin\nBal folk;02/04/2027 21h00;1h30\n".encode()
    parsed = parse(content, CONTEXT)
    (event,) = events(parsed.graph)
    assert parsed.graph.value(event, SCHEMA.endDate) == date_time("2027-04-03T01:30:00")


def test_sniff() -> None:
    assert sniff((FIXTURES / "programme-fr-cp1252.csv").read_bytes())
    assert sniff((FIXTURES / "programme-en-bom.csv").read_bytes())
    assert not sniff(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert not sniff(b'{"@context": "https://schema.org", "name": "Concert"}')
    assert not sniff(b"alpha;beta;gamma\n1;2;3\n")
    assert FORMAT.name == "csv" and "text/csv" in FORMAT.media_types
    assert FORMAT.sniff is sniff and FORMAT.parse is parse
