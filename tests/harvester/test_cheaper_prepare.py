"""The worker's `prepare` made cheaper (issue #9): parsers fill `FeedTriples` rather than an
rdflib graph, label blank nodes from a counter, name each namespace term once, skip rdflib's casts
for strings; normalise reads the parser's triples as held and checks each distinct IRI once;
validation spells each term object once. Each is compared with the plain way it replaced (written
out here as the reference), on invented feeds, and fed the inputs that break it.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from rdflib import RDF, BNode, Graph, Literal, URIRef

from harvester.fetch import FetchPolicy
from harvester.formats import (
    SCHEMA_TERMS, FeedTriples, ParseContext, ParseError, Parsed, SameTerms, canonical_iri,
    enforce_caps, get_format, new_blank,
)
from harvester.formats._events import EVENT_NODE_TYPES, event_nodes
from harvester.normalise import (
    _KNOWN, NormaliseContext, _entity_key, _needs_rewrite, _needs_rewrite_terms, _read_interned,
    normalise,
)
from harvester import identity
from ontology import SCHEMA, SH, XSD
from shapes import compiled

BASE = "http://affiche.test"
SCHEMA_HTTPS = "https://schema.org/"


# --- references: the plain ways, as they were --------------------------------------------------


def reference_graph(triples) -> Graph:
    """What parsers filled before: rdflib's SimpleMemory graph."""
    graph = Graph(store="SimpleMemory")
    for triple in triples:
        graph.add(triple)
    return graph


def reference_read(graph) -> list:
    """normalise's reading before: every triple, interned one by one."""
    nodes = dict(_KNOWN)
    intern = nodes.setdefault
    return [(intern(s, s), intern(p, p), o if type(o) is Literal else intern(o, o))
            for s, p, o in iter(graph)]


def reference_ntriples(triples) -> bytes:
    """Validation's N-Triples before: a cache keyed by the terms themselves."""
    cache = {}
    lines = []
    for triple in triples:
        parts = []
        for term in triple:
            if term not in cache:
                if isinstance(term, URIRef):
                    cache[term] = f"<{term}>"
                elif isinstance(term, BNode):
                    cache[term] = f"_:b{term}"
                elif term.language:
                    cache[term] = f'"{compiled._escape(str(term))}"@{term.language}'
                elif term.datatype:
                    cache[term] = f'"{compiled._escape(str(term))}"^^<{term.datatype}>'
                else:
                    cache[term] = f'"{compiled._escape(str(term))}"'
            parts.append(cache[term])
        lines.append(f"{parts[0]} {parts[1]} {parts[2]} .\n")
    return "".join(lines).encode("utf-8")


# --- invented feeds ---------------------------------------------------------------------------


def _triples() -> list:
    """Statements in an order a parser makes them: subjects and properties interleaved, a
    statement repeated, equal but distinct IRIs and literals, blank nodes."""
    salle, cie = BNode("salle"), BNode("cie")
    first, second = URIRef("https://theatre-des-tilleuls.example/e/1"), BNode("second")
    return [
        (first, RDF.type, SCHEMA.TheaterEvent),
        (first, SCHEMA.name, Literal("Les Nuits de Namur", lang="fr")),
        (second, RDF.type, SCHEMA.Event),
        (first, SCHEMA.location, salle),
        (salle, SCHEMA.name, Literal("Salle des Carmes")),
        (second, SCHEMA.name, Literal("Winter in Gand", lang="en")),
        (first, URIRef(str(SCHEMA.name)), Literal("Les Nuits de Namur", lang="fr")),  # again
        (first, SCHEMA.name, Literal("Nights in Namur", lang="en")),
        (second, SCHEMA.location, salle),
        (second, SCHEMA.organizer, cie),
        (cie, SCHEMA.name, Literal("Compagnie du Grand Vent")),
        (first, SCHEMA.startDate, Literal("2027-03-05T20:00:00", datatype=XSD.dateTime)),
        (salle, RDF.type, SCHEMA.Place),
        (second, URIRef(SCHEMA_HTTPS + "startDate"), Literal("2027-03-06")),
    ]


def _csv_feed() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["id", "titre", "debut", "lieu", "ville", "prix", "organisateur"])
    writer.writerow(["t-1", "La Traversée de Liège", "12/03/2027 20h30", "Grange du Port", "Liège",
                     "10 à 25 €", "Compagnie des Tréteaux"])
    writer.writerow(["t-2", "Chroniques de Québec", "13/03/2027 19h00", "Salle Bellevue", "Québec",
                     "gratuit", "Théâtre de l'Érable"])
    writer.writerow(["t-3", "", "14/03/2027 21h00", "Grange du Port", "Liège", "12", ""])
    return out.getvalue().encode("utf-8")


