"""The stores inside the real app: the demo harvested into an Oxigraph server through the Graph
Store Protocol and served from there (graph answers streamed), and `affiche serve`'s lifespan
starting and stopping the query workers."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace


import httpx
import pyoxigraph as ox
import pytest
import uvicorn
from rdflib import Graph
from rdflib.compare import isomorphic

from harvester.pipeline import harvest
from publisher.app import create_app
from publisher.dumps import write_dumps
from publisher.settings import Settings
from sparql.answers import PublicQuery
from sparql.guard import SparqlLimits
from sparql.remote import Endpoints, RemoteStore, endpoints_for
from sparql.store import StoreError, StoreTimeout, open_store
from sparql.workers import QueryWorkers

from .conftest import streaming_sparql_server

BASE_URL = "http://affiche.test"
EVENT_IRIS = ("PREFIX schema: <http://schema.org/> "
              "SELECT DISTINCT ?e WHERE { ?e a schema:Event } ORDER BY ?e")

pytestmark = pytest.mark.anyio


def event_iris(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["e"]["value"] for row in response.json()["results"]["bindings"]]


@pytest.fixture(scope="module")
def remote_demo(oxigraph_server_factory, demo_sources, tmp_path_factory):
    """The demo feeds harvested into a fresh Oxigraph server, with their dumps."""
    server = oxigraph_server_factory()
    data_dir = tmp_path_factory.mktemp("remote-demo")
    settings = Settings(base_url=BASE_URL, data_dir=data_dir, store=server.url)
    store = RemoteStore(endpoints_for(server.url), timeout_s=30)
    reports = [harvest(s, store, BASE_URL, settings.reports_dir) for s in demo_sources]
    write_dumps(store, settings.dumps_dir)
    yield settings, store, reports
    store.close()


async def test_the_demo_harvested_into_a_server_publishes_the_same_events(
        remote_demo, client) -> None:
    settings, store, reports = remote_demo
    assert all(report.error is None for report in reports)
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as remote_client:
        from_server = event_iris(await remote_client.get("/sparql", params={"query": EVENT_IRIS}))
        page = await remote_client.get(from_server[0].removeprefix(BASE_URL),
                                       headers={"Accept": "text/html"})
    embedded = event_iris(await client.get("/sparql", params={"query": EVENT_IRIS}))
    assert from_server == embedded and len(from_server) > 5
    assert page.status_code == 200
    assert "application/ld+json" in page.text


def test_the_dump_of_a_server_has_one_graph_per_source(remote_demo) -> None:
    settings, store, _ = remote_demo
    with gzip.open(settings.dumps_dir / "affiche.nq.gz") as dump:
        graphs = {q.graph_name.value for q in ox.parse(dump.read(), format=ox.RdfFormat.N_QUADS)}
    assert graphs == set(store.graphs())
    assert len(graphs) == 3


async def test_a_server_that_is_down_is_a_502_with_a_clear_message(remote_demo) -> None:
    settings, _, _ = remote_demo
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = RemoteStore(endpoints_for(f"http://127.0.0.1:{port}"), timeout_s=5)
    app = create_app(settings, store=down)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        queried = await http.get("/sparql", params={"query": EVENT_IRIS})
        page = await http.get("/event/anything", headers={"Accept": "application/ld+json"})
    assert queried.status_code == 502
    assert "cannot reach the SPARQL server" in queried.json()["detail"]
    assert page.status_code == 502


# --- the lifespan of a real server ----------------------------------------------------------


@contextmanager
def serving(app) -> Iterator[str]:
    """The app under uvicorn, lifespan included, as `affiche serve` runs it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.mark.server
def test_serve_runs_public_queries_in_workers_and_stops_them(demo_data, tmp_path) -> None:
    settings, store, _ = demo_data
    settings = settings.model_copy(update={"data_dir": tmp_path, "sparql_timeout_s": 2.0,
                                           "sparql_max_concurrent": 2})
    app = create_app(settings, store=store)
    with serving(app) as url:
        runner = app.state.sparql_runner
        assert isinstance(runner, QueryWorkers)
        answered = httpx.get(f"{url}/sparql", params={"query": EVENT_IRIS}, timeout=30)
        stopped = httpx.get(f"{url}/sparql", timeout=30, params={
            "query": "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"})
        processes = [worker.process for worker in runner._workers]
        assert (tmp_path / "sparql-snapshots").is_dir()
    assert event_iris(answered) == [str(row["e"]) for row in store.select(EVENT_IRIS)]
    assert stopped.status_code == 504
    assert len(processes) == 2 and not any(p.is_alive() for p in processes)
    assert app.state.sparql_runner is None
    assert not (tmp_path / "sparql-snapshots").exists()


