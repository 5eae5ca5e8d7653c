"""The /sparql endpoint over a small fixture store: the three protocol forms, the dataset, every
answer format parsed back, negotiation, the guard, the row cap, CORS, the service description,
and a real SPARQL client over real HTTP."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF
from SPARQLWrapper import JSON, POST, TURTLE, SPARQLWrapper

from ontology import SCHEMA
from sparql.errors import HTTPProblem
from sparql.guard import SparqlLimits
from sparql.router import sparql_router
from sparql.store import EmbeddedStore, QueryAnswer, StoreError
from sparql.workers import QueryWorkers

from .conftest import new_store

pytestmark = pytest.mark.anyio

# A plain Namespace: rdflib's DefinedNamespace XSD warns when pytest inspects module attributes.
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
EV = Namespace("http://localhost/event/")
GRAPH_A = "http://localhost/graph/a"
GRAPH_B = "http://localhost/graph/b"
ENDPOINT = "http://affiche.example/sparql"
RESULTS = "{http://www.w3.org/2005/sparql-results#}"

EVENTS_A = {EV.misanthrope: "Le Misanthrope", EV.ete: "Festival d'été"}
EVENTS_B = {EV.concert: "Concert du dimanche"}
ALL_NAMES = set(EVENTS_A.values()) | set(EVENTS_B.values())

PREFIX = "PREFIX schema: <http://schema.org/>\n"
NAMES = PREFIX + "SELECT ?name WHERE { ?e a schema:Event ; schema:name ?name } ORDER BY ?name"
NAMES_CONSTRUCT = (
    PREFIX + "CONSTRUCT { ?e schema:name ?name } WHERE { ?e a schema:Event ; schema:name ?name }"
)
ASK_CONCERT = PREFIX + 'ASK { ?e schema:name "Concert du dimanche"@fr }'
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# --- fixtures -------------------------------------------------------------------------------


def events_graph(events: dict[URIRef, str]) -> Graph:
    graph = Graph()
    for day, (event, name) in enumerate(sorted(events.items()), start=1):
        graph.add((event, RDF.type, SCHEMA.Event))
        graph.add((event, SCHEMA.name, Literal(name, lang="fr")))
        graph.add((event, SCHEMA.startDate,
                   Literal(f"2025-06-{day:02d}T20:00:00+02:00", datatype=XSD.dateTime)))
    return graph


@pytest.fixture(scope="module", params=["embedded", "workers", "remote"])
def store(request, oxigraph_server_factory, tmp_path_factory) -> Iterator[EmbeddedStore]:
    """The fixture data behind /sparql, three ways: the embedded store queried directly, through
    worker processes over its snapshots (what `affiche serve` does), and a real Oxigraph server."""
    kind = "remote" if request.param == "remote" else "embedded"
    store = new_store(kind, oxigraph_server_factory, tmp_path_factory.mktemp("endpoint"))
    store.replace_graph(GRAPH_A, events_graph(EVENTS_A))
    store.replace_graph(GRAPH_B, events_graph(EVENTS_B))
    if request.param == "workers":
        workers = QueryWorkers(store, tmp_path_factory.mktemp("snapshots") / "s", processes=2,
                               timeout_s=30)
        workers.start()
        yield workers
        workers.close()
    else:
        yield store
    store.close()


async def problem_handler(request: Request, exc: HTTPProblem) -> JSONResponse:
    """Stands in for the app's own handler, which lives outside sparql/."""
    return JSONResponse({"title": exc.title, "detail": exc.detail}, status_code=exc.status,
                        headers=exc.headers)


def html_page(request: Request, query: str | None) -> Response:
    return HTMLResponse(f"<!doctype html><title>SPARQL</title><textarea>{query or ''}</textarea>")


def make_app(store, limits: SparqlLimits = SparqlLimits(), with_html: bool = False) -> FastAPI:
    app = FastAPI()
    app.include_router(sparql_router(lambda: store, limits, lambda request: ENDPOINT,
                                     html_page if with_html else None))
    app.add_exception_handler(HTTPProblem, problem_handler)
    return app