def _jsonld_feed() -> bytes:
    return json.dumps({"@context": "https://schema.org", "@graph": [
        {"@type": "TheaterEvent", "identifier": f"tl-{i}",
         "name": {"@value": f"Le Bal ({i})", "@language": "fr"},
         "startDate": f"2027-04-0{i}T20:00:00", "location": {
             "@type": "Place", "name": "Théâtre de la Lumière",
             "address": {"@type": "PostalAddress", "addressLocality": "Nantes"}},
         "offers": {"@type": "Offer", "price": "12", "priceCurrency": "EUR"}}
        for i in range(1, 5)]}).encode("utf-8")


# --- FeedTriples and Parsed ---------------------------------------------------------------------


def test_feed_triples_hold_and_give_what_an_rdflib_graph_did() -> None:
    triples = FeedTriples()
    for triple in _triples():
        triples.add(triple)
    reference = reference_graph(_triples())
    assert list(triples) == list(reference)  # same statements, same order, each once
    assert len(triples) == len(reference) == len(_triples()) - 1
    assert event_nodes(triples) == event_nodes(reference)
    assert len(event_nodes(triples)) == 2


def test_add_all_is_add_one_by_one() -> None:
    one_by_one, at_once = FeedTriples(), FeedTriples()
    for triple in _triples():
        one_by_one.add(triple)
    at_once.add_all(_triples()[:5])
    at_once.add_all(_triples()[5:])
    assert list(at_once) == list(one_by_one)


def test_parsed_graph_is_made_from_the_triples_once() -> None:
    parsed = Parsed()
    parsed.triples.add_all(_triples())
    parsed.triples.bind("schema", SCHEMA)
    graph = parsed.graph
    assert isinstance(graph, Graph) and graph is parsed.graph
    assert set(graph) == set(reference_graph(_triples()))
    before = Graph(store="SimpleMemory")  # a parser's graph, as it was
    before.bind("schema", SCHEMA)
    assert set(graph.namespaces()) == set(before.namespaces())
    own = Graph()
    assert Parsed(graph=own).graph is own and Parsed(graph=own).triples is own


@pytest.mark.parametrize("name", ["csv", "jsonld"])
def test_parsers_fill_feed_triples_and_the_harvest_reads_them(name) -> None:
    content = _csv_feed() if name == "csv" else _jsonld_feed()
    parsed = get_format(name).parse(content, ParseContext(source_id="tilleuls"))
    assert isinstance(parsed.triples, FeedTriples)
    assert list(parsed.triples) == list(parsed.graph)
    context = NormaliseContext(base_url=BASE, source_id="tilleuls")
    fast = normalise(parsed.triples, context, parsed.origins)
    plain = normalise(parsed.graph, context, parsed.origins)  # the rdflib graph, as before
    assert list(fast.triples) == list(plain.triples)
    assert fast.events == plain.events and len(fast.events) == (3 if name == "csv" else 4)


def test_caps_count_feed_triples_and_their_events() -> None:
    parsed = get_format("csv").parse(_csv_feed(), ParseContext(source_id="tilleuls"))
    enforce_caps(parsed, "feed.csv", FetchPolicy())  # within the caps: nothing raised
    with pytest.raises(ParseError, match=f"{len(parsed.graph)} triples, over the cap of 10"):
        enforce_caps(parsed, "feed.csv", FetchPolicy(max_triples=10))
    with pytest.raises(ParseError, match="3 events, over the cap of 2"):
        enforce_caps(parsed, "feed.csv", FetchPolicy(max_events=2))


# --- blank nodes and namespace terms ------------------------------------------------------------


def test_new_blank_nodes_are_all_distinct_and_unlike_rdflibs() -> None:
    made = [new_blank() for _ in range(5000)]
    rdflib_made = {BNode() for _ in range(5000)}
    assert len(set(made)) == 5000
    assert not set(made) & rdflib_made
    assert all(isinstance(node, BNode) for node in made)


def test_same_terms_give_each_term_once_and_equal_to_the_namespace() -> None:
    terms = SameTerms(SCHEMA)
    assert terms.name == SCHEMA.name and terms.name is terms.name is terms["name"]
    assert SCHEMA.name is not SCHEMA.name  # rdflib's: a new IRI at every read
    assert str(terms) == str(SCHEMA)
    with pytest.raises(AttributeError):
        terms.__wrapped__  # noqa: B018 (dunder look-ups, as copy and pickle make, are refused)