# --- graph answers from a server are streamed ------------------------------------------------

DESCRIBE_ALL_EVENTS = ("PREFIX schema: <http://schema.org/> CONSTRUCT { ?e a schema:Event ; "
                       "schema:name ?n } WHERE { ?e a schema:Event ; schema:name ?n }")


@pytest.mark.server
def test_a_server_s_graph_answer_is_streamed_and_frees_its_slot(remote_demo) -> None:
    settings, store, _ = remote_demo
    settings = settings.model_copy(update={"sparql_max_concurrent": 1})
    app = create_app(settings, store=store)
    with serving(app) as url:
        graphs = []
        for _ in range(2):  # one slot: the second is admitted only if the first gave it back
            with httpx.stream("GET", f"{url}/sparql", params={"query": DESCRIBE_ALL_EVENTS},
                              headers={"Accept": "application/n-triples"}, timeout=30) as answer:
                assert answer.status_code == 200
                assert answer.headers.get("transfer-encoding") == "chunked"
                assert "content-length" not in answer.headers
                graphs.append(Graph().parse(data=answer.read(), format="nt"))
    expected = store.construct(DESCRIBE_ALL_EVENTS)
    assert len(expected) > 10
    assert all(isomorphic(graph, expected) for graph in graphs)


@pytest.fixture
def trickling_turtle_server() -> Iterator[str]:
    """A SPARQL server whose CONSTRUCT answer comes a triple every 50 ms, for ever."""
    lines = [f"<http://affiche.test/e/{number}> <http://schema.org/name> \"x\" .\n".encode()
             for number in range(1000)]
    with streaming_sparql_server("application/n-triples", lines) as base:
        yield base


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.server
def test_a_streamed_answer_past_its_timeout_is_broken_off(trickling_turtle_server, tmp_path,
                                                          caplog) -> None:
    store = RemoteStore(endpoints_for(trickling_turtle_server), timeout_s=30)
    settings = Settings(base_url=BASE_URL, data_dir=tmp_path, sparql_timeout_s=0.5,
                        sparql_max_concurrent=1)
    app = create_app(settings, store=store)
    server_log = Records()
    try:
        with caplog.at_level(logging.WARNING, logger="affiche.sparql"), serving(app) as url:
            # Once uvicorn has configured its loggers (which drops their handlers).
            logging.getLogger("uvicorn.error").addHandler(server_log)
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(f"{url}/sparql", params={"query": DESCRIBE_ALL_EVENTS},
                          headers={"Accept": "application/n-triples"}, timeout=30)
            # The slot was given back: the next query runs (and fails in turn, as this server
            # answers N-Triples to anything), rather than being refused as busy (503).
            after = httpx.get(f"{url}/sparql", params={"query": "ASK {}"}, timeout=30)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_log)
    assert after.status_code == 502
    assert "answered application/n-triples" in after.json()["detail"]
    # The cut is one line in the log, not the ASGI server's traceback.
    cut = [r for r in caplog.records if r.name == "affiche.sparql"]
    assert [r.getMessage() for r in cut] == [
        "sparql: a streamed answer was cut off: the SPARQL server's answer took longer than "
        "the timeout"]
    assert not any(r.exc_info for r in cut + server_log.records)
    assert not [r for r in server_log.records if r.levelno >= logging.ERROR]


# --- a server's solutions are read up to the row cap, not whole ------------------------------

CARTESIAN_ROWS = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


@pytest.fixture(scope="module")
def concerts_server(oxigraph_server_factory) -> Iterator[RemoteStore]:
    """A real Oxigraph server holding 500 concerts (1,500 triples)."""
    from .test_workers import GRAPH, concerts

    store = RemoteStore(endpoints_for(oxigraph_server_factory().url), timeout_s=30)
    store.replace_graph(GRAPH, concerts(500))
    yield store
    store.close()