@pytest.fixture
def app(store: EmbeddedStore) -> FastAPI:
    return make_app(store)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def get(app: FastAPI, params: dict | list | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
    async with client(app) as http:
        return await http.get("/sparql", params=params, headers=headers)


async def post(app: FastAPI, content: bytes | str, content_type: str,
               params: dict | list | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    async with client(app) as http:
        return await http.post("/sparql", content=content, params=params,
                               headers={"Content-Type": content_type, **(headers or {})})


# --- parsing answers back -------------------------------------------------------------------


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def json_names(response: httpx.Response) -> list[str]:
    return [row["name"]["value"] for row in response.json()["results"]["bindings"]]


def xml_names(response: httpx.Response) -> list[str]:
    root = ET.fromstring(response.content)
    return [binding.find(f"{RESULTS}literal").text
            for binding in root.iter(f"{RESULTS}binding") if binding.get("name") == "name"]


def csv_names(response: httpx.Response) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(response.text)))
    return [row["name"] for row in rows]


def tsv_names(response: httpx.Response) -> list[str]:
    lines = response.text.splitlines()
    assert lines[0] == "?name"
    return [Literal(line[1:line.rindex('"')]).value for line in lines[1:]]


NAME_PARSERS = {
    "application/sparql-results+json": json_names,
    "application/sparql-results+xml": xml_names,
    "text/csv": csv_names,
    "text/tab-separated-values": tsv_names,
}
RDFLIB_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
}


def parse_rdf(response: httpx.Response) -> Graph:
    return Graph().parse(data=response.content, format=RDFLIB_FORMATS[media_type(response)])


def expected_names_graph() -> Graph:
    graph = Graph()
    for event, name in {**EVENTS_A, **EVENTS_B}.items():
        graph.add((event, SCHEMA.name, Literal(name, lang="fr")))
    return graph


# --- the three protocol forms and the dataset -----------------------------------------------


async def test_get_answers_over_the_union_of_the_named_graphs(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES})
    assert response.status_code == 200
    assert media_type(response) == "application/sparql-results+json"
    assert response.headers["vary"] == "Accept"
    assert json_names(response) == sorted(ALL_NAMES)


async def test_form_post(app: FastAPI) -> None:
    body = str(httpx.QueryParams({"query": NAMES}))
    response = await post(app, body, "application/x-www-form-urlencoded; charset=UTF-8")
    assert response.status_code == 200
    assert json_names(response) == sorted(ALL_NAMES)


async def test_form_post_with_repeated_graph_parameters(app: FastAPI) -> None:
    body = str(httpx.QueryParams([("query", NAMES), ("default-graph-uri", GRAPH_A),
                                  ("default-graph-uri", GRAPH_B)]))
    response = await post(app, body, "application/x-www-form-urlencoded")
    assert json_names(response) == sorted(ALL_NAMES)


async def test_sparql_query_post_takes_graphs_from_the_url(app: FastAPI) -> None:
    response = await post(app, NAMES.encode(), "application/sparql-query",
                          params={"default-graph-uri": GRAPH_B})
    assert response.status_code == 200
    assert json_names(response) == list(EVENTS_B.values())


async def test_graph_reaches_one_graph(app: FastAPI) -> None:
    query = PREFIX + f"SELECT ?name WHERE {{ GRAPH <{GRAPH_A}> {{ ?e schema:name ?name }} }}"
    response = await get(app, {"query": query})
    assert set(json_names(response)) == set(EVENTS_A.values())


async def test_default_graph_uri_restricts_the_default_graph(app: FastAPI) -> None:
    only_a = await get(app, {"query": NAMES, "default-graph-uri": GRAPH_A})
    assert set(json_names(only_a)) == set(EVENTS_A.values())
    both = await get(app, [("query", NAMES), ("default-graph-uri", GRAPH_A),
                           ("default-graph-uri", GRAPH_B)])
    assert set(json_names(both)) == ALL_NAMES


async def test_named_graph_uri_restricts_graph_patterns(app: FastAPI) -> None:
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    response = await get(app, {"query": query, "named-graph-uri": GRAPH_B})
    assert [row["g"]["value"] for row in response.json()["results"]["bindings"]] == [GRAPH_B]


async def test_a_graph_parameter_that_is_not_an_iri_is_a_bad_request(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES, "default-graph-uri": "not an iri"})
    assert response.status_code == 400
    assert "default-graph-uri" in response.json()["detail"]


async def test_two_queries_are_a_bad_request(app: FastAPI) -> None:
    response = await get(app, [("query", NAMES), ("query", ASK_CONCERT)])
    assert response.status_code == 400


async def test_another_post_content_type_is_unsupported(app: FastAPI) -> None:
    response = await post(app, NAMES, "text/plain")
    assert response.status_code == 415
    assert "application/sparql-query" in response.json()["detail"]


# --- every answer format, parsed back -------------------------------------------------------