@pytest.mark.parametrize("text, language", [
    ("Les Nuits de Namur", "fr"), ("Winter in Gand", "en"), ("", None), ("  12 ", None),
    ("Chroniques de l'Érable", "fr-CA"), ("true", None), ("2027-03-05", None), ("3.0", None),
])
def test_strings_made_without_rdflibs_casts_are_the_same_literal(text, language) -> None:
    fast, plain = Literal(text, lang=language, normalize=False), Literal(text, lang=language)
    assert (str(fast), fast.language, fast.datatype, fast.value) == \
        (str(plain), plain.language, plain.datatype, plain.value)
    assert fast == plain and hash(fast) == hash(plain) and fast.n3() == plain.n3()


# --- normalise ------------------------------------------------------------------------------


def test_normalise_reads_feed_triples_as_it_read_the_graph() -> None:
    triples = FeedTriples()
    triples.add_all(_triples())
    nodes = dict(_KNOWN)
    assert _read_interned(triples, nodes.setdefault) == reference_read(reference_graph(_triples()))
    # every IRI comes out as the one object normalisation compares with
    read = _read_interned(triples, nodes.setdefault)
    assert all(p is nodes[p] for _, p, _ in read)


@pytest.mark.parametrize("extra, needed", [
    ((URIRef("https://organiser.example/e/9"), SCHEMA.name, Literal("Conte d'hiver")), False),
    ((URIRef("https://organiser.example/e/9"), RDF.type, URIRef(SCHEMA_HTTPS + "Event")), True),
    ((URIRef("https://organiser.example/e/9"), SCHEMA.startDate,
      Literal("2027-01-04", datatype=URIRef(SCHEMA_HTTPS + "Date"))), True),
    ((URIRef("https://organiser.example/e/9"), SCHEMA.url, URIRef("https://exa mple.org/a b")),
     True),
    ((URIRef("relative/e/9"), SCHEMA.name, Literal("Conte")), True),
])
def test_distinct_terms_say_what_every_statement_says(extra, needed) -> None:
    triples = [t for t in _triples() if SCHEMA_HTTPS not in str(t[1])] + [extra]
    nodes = dict(_KNOWN)
    read = _read_interned(triples, nodes.setdefault)
    datatypes = {o.datatype for _, _, o in read if type(o) is Literal}
    from itertools import islice
    distinct = (*islice(nodes, len(_KNOWN), None), *datatypes)
    assert _needs_rewrite(read) is needed
    assert _needs_rewrite_terms(distinct) is needed


def test_the_known_terms_never_need_rewriting() -> None:
    assert not _needs_rewrite_terms(_KNOWN)
    assert not any(str(term).startswith(SCHEMA_HTTPS) for term in _KNOWN)
    # https event types are still events (found by equality, not interned)
    assert URIRef(SCHEMA_HTTPS + "TheaterEvent") in EVENT_NODE_TYPES


def test_a_feed_in_https_schema_org_normalises_as_before() -> None:
    """https types go through the rewriting: the parser's triples and the graph give the same."""
    triples = FeedTriples()
    triples.add_all(_triples())
    context = NormaliseContext(base_url=BASE, source_id="tilleuls")
    fast = normalise(triples, context)
    plain = normalise(reference_graph(_triples()), context)
    assert set(fast.triples) == set(plain.triples) and fast.events == plain.events
    assert not any(SCHEMA_HTTPS in str(term) for triple in fast.triples for term in triple)


def test_minting_caches_give_what_identity_gives() -> None:
    for label, ident in [("Théâtre de la Lumière", "name:theatre-de-la-lumiere|nantes"),
                         ("Salle Bellevue", "ext:wikidata:Q42"), ("x", "node:_:b1")]:
        assert _entity_key(label, ident) == identity.entity_key(label, ident)


def test_one_object_per_minted_iri() -> None:
    """Each event's venue is a node of its own, all minted to one IRI: one object for all."""
    parsed = get_format("jsonld").parse(_jsonld_feed(), ParseContext(source_id="lumiere"))
    out = normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="lumiere"))
    venues = [o for event in out.events for o in out.triples.objects(event, SCHEMA.location)]
    assert len(venues) == 4 and len(set(venues)) == 1
    assert all(venue is venues[0] for venue in venues)


# --- validation's N-Triples ------------------------------------------------------------------


def test_validation_ntriples_are_the_plain_ones() -> None:
    triples = _triples() + [(BNode("b7"), SCHEMA.description,
                             Literal('Un "conte"\nsur deux lignes\\', lang="fr"))]
    assert compiled.ntriples(triples) == reference_ntriples(triples)
    assert compiled.ntriples(iter(triples)) == reference_ntriples(triples)


def test_validation_ntriples_of_terms_made_on_the_fly() -> None:
    """Terms that live only while their statement is written (a generator making them): each
    spelled term is kept until the end, so no other term can be taken for it by its identity."""
    def made() -> object:
        for i in range(2000):
            yield (URIRef(f"https://organiser.example/e/{i}"), SCHEMA.name,
                   Literal(f"Spectacle {i}", lang="fr"))
    assert compiled.ntriples(made()) == reference_ntriples(list(made()))


