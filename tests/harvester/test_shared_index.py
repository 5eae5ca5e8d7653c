"""The feed read once and shared (issue #9): the normalised triples, their one index, each event's
walk, the change log's spellings give what the straightforward ways give.

Each fast path is compared with the plain one it replaced (written out here as the reference),
on invented feeds with the corners that matter: events linking to each other, a quarantined and
a withheld event sharing a venue with published ones, values the store respells.
"""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest
from rdflib import RDF, BNode, Graph, Literal, URIRef

from harvester.changes import canonical_descriptions
from harvester.fetch import Fetched, FetchPolicy
from harvester.formats import ParseContext, get_format
from harvester.normalise import NormaliseContext, Triples, normalise
from harvester.pipeline import (
    HarvestTask, check, check_bytes, event_descriptions, node_index, prepare, reach, reach_nodes,
    source_description, withhold,
)
from harvester.sources import Source
from ontology import AFFICHE, SCHEMA, XSD
from shapes import validate

BASE = "http://affiche.test"
E = "http://affiche.test/event/"


# --- references: the plain ways, as they were --------------------------------------------------


def reference_reach(index, roots, depth=4, stop=frozenset()):
    out = []
    roots = list(roots)
    seen = set(stop - set(roots))
    frontier = roots
    for _ in range(depth + 1):
        next_frontier = []
        for node in frontier:
            if node in seen:
                continue
            seen.add(node)
            for p, o in index.get(node, ()):
                out.append((node, p, o))
                if not isinstance(o, Literal) and o not in seen and p != RDF.type:
                    next_frontier.append(o)
        frontier = next_frontier
    return out


def reference_canonical(descriptions):
    """One named graph per description in one store, each dumped."""
    store = ox.Store()
    for iri, triples in descriptions.items():
        for s, p, o in triples:
            if p != AFFICHE.harvestedAt:
                store.add(ox.Quad(_ox(s), _ox(p), _ox(o), ox.NamedNode(iri)))
    out = {}
    for iri in descriptions:
        text = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.NamedNode(iri)).decode()
        out[iri] = "".join(sorted(line + "\n" for line in text.splitlines() if line))
    return out


def _ox(term):
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if term.language:
        return ox.Literal(str(term), language=term.language)
    return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype or XSD.string)))


# --- an invented feed --------------------------------------------------------------------------

VENUE = {"@type": "PerformingArtsTheater", "name": "Théâtre de la Vieille Forge",
         "address": {"@type": "PostalAddress", "addressLocality": "Dinant", "addressCountry": "BE"}}


def event(number: int, **extra) -> dict:
    return {"@type": "TheaterEvent", "@id": f"https://vieille-forge.example/spectacles/{number}",
            "name": {"@value": f"Spectacle {number}", "@language": "fr"},
            "startDate": f"2027-05-{number:02d}T20:00:00+02:00", "location": VENUE,
            "offers": {"@type": "Offer", "price": "12.50", "priceCurrency": "EUR"}, **extra}


FEED = {"@context": "https://schema.org", "@graph": [
    event(1, subEvent={"@id": "https://vieille-forge.example/spectacles/2"}),
    event(2, superEvent={"@id": "https://vieille-forge.example/spectacles/1"},
          description={"@value": "Une \"création\" —\nen deux actes \\ ", "@language": "fr-BE"}),
    {**event(3), "startDate": "bientôt"},  # quarantined: no date the shapes accept
    event(4, performer={"@type": "Person", "name": "Lise Marchand"}),
    event(5, offers={"@type": "Offer", "price": "12.5", "priceCurrency": "EUR"}),
]}


def parsed_feed() -> Graph:
    return get_format("jsonld").parse(json.dumps(FEED).encode(), ParseContext(source_id="forge")).graph


@pytest.fixture(scope="module")
def checked():
    source = Source(id="forge", name="La Vieille Forge", url=None, format="jsonld", language="fr",
                    timezone="Europe/Brussels")
    return check_bytes(Fetched(content=json.dumps(FEED).encode(), location="forge.jsonld"),
                       source, BASE, "jsonld")


def published_iris(checked) -> list[URIRef]:
    return [URIRef(e.iri) for e in checked.report.events if e.status == "published"]


def test_the_feed_has_the_corners_the_comparisons_need(checked):
    statuses = sorted(e.status for e in checked.report.events)
    assert statuses == ["published"] * 4 + ["quarantined"]
    events = set(URIRef(e.iri) for e in checked.report.events)
    linked = {o for s, p, o in checked.triples if p in (SCHEMA.subEvent, SCHEMA.superEvent)}
    assert linked and linked <= events  # events that link to each other


