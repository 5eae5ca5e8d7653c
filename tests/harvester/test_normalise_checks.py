"""Normalisation that reports rather than guesses: suspicious offsets, prices written as text,
venues and organisations meeting on shared identifiers; property-based tests for dates, prices
and languages."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from harvester import identity
from harvester.formats import ParseContext, get_format
from harvester.formats.csv import parse_price
from harvester.normalise import NormaliseContext, normalise, normalise_date
from ontology import SCHEMA, XSD

BASE = "http://affiche.test"
PARIS = NormaliseContext(base_url=BASE, source_id="src", timezone="Europe/Paris")


def from_jsonld(document: dict | list) -> Graph:
    return get_format("jsonld").parse(json.dumps(document).encode(), ParseContext(source_id="src")).graph


def event(**fields) -> dict:
    return {"@context": "https://schema.org", "@type": "Event", "name": "Bal de la Saint-Jean",
            "startDate": "2027-06-24T21:00:00+02:00",
            "location": {"@type": "Place", "name": "Place du Marché", "address": "Dijon"}, **fields}


# --- suspicious offsets ---------------------------------------------------------------------


def test_utc_offset_for_a_paris_summer_evening_is_a_warning_and_kept_as_written() -> None:
    result = normalise(from_jsonld(event(startDate="2027-07-14T21:00:00+00:00")), PARIS)
    [ev] = result.events
    assert str(result.graph.value(ev, SCHEMA.startDate)) == "2027-07-14T21:00:00+00:00"
    [warning] = result.warnings
    assert warning.event == ev and warning.field == "startDate"
    assert "+00:00" in warning.message and "+02:00" in warning.message


def test_the_right_offset_in_winter_and_summer_is_not_a_warning() -> None:
    document = [event(startDate="2027-01-14T20:00:00+01:00", endDate="2027-01-14T22:00:00+01:00"),
                event(name="Autre", startDate="2027-07-14T20:00:00+02:00", endDate="2027-07-14")]
    assert normalise(from_jsonld(document), PARIS).warnings == []


def test_offset_warning_reaches_the_report_with_event_and_field() -> None:
    from harvester.fetch import Fetched
    from harvester.pipeline import check_bytes
    from harvester.sources import Source

    content = json.dumps(event(startDate="2027-07-14T21:00:00Z")).encode()
    checked = check_bytes(Fetched(content=content, location="feed.jsonld"), Source(id="src", name="S"), BASE)
    assert [(p.field, "offset" in p.message) for p in checked.report.feed_problems] == [("startDate", True)]
    assert checked.report.summary["published"] == 1


# --- prices written as text -----------------------------------------------------------------


def offers_of(document: dict) -> tuple[Graph, URIRef]:
    result = normalise(from_jsonld(document), PARIS)
    return result.graph, result.graph.value(result.events[0], SCHEMA.offers)


def test_price_range_becomes_an_aggregate_offer_with_currency() -> None:
    graph, offer = offers_of(event(offers={"@type": "Offer", "price": "10 à 25 €"}))
    assert set(graph.objects(offer, RDF.type)) == {SCHEMA.AggregateOffer}
    assert graph.value(offer, SCHEMA.lowPrice) == Literal("10", datatype=XSD.decimal)
    assert graph.value(offer, SCHEMA.highPrice) == Literal("25", datatype=XSD.decimal)
    assert graph.value(offer, SCHEMA.price) is None
    assert graph.value(offer, SCHEMA.priceCurrency) == Literal("EUR")


def test_free_is_zero_and_euro_sign_currency_is_iso() -> None:
    graph, offer = offers_of(event(offers={"@type": "Offer", "price": "Gratuit", "priceCurrency": "€"}))
    assert graph.value(offer, SCHEMA.price).toPython() == Decimal(0)
    assert graph.value(offer, SCHEMA.priceCurrency) == Literal("EUR")


def test_a_price_that_is_not_one_stays_as_written_for_validation_to_report() -> None:
    graph, offer = offers_of(event(offers={"@type": "Offer", "price": "sur demande"}))
    assert graph.value(offer, SCHEMA.price) == Literal("sur demande")


# --- shared identifiers ---------------------------------------------------------------------


def venue_iri(place: dict, source: str) -> URIRef:
    context = NormaliseContext(base_url=BASE, source_id=source)
    result = normalise(from_jsonld(event(location=place)), context)
    return result.graph.value(result.events[0], SCHEMA.location), result.graph


def test_venues_sharing_a_wikidata_id_in_any_url_form_meet_on_one_iri() -> None:
    a, graph_a = venue_iri({"@type": "Place", "name": "Opéra de Dijon", "address": "Dijon",
                            "sameAs": "https://www.wikidata.org/wiki/Q3354734"}, "one")
    b, graph_b = venue_iri({"@id": "http://www.wikidata.org/entity/Q3354734", "@type": "Place",
                            "name": "Auditorium (Opéra de Dijon)", "address": "21000 Dijon"}, "two")
    assert a == b
    assert (b, SCHEMA.sameAs, URIRef("http://www.wikidata.org/entity/Q3354734")) in graph_b


def test_organisations_sharing_a_siret_or_kbo_meet_and_others_do_not() -> None:
    siret = {"@type": "PropertyValue", "propertyID": "SIRET", "value": "123 456 789 00012"}
    a, _ = venue_iri({"@type": "Place", "name": "Salle des Fêtes", "address": "Lens", "identifier": siret}, "one")
    b, _ = venue_iri({"@type": "Place", "name": "Salle des fêtes municipale", "address": "Lens",
                      "identifier": "SIRET:12345678900012"}, "two")
    c, _ = venue_iri({"@type": "Place", "name": "Salle des fêtes municipale", "address": "Lens",
                      "identifier": "SIRET:99999999900099"}, "three")
    assert a == b != c
    kbo_a, _ = venue_iri({"@type": "Place", "name": "De Kreun", "address": "Kortrijk", "vatID": "BE0412.345.678"}, "one")
    kbo_b, _ = venue_iri({"@type": "Place", "name": "Kreun vzw", "address": "Kortrijk",
                          "identifier": {"@type": "PropertyValue", "propertyID": "KBO", "value": "0412345678"}}, "two")
    assert kbo_a == kbo_b


def test_external_id_spellings() -> None:
    assert identity.external_id("https://isni.org/isni/0000000121032683") == "isni:0000000121032683"
    assert identity.external_id("http://kg.artsdata.ca/resource/K11-19") == "artsdata:K11-19"
    assert identity.external_id("0000 0001 2103 2683", "ISNI") == "isni:0000000121032683"
    assert identity.external_id("12345", "SIRET") is None
    assert identity.external_id("https://example.org/venue/1") is None
    assert identity.strongest({"isni:0000000121032683", "wikidata:Q1"}) == "wikidata:Q1"


# --- properties -----------------------------------------------------------------------------

ZONES = st.sampled_from(["Europe/Paris", "Europe/Brussels", "America/Toronto", "America/Montreal", "UTC"])


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31)), zone=ZONES)
def test_a_local_time_always_gets_the_zones_offset_and_keeps_its_wall_clock(moment, zone) -> None:
    value = normalise_date(Literal(moment.replace(microsecond=0).isoformat()), zone)
    assert value.datatype == XSD.dateTime
    parsed = datetime.fromisoformat(str(value))
    assert parsed.replace(tzinfo=None) == moment.replace(microsecond=0)
    # The written time carries no fold: in the autumn overlap (and the spring gap) it means the
    # first reading, as datetime.fromisoformat gives it.
    assert parsed.utcoffset() == moment.replace(fold=0, tzinfo=ZoneInfo(zone)).utcoffset()


@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), zone=ZONES)
def test_a_date_stays_a_date(day, zone) -> None:
    assert normalise_date(Literal(day.isoformat()), zone) == Literal(day.isoformat(), datatype=XSD.date)


@given(moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31)),
       minutes=st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_an_explicit_offset_is_never_changed(moment, minutes) -> None:
    written = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    assert str(normalise_date(Literal(written), "Europe/Paris")) == written


@given(euros=st.integers(min_value=0, max_value=99_999), cents=st.integers(min_value=0, max_value=99),
       style=st.sampled_from(["{e},{c:02d} €", "€{e}.{c:02d}", "{e},{c:02d}", "{e}.{c:02d} EUR"]))
def test_prices_as_people_write_them_read_back_exactly(euros, cents, style) -> None:
    price = parse_price(style.format(e=euros, c=cents))
    assert price is not None and price.high is None
    assert price.low == Decimal(euros) + Decimal(cents) / 100


@given(low=st.integers(min_value=0, max_value=500), span=st.integers(min_value=1, max_value=500))
def test_ranges_read_low_and_high(low, span) -> None:
    price = parse_price(f"{low} - {low + span} €")
    assert (price.low, price.high, price.currency) == (Decimal(low), Decimal(low + span), "EUR")


@given(text=st.text(min_size=1, max_size=30).filter(lambda t: t.strip()),
       language=st.sampled_from(["fr", "en", "nl", "fr-CA", "en-GB", "fr_BE", "A", "x-klingon-too-long-tag"]))
@settings(max_examples=100, deadline=None)
def test_every_name_gets_a_well_formed_language_tag(text, language) -> None:
    document = event(name={"@value": text, "@language": language})
    try:
        graph = from_jsonld(document)
    except Exception:
        return  # rdflib refuses the tag outright: nothing to normalise
    result = normalise(graph, PARIS)
    for ev in result.events:
        for name in result.graph.objects(ev, SCHEMA.name):
            assert name.language is not None
            assert all(part.isalnum() for part in name.language.split("-"))