def test_validation_results_name_the_graphs_own_nodes() -> None:
    """The focus nodes come back as the graph's own objects, and say what fresh ones said."""
    from shapes import shapes_turtle

    feed = json.loads(_jsonld_feed())
    del feed["@graph"][1]["name"]  # a Violation
    parsed = get_format("jsonld").parse(json.dumps(feed).encode(),
                                        ParseContext(source_id="lumiere"))
    out = normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="lumiere"))
    results = compiled.run(out.triples, shapes_turtle())
    subjects = {id(s) for s in out.triples.spo}
    focused = [r for r in results if isinstance(r.focus, URIRef) and r.focus in out.triples.spo]
    assert focused and all(id(r.focus) in subjects for r in focused)

    def fresh(term):
        return URIRef(str(term)) if isinstance(term, URIRef) else term

    copies = [(fresh(s), fresh(p), fresh(o)) for s, p, o in out.triples]
    plain = compiled.run(copies, shapes_turtle())
    assert [(r.focus, r.path, r.value, r.severity, r.shape) for r in results] == \
        [(r.focus, r.path, r.value, r.severity, r.shape) for r in plain]
    assert sum(r.severity == SH.Violation for r in results) == 1  # the event without a name


def test_one_object_per_vocabulary_iri_across_parsers_and_normalise() -> None:
    parsed = get_format("csv").parse(_csv_feed(), ParseContext(source_id="tilleuls"))
    jsonld = get_format("jsonld").parse(_jsonld_feed(), ParseContext(source_id="lumiere"))
    name = SCHEMA_TERMS.name
    assert name == SCHEMA.name and name is canonical_iri(str(SCHEMA.name))
    for feed in (parsed.triples, jsonld.triples):
        properties = [p for po in feed.spo.values() for p in po if p == name]
        assert properties and all(p is name for p in properties)
    assert all(t is canonical_iri(str(t)) for t in EVENT_NODE_TYPES)


def test_names_a_feed_writes_never_join_the_vocabulary() -> None:
    """An enumeration value is looked up, not added: a feed cannot make the table grow."""
    from harvester.formats import _CANONICAL

    def harvest(word: str):
        feed = {"@context": "https://schema.org", "@graph": [
            {"@type": "Event", "name": f"Conte {i}", "startDate": "2027-05-01",
             "eventStatus": f"{word}{'x' * i}Status"} for i in range(1, 30)]}
        parsed = get_format("jsonld").parse(json.dumps(feed).encode(),
                                            ParseContext(source_id="conte"))
        return normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="conte"))

    harvest("Known")  # whatever the code itself names is in the table from now on
    before = len(_CANONICAL)
    out = harvest("Unheard")
    statuses = {o for e in out.events for o in out.triples.objects(e, SCHEMA.eventStatus)}
    assert URIRef("http://schema.org/UnheardxStatus") in statuses and len(statuses) == 29
    assert len(_CANONICAL) == before


def test_validation_ntriples_of_normalised_triples_as_held() -> None:
    """The normalised `Triples` are read subject by subject: the same text as triple by triple."""
    parsed = get_format("csv").parse(_csv_feed(), ParseContext(source_id="tilleuls"))
    out = normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="tilleuls"))
    assert compiled.ntriples(out.triples) == reference_ntriples(list(out.triples))
    assert compiled.ntriples(out.triples).count(b"\n") == len(out.triples) > 20


def test_what_points_at_a_node_is_read_from_triples_as_held() -> None:
    from shapes import _pointing_at

    parsed = get_format("jsonld").parse(_jsonld_feed(), ParseContext(source_id="lumiere"))
    out = normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="lumiere"))
    literals = {Literal("EUR")}
    held = _pointing_at(out.triples, literals)
    plain = _pointing_at(iter(list(out.triples)), literals)
    assert held == plain and len(held[Literal("EUR")]) == 4


def test_spellings_of_each_term_object_once_are_those_of_every_term() -> None:
    from harvester.changes import spellings
    from harvester.pipeline import distinct_objects

    parsed = get_format("csv").parse(_csv_feed(), ParseContext(source_id="tilleuls"))
    out = normalise(parsed.triples, NormaliseContext(base_url=BASE, source_id="tilleuls"))
    triples = list(out.triples) + [(URIRef(f"{BASE}/event/x"), SCHEMA.price,
                                    Literal("12.0", datatype=XSD.decimal))]
    distinct = distinct_objects(triples)
    assert len(distinct) < 3 * len(triples)
    assert {id(t) for t in distinct} == {id(t) for triple in triples for t in triple}
    assert spellings(distinct) == spellings(term for triple in triples for term in triple)