def test_the_published_graph_is_what_the_published_events_reach_together(checked):
    every = frozenset(URIRef(e.iri) for e in checked.report.events)
    together = reference_reach(checked.index, published_iris(checked), stop=every)
    assert sorted(checked.triples) == sorted(set(together))
    assert len(checked.triples) == len(set(checked.triples))  # each triple once
    quarantined = next(e.iri for e in checked.report.events if e.status == "quarantined")
    assert set(checked.quarantined[quarantined]) == set(
        reference_reach(checked.index, [URIRef(quarantined)], stop=every))
    assert URIRef(quarantined) not in {s for s, _, _ in checked.triples}


def test_each_description_read_from_the_feed_index_is_the_one_from_the_published_graph(checked):
    fast = event_descriptions(checked.triples, checked.report, checked.index, checked.feed_events,
                              checked.described)
    plain = event_descriptions(checked.triples, checked.report)
    assert sorted(fast) == sorted(plain) == sorted(str(e) for e in published_iris(checked))
    for iri in plain:
        assert sorted(fast[iri]) == sorted(plain[iri]), iri
    assert canonical_descriptions(fast) == canonical_descriptions(plain)


def test_a_withheld_event_stays_out_of_the_descriptions_read_from_the_feed_index(checked):
    first = str(published_iris(checked)[0])  # linked to from the second (superEvent)
    kept = withhold(checked, frozenset({first}))
    fast = event_descriptions(kept.triples, kept.report, kept.index, kept.feed_events, kept.described)
    plain = event_descriptions(kept.triples, kept.report)
    assert first not in fast and sorted(fast) == sorted(plain)
    for iri in plain:
        assert sorted(fast[iri]) == sorted(plain[iri])
        assert URIRef(first) not in {s for s, _, _ in fast[iri]}


def test_reach_nodes_follows_links_to_the_depth_and_stops_at_other_events():
    chain = [URIRef(f"{BASE}/n/{i}") for i in range(7)]
    other = URIRef(f"{E}other")
    graph = [(chain[i], SCHEMA.about, chain[i + 1]) for i in range(6)]
    graph += [(chain[0], SCHEMA.subEvent, other), (other, SCHEMA.name, Literal("Autre")),
              (chain[0], RDF.type, SCHEMA.Event), (SCHEMA.Event, SCHEMA.name, Literal("type")),
              (chain[1], SCHEMA.name, Literal("Lieu", lang="fr"))]
    index = node_index(graph)
    stop = frozenset({chain[0], other})
    assert reach_nodes(index, [chain[0]], stop=stop) == chain[:5]  # depth 4, no type, no event
    assert sorted(reach(index, [chain[0]], stop=stop)) == sorted(
        reference_reach(index, [chain[0]], stop=stop))
    # an event among the roots is described even though it is in the stop
    assert reach_nodes(index, [chain[0], other], stop=stop)[:2] == [chain[0], other]
    assert reach_nodes(index, [URIRef(f"{E}absent")]) == [URIRef(f"{E}absent")]
    assert reach(index, [URIRef(f"{E}absent")]) == []


def test_change_log_spellings_are_the_stores(checked):
    descriptions = event_descriptions(checked.triples, checked.report)
    assert canonical_descriptions(descriptions) == reference_canonical(descriptions)
    event = URIRef(f"{E}x")
    odd = {str(event): [
        (event, SCHEMA.price, Literal("12.50", datatype=XSD.decimal)),
        (event, SCHEMA.price, Literal("12.5", datatype=XSD.decimal)),  # the same value: one line
        (event, SCHEMA.name, Literal('Un "titre"\nsur deux lignes \\ é\t', lang="fr-BE")),
        (event, SCHEMA.startDate, Literal("2027-05-01T20:00:00.000+02:00", datatype=XSD.dateTime)),
        (event, SCHEMA.about, BNode("sujet")),
        (event, SCHEMA.alternateName, Literal("texte", datatype=XSD.string)),
        (event, AFFICHE.harvestedAt, Literal("2026-11-29T12:00:00+00:00", datatype=XSD.dateTime)),
    ], f"{E}only-harvest-time": [
        (URIRef(f"{E}only-harvest-time"), AFFICHE.harvestedAt,
         Literal("2026-11-29T12:00:00+00:00", datatype=XSD.dateTime)),
    ], f"{E}empty": []}
    spelled = canonical_descriptions(odd)
    assert spelled == reference_canonical(odd)
    assert spelled[f"{E}only-harvest-time"] == spelled[f"{E}empty"] == ""
    lines = spelled[str(event)].splitlines()
    assert len(lines) == 5 and '"12.5"^^<http://www.w3.org/2001/XMLSchema#decimal>' in lines[3]
    assert "@fr-be ." in spelled[str(event)] and "harvestedAt" not in spelled[str(event)]


def test_a_term_the_store_refuses_fails_the_change_log_as_it_always_did():
    event = URIRef(f"{E}x")
    bad = {str(event): [(event, SCHEMA.name, Literal("x", lang="A"))]}
    with pytest.raises(ValueError):
        reference_canonical(bad)
    with pytest.raises(ValueError):
        canonical_descriptions(bad)


