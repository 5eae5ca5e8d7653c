"""Public queries in worker processes: answered from a snapshot that follows the store's writes,
stopped at their deadline (the process killed, not left running) while other queries are
answered, and refused politely beyond the concurrency cap and the per-client rate."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pyoxigraph as ox
import pytest
import uvicorn
from rdflib import Graph, Literal, Namespace
from rdflib.namespace import RDF

from ontology import SCHEMA
from sparql.answers import Answer, PublicQuery
from sparql.guard import SparqlLimits
from sparql.store import EmbeddedStore, QueryAnswer, QuerySyntaxError, StoreError, StoreTimeout
from sparql.workers import QueryWorkers

from .test_endpoint import get, json_names, make_app

EV = Namespace("http://affiche.test/event/")
GRAPH = "http://affiche.test/graph/festival-marees"
NAMES = ("PREFIX schema: <http://schema.org/> "
         "SELECT ?name WHERE { ?e a schema:Event ; schema:name ?name } ORDER BY ?name")
# Every triple joined with every triple with every triple: 1,500³ rows to count.
CARTESIAN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def concerts(count: int, prefix: str = "Concert") -> Graph:
    graph = Graph()
    for number in range(count):
        event = EV[f"{prefix.lower()}-{number}"]
        graph.add((event, RDF.type, SCHEMA.Event))
        graph.add((event, SCHEMA.name, Literal(f"{prefix} {number:04d}", lang="fr")))
        graph.add((event, SCHEMA.startDate, Literal(f"2027-07-{number % 28 + 1:02d}")))
    return graph


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("workers") / "store")
    store.replace_graph(GRAPH, concerts(500))
    yield store
    store.close()


@pytest.fixture(scope="module")
def workers(disk_store, tmp_path_factory) -> Iterator[QueryWorkers]:
    pool = QueryWorkers(disk_store, tmp_path_factory.mktemp("snapshots") / "s", processes=2,
                        timeout_s=2.0)
    pool.start()
    yield pool
    pool.close()


def answer(pool: QueryWorkers, query: str, **options) -> Answer:
    """One query through the pool, on an event loop of its own (as a test thread has none)."""
    return asyncio.run(pool.answer(PublicQuery(query, **options)))


def run_names(pool: QueryWorkers, query: str = NAMES) -> list[str]:
    return [row["name"]["value"] for row in json.loads(answer(pool, query).body)["results"]["bindings"]]


def store_names(store: EmbeddedStore, query: str = NAMES) -> list[str]:
    return [str(row["name"]) for row in store.select(query)]


def worker_pids(pool: QueryWorkers) -> set[int]:
    return {worker.process.pid for worker in pool._workers}


def test_workers_answer_like_the_store(workers, disk_store) -> None:
    assert run_names(workers) == store_names(disk_store)
    assert len(run_names(workers)) == 500


@pytest.mark.parametrize(("results_format", "media_type"), [
    ("json", "application/sparql-results+json"), ("xml", "application/sparql-results+xml"),
    ("csv", "text/csv; charset=utf-8"), ("tsv", "text/tab-separated-values; charset=utf-8"),
])
def test_the_worker_serialises_and_cuts_the_answer(workers, results_format: str,
                                                   media_type: str) -> None:
    cut = answer(workers, NAMES, results_format=results_format, max_rows=3)
    assert cut.truncated and cut.media_type == media_type
    if results_format == "csv":  # pyoxigraph writes CSV but does not read it
        names = [row["name"] for row in csv.DictReader(io.StringIO(cut.body.decode()))]
    else:
        parsed = ox.parse_query_results(
            cut.body, format=ox.QueryResultsFormat.from_media_type(media_type))
        names = [solution["name"].value for solution in parsed]
    assert names == ["Concert 0000", "Concert 0001", "Concert 0002"]
    whole = answer(workers, NAMES, results_format=results_format, max_rows=500)
    assert not whole.truncated


def test_a_cut_answer_is_not_computed_to_its_end(workers) -> None:
    """Every triple with every triple with every triple: 3.4 billion rows, far past the 2 s
    deadline if computed whole; cut at the cap, answered at once."""
    cut = answer(workers, "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", max_rows=5)
    assert cut.truncated
    assert len(json.loads(cut.body)["results"]["bindings"]) == 5


def test_graphs_and_booleans_in_the_format_asked_for(workers) -> None:
    constructed = answer(workers, NAMES.replace("SELECT ?name WHERE", "CONSTRUCT WHERE")
                         .replace(" ORDER BY ?name", ""), rdf_format="nt")
    assert constructed.media_type == "application/n-triples"
    assert len(Graph().parse(data=constructed.body, format="nt")) == 1000
    asked = answer(workers, "ASK { ?e a <http://schema.org/Event> }", results_format="xml")
    assert asked.media_type == "application/sparql-results+xml"
    assert bool(ox.parse_query_results(asked.body, format=ox.QueryResultsFormat.XML))


def test_a_syntax_error_comes_back_as_one(workers) -> None:
    with pytest.raises(QuerySyntaxError, match="error at 1:"):
        answer(workers, "SELECT ?x WHERE { ?x }")


def test_a_write_is_seen_by_the_next_query_and_old_snapshots_go(tmp_path) -> None:
    store = EmbeddedStore(None)  # in memory: its snapshots are copies, not checkpoints
    store.replace_graph(GRAPH, concerts(2, "Marée"))
    pool = QueryWorkers(store, tmp_path / "snapshots", processes=1, timeout_s=10)
    pool.start()
    try:
        assert run_names(pool) == ["Marée 0000", "Marée 0001"]
        store.replace_graph(GRAPH, concerts(1, "Vague"))
        assert run_names(pool) == ["Vague 0000"]
        assert run_names(pool) == ["Vague 0000"]
        assert len(list((tmp_path / "snapshots").iterdir())) == 1
    finally:
        pool.close()
    assert not (tmp_path / "snapshots").exists()


def test_a_runaway_query_is_stopped_and_its_process_killed(workers) -> None:
    before = worker_pids(workers)
    with pytest.raises(StoreTimeout, match="more than 2 s"):
        answer(workers, CARTESIAN)
    after = worker_pids(workers)
    killed = before - after
    assert len(killed) == 1 and len(after) == 2
    with pytest.raises(ProcessLookupError):
        os.kill(killed.pop(), 0)
    assert len(run_names(workers)) == 500  # the replacement answers


def test_a_worker_that_dies_is_a_store_error_and_is_replaced(workers) -> None:
    victim = next(iter(workers._workers))
    asyncio.run(victim.wait_ready(60))
    victim.process.kill()
    victim.process.join()
    errors = 0
    for _ in range(2):  # idle workers are taken in turn: one of these two is the dead one
        try:
            run_names(workers)
        except StoreError as exc:
            assert "stopped unexpectedly" in str(exc)
            errors += 1
    assert errors == 1
    assert victim.process.pid not in worker_pids(workers)
    assert len(worker_pids(workers)) == 2
    assert len(run_names(workers)) == 500


# --- through /sparql over real HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def live_workers_endpoint(workers) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = make_app(workers, SparqlLimits(timeout_s=2.0, max_concurrent=2))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/sparql"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.mark.server
def test_a_runaway_query_is_a_504_while_others_are_answered(live_workers_endpoint) -> None:
    done: dict[str, tuple[float, httpx.Response]] = {}

    def ask(name: str, query: str) -> None:
        response = httpx.get(live_workers_endpoint, params={"query": query}, timeout=60)
        done[name] = (time.monotonic(), response)

    runaway = threading.Thread(target=ask, args=("runaway", CARTESIAN))
    runaway.start()
    time.sleep(0.3)  # let it reach its worker
    ask("meanwhile", NAMES)
    runaway.join()
    meanwhile_at, meanwhile = done["meanwhile"]
    runaway_at, stopped = done["runaway"]
    assert meanwhile.status_code == 200
    assert len(meanwhile.json()["results"]["bindings"]) == 500
    assert meanwhile_at < runaway_at
    assert stopped.status_code == 504
    assert stopped.headers["content-type"].startswith("application/json")
    assert "stopped" in stopped.json()["detail"]
    assert stopped.headers["access-control-allow-origin"] == "*"


# --- the concurrency cap and the rate limit, through the router ------------------------------


class BlockingStore:
    """Answers once released: holds a query "running" as long as a test needs."""

    def __init__(self) -> None:
        self.release, self.started = threading.Event(), threading.Event()

    def run(self, query: str, **options) -> QueryAnswer:
        self.started.set()
        self.release.wait(timeout=30)
        return QueryAnswer(b'{"head":{"vars":[]},"results":{"bindings":[]}}',
                           "application/sparql-results+json", "solutions")


@pytest.mark.anyio
async def test_beyond_the_concurrency_cap_is_a_503_with_retry_after() -> None:
    store = BlockingStore()
    app = make_app(store, SparqlLimits(max_concurrent=1))
    first = asyncio.ensure_future(get(app, {"query": "SELECT * {}"}))
    await asyncio.to_thread(store.started.wait, 10)
    refused = await get(app, {"query": "SELECT * {}"})
    store.release.set()
    answered = await first
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert answered.status_code == 200
    assert (await get(app, {"query": "SELECT * {}"})).status_code == 200  # the slot was freed


@pytest.mark.anyio
async def test_over_the_rate_is_a_429_with_retry_after(disk_store) -> None:
    app = make_app(disk_store, SparqlLimits(rate_per_minute=2))
    first, second = await get(app, {"query": NAMES}), await get(app, {"query": NAMES})
    third = await get(app, {"query": NAMES})
    assert [r.status_code for r in (first, second)] == [200, 200]
    assert len(json_names(second)) == 500
    assert third.status_code == 429
    assert 1 <= int(third.headers["retry-after"]) <= 30
    assert "2 queries a minute" in third.json()["detail"]
    assert third.headers["access-control-allow-origin"] == "*"


def test_a_query_running_while_the_pool_closes_leaves_no_process(tmp_path) -> None:
    store = EmbeddedStore(None)
    store.replace_graph(GRAPH, concerts(1500))
    pool = QueryWorkers(store, tmp_path / "snapshots", processes=1, timeout_s=60)
    pool.start()
    errors: list[Exception] = []

    def runaway() -> None:
        try:
            answer(pool, CARTESIAN)
        except StoreError as exc:
            errors.append(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    worker = next(iter(pool._workers))
    while worker.snapshot is None:  # the query has reached its worker
        time.sleep(0.02)
    pool.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and "stopped unexpectedly" in str(errors[0])
    assert pool._workers == set() and not worker.process.is_alive()


# --- the memory limit -----------------------------------------------------------------------

# Every triple with every triple with every triple, sorted: the sort holds every row in memory.
HUNGRY = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } ORDER BY ?a ?i"


def allocated_mb(pid: int) -> int:
    """What a process has allocated (its data segment, which RLIMIT_DATA caps)."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmData:"))
    return int(line.split()[1]) // 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
