"""The store interface, the same tests on both implementations: the embedded pyoxigraph store and
a real Oxigraph server through `RemoteStore` (SPARQL Protocol, Graph Store Protocol, and SPARQL
Update for servers without it)."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from ontology import SCHEMA
from sparql.queries import load_query
from sparql.remote import RemoteStore, bind_values, endpoints_for
from sparql.store import QuerySyntaxError, StoreError, StoreTimeout, open_store

from .conftest import STORE_KINDS, local_http_server, new_store, streaming_sparql_server

XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
EV = Namespace("http://affiche.test/event/")
PLACE = Namespace("http://affiche.test/place/")
GRAPH_LYON = "http://affiche.test/graph/theatre-lumiere"
GRAPH_MTL = "http://affiche.test/graph/salle-erable"
# Upcoming events with their place (the agenda once ran this; now only this test binds it).
UPCOMING_EVENTS = """\
# Upcoming events (start on or after ?today, compared as ISO 8601 text so that dates and
# date-times sort together), with what a listing shows. One row per event and name language.
# Bound variables are projected: pyoxigraph substitutes only projected variables.
PREFIX schema: <http://schema.org/>
SELECT ?today ?event ?start ?name ?placeName ?locality ?status
WHERE {
  ?event schema:startDate ?start ;
         schema:name ?name .
  FILTER (STR(?start) >= ?today)
  OPTIONAL { ?event schema:eventStatus ?status }
  OPTIONAL {
    ?event schema:location ?place .
    OPTIONAL { ?place schema:name ?placeName }
    OPTIONAL { ?place schema:address/schema:addressLocality ?locality }
  }
}
ORDER BY ?start ?event
"""


def programme(events: dict[str, tuple[str, str]], place: URIRef, place_name: str) -> Graph:
    """Events at one place: key -> (name in French, start date)."""
    graph = Graph()
    graph.add((place, RDF.type, SCHEMA.Place))
    graph.add((place, SCHEMA.name, Literal(place_name, lang="fr")))
    for key, (name, start) in events.items():
        event = EV[key]
        graph.add((event, RDF.type, SCHEMA.Event))
        graph.add((event, SCHEMA.name, Literal(name, lang="fr")))
        graph.add((event, SCHEMA.startDate, Literal(start, datatype=XSD.date)))
        graph.add((event, SCHEMA.location, place))
    return graph


LYON = programme({"misanthrope": ("Le Misanthrope", "2027-03-12"),
                  "tartuffe": ("Tartuffe", "2027-04-02")},
                 PLACE.lumiere, "Théâtre de la Lumière")
MONTREAL = programme({"erable-jazz": ("Soirée jazz à l'Érable", "2027-05-20")},
                     PLACE.erable, "Salle de l'Érable")


@pytest.fixture(params=STORE_KINDS)
def store(request, oxigraph_server_factory, tmp_path):
    store = new_store(request.param, oxigraph_server_factory, tmp_path)
    store.replace_graph(GRAPH_LYON, LYON)
    store.replace_graph(GRAPH_MTL, MONTREAL)
    yield store
    store.close()


def names(rows: list[dict]) -> set[str]:
    return {str(row["name"]) for row in rows}


# --- writes ---------------------------------------------------------------------------------


def test_graphs_lists_the_source_graphs(store) -> None:
    assert store.graphs() == sorted([GRAPH_LYON, GRAPH_MTL])


def test_replace_graph_replaces_only_that_graph(store) -> None:
    store.replace_graph(GRAPH_LYON, programme({"bourgeois": ("Le Bourgeois gentilhomme",
                                                             "2027-06-01")},
                                              PLACE.lumiere, "Théâtre de la Lumière"))
    rows = store.select("PREFIX schema: <http://schema.org/> "
                        "SELECT ?name WHERE { ?e a schema:Event ; schema:name ?name }")
    assert names(rows) == {"Le Bourgeois gentilhomme", "Soirée jazz à l'Érable"}


def test_drop_graph_removes_it_and_dropping_twice_is_fine(store) -> None:
    store.drop_graph(GRAPH_MTL)
    store.drop_graph(GRAPH_MTL)
    assert store.graphs() == [GRAPH_LYON]


def test_without_the_graph_store_protocol_graphs_are_written_with_update(
        oxigraph_server_factory) -> None:
    server = oxigraph_server_factory()
    store = RemoteStore(endpoints_for(server.url, gsp_url="none"), timeout_s=30)
    assert store.endpoints.gsp is None
    store.replace_graph(GRAPH_LYON, LYON)
    store.replace_graph(GRAPH_LYON, MONTREAL)
    store.drop_graph(GRAPH_MTL)
    assert store.graphs() == [GRAPH_LYON]
    out = io.BytesIO()
    store.dump_graph(out, GRAPH_LYON)
    assert isomorphic(Graph().parse(data=out.getvalue(), format="nt"), MONTREAL)


# --- reads with bound values ----------------------------------------------------------------


def test_count_events_in_graph_binds_the_graph(store) -> None:
    rows = store.select(load_query("count_events_in_graph"), {"graph": URIRef(GRAPH_LYON)})
    assert [(str(r["graph"]), r["count"].toPython()) for r in rows] == [(GRAPH_LYON, 2)]


def test_upcoming_events_binds_a_literal_used_in_a_filter(store) -> None:
    rows = store.select(UPCOMING_EVENTS, {"today": Literal("2027-04-01")})
    assert [str(r["name"]) for r in rows] == ["Tartuffe", "Soirée jazz à l'Érable"]
    assert {str(r["placeName"]) for r in rows} == {"Théâtre de la Lumière", "Salle de l'Érable"}


def test_events_of_binds_an_iri(store) -> None:
    rows = store.select(load_query("events_of"), {"entity": PLACE.erable})
    assert names(rows) == {"Soirée jazz à l'Érable"}


def test_describe_constructs_around_the_bound_root(store) -> None:
    graph = store.construct(load_query("describe"), {"root": EV.misanthrope})
    assert (EV.misanthrope, SCHEMA.name, Literal("Le Misanthrope", lang="fr")) in graph
    assert (PLACE.lumiere, SCHEMA.name, Literal("Théâtre de la Lumière", lang="fr")) in graph
    assert not any(graph.triples((EV.tartuffe, None, None)))


def test_a_decimal_reads_back_the_same_from_both_stores(store) -> None:
    offer = Graph()
    offer.add((EV.misanthrope, SCHEMA.price, Literal("18.00", datatype=XSD.decimal)))
    store.replace_graph("http://affiche.test/graph/prices", offer)
    rows = store.select("SELECT ?p WHERE { ?e <http://schema.org/price> ?p }")
    assert rows == [{"p": Literal("18.0", datatype=XSD.decimal)}]


def test_a_syntax_error_is_a_query_syntax_error(store) -> None:
    with pytest.raises(QuerySyntaxError):
        store.select("SELECT ?x WHERE { ?x }")


# --- the /sparql path and dumps -------------------------------------------------------------


def test_run_select_over_some_default_graphs(store) -> None:
    query = "PREFIX schema: <http://schema.org/> SELECT ?name WHERE { ?e schema:name ?name }"
    answer = store.run(query, results_format="json", rdf_format="turtle",
                       default_graphs=[GRAPH_MTL])
    solutions = ox.parse_query_results(answer.body, format=ox.QueryResultsFormat.JSON)
    assert answer.media_type == "application/sparql-results+json"
    assert {s["name"].value for s in solutions} == {"Soirée jazz à l'Érable",
                                                    "Salle de l'Érable"}


def test_run_construct_in_the_asked_format(store) -> None:
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{GRAPH_MTL}> {{ ?s ?p ?o }} }}"
    answer = store.run(query, results_format="json", rdf_format="nt")
    assert answer.media_type == "application/n-triples"
    assert isomorphic(Graph().parse(data=answer.body, format="nt"), MONTREAL)


def test_dump_nquads_holds_every_graph(store) -> None:
    out = io.BytesIO()
    store.dump_nquads(out)
    dataset = ox.Dataset(ox.parse(out.getvalue(), format=ox.RdfFormat.N_QUADS))
    for graph_iri, expected in ((GRAPH_LYON, LYON), (GRAPH_MTL, MONTREAL)):
        graph = Graph()
        for quad in dataset.quads_for_graph_name(ox.NamedNode(graph_iri)):
            graph.parse(data=str(ox.Triple(quad.subject, quad.predicate, quad.object)) + " .",
                        format="nt")
        assert isomorphic(graph, expected)


# --- values are bound, never pasted ---------------------------------------------------------


def test_bind_values_opens_the_where_clause_after_a_construct_template() -> None:
    query = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
    bound = bind_values(query, {"s": URIRef("http://affiche.test/event/a")})
    assert bound == ("CONSTRUCT { ?s ?p ?o } WHERE { VALUES (?s) "
                     "{ (<http://affiche.test/event/a>) }  ?s ?p ?o }")


def test_bind_values_writes_hostile_text_as_one_literal() -> None:
    hostile = 'x" } ; DROP ALL ; SELECT * { "'
    bound = bind_values("SELECT ?s WHERE { ?s ?p ?name }", {"name": Literal(hostile)})
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("http://a"), ox.NamedNode("http://b"), ox.Literal(hostile)))
    assert len(list(store.query(bound))) == 1


def test_bind_values_ignores_braces_and_where_in_strings_and_comments() -> None:
    query = 'SELECT ?s # WHERE {\nWHERE { ?s ?p "WHERE {" }'
    bound = bind_values(query, {"s": URIRef("http://a")})
    assert bound.startswith('SELECT ?s # WHERE {\nWHERE { VALUES (?s) { (<http://a>) } ')


# --- a server that is down, wrong or slow: an outage, never "not found" ---------------------


def test_a_server_that_is_down_is_a_store_error(tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RemoteStore(endpoints_for(f"http://127.0.0.1:{port}"), timeout_s=5)
    with pytest.raises(StoreError, match="cannot reach the SPARQL server"):
        store.graphs()


def test_a_wrong_endpoint_url_is_a_store_error(oxigraph_server_factory) -> None:
    server = oxigraph_server_factory()
    store = RemoteStore(endpoints_for(server.url, query_url=f"{server.url}/nowhere"), timeout_s=5)
    with pytest.raises(StoreError, match="404"):
        store.select("ASK {}")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers, like a server stuck on a runaway query."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_does_not_answer_is_a_store_timeout(silent_server: str) -> None:
    store = RemoteStore(endpoints_for(silent_server), timeout_s=0.3)
    with pytest.raises(StoreTimeout, match="did not answer within 0.3 s"):
        store.select("ASK {}")
    public = store.for_public_queries(0.2)
    with pytest.raises(StoreTimeout, match="within 0.2 s"):
        public.run("ASK {}")


def test_open_store_picks_the_implementation(tmp_path) -> None:
    remote = open_store("http://127.0.0.1:7878", tmp_path, gsp_url="none", timeout_s=5)
    assert isinstance(remote, RemoteStore)
    assert remote.endpoints == endpoints_for("http://127.0.0.1:7878/", gsp_url="NONE")
    assert remote.endpoints.query == "http://127.0.0.1:7878/query"
    with pytest.raises(StoreError, match="remote endpoint URLs are set"):
        open_store("embedded", tmp_path, query_url="http://127.0.0.1:7878/query")
    with pytest.raises(StoreError, match="unknown store"):
        open_store("oxigraph", tmp_path)


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[tuple[str, str, dict]]]]:
    """A stand-in SPARQL server that answers every request 204 and notes what it was sent."""
    from http.server import BaseHTTPRequestHandler

    seen: list[tuple[str, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            seen.append((self.command, self.path, dict(self.headers)))
            self.send_response(204)
            self.end_headers()

        do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base, seen


def test_a_token_goes_with_writes_only(recording_server) -> None:
    url, seen = recording_server
    store = RemoteStore(endpoints_for(url, token="jeton-secret"), timeout_s=5)
    store.replace_graph(GRAPH_LYON, LYON)
    store.drop_graph(GRAPH_LYON)
    with pytest.raises(StoreError):  # 204 with no body is not a SPARQL answer
        store.select("ASK {}")
    (put, put_path, put_headers), (delete, _, delete_headers), (post, _, post_headers) = seen
    assert (put, delete, post) == ("PUT", "DELETE", "POST")
    assert put_path.startswith("/store?graph=http%3A%2F%2Faffiche.test%2Fgraph%2Ftheatre-lumiere")
    assert put_headers["Authorization"] == delete_headers["Authorization"] == "Bearer jeton-secret"
    assert "Authorization" not in post_headers


def test_without_a_token_writes_carry_no_authorization(recording_server) -> None:
    url, seen = recording_server
    RemoteStore(endpoints_for(url), timeout_s=5).replace_graph(GRAPH_LYON, LYON)
    assert "Authorization" not in seen[0][2]


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Answers at once, then sends its results a few bytes at a time, as a server streaming a
    slow query does: each read is quick, the whole answer is not."""
    with streaming_sparql_server("application/sparql-results+json", [b" "] * 100) as base:
        yield base


def test_a_public_query_must_be_answered_whole_within_its_timeout(trickling_server) -> None:
    store = RemoteStore(endpoints_for(trickling_server), timeout_s=30).for_public_queries(0.5)
    with pytest.raises(StoreTimeout, match="within 0.5 s"):
        store.run("SELECT * { ?s ?p ?o }")
