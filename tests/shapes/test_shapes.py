"""Every shape keeps its promise: a conforming and a failing fixture each, messages in fr and en."""

from __future__ import annotations

import pytest
from rdflib import Graph, URIRef

from ontology import SH
from shapes import shapes_graph, validate

SHAPES = "https://affiche.example/shapes#"
E = URIRef("http://affiche.test/event/e")

COMPLETE = """
@prefix schema: <http://schema.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix affiche: <https://affiche.example/ns#> .
@prefix disc: <https://affiche.example/ns/discipline/> .
<http://affiche.test/event/e> a schema:TheaterEvent ;
    schema:name "Le Cid"@fr ; schema:description "Tragi-comédie."@fr ;
    schema:startDate "2027-03-12T20:30:00+01:00"^^xsd:dateTime ;
    schema:endDate "2027-03-12T22:30:00+01:00"^^xsd:dateTime ;
    schema:image <https://ex.example/cid.jpg> ;
    schema:eventStatus schema:EventScheduled ;
    schema:eventAttendanceMode schema:OfflineEventAttendanceMode ;
    affiche:discipline disc:theatre ;
    schema:location <http://affiche.test/place/p> ;
    schema:organizer <http://affiche.test/organization/o> ;
    schema:performer <http://affiche.test/person/p> ;
    schema:offers <http://affiche.test/event/e#offer> .
<http://affiche.test/place/p> a schema:Place ; schema:name "Salle Corneille"@fr ;
    schema:address <http://affiche.test/place/p#address> .
<http://affiche.test/place/p#address> a schema:PostalAddress ;
    schema:addressLocality "Rouen" ; schema:addressCountry "FR" .
<http://affiche.test/organization/o> a schema:Organization ; schema:name "Théâtre"@fr .
<http://affiche.test/person/p> a schema:Person ; schema:name "Chimène"@fr .
<http://affiche.test/event/e#offer> a schema:Offer ; schema:price "12.50"^^xsd:decimal ;
    schema:priceCurrency "EUR" .
"""

PREFIXES = """PREFIX schema: <http://schema.org/>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX affiche: <https://affiche.example/ns#>
"""
E_ = "<http://affiche.test/event/e>"

# shape -> a SPARQL Update turning the complete event into one that fails exactly that shape
FAILING = {
    "EventName": f"DELETE WHERE {{ {E_} schema:name ?x }}",
    "EventStartDate": f"DELETE WHERE {{ {E_} schema:startDate ?x }}",
    "EventStartDatatype": f'DELETE {{ {E_} schema:startDate ?x }} INSERT {{ {E_} schema:startDate "le 32 mars" }} WHERE {{ {E_} schema:startDate ?x }}',
    "EventEndDatatype": f'DELETE {{ {E_} schema:endDate ?x }} INSERT {{ {E_} schema:endDate "bientôt" }} WHERE {{ {E_} schema:endDate ?x }}',
    "EventLocation": f"DELETE WHERE {{ {E_} schema:location ?x }}",
    "EventEndAfterStart": f'DELETE {{ {E_} schema:endDate ?x }} INSERT {{ {E_} schema:endDate "2027-03-12T19:00:00+01:00"^^xsd:dateTime }} WHERE {{ {E_} schema:endDate ?x }}',
    "EventDescription": f"DELETE WHERE {{ {E_} schema:description ?x }}",
    "EventEndDate": f"DELETE WHERE {{ {E_} schema:endDate ?x }}",
    "EventImage": f"DELETE WHERE {{ {E_} schema:image ?x }}",
    "EventOffers": f"DELETE WHERE {{ {E_} schema:offers ?x }}",
    "EventOrganizer": f"DELETE WHERE {{ {E_} schema:organizer ?x }}",
    "EventPerformer": f"DELETE WHERE {{ {E_} schema:performer ?x }}",
    "EventStatus": f"DELETE WHERE {{ {E_} schema:eventStatus ?x }}",
    "EventAttendanceMode": f"DELETE WHERE {{ {E_} schema:eventAttendanceMode ?x }}",
    "EventDiscipline": f"INSERT DATA {{ {E_} affiche:discipline <https://affiche.example/ns/discipline/knitting> }}",
    "PlaceShape": "DELETE WHERE { <http://affiche.test/place/p> a schema:Place }",
    "PlaceName": "DELETE WHERE { <http://affiche.test/place/p> schema:name ?x }",
    "PlaceAddress": "DELETE WHERE { <http://affiche.test/place/p> schema:address ?x }",
    "AddressLocality": "DELETE WHERE { ?a schema:addressLocality ?x }",
    "AddressCountry": "DELETE WHERE { ?a schema:addressCountry ?x }",
    "VirtualLocationUrl": f"INSERT DATA {{ {E_} schema:location <http://affiche.test/event/e#online> . <http://affiche.test/event/e#online> a schema:VirtualLocation }}",
    "OrganizationName": "DELETE WHERE { <http://affiche.test/organization/o> schema:name ?x }",
    "PersonName": "DELETE WHERE { <http://affiche.test/person/p> schema:name ?x }",
    "OfferPriceNumber": 'DELETE { ?o schema:price ?x } INSERT { ?o schema:price "douze euros" } WHERE { ?o schema:price ?x }',
    "OfferPriceNonNegative": 'DELETE { ?o schema:price ?x } INSERT { ?o schema:price "-5"^^xsd:decimal } WHERE { ?o schema:price ?x }',
    "OfferCurrency": 'DELETE { ?o schema:priceCurrency ?x } INSERT { ?o schema:priceCurrency "euros" } WHERE { ?o schema:priceCurrency ?x }',
}