@pytest.mark.parametrize("accept", ["application/sparql-results+json",
                                    "application/sparql-results+xml", "text/csv"])
async def test_a_server_s_endless_answer_is_read_up_to_the_cap(concerts_server,
                                                                accept: str) -> None:
    """3.4 billion rows, which the server streams as it finds them: read whole, the answer
    would be given up on at the 30 s deadline (504); read up to the cap, it is answered."""
    from .test_endpoint import get, make_app

    app = make_app(concerts_server.for_public_queries(30), SparqlLimits(max_rows=5))
    response = await get(app, {"query": CARTESIAN_ROWS}, {"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["x-affiche-truncated"] == "true"
    assert response.headers["x-affiche-row-limit"] == "5"
    if accept == "text/csv":
        rows = response.text.splitlines()[1:]
    else:
        rows = list(ox.parse_query_results(
            response.content, format=ox.QueryResultsFormat.from_media_type(accept)))
    assert len(rows) == 5


def test_a_server_s_answer_under_the_cap_is_whole(concerts_server) -> None:
    query = PublicQuery("PREFIX schema: <http://schema.org/> SELECT ?name WHERE "
                        "{ ?e schema:name ?name } ORDER BY ?name", max_rows=500)
    answer = concerts_server.for_public_queries(30).answer(query)
    assert not answer.truncated
    names = [row["name"]["value"] for row in json.loads(answer.body)["results"]["bindings"]]
    assert names == [f"Concert {n:04d}" for n in range(500)]
    one_more = concerts_server.answer(replace(query, max_rows=499))
    assert one_more.truncated
    assert len(json.loads(one_more.body)["results"]["bindings"]) == 499


def test_a_server_s_broken_results_are_a_store_error(trickling_json_server) -> None:
    store = RemoteStore(endpoints_for(trickling_json_server), timeout_s=30)
    with pytest.raises(StoreError, match="not SPARQL JSON results"):
        store.answer(PublicQuery("SELECT * WHERE { ?s ?p ?o }"))


@pytest.fixture
def slow_solutions_server() -> Iterator[str]:
    """A SPARQL server whose SELECT answer comes a solution every 50 ms, for ever."""
    solutions = [(b"," if number else b"") + b'{"n":{"type":"literal","value":"%d"}}' % number
                 for number in range(1000)]
    head = b'{"head":{"vars":["n"]},"results":{"bindings":['
    with streaming_sparql_server("application/sparql-results+json", [head, *solutions]) as base:
        yield base


def test_a_server_s_solutions_past_the_timeout_are_given_up_on(slow_solutions_server) -> None:
    store = RemoteStore(endpoints_for(slow_solutions_server), timeout_s=30)
    with pytest.raises(StoreTimeout, match="longer than the timeout"):
        store.for_public_queries(0.5).answer(PublicQuery("SELECT ?n WHERE { ?s ?p ?n }"))
    cut = store.for_public_queries(30).answer(PublicQuery("SELECT ?n WHERE { ?s ?p ?n }",
                                                          max_rows=3))
    assert cut.truncated
    assert [row["n"]["value"] for row in json.loads(cut.body)["results"]["bindings"]] == [
        "0", "1", "2"]


@pytest.fixture
def trickling_json_server() -> Iterator[str]:
    """A SPARQL server whose SELECT answer claims to be SPARQL JSON and breaks off into junk."""
    junk = b'{"head":{"vars":["s"]},"results":{"bindings":[{"s": <oops'
    with streaming_sparql_server("application/sparql-results+json", [junk]) as base:
        yield base


def test_the_settings_describe_a_fuseki_dataset(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, store="http://127.0.0.1:3030/affiche",
                        store_gsp_url="http://127.0.0.1:3030/affiche/data",
                        store_token="jeton", store_timeout_s=12)
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    assert isinstance(store, RemoteStore)
    assert store.endpoints == Endpoints(query="http://127.0.0.1:3030/affiche/query",
                                        update="http://127.0.0.1:3030/affiche/update",
                                        gsp="http://127.0.0.1:3030/affiche/data", token="jeton")
    assert store.timeout_s == 12
    store.close()
