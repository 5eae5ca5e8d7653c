"""Every shape keeps its promise: a conforming and a failing fixture each, messages in fr and en."""

from __future__ import annotations

import pytest
from rdflib import Graph, URIRef

from ontology import EVENT_TYPES, SCHEMA, SH
from shapes import shapes_graph, validate
from shapes.compiled import Compiler, UnsupportedShape

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
    schema:image <https://ex.example/cid.jpg>, <http://affiche.test/event/e#image> ;
    schema:eventStatus schema:EventScheduled ;
    schema:eventAttendanceMode schema:OfflineEventAttendanceMode ;
    affiche:discipline disc:theatre ;
    schema:audience <http://affiche.test/event/e#audience> ;
    schema:superEvent <http://affiche.test/event/series> ;
    schema:workPerformed <http://affiche.test/work/cid> ;
    schema:location <http://affiche.test/place/p> ;
    schema:organizer <http://affiche.test/organization/o> ;
    schema:performer <http://affiche.test/person/p>, <http://affiche.test/organization/troupe>,
        <http://affiche.test/event/e#role> ;
    schema:offers <http://affiche.test/event/e#offer>, <http://affiche.test/event/e#range> .
<http://affiche.test/event/e#audience> a schema:Audience ; schema:audienceType "tout public"@fr .
<http://affiche.test/event/e#image> a schema:ImageObject ;
    schema:contentUrl <https://ex.example/cid-large.jpg> .
<http://affiche.test/event/series> a schema:EventSeries ; schema:name "Saison Corneille"@fr .
<http://affiche.test/work/cid> a schema:CreativeWork ; schema:name "Le Cid"@fr ;
    schema:author <http://affiche.test/person/corneille> .
<http://affiche.test/person/corneille> a schema:Person ; schema:name "Pierre Corneille" ;
    schema:sameAs <http://www.wikidata.org/entity/Q184226> .
<http://affiche.test/place/p> a schema:Place ; schema:name "Salle Corneille"@fr ;
    schema:sameAs <http://www.wikidata.org/entity/Q99999001> ;
    schema:amenityFeature <http://affiche.test/place/p#access> ;
    schema:geo <http://affiche.test/place/p#geo> ;
    schema:address <http://affiche.test/place/p#address> .
<http://affiche.test/place/p#access> a schema:LocationFeatureSpecification ;
    schema:name "Accès fauteuil"@fr .
<http://affiche.test/place/p#geo> a schema:GeoCoordinates ;
    schema:latitude "49.4431"^^xsd:decimal ; schema:longitude "1.0993"^^xsd:decimal .
<http://affiche.test/place/p#address> a schema:PostalAddress ; schema:streetAddress "2 rue du Vieux-Palais" ;
    schema:postalCode "76000" ; schema:addressLocality "Rouen" ; schema:addressCountry "FR" .
<http://affiche.test/organization/o> a schema:Organization ; schema:name "Théâtre"@fr ;
    schema:sameAs <http://www.wikidata.org/entity/Q99999002> .
<http://affiche.test/organization/troupe> a schema:PerformingGroup ; schema:name "Troupe du Vieux-Marché" ;
    schema:url <https://troupe.example/> ; schema:sameAs <https://isni.org/isni/0000000099990003> .
<http://affiche.test/person/p> a schema:Person ; schema:name "Chimène"@fr ;
    schema:sameAs <http://www.wikidata.org/entity/Q99999004> .
<http://affiche.test/event/e#role> a schema:PerformanceRole ; schema:roleName "mise en scène"@fr ;
    schema:performer <http://affiche.test/person/p> .
<http://affiche.test/event/e#offer> a schema:Offer ; schema:price "12.50"^^xsd:decimal ;
    schema:priceCurrency "EUR" ; schema:url <https://billetterie.example/cid> .