@pytest.mark.parametrize("accept", list(NAME_PARSERS))
async def test_select_in_every_results_format(app: FastAPI, accept: str) -> None:
    response = await get(app, {"query": NAMES}, {"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == accept
    assert NAME_PARSERS[accept](response) == sorted(ALL_NAMES)


@pytest.mark.parametrize(("accept", "answered"), [
    ("application/json", "application/sparql-results+json"),
    ("application/xml", "application/sparql-results+xml"),
])
async def test_plain_json_and_xml_are_accepted(app: FastAPI, accept: str, answered: str) -> None:
    response = await get(app, {"query": NAMES}, {"Accept": accept})
    assert media_type(response) == answered
    assert NAME_PARSERS[answered](response) == sorted(ALL_NAMES)


async def test_ask_in_json_and_xml(app: FastAPI) -> None:
    as_json = await get(app, {"query": ASK_CONCERT})
    assert as_json.json()["boolean"] is True
    as_xml = await get(app, {"query": ASK_CONCERT}, {"Accept": "application/sparql-results+xml"})
    assert ET.fromstring(as_xml.content).find(f"{RESULTS}boolean").text == "true"


@pytest.mark.parametrize("accept", list(RDFLIB_FORMATS))
async def test_construct_in_every_rdf_format(app: FastAPI, accept: str) -> None:
    response = await get(app, {"query": NAMES_CONSTRUCT}, {"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == accept
    assert isomorphic(parse_rdf(response), expected_names_graph())


async def test_construct_defaults_to_turtle(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES_CONSTRUCT})
    assert media_type(response) == "text/turtle"


async def test_describe(app: FastAPI) -> None:
    response = await post(app, f"DESCRIBE <{EV.concert}>", "application/sparql-query",
                          headers={"Accept": "application/n-triples"})
    graph = parse_rdf(response)
    assert (EV.concert, SCHEMA.name, Literal(EVENTS_B[EV.concert], lang="fr")) in graph


# --- negotiation ----------------------------------------------------------------------------


async def test_q_values_decide(app: FastAPI) -> None:
    accept = "text/csv;q=0.5, application/sparql-results+json;q=0.9"
    response = await get(app, {"query": NAMES}, {"Accept": accept})
    assert media_type(response) == "application/sparql-results+json"


@pytest.mark.parametrize(("fmt", "answered"), [
    ("json", "application/sparql-results+json"),
    ("xml", "application/sparql-results+xml"),
    ("tsv", "text/tab-separated-values"),
    ("application/sparql-results+xml", "application/sparql-results+xml"),
])
async def test_format_parameter_wins_over_accept(app: FastAPI, fmt: str, answered: str) -> None:
    response = await get(app, {"query": NAMES, "format": fmt}, {"Accept": "text/csv"})
    assert media_type(response) == answered
    assert NAME_PARSERS[answered](response) == sorted(ALL_NAMES)


@pytest.mark.parametrize(("fmt", "answered"), [
    ("ttl", "text/turtle"), ("turtle", "text/turtle"), ("nt", "application/n-triples"),
    ("ntriples", "application/n-triples"), ("jsonld", "application/ld+json"),
    ("rdfxml", "application/rdf+xml"),
])
async def test_format_names_for_graphs(app: FastAPI, fmt: str, answered: str) -> None:
    response = await get(app, {"query": NAMES_CONSTRUCT, "format": fmt},
                         {"Accept": "application/sparql-results+json"})
    assert media_type(response) == answered
    assert isomorphic(parse_rdf(response), expected_names_graph())


async def test_nothing_acceptable_lists_what_is_offered(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES}, {"Accept": "image/png"})
    assert response.status_code == 406
    detail = response.json()["detail"]
    for offered in NAME_PARSERS:
        assert offered in detail


async def test_a_results_format_for_a_graph_is_not_acceptable(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES_CONSTRUCT, "format": "csv"})
    assert response.status_code == 406
    detail = response.json()["detail"]
    for offered in RDFLIB_FORMATS:
        assert offered in detail


# --- the guard and the store's errors -------------------------------------------------------


async def test_sparql_update_post_is_forbidden(app: FastAPI) -> None:
    update = f"INSERT DATA {{ GRAPH <{GRAPH_A}> {{ <http://x/a> <http://x/b> 1 }} }}"
    response = await post(app, update, "application/sparql-update")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]