def test_validation_reads_the_triples_as_it_reads_a_graph():
    normalised = normalise(parsed_feed(), NormaliseContext(base_url=BASE, source_id="forge"))
    from_triples = validate(normalised.triples, normalised.events)
    from_graph = validate(normalised.graph, normalised.events)
    assert {e: r.problems for e, r in from_triples.items()} == {
        e: r.problems for e, r in from_graph.items()}
    fields = {p.field for r in from_triples.values() for p in r.problems}
    assert any("." in f for f in fields)  # problems on nodes the events reach: attributed to them
    assert any(not r.publishable for r in from_triples.values())


def test_normalise_reads_a_list_of_triples_as_it_reads_the_graph():
    parsed = parsed_feed()
    context = NormaliseContext(base_url=BASE, source_id="forge")
    from_graph, from_list = normalise(parsed, context), normalise(list(parsed), context)
    assert set(from_graph.triples) == set(from_list.triples)
    assert from_graph.events == from_list.events
    assert set(from_graph.graph) == set(from_graph.triples)
    assert len(from_graph.graph) == len(from_graph.triples)
    assert dict(from_graph.graph.namespaces())["schema"] == URIRef(str(SCHEMA))


def test_triples_keep_each_triple_once_in_the_order_added():
    a, b = URIRef(f"{E}a"), URIRef(f"{E}b")
    triples = Triples()
    triples.add(a, SCHEMA.name, Literal("Un"))
    triples.add(b, SCHEMA.name, Literal("Deux"))
    triples.add(a, SCHEMA.name, Literal("Un"))
    triples.add(a, SCHEMA.price, Literal("10"))
    assert list(triples) == [(a, SCHEMA.name, Literal("Un")), (a, SCHEMA.price, Literal("10")),
                             (b, SCHEMA.name, Literal("Deux"))]
    triples.set(a, SCHEMA.name, Literal("Une"))
    triples.remove(a, SCHEMA.price, Literal("10"))
    triples.remove(a, SCHEMA.price, Literal("absent"))  # nothing to remove: nothing happens
    triples.remove(URIRef(f"{E}absent"), SCHEMA.price, Literal("10"))
    assert list(triples) == [(a, SCHEMA.name, Literal("Une")), (b, SCHEMA.name, Literal("Deux"))]
    assert len(triples) == 2 and triples.value(a, SCHEMA.price) is None
    assert triples.index() == {a: [(SCHEMA.name, Literal("Une"))], b: [(SCHEMA.name, Literal("Deux"))]}


def test_prepare_writes_the_change_log_and_the_named_graph_as_the_plain_ways(tmp_path):
    path = tmp_path / "forge.jsonld"
    path.write_text(json.dumps(FEED), encoding="utf-8")
    source = Source(id="forge", name="La Vieille Forge", path=path, format="jsonld",
                    timezone="Europe/Brussels")
    prepared = prepare(HarvestTask(source), BASE, FetchPolicy())
    plain = check(source.location, source, BASE, "jsonld")
    assert prepared.descriptions == reference_canonical(event_descriptions(plain.triples, plain.report))
    assert len(prepared.descriptions) == 4
    written = ox.Store()
    written.load(prepared.published.data, ox.RdfFormat.N_TRIPLES)
    expected = ox.Store()
    expected.extend(ox.Quad(_ox(s), _ox(p), _ox(o)) for s, p, o in
                    plain.triples + source_description(source, BASE, plain.report.started_at))
    assert set(written) == set(expected) and len(written) == prepared.published.triples
    [quarantined] = prepared.quarantined.values()
    assert set(Graph().parse(data=quarantined, format="turtle")) == set(next(iter(plain.quarantined.values())))


@pytest.mark.parametrize("content", [json.dumps(FEED), "{ pas du JSON"])
def test_prepare_pauses_the_cycle_collector_and_gives_it_back(tmp_path, monkeypatch, content):
    """Paused while the feed is read (its terms are no cycles), on again afterwards, even when
    the feed cannot be read; left off when it was off."""
    import gc

    import harvester.pipeline as pipeline

    seen = []
    real_check = pipeline.check

    def spying_check(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_check(*args, **kwargs)

    monkeypatch.setattr(pipeline, "check", spying_check)
    path = tmp_path / "forge.jsonld"
    path.write_text(content, encoding="utf-8")
    source = Source(id="forge", name="La Vieille Forge", path=path, format="jsonld")
    assert gc.isenabled()
    prepared = prepare(HarvestTask(source), BASE, FetchPolicy())
    assert seen == [False] and gc.isenabled()
    assert (prepared.report.error is None) == content.startswith('{"')
    gc.disable()
    try:
        prepare(HarvestTask(source), BASE, FetchPolicy())
        assert not gc.isenabled()
    finally:
        gc.enable()
