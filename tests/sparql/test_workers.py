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


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024])
def test_a_reply_crosses_the_pipe_whole(size: int) -> None:
    """Header, reply and body written at once (a body over the pipe's capacity in several
    writes), read back as one frame."""
    from sparql.workers import Reply, _Frame, _send

    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    reader, writer = os.pipe()
    sender = threading.Thread(target=_send, args=(writer, Reply("answer", "text/csv", True),
                                                  body))
    sender.start()
    frame = _Frame()
    while not frame.complete:
        frame.take(os.read(reader, frame.wanted()))
    sender.join()
    os.close(reader)
    os.close(writer)
    assert frame.reply() == (Reply("answer", "text/csv", True), body)


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


def test_a_worker_that_dies_while_idle_is_replaced_without_failing_a_query(workers) -> None:
    victim = next(iter(workers._workers))
    asyncio.run(victim.wait_ready(60))
    victim.process.kill()
    victim.process.join()

    async def two_at_once() -> list[Answer]:  # both workers taken: the dead one among them
        return await asyncio.gather(*(workers.answer(PublicQuery(NAMES)) for _ in range(2)))

    for answered in asyncio.run(two_at_once()):
        assert len(json.loads(answered.body)["results"]["bindings"]) == 500
    assert victim.process.pid not in worker_pids(workers)
    assert len(worker_pids(workers)) == 2


def test_a_worker_that_dies_during_a_query_is_a_store_error_and_is_replaced(tmp_path) -> None:
    store = EmbeddedStore(None)
    store.replace_graph(GRAPH, concerts(1500))
    pool = QueryWorkers(store, tmp_path / "snapshots", processes=1, timeout_s=60)
    pool.start()

    async def scenario() -> None:
        running = asyncio.ensure_future(pool.answer(PublicQuery(CARTESIAN)))
        worker = next(iter(pool._workers))
        while worker.snapshot is None:  # the query has reached its worker
            await asyncio.sleep(0.02)
        worker.process.kill()
        with pytest.raises(StoreError, match="stopped unexpectedly"):
            await running
        assert worker not in pool._workers and len(pool._workers) == 1
        answered = await pool.answer(PublicQuery(NAMES))
        assert len(json.loads(answered.body)["results"]["bindings"]) == 1500

    try:
        asyncio.run(scenario())
    finally:
        pool.close()


def test_queries_one_at_a_time_go_to_the_worker_that_answered_last(tmp_path,
                                                                     disk_store) -> None:
    """Its caches hold what the last queries read; the other workers stay spare."""
    pool = QueryWorkers(disk_store, tmp_path / "snapshots", processes=3, timeout_s=60)
    pool.start()
    try:
        for _ in range(4):
            assert len(run_names(pool)) == 500
        used = [worker for worker in pool._workers if worker.snapshot is not None]
        assert len(used) == 1
    finally:
        pool.close()


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


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.mark.anyio
async def test_a_cancelled_query_replaces_its_worker_off_the_event_loop(tmp_path) -> None:
    """Killing a process and spawning the next one block: done on the event loop, they would
    hold up every other request."""
    store = EmbeddedStore(None)
    store.replace_graph(GRAPH, concerts(1500))
    pool = QueryWorkers(store, tmp_path / "snapshots", processes=1, timeout_s=60)
    pool.start()
    seen: list[tuple[str, bool]] = []
    add_worker = pool._add_worker

    def recorded_add_worker() -> None:
        seen.append(("spawn", on_event_loop()))
        add_worker()

    pool._add_worker = recorded_add_worker
    try:
        runaway = asyncio.ensure_future(pool.answer(PublicQuery(CARTESIAN)))
        worker = next(iter(pool._workers))
        kill = worker.kill

        def recorded_kill() -> None:
            seen.append(("kill", on_event_loop()))
            kill()

        worker.kill = recorded_kill
        while worker.snapshot is None:  # the query has reached its worker
            await asyncio.sleep(0.02)
        runaway.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runaway
        for _ in range(600):  # the replacement starts in the background
            if len(seen) == 2 and pool._workers and worker not in pool._workers:
                break
            await asyncio.sleep(0.05)
        assert seen == [("kill", False), ("spawn", False)]
        assert not worker.process.is_alive()
        names = json.loads((await pool.answer(PublicQuery(NAMES))).body)["results"]["bindings"]
        assert len(names) == 1500  # the replacement answers
    finally:
        pool.close()


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
async def test_a_memory_hungry_query_is_stopped_while_others_are_answered(
        disk_store, tmp_path, caplog, capfd) -> None:
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
    # The server says it in one line of its log; Rust's own words stay off its stderr.
    said = [r.getMessage() for r in caplog.records if "memory limit" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert f"AFFICHE_SPARQL_WORKER_MEMORY_MB={at_rest + 300}" in said[0]
    assert "memory allocation" not in capfd.readouterr().err


def test_what_a_worker_writes_on_its_stderr_is_logged_a_line_at_a_time(caplog, capfd) -> None:
    """Not lost, not mixed into the server's stderr: each line logged, the allocation failure
    said plainly, and only with a memory limit set (without one, it is logged as it is)."""
    import logging

    from sparql.workers import relay_stderr

    caplog.set_level(logging.WARNING, logger="affiche.sparql")
    written = (b"Traceback (most recent call last):\n  oops\n\n"
               b"memory allocation of 1234567 bytes failed\n")
    aborting = b"stack backtrace:\nmemory allocation of 96 bytes failed\n"
    for memory_mb in (512, 0):
        caplog.clear()
        reader, writer = os.pipe()
        os.write(writer, written + aborting)
        os.close(writer)
        relay_stderr(reader, 4242, memory_mb)
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert lines[:2] == ["sparql: query worker (pid 4242): Traceback (most recent call last):",
                             "sparql: query worker (pid 4242): oops"]
        if memory_mb:  # one line for the failure, none for the abort's backtrace after it
            assert len(lines) == 3
            assert "reached its memory limit (AFFICHE_SPARQL_WORKER_MEMORY_MB=512) asking for " \
                "1234567 bytes" in lines[2]
        else:
            assert lines[2:] == [
                "sparql: query worker (pid 4242): memory allocation of 1234567 bytes failed",
                "sparql: query worker (pid 4242): stack backtrace:",
                "sparql: query worker (pid 4242): memory allocation of 96 bytes failed"]
    assert capfd.readouterr().err == ""