@pytest.mark.parametrize("update", [
    f"INSERT DATA {{ GRAPH <{GRAPH_A}> {{ <http://x/a> <http://x/b> 1 }} }}",
    "PREFIX schema: <http://schema.org/> DELETE WHERE { ?e schema:name ?n }",
    "DROP ALL",
])
async def test_an_update_as_a_query_is_forbidden(app: FastAPI, update: str) -> None:
    by_get = await get(app, {"query": update})
    by_form = await post(app, str(httpx.QueryParams({"query": update})),
                         "application/x-www-form-urlencoded")
    assert by_get.status_code == by_form.status_code == 403
    assert json_names(await get(app, {"query": NAMES})) == sorted(ALL_NAMES)


async def test_service_is_forbidden(app: FastAPI) -> None:
    response = await get(app, {"query": "select * { service <http://evil> { ?s ?p ?o } }"})
    assert response.status_code == 403
    assert "SERVICE" in response.json()["detail"]


async def test_a_string_containing_delete_is_allowed(app: FastAPI) -> None:
    response = await get(app, {"query": 'SELECT * WHERE { ?s ?p "please DELETE me" }'})
    assert response.status_code == 200
    assert response.json()["results"]["bindings"] == []


async def test_a_syntax_error_is_a_bad_query_with_its_position(app: FastAPI) -> None:
    response = await get(app, {"query": "SELECT * WHERE { ?s ?p }"})
    assert response.status_code == 400
    assert response.json()["title"] == "Malformed query"
    assert "error at 1:25" in response.json()["detail"]


async def test_over_length_is_payload_too_large(store: EmbeddedStore) -> None:
    app = make_app(store, SparqlLimits(max_query_length=50))
    long_query = NAMES + " " * 50
    assert (await get(app, {"query": long_query})).status_code == 413
    assert (await post(app, long_query, "application/sparql-query")).status_code == 413


async def test_a_huge_body_is_not_read_whole(store: EmbeddedStore) -> None:
    app = make_app(store, SparqlLimits(max_query_length=10))
    response = await post(app, b"#" * 1_000_000, "application/sparql-query")
    assert response.status_code == 413


class BrokenStore:
    def run(self, query: str, **options) -> QueryAnswer:
        raise StoreError("connection refused")


async def test_a_store_outage_is_a_502() -> None:
    response = await get(make_app(BrokenStore()), {"query": NAMES})
    assert response.status_code == 502