def complete() -> Graph:
    return Graph().parse(data=COMPLETE, format="turtle")


def shapes_with_messages() -> set[str]:
    graph = shapes_graph()
    return {str(s)[len(SHAPES):] for s in graph.subjects(SH.message, None)
            if isinstance(s, URIRef) and str(s).startswith(SHAPES)}




def test_every_shape_has_a_failing_fixture_and_bilingual_messages():
    assert shapes_with_messages() == set(FAILING)
    graph = shapes_graph()
    for name in FAILING:
        languages = {m.language for m in graph.objects(URIRef(SHAPES + name), SH.message)}
        assert languages == {"fr", "en"}, name


def test_the_complete_event_conforms_to_every_shape():
    assert validate(complete(), [E])[E].problems == []


@pytest.mark.parametrize("shape", sorted(FAILING))
def test_each_failing_fixture_fails_its_shape(shape):
    graph = complete()
    graph.update(PREFIXES + FAILING[shape])
    report = validate(graph, [E])[E]
    expected = {str(m) for m in shapes_graph().objects(URIRef(SHAPES + shape), SH.message)}
    found = {message for p in report.problems for message in p.messages.values()}
    assert expected <= found, f"{shape}: got {[p.field for p in report.problems]}"


def test_violations_keep_the_event_out_and_warnings_do_not():
    graph = complete()
    graph.update(PREFIXES + FAILING["EventImage"])
    assert validate(graph, [E])[E].publishable
    graph.update(PREFIXES + FAILING["EventStartDate"])
    assert not validate(graph, [E])[E].publishable


def test_a_problem_on_a_nested_node_names_the_path_from_the_event():
    graph = complete()
    graph.update(PREFIXES + FAILING["AddressLocality"])
    [problem] = validate(graph, [E])[E].problems
    assert problem.field == "address.addressLocality"
    assert problem.severity == "warning"
    assert problem.message("fr").startswith("L'adresse n'a pas de ville")


@pytest.mark.parametrize("end, publishable", [
    ('"2027-03-13"^^xsd:date', True),   # a day-only end after a timed start
    ('"2027-03-12"^^xsd:date', True),   # the same day
    ('"2027-03-11"^^xsd:date', False),
    ('"2027-03-12T19:45:00Z"^^xsd:dateTime', True),   # 20:45 in Paris, after the 20:30 start
    ('"2027-03-12T19:00:00Z"^^xsd:dateTime', False),  # 20:00 in Paris, before it
])
def test_end_before_start_compares_dates_and_times_sensibly(end, publishable):
    graph = complete()
    graph.update(PREFIXES + f"DELETE {{ {E_} schema:endDate ?x }} INSERT {{ {E_} schema:endDate {end} }} "
                 f"WHERE {{ {E_} schema:endDate ?x }}")
    assert validate(graph, [E])[E].publishable is publishable