@pytest.mark.anyio
async def test_a_memory_hungry_query_is_stopped_while_others_are_answered(disk_store,
                                                                          tmp_path) -> None:
    # What a worker holds at rest depends on the machine (RocksDB's threads and caches): the
    # limit is what one holds after a small query, plus 300 MB for queries.
    probe = QueryWorkers(disk_store, tmp_path / "probe", processes=1, timeout_s=30)
    probe.start()
    try:
        await probe.answer(PublicQuery(NAMES))
        at_rest = allocated_mb(next(iter(probe._workers)).process.pid)
    finally:
        probe.close()
    pool = QueryWorkers(disk_store, tmp_path / "snapshots", processes=2, timeout_s=120,
                        memory_mb=at_rest + 300)
    pool.start()
    try:
        app = make_app(pool, SparqlLimits(max_concurrent=2))
        hungry = asyncio.ensure_future(get(app, {"query": HUNGRY}))
        meanwhile = await get(app, {"query": NAMES})
        stopped = await hungry
        after = await get(app, {"query": NAMES})
        assert meanwhile.status_code == 200 and len(json_names(meanwhile)) == 500
        assert stopped.status_code == 507, stopped.text
        assert f"more than the {at_rest + 300} MB" in stopped.json()["detail"]
        assert after.status_code == 200 and len(json_names(after)) == 500
        assert len(worker_pids(pool)) == 2  # the stopped worker was replaced
    finally:
        pool.close()