class ThreadRecordingStore:
    """The fixture store, noting which thread each query ran in."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store, self.threads = store, []

    def run(self, query: str, **options) -> QueryAnswer:
        self.threads.append(threading.current_thread())
        return self.store.run(query, **options)


async def test_a_blocking_store_is_queried_off_the_event_loop(store: EmbeddedStore) -> None:
    if isinstance(store, QueryWorkers):
        pytest.skip("worker processes are awaited on the event loop, not called (test_workers)")
    recording = ThreadRecordingStore(store)
    await get(make_app(recording), {"query": NAMES})
    assert recording.threads and threading.current_thread() not in recording.threads


# --- the row cap ----------------------------------------------------------------------------


@pytest.mark.parametrize("accept", list(NAME_PARSERS))
async def test_truncation_in_every_format(store: EmbeddedStore, accept: str) -> None:
    app = make_app(store, SparqlLimits(max_rows=2))
    response = await get(app, {"query": NAMES}, {"Accept": accept})
    assert response.status_code == 200
    assert response.headers["x-affiche-truncated"] == "true"
    assert response.headers["x-affiche-row-limit"] == "2"
    assert NAME_PARSERS[accept](response) == sorted(ALL_NAMES)[:2]


@pytest.mark.parametrize("accept", list(NAME_PARSERS))
async def test_no_truncation_header_at_the_limit(store: EmbeddedStore, accept: str) -> None:
    app = make_app(store, SparqlLimits(max_rows=3))
    response = await get(app, {"query": NAMES}, {"Accept": accept})
    assert "x-affiche-truncated" not in response.headers
    assert NAME_PARSERS[accept](response) == sorted(ALL_NAMES)


async def test_truncation_keeps_the_query_s_own_limit_and_order(store: EmbeddedStore) -> None:
    app = make_app(store, SparqlLimits(max_rows=2))
    query = NAMES.replace("ORDER BY ?name", "ORDER BY DESC(?name) LIMIT 2")
    response = await get(app, {"query": query})
    assert "x-affiche-truncated" not in response.headers
    assert json_names(response) == sorted(ALL_NAMES, reverse=True)[:2]


# --- CORS -----------------------------------------------------------------------------------


async def test_cors_on_answers_and_errors(app: FastAPI) -> None:
    answered = await get(app, {"query": NAMES})
    refused = await get(app, {"query": "DROP ALL"})
    described = await get(app)
    for response in (answered, refused, described):
        assert response.headers["access-control-allow-origin"] == "*"
    assert "X-Affiche-Truncated" in answered.headers["access-control-expose-headers"]


async def test_options_preflight(app: FastAPI) -> None:
    async with client(app) as http:
        response = await http.options("/sparql", headers={
            "Origin": "https://yasgui.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
        "GET", "POST", "OPTIONS"}
    assert "Content-Type" in response.headers["access-control-allow-headers"]
    assert "Accept" in response.headers["access-control-allow-headers"]


# --- the service description and the HTML page ----------------------------------------------


@pytest.mark.parametrize("accept", ["text/turtle", "application/ld+json", "application/n-triples"])
async def test_service_description_names_the_endpoint(app: FastAPI, accept: str) -> None:
    response = await get(app, headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == accept
    graph = parse_rdf(response)
    service = graph.value(predicate=SD.endpoint, object=URIRef(ENDPOINT))
    assert service is not None
    assert (service, RDF.type, SD.Service) in graph
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    assert (service, SD.feature, SD.UnionDefaultGraph) in graph
    assert graph.value(service, SD.defaultEntailmentRegime) is not None
    assert len(set(graph.objects(service, SD.resultFormat))) == 8


async def test_service_description_formats_say_the_same(app: FastAPI) -> None:
    graphs = [parse_rdf(await get(app, headers={"Accept": accept})) for accept in RDFLIB_FORMATS]
    assert all(isomorphic(graphs[0], other) for other in graphs[1:])


async def test_curl_gets_data_not_a_page(store: EmbeddedStore) -> None:
    app = make_app(store, with_html=True)
    described = await get(app, headers={"Accept": "*/*"})
    assert media_type(described) == "text/turtle"
    answered = await get(app, {"query": NAMES}, {"Accept": "*/*"})
    assert json_names(answered) == sorted(ALL_NAMES)


async def test_a_browser_gets_the_page(store: EmbeddedStore) -> None:
    app = make_app(store, with_html=True)
    empty = await get(app, headers={"Accept": BROWSER_ACCEPT})
    assert media_type(empty) == "text/html"
    assert "<textarea></textarea>" in empty.text
    form = await post(app, str(httpx.QueryParams({"query": "ASK {}"})),
                      "application/x-www-form-urlencoded", headers={"Accept": BROWSER_ACCEPT})
    assert media_type(form) == "text/html"
    assert "<textarea>ASK {}</textarea>" in form.text


async def test_without_a_page_a_browser_gets_data(app: FastAPI) -> None:
    response = await get(app, {"query": NAMES}, {"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert xml_names(response) == sorted(ALL_NAMES)


# --- a real client over real HTTP -----------------------------------------------------------


@pytest.fixture(scope="module")
def live_endpoint(store: EmbeddedStore) -> Iterator[str]:
    """Serve the app with uvicorn on a free port of 127.0.0.1, in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(store), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/sparql"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def sparql_wrapper(endpoint: str, query: str, return_format: str) -> SPARQLWrapper:
    wrapper = SPARQLWrapper(endpoint)
    wrapper.setQuery(query)
    wrapper.setReturnFormat(return_format)
    return wrapper


@pytest.mark.server
def test_sparqlwrapper_select(live_endpoint: str) -> None:
    result = sparql_wrapper(live_endpoint, NAMES, JSON).query().convert()
    assert [row["name"]["value"] for row in result["results"]["bindings"]] == sorted(ALL_NAMES)


@pytest.mark.server
def test_sparqlwrapper_select_by_form_post(live_endpoint: str) -> None:
    wrapper = sparql_wrapper(live_endpoint, NAMES, JSON)
    wrapper.setMethod(POST)
    wrapper.addParameter("default-graph-uri", GRAPH_A)
    result = wrapper.query().convert()
    assert {row["name"]["value"] for row in result["results"]["bindings"]} == set(
        EVENTS_A.values())


@pytest.mark.server
def test_sparqlwrapper_construct(live_endpoint: str) -> None:
    body = sparql_wrapper(live_endpoint, NAMES_CONSTRUCT, TURTLE).query().convert()
    assert isomorphic(Graph().parse(data=body, format="turtle"), expected_names_graph())


@pytest.mark.server
def test_sparqlwrapper_ask(live_endpoint: str) -> None:
    assert sparql_wrapper(live_endpoint, ASK_CONCERT, JSON).query().convert()["boolean"] is True
