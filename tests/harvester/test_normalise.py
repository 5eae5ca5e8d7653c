"""Normalisation: one namespace, dates with offsets, language tags, stable IRIs, provenance."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, strategies as st
from rdflib import RDF, Graph, Literal, URIRef

from harvester.formats import ParseContext, get_format
from harvester.normalise import NormaliseContext, normalise, normalise_date, normalise_decimal
from ontology import AFFICHE, DISCIPLINE, PROV, SCHEMA, XSD

BASE = "http://affiche.test"
CONTEXT = NormaliseContext(base_url=BASE, source_id="src", language="fr", timezone="Europe/Paris",
                           harvested_at=datetime(2026, 11, 29, 12, tzinfo=timezone.utc))


def from_jsonld(document: dict) -> Graph:
    content = json.dumps(document).encode()
    return get_format("jsonld").parse(content, ParseContext(source_id="src")).graph


EVENT = {
    "@context": "https://schema.org",
    "@type": "TheaterEvent",
    "@id": "https://organiser.example/events/42",
    "name": "Le Cid",
    "startDate": "2027-07-14T20:30",
    "endDate": "2027-01-14T22:00:00",
    "eventStatus": "EventPostponed",
    "url": "https://organiser.example/cid",
    "location": {"@type": "Place", "name": "Salle Corneille",
                 "address": {"@type": "PostalAddress", "addressLocality": "Rouen"}},
    "offers": {"@type": "Offer", "price": "12,50", "priceCurrency": "EUR"},
}


def test_https_schema_is_rewritten_and_events_get_minted_iris():
    result = normalise(from_jsonld(EVENT), CONTEXT)
    [event] = result.events
    assert str(event).startswith(f"{BASE}/event/src-")
    assert (event, SCHEMA.name, Literal("Le Cid", lang="fr")) in result.graph
    assert not any(str(p).startswith("https://schema.org/") for p in result.graph.predicates())
    assert (event, SCHEMA.sameAs, URIRef("https://organiser.example/events/42")) in result.graph
    assert (event, SCHEMA.url, URIRef("https://organiser.example/cid")) in result.graph
    assert (event, SCHEMA.eventStatus, SCHEMA.EventPostponed) in result.graph


def test_times_without_offset_take_the_source_zone_with_daylight_saving():
    result = normalise(from_jsonld(EVENT), CONTEXT)
    [event] = result.events
    assert result.graph.value(event, SCHEMA.startDate) == Literal("2027-07-14T20:30:00+02:00", datatype=XSD.dateTime)
    assert result.graph.value(event, SCHEMA.endDate) == Literal("2027-01-14T22:00:00+01:00", datatype=XSD.dateTime)


def test_places_and_nested_nodes_get_stable_iris():
    first = normalise(from_jsonld(EVENT), CONTEXT)
    second = normalise(from_jsonld(EVENT), CONTEXT)
    assert set(first.graph) == set(second.graph)  # blank nodes were all replaced, identically
    [event] = first.events
    place = first.graph.value(event, SCHEMA.location)
    assert str(place).startswith(f"{BASE}/place/salle-corneille-")
    offer = first.graph.value(event, SCHEMA.offers)
    assert str(offer).startswith(str(event) + "#offers-")
    assert first.graph.value(offer, SCHEMA.price) == Literal("12.50", datatype=XSD.decimal)


def test_the_same_venue_from_two_sources_meets_on_one_iri():
    other = NormaliseContext(base_url=BASE, source_id="other")
    place_a = normalise(from_jsonld(EVENT), CONTEXT)
    place_b = normalise(from_jsonld({**EVENT, "@id": "https://else.example/1"}), other)
    get = lambda r: r.graph.value(r.events[0], SCHEMA.location)  # noqa: E731
    assert get(place_a) == get(place_b)
    assert place_a.events != place_b.events


def test_disciplines_and_provenance():
    result = normalise(from_jsonld(EVENT), CONTEXT)
    [event] = result.events
    assert (event, AFFICHE.discipline, DISCIPLINE.theatre) in result.graph
    assert (event, PROV.wasDerivedFrom, URIRef(f"{BASE}/source/src")) in result.graph
    assert result.graph.value(event, AFFICHE.harvestedAt) == Literal("2026-11-29T12:00:00+00:00", datatype=XSD.dateTime)


def test_existing_language_tags_are_kept():
    graph = from_jsonld({**EVENT, "name": {"@value": "The Cid", "@language": "en"}})
    result = normalise(graph, CONTEXT)
    assert result.graph.value(result.events[0], SCHEMA.name) == Literal("The Cid", lang="en")


def test_unreadable_dates_are_kept_as_written_for_validation_to_report():
    assert normalise_date(Literal("le 32 mars"), "Europe/Paris") == Literal("le 32 mars")
    assert normalise_date(Literal("2027-02-30"), "Europe/Paris") == Literal("2027-02-30")
    assert normalise_date(Literal("2027-03-12"), "Europe/Paris") == Literal("2027-03-12", datatype=XSD.date)
    assert normalise_date(Literal("2027-03-12T10:00Z"), "Europe/Paris") == Literal(
        "2027-03-12T10:00:00+00:00", datatype=XSD.dateTime)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
       st.sampled_from(["Europe/Paris", "America/Toronto", "Europe/Brussels", "UTC"]))
def test_every_naive_datetime_gets_an_offset_and_keeps_its_wall_time(moment, zone):
    result = normalise_date(Literal(moment.isoformat()), zone)
    assert result.datatype == XSD.dateTime
    parsed = datetime.fromisoformat(str(result))
    assert parsed.tzinfo is not None
    assert parsed.replace(tzinfo=None) == moment.replace(microsecond=moment.microsecond)


@given(st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False))
def test_prices_written_the_french_way_become_decimals(price):
    written = f"{price:.2f}".replace(".", ",") + " €"
    assert normalise_decimal(Literal(written)).toPython() == price


def test_free_words_are_zero():
    for word in ("gratuit", "Free", "entrée libre"):
        assert normalise_decimal(Literal(word)).toPython() == 0


def test_script_and_file_urls_are_never_published():
    graph = from_jsonld({**EVENT, "url": "javascript:alert(1)", "image": "data:image/png;base64,AAAA",
                         "sameAs": ["file:///etc/passwd", "https://www.wikidata.org/wiki/Q1"]})
    result = normalise(graph, CONTEXT)
    [event] = result.events
    published = {str(o) for p in (SCHEMA.url, SCHEMA.image, SCHEMA.sameAs)
                 for o in result.graph.objects(event, p)}
    assert "https://www.wikidata.org/wiki/Q1" in published
    assert not any(v.startswith(("javascript:", "data:", "file:")) for v in published)
    assert any("not a web address" in note for note in result.dropped)


def test_statements_with_unusable_iris_are_left_out_or_named_by_us_and_reported():
    """A predicate or type that is no IRI is left out; a datatype that is none is kept as text; a
    node named by a broken IRI gets one of ours. Each is reported, none reaches the store."""
    graph = from_jsonld(EVENT)
    event = URIRef(EVENT["@id"])
    broken_node = URIRef("not an iri/venue")
    graph.add((event, URIRef("no scheme/prop"), Literal("x")))
    graph.add((event, RDF.type, URIRef("bad type")))
    graph.add((event, SCHEMA.description, Literal("text", datatype=URIRef("not a datatype"))))
    graph.add((event, SCHEMA.performer, broken_node))
    graph.add((broken_node, SCHEMA.name, Literal("Troupe")))
    result = normalise(graph, CONTEXT)
    [minted] = result.events
    assert sum("left out a statement with an invalid IRI" in d for d in result.dropped) == 2
    assert any("'not a datatype' is not an IRI; kept as text" in d for d in result.dropped)
    assert any("'not an iri/venue' is not a valid absolute IRI" in d for d in result.dropped)
    assert (minted, SCHEMA.description, Literal("text", lang="fr")) in result.graph
    [performer] = result.graph.objects(minted, SCHEMA.performer)
    assert str(performer).startswith(f"{BASE}/")
    assert (performer, SCHEMA.name, Literal("Troupe", lang="fr")) in result.graph
    terms = {t for triple in result.graph for t in triple if isinstance(t, URIRef)}
    assert not any(" " in str(t) or "://" not in str(t) for t in terms)