<http://affiche.test/event/e#range> a schema:AggregateOffer ; schema:lowPrice "8"^^xsd:decimal ;
    schema:highPrice "25"^^xsd:decimal ; schema:priceCurrency "EUR" ; schema:url <https://billetterie.example/cid> .
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
    "EventStartSingle": f'INSERT DATA {{ {E_} schema:startDate "2027-03-13T20:30:00+01:00"^^xsd:dateTime }}',
    "EventStatusValue": f"DELETE {{ {E_} schema:eventStatus ?x }} INSERT {{ {E_} schema:eventStatus schema:EventMaybe }} WHERE {{ {E_} schema:eventStatus ?x }}",
    "EventAttendanceModeValue": f'DELETE {{ {E_} schema:eventAttendanceMode ?x }} INSERT {{ {E_} schema:eventAttendanceMode "sur place" }} WHERE {{ {E_} schema:eventAttendanceMode ?x }}',
    "EventImageLink": f'INSERT DATA {{ {E_} schema:image "affiche.jpg" }}',
    "EventDisciplineGiven": f"DELETE WHERE {{ {E_} affiche:discipline ?x }}",
    "EventAudience": f"DELETE WHERE {{ {E_} schema:audience ?x }}",
    "SeriesName": "DELETE WHERE { <http://affiche.test/event/series> schema:name ?x }",
    "PlaceGeo": "DELETE WHERE { <http://affiche.test/place/p> schema:geo ?x }",
    "PlaceAccessibility": "DELETE WHERE { <http://affiche.test/place/p> schema:amenityFeature ?x }",
    "PlaceSameAs": "DELETE WHERE { <http://affiche.test/place/p> schema:sameAs ?x }",
    "GeoLatitude": "DELETE WHERE { ?g schema:latitude ?x }",
    "GeoLongitude": "DELETE WHERE { ?g schema:longitude ?x }",
    "GeoLatitudeRange": 'DELETE { ?g schema:latitude ?x } INSERT { ?g schema:latitude "149.4431"^^xsd:decimal } WHERE { ?g schema:latitude ?x }',
    "GeoLongitudeRange": 'DELETE { ?g schema:longitude ?x } INSERT { ?g schema:longitude "-181"^^xsd:decimal } WHERE { ?g schema:longitude ?x }',
    "AddressStreet": "DELETE WHERE { ?a schema:streetAddress ?x }",
    "AddressPostalCode": "DELETE WHERE { ?a schema:postalCode ?x }",
    "OrganizationSameAs": "DELETE WHERE { <http://affiche.test/organization/o> schema:sameAs ?x }",
    "PerformingGroupUrl": "DELETE WHERE { <http://affiche.test/organization/troupe> schema:url ?x }",
    "PersonSameAs": "DELETE WHERE { <http://affiche.test/person/p> schema:sameAs ?x }",
    "WorkName": "DELETE WHERE { <http://affiche.test/work/cid> schema:name ?x }",
    "WorkAuthor": "DELETE WHERE { <http://affiche.test/work/cid> schema:author ?x }",
    "RoleShape": "DELETE WHERE { <http://affiche.test/event/e#role> schema:performer ?x }",
    "RoleName": "DELETE WHERE { <http://affiche.test/event/e#role> schema:roleName ?x }",
    "ImageObjectUrl": "DELETE WHERE { <http://affiche.test/event/e#image> schema:contentUrl ?x }",
    "OfferCurrencyGiven": "DELETE WHERE { <http://affiche.test/event/e#offer> schema:priceCurrency ?x }",
    "OfferUrl": "DELETE WHERE { <http://affiche.test/event/e#offer> schema:url ?x }",
    "AggregateOfferLowPrice": "DELETE WHERE { ?o schema:lowPrice ?x }",
    "AggregateOfferLowNumber": 'DELETE { ?o schema:lowPrice ?x } INSERT { ?o schema:lowPrice "huit" } WHERE { ?o schema:lowPrice ?x }',
    "AggregateOfferHighNumber": 'DELETE { ?o schema:highPrice ?x } INSERT { ?o schema:highPrice "vingt-cinq" } WHERE { ?o schema:highPrice ?x }',
    "AggregateOfferOrder": 'DELETE { ?o schema:lowPrice ?x } INSERT { ?o schema:lowPrice "30"^^xsd:decimal } WHERE { ?o schema:lowPrice ?x }',
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


def test_both_paths_agree_on_a_feed_of_many_broken_events():
    """The compiled queries against pyshacl, the reference: every failing fixture, one feed."""
    graph = complete()
    events = [E]
    for index, shape in enumerate(sorted(FAILING)):
        copy = complete()
        copy.update(PREFIXES + FAILING[shape])
        def own(term, index=index):  # each copy gets its own nodes, so deletions show
            return URIRef(f"{term}-{index}") if str(term).startswith("http://affiche.test/") else term

        for s, p, o in copy:
            graph.add((own(s), p, own(o)))
        events.append(own(E))
    compiled = validate(graph, events)
    reference = validate(graph, events, engine="pyshacl")
    assert {e: r.problems for e, r in compiled.items()} == {e: r.problems for e, r in reference.items()}
    assert sum(not r.publishable for r in compiled.values()) > 20
    assert all(compiled[own_event].problems for own_event in events[1:])  # every copy fails


EVENT_SUBTYPES = sorted(str(t)[len("http://schema.org/"):] for t in EVENT_TYPES - {SCHEMA.EventSeries})


@pytest.mark.parametrize("subtype", EVENT_SUBTYPES)
def test_every_event_subtype_is_held_to_the_event_shapes(subtype):
    graph = complete()
    graph.update(PREFIXES + f"DELETE {{ {E_} a ?t }} INSERT {{ {E_} a schema:{subtype} }} WHERE {{ {E_} a ?t }}")
    assert validate(graph, [E])[E].problems == []
    graph.update(PREFIXES + FAILING["EventStartDate"])
    assert not validate(graph, [E])[E].publishable


def test_a_shape_the_compiler_cannot_translate_is_refused():
    shapes = Graph().parse(data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> . @prefix schema: <http://schema.org/> .
        <urn:s> a sh:NodeShape ; sh:targetClass schema:Event ;
            sh:property [ sh:path schema:name ; sh:uniqueLang true ] .""", format="turtle")
    with pytest.raises(UnsupportedShape):
        Compiler(shapes, Graph()).compile()


def test_a_feed_oxigraph_cannot_read_is_validated_by_the_reference_path():
    graph = complete()
    graph.add((E, SCHEMA.url, URIRef("http://theatre.example/a b>c")))  # rdflib keeps it, Oxigraph not
    graph.update(PREFIXES + FAILING["EventStartDate"])
    problems = validate(graph, [E])[E].problems
    assert problems == validate(graph, [E], engine="pyshacl")[E].problems
    assert [p.field for p in problems if p.severity == "violation"] == ["startDate"]


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError):
        validate(complete(), [E], engine="guesswork")
