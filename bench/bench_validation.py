"""Validation speed: pyshacl on the whole graph (the naive baseline) against Affiche's path.

    .venv/bin/python bench/bench_validation.py [--events 20000] [--reference-events N]

Builds N synthetic normalised events (shared venues, offers, performers; a few per cent broken in
known ways), validates them (a) with pyshacl in one call over the whole graph and (b) with
`shapes.validate` (the shapes compiled into SPARQL over an in-memory Oxigraph store), prints events
per second for both and their ratio, and checks that both find the same problems for every event.
(c) is (b) given the triples as a harvest gives them (the normaliser's `Triples`, read in one pass)
rather than an rdflib graph.
The figures are only compared within one run, on one machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rdflib import RDF, Graph, Literal, URIRef  # noqa: E402

from ontology import AFFICHE, DISCIPLINE, SCHEMA, SH, XSD  # noqa: E402
from harvester.normalise import Triples  # noqa: E402
from shapes import _ontology_graph, shapes_graph, validate  # noqa: E402
from shapes import reference as pyshacl_path  # noqa: E402

BASE = "http://bench.affiche.test"
TYPES = [SCHEMA.TheaterEvent, SCHEMA.DanceEvent, SCHEMA.MusicEvent, SCHEMA.Event]
TOWNS = [("Lyon", "FR"), ("Liège", "BE"), ("Québec", "CA"), ("Nantes", "FR"), ("Namur", "BE")]


def synthetic_feed(count: int) -> tuple[Graph, list[URIRef]]:
    """A normalised feed of `count` events; every 37th lacks a name, every 53rd ends before it
    starts, every 71st has a price that is not a number, every 89th a venue off the globe."""
    graph = Graph()
    events = []
    venues = max(count // 40, 1)
    for v in range(venues):
        place = URIRef(f"{BASE}/place/salle-{v}")
        address = URIRef(f"{BASE}/place/salle-{v}#address")
        geo = URIRef(f"{BASE}/place/salle-{v}#geo")
        town, country = TOWNS[v % len(TOWNS)]
        graph.add((place, RDF.type, SCHEMA.Place))
        graph.add((place, SCHEMA.name, Literal(f"Salle {v}", lang="fr")))
        graph.add((place, SCHEMA.address, address))
        graph.add((address, RDF.type, SCHEMA.PostalAddress))
        graph.add((address, SCHEMA.streetAddress, Literal(f"{v} rue des Arts")))
        graph.add((address, SCHEMA.addressLocality, Literal(town)))
        graph.add((address, SCHEMA.addressCountry, Literal(country)))
        graph.add((place, SCHEMA.geo, geo))
        graph.add((geo, RDF.type, SCHEMA.GeoCoordinates))
        latitude = "145.2" if v % 89 == 0 else f"{45 + v % 5}.{v % 1000:03d}"
        graph.add((geo, SCHEMA.latitude, Literal(latitude, datatype=XSD.decimal)))
        graph.add((geo, SCHEMA.longitude, Literal(f"{v % 7}.5", datatype=XSD.decimal)))
    for i in range(count):
        event = URIRef(f"{BASE}/event/bench-{i}")
        events.append(event)
        day = 1 + i % 28
        graph.add((event, RDF.type, TYPES[i % len(TYPES)]))
        if i % 37:
            graph.add((event, SCHEMA.name, Literal(f"Spectacle n° {i}", lang="fr")))
        if i % 3:
            graph.add((event, SCHEMA.description, Literal(f"Une soirée, la {i}e.", lang="fr")))
        graph.add((event, SCHEMA.startDate,
                   Literal(f"2027-03-{day:02d}T20:30:00+01:00", datatype=XSD.dateTime)))
        end_hour = "19" if i % 53 == 0 else "22"
        graph.add((event, SCHEMA.endDate,
                   Literal(f"2027-03-{day:02d}T{end_hour}:30:00+01:00", datatype=XSD.dateTime)))
        graph.add((event, SCHEMA.location, URIRef(f"{BASE}/place/salle-{i % venues}")))
        graph.add((event, SCHEMA.eventStatus, SCHEMA.EventScheduled))
        graph.add((event, SCHEMA.image, URIRef(f"https://img.example/{i}.jpg")))
        graph.add((event, AFFICHE.discipline, DISCIPLINE.theatre))
        performer = URIRef(f"{BASE}/person/artiste-{i % 300}")
        graph.add((event, SCHEMA.performer, performer))
        graph.add((performer, RDF.type, SCHEMA.Person))
        graph.add((performer, SCHEMA.name, Literal(f"Artiste {i % 300}")))
        offer = URIRef(f"{event}#offer")
        graph.add((event, SCHEMA.offers, offer))
        graph.add((offer, RDF.type, SCHEMA.Offer))
        price = Literal("douze") if i % 71 == 0 else Literal(f"{10 + i % 20}.00", datatype=XSD.decimal)
        graph.add((offer, SCHEMA.price, price))
        graph.add((offer, SCHEMA.priceCurrency, Literal("EUR")))
    return graph, events


def core_shapes() -> Graph:
    """The shapes without their sh:sparql constraints: what pyshacl does without re-parsing."""
    core = Graph()
    core += shapes_graph()
    for holder, constraint in list(core.subject_objects(SH.sparql)):
        core.remove((holder, SH.sparql, constraint))
    return core


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reference-events", type=int, default=None,
                        help="run pyshacl on a feed of this many events instead (it re-parses each "
                             "SPARQL constraint per focus node: 20,000 events take about an hour)")
    args = parser.parse_args()
    graph, events = synthetic_feed(args.events)
    print(f"{args.events} synthetic events, {len(graph)} triples")
    compiled, compiled_s = timed(validate, graph, events)
    triples = Triples()  # what a harvest validates: the normaliser's triples, not an rdflib graph
    for s, p, o in graph:
        triples.add(s, p, o)
    from_triples, triples_s = timed(validate, triples, events)
    if {e: r.problems for e, r in from_triples.items()} != {e: r.problems for e, r in compiled.items()}:
        print("MISMATCH: the harvest's triples and the graph give different problems")
        return 1
    reference_count = args.reference_events or args.events
    if reference_count != args.events:
        graph, events = synthetic_feed(reference_count)
        compiled = validate(graph, events)
    reference, reference_s = timed(validate, graph, events, engine="pyshacl")
    compiled_rate, reference_rate = args.events / compiled_s, reference_count / reference_s
    print(f"(a) pyshacl, whole graph in one call   : {reference_rate:10.0f} events/s "
          f"({reference_count} events in {reference_s:.2f} s)")
    print(f"(b) Affiche (compiled SPARQL, Oxigraph): {compiled_rate:10.0f} events/s "
          f"({args.events} events in {compiled_s:.2f} s)")
    print(f"ratio (b)/(a): {compiled_rate / reference_rate:.1f}x")
    print(f"(c) Affiche, from the harvest's triples (harvester.normalise.Triples): "
          f"{args.events / triples_s:10.0f} events/s ({args.events} events in {triples_s:.2f} s; "
          f"same problems as (b)); (c)/(b) = {compiled_s / triples_s:.1f}x")
    _, core_s = timed(pyshacl_path.run, graph, core_shapes(), _ontology_graph())
    core_rate = reference_count / core_s
    print(f"(a') pyshacl without the SPARQL-based shapes (not the same checks; it re-parses each "
          f"SPARQL query per focus node): {core_rate:.0f} events/s, (b)/(a') = "
          f"{compiled_rate / core_rate:.1f}x")
    quarantined = sum(not r.publishable for r in compiled.values())
    problems = sum(len(r.problems) for r in compiled.values())
    print(f"compared on {reference_count} events: {quarantined} with a Violation, "
          f"{problems} problems in all")
    differing = [e for e in events if compiled[e].problems != reference[e].problems]
    if differing:
        print(f"MISMATCH: {len(differing)} events differ, e.g. {differing[0]}")
        return 1
    print("both paths found the same problems for every event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
