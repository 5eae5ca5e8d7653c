"""SPARQL speed: typical aggregator queries on the store directly, and through `/sparql`.

    .venv/bin/python bench/bench_sparql.py [--events 100000] [--repeat 30] [--starts 3]
                                           [--workers 2] [--client stdlib|httpx]
                                           [--baseline CHECKOUT]

Writes N synthetic schema.org events (spread over 40 source graphs, with venues, towns,
organisers, disciplines and prices) as N-Quads into an embedded store, then runs the same
queries (a) directly with `EmbeddedStore.run`, in a process of its own over a snapshot, and (b)
through `/sparql` of `affiche serve` (real uvicorn on 127.0.0.1 in its own process, over a
checkpoint of the same store; public queries in worker processes over a snapshot, with the
guard, the row cap and negotiation), one at a time, alternating (a) and (b), so that whatever
else the machine does weighs on both alike. This is done `--starts` times, each with a fresh
server (so fresh workers) and a fresh direct process. It prints p50/p95/p99 of both sides (all
starts pooled), the overhead ratio (endpoint p50 / direct p50) of each start and the median of
those ratios, which is the verdict: the target is an overhead within 20 % for queries of 10 ms
or more. `ASK {}` shows the fixed cost of a request. Two queries also come in the "fast form"
the `/sparql` page's examples use, and the time of each form is compared. Figures are only
compared within one run; the load average at its start and end is printed with them.
`--baseline` also runs `affiche serve` from another checkout of the project (the previous
commit: `mkdir /tmp/base && git archive HEAD~1 | tar -x -C /tmp/base`) over its own copy of the
store, timed in the same rounds (and started afresh with each start), and prints how the two
endpoints compare: on a shared machine, that ratio is what one run can tell about a change, far
more than two runs' figures.

What makes the comparison fair:
- the same work on both sides: the direct side serialises the answer in the format the client
  asks the endpoint for (SPARQL JSON, Turtle), and the client reads the whole answer (one
  kept-alive connection, gzip asked for as clients do, and decoded); the bytes the client gets
  are checked to be the direct side's, byte for byte, and a query where they are not is marked;
- a lean client: the direct side has no client at all, so the client's own cost is not the
  endpoint's overhead. The standard library's `http.client` cost the client 0.2-0.8 ms of CPU
  a query (measured with 3,000 events), httpx (`--client httpx`, what this benchmark used
  before) 0.7-1.6 ms: as much as the server's own path, for a budget of 2 ms at 10 ms;
- like with like, several times: the endpoint's query runs in a worker, a process spawned by
  the server, which opens a snapshot read-only. The direct side runs in the same kind of
  process (spawned, reading a snapshot read-only, timed inside it around the call alone), not in
  this one. A fresh process may run the same query some per cent faster or slower than another
  for its whole life: measured with 8 processes over one snapshot, each timed in turn so that the
  machine's moments weighed on all alike, their medians differed by 1-7 % (16-17 ms queries), and
  the same processes ranked alike in odd and even rounds — not when the hash seeds and the address
  space layout were fixed (`LD_PRELOAD` of a constant `getrandom`, `setarch -R`), which also
  brought the spread to 1-5 %. Larger differences came from the CPUs: one ran the same query up
  to 20 % slower than the other for seconds at a time, so the direct process and the query
  workers are kept on the same CPU (`pin`), another each start. One start compares one direct
  process with one worker; the verdict is the median over `--starts`. Slow queries get fewer runs
  a start (`runs_for`), so that three starts take about as long as one start of 30 runs;
- an idle server: `affiche serve` starts background work (the page warmer computes the agenda and
  the sitemap over every event: seconds of CPU at 100,000 events), which timed the first queries
  against a busy server on a 2-core machine. Timing starts once the server's processes, and
  this one, have used less than 5 % of a core for 3 s in a row; the direct side's snapshot is
  opened read-only, as the workers open theirs, so that no compaction runs beside it;
- where the time goes: the CPU time each process spends per query (the client, the server, its
  worker processes, read from /proc) is printed next to the direct query's. On a loaded machine
  the endpoint's wall time also holds the waits for a CPU at each of its four hand-overs (client
  → server → worker → server → client), which the direct call does not have: when the CPU
  figures show little overhead and the wall figures much, the machine was busy. And a process
  woken after waiting spends more CPU on the same work than one kept busy (its caches went to
  whatever ran meanwhile): the server's CPU for `ASK {}` was 0.39 ms a request back to back,
  1.16 ms when each came after 20 ms idle (load average 4). So every query longer than a few ms
  costs the server and the client about 1 ms more than `ASK {}` shows, whatever its answer's size.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_pages import free_port, wait_for  # noqa: E402
from bench.processes import cpu_ms, process_tree, wait_until_idle  # noqa: E402
from sparql.store import EmbeddedStore  # noqa: E402

BASE = "http://bench.affiche.test"
SOURCES = 40
TOWNS = ["Lyon", "Liège", "Québec", "Nantes", "Namur", "Montréal", "Saint-Malo", "Gand",
         "Marseille", "Trois-Rivières"]
TYPES = ["TheaterEvent", "DanceEvent", "MusicEvent", "ComedyEvent", "Event"]
DISCIPLINES = ["theatre", "danse", "musique", "cirque", "opera", "humour", "marionnette"]
S = "http://schema.org/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD = "http://www.w3.org/2001/XMLSchema#"
AFF = "https://affiche.example/ns#"

PREFIXES = "PREFIX schema: <http://schema.org/>\nPREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n"
QUERIES = {
    "weekend in a town": PREFIXES + """
SELECT ?e ?name ?start ?venue WHERE {
  ?e schema:startDate ?start ; schema:name ?name ; schema:location ?p .
  ?p schema:name ?venue ; schema:address/schema:addressLocality "Lyon" .
  FILTER (?start >= "2027-06-12T00:00:00+02:00"^^xsd:dateTime
          && ?start < "2027-06-14T00:00:00+02:00"^^xsd:dateTime)
} ORDER BY ?start LIMIT 100""",
    "by discipline, counted": PREFIXES + """
PREFIX affiche: <https://affiche.example/ns#>
SELECT ?d (COUNT(?e) AS ?n) WHERE { ?e affiche:discipline ?d } GROUP BY ?d ORDER BY DESC(?n)""",
    "at one venue": PREFIXES + """
SELECT ?e ?name ?start WHERE {
  ?e schema:location <http://bench.affiche.test/place/salle-7> ;
     schema:name ?name ; schema:startDate ?start .
} ORDER BY ?start""",
    "next 20 in a town": PREFIXES + """
SELECT ?e ?name ?start WHERE {
  ?e schema:startDate ?start ; schema:name ?name ;
     schema:location/schema:address/schema:addressLocality "Montréal" .
  FILTER (?start >= "2027-09-01T00:00:00-04:00"^^xsd:dateTime)
} ORDER BY ?start LIMIT 20""",
    # The form of the /sparql page's example (sparql/queries/example_next_in_town.rq): the
    # town's events first, hash-joined with every start date, names for the first 20 only.
    "next 20 in a town, fast form": PREFIXES + """
SELECT ?e ?name ?start WHERE {
  { SELECT ?e ?start WHERE {
      { SELECT ?e WHERE {
          ?address schema:addressLocality ?town . FILTER (STR(?town) = "Montréal")
          ?place schema:address ?address . ?e schema:location ?place } }
      ?e schema:startDate ?start .
      FILTER (?start >= "2027-09-01T00:00:00-04:00"^^xsd:dateTime)
    } ORDER BY ?start LIMIT 20 }
  ?e schema:name ?name .
} ORDER BY ?start""",
    "towns by month": PREFIXES + """
SELECT ?town ?month (COUNT(?e) AS ?n) WHERE {
  ?e schema:startDate ?start ; schema:location/schema:address/schema:addressLocality ?town .
  BIND (MONTH(?start) AS ?month)
} GROUP BY ?town ?month ORDER BY ?town ?month""",
    # Plain triple patterns instead of the property path (example_towns_by_month.rq).
    "towns by month, fast form": PREFIXES + """
SELECT ?town ?month (COUNT(?e) AS ?n) WHERE {
  ?address schema:addressLocality ?town . ?place schema:address ?address .
  ?e schema:location ?place ; schema:startDate ?start .
  BIND (MONTH(?start) AS ?month)
} GROUP BY ?town ?month ORDER BY ?town ?month""",
    "free dance events": PREFIXES + """
SELECT ?e ?name WHERE {
  ?e a schema:DanceEvent ; schema:name ?name ; schema:offers/schema:price 0 .
} LIMIT 200""",
    "one organiser's events (construct)": PREFIXES + """
CONSTRUCT { ?e schema:name ?name ; schema:startDate ?start ; schema:location ?p }
WHERE { ?e schema:organizer <http://bench.affiche.test/organization/org-3> ;
           schema:name ?name ; schema:startDate ?start ; schema:location ?p }""",
    "describe one event": f"DESCRIBE <{BASE}/event/e-4242>",
}
ACCEPT = {"json": "application/sparql-results+json", "turtle": "text/turtle"}
FAST_FORM = ", fast form"


# --- synthetic data -------------------------------------------------------------------------


def synthetic_nquads(events: int, seed: int = 7) -> bytes:
    """`events` schema.org events (about 14 quads each) as N-Quads, one graph per source."""
    rng = random.Random(seed)
    venues, organisers = max(events // 100, 10), max(events // 500, 5)
    lines = []
    for v in range(venues):
        graph = f"<{BASE}/graph/source-{v % SOURCES}>"
        place, address = f"<{BASE}/place/salle-{v}>", f"<{BASE}/place/salle-{v}#address>"
        lines += [
            f"{place} <{RDF_TYPE}> <{S}Place> {graph} .",
            f'{place} <{S}name> "Salle {v}"@fr {graph} .',
            f"{place} <{S}address> {address} {graph} .",
            f'{address} <{S}addressLocality> "{TOWNS[v % len(TOWNS)]}" {graph} .',
        ]
    for n in range(events):
        venue = rng.randrange(venues)
        graph = f"<{BASE}/graph/source-{venue % SOURCES}>"
        event, offer = f"<{BASE}/event/e-{n}>", f"<{BASE}/event/e-{n}#offer>"
        day = rng.randrange(365)
        month, mday = 1 + day * 12 // 365, 1 + day % 28
        start = f"2027-{month:02d}-{mday:02d}T{rng.choice((14, 18, 20, 21))}:30:00+02:00"
        lines += [
            f"{event} <{RDF_TYPE}> <{S}{rng.choice(TYPES)}> {graph} .",
            f'{event} <{S}name> "Spectacle numéro {n}"@fr {graph} .',
            f'{event} <{S}description> "Une soirée inventée pour le banc d\'essai, n° {n}."@fr '
            f"{graph} .",
            f'{event} <{S}startDate> "{start}"^^<{XSD}dateTime> {graph} .',
            f"{event} <{S}location> <{BASE}/place/salle-{venue}> {graph} .",
            f"{event} <{S}organizer> <{BASE}/organization/org-{rng.randrange(organisers)}> "
            f"{graph} .",
            f"{event} <{AFF}discipline> <{BASE}/discipline/{rng.choice(DISCIPLINES)}> {graph} .",
            f"{event} <{S}offers> {offer} {graph} .",
            f'{offer} <{S}price> "{rng.choice((0, 8, 12, 15, 25))}"^^<{XSD}integer> {graph} .',
            f'{offer} <{S}priceCurrency> "EUR" {graph} .',
            f'{event} <{AFF}harvestedAt> "2027-01-01T00:00:00Z"^^<{XSD}dateTime> {graph} .',
        ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def build_store(path: Path, events: int) -> int:
    import pyoxigraph as ox

    store = ox.Store(str(path))
    store.bulk_load(synthetic_nquads(events), format=ox.RdfFormat.N_QUADS)
    store.flush()
    count = len(store)
    del store
    return count


# --- the direct side, in a process like a query worker ----------------------------------------


def answer_directly(connection: Connection, snapshot: str) -> None:
    """The direct side's loop, in a spawned process over `snapshot` opened read-only, as a query
    worker reads its own: for each query received, the wall and CPU ms of `EmbeddedStore.run`
    (serialising as the endpoint's client asks), and the answer's bytes when they are asked for."""
    store = EmbeddedStore.read_only(Path(snapshot))
    connection.send("ready")
    while True:
        try:
            asked = connection.recv()
        except EOFError:
            return
        if asked is None:
            return
        query, with_body = asked
        cpu, wall = time.process_time(), time.perf_counter()
        body = store.run(query, results_format="json", rdf_format="turtle").body
        connection.send(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000,
                         body if with_body else b""))


class DirectProcess:
    """The direct side of one start: a fresh process spawned as the endpoint's query workers are
    (`multiprocessing`'s spawn), over a snapshot, read-only. Each fresh process runs the same
    query at its own speed for its life (memory layout, hash seeds): timing the direct side in
    the bench's own process compared one process with another of a different kind. The time and
    CPU of a query are measured inside the process, around the call alone."""

    def __init__(self, snapshot: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=answer_directly, args=(child_end, str(snapshot)),
                                       daemon=True, name="bench-sparql-direct")
        self.process.start()
        child_end.close()
        if not self.connection.poll(120) or self.connection.recv() != "ready":
            raise RuntimeError("the direct side's process did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, query: str, with_body: bool = False) -> tuple[float, float, bytes]:
        """Wall ms, CPU ms, and (`with_body`) the answer's bytes."""
        self.connection.send((query, with_body))
        return self.connection.recv()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


# --- measuring ------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def rdf_kind(query: str) -> bool:
    return query.lstrip().upper().startswith(("CONSTRUCT", "DESCRIBE")) or "\nCONSTRUCT" in query


def time_ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


class StdlibClient:
    """POSTs queries on one kept-alive connection (`http.client`: the request in one write) and
    returns each answer's bytes, read whole and un-gzipped. uvicorn closes a connection idle for
    5 s (after a direct query that long): then the next request opens a new one."""

    IDLE_S = 4.0

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        self.used = time.monotonic()

    def post(self, query: bytes, accept: str) -> bytes:
        if time.monotonic() - self.used > self.IDLE_S:
            self.connection.close()  # reopened by the request
        self.connection.request("POST", self.path, body=query, headers={
            "Content-Type": "application/sparql-query", "Accept": accept,
            "Accept-Encoding": "gzip"})
        response = self.connection.getresponse()
        body = response.read()
        self.used = time.monotonic()
        if response.status != 200:
            raise RuntimeError(f"/sparql answered {response.status}: {body[:300]!r}")
        if response.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body

    def close(self) -> None:
        self.connection.close()


class HttpxClient:
    """The same with httpx (gzip asked for and decoded by httpx itself)."""

    def __init__(self, url: str) -> None:
        self.url, self.http = url, httpx.Client(timeout=600)

    def post(self, query: bytes, accept: str) -> bytes:
        response = self.http.post(self.url, content=query, headers={
            "Content-Type": "application/sparql-query", "Accept": accept})
        response.raise_for_status()
        return response.content

    def close(self) -> None:
        self.http.close()


CLIENTS = {"stdlib": StdlibClient, "httpx": HttpxClient}


# --- one start: a fresh server and a fresh direct process, timed alternately ----------------------

# Timed runs of a query in one start: --repeat, but a slow query gets fewer, so that its direct
# runs take about RUN_BUDGET_S (never fewer than MIN_RUNS): "towns by month" takes seconds a run,
# and its overhead is a few ms; the queries near 10 ms, where the verdict is close, keep --repeat.
RUN_BUDGET_S = 8.0
MIN_RUNS = 5
# Queries slower than this warm their own caches in their first run: no more warm-up rounds.
WARM_MS = 1000.0


def runs_for(estimate_ms: float, repeat: int) -> int:
    return min(repeat, max(MIN_RUNS, int(RUN_BUDGET_S * 1000 / max(estimate_ms, 0.001))))


@dataclass
class Timings:
    """One query's runs in one start: wall times (ms) of each side, CPU per run of each process,
    and whether the client got the direct side's bytes."""

    direct: list[float] = field(default_factory=list)
    endpoint: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)  # the --baseline checkout's endpoint
    cpu: dict[str, float] = field(default_factory=dict)
    same_bytes: bool = True

    @property
    def ratio(self) -> float:
        """The overhead in this start: endpoint p50 / direct p50."""
        return statistics.median(self.endpoint) / statistics.median(self.direct)


Start = dict[str, Timings]  # one start's timings, by query name


def measure(direct: DirectProcess, server: "Server", repeat: int, warmup: int,
            client: str = "stdlib", baseline: "Server | None" = None) -> Start:
    """Time each query directly and through /sparql (and the baseline's), alternating, so that
    whatever else the machine does weighs on all alike."""
    timings = {}
    http = CLIENTS[client](server.url)
    base_http = CLIENTS[client](baseline.url) if baseline is not None else None
    try:
        for name, query in {"ASK {} (fixed cost)": "ASK {}", **QUERIES}.items():
            accept = ACCEPT["turtle" if rdf_kind(query) else "json"]

            def on_endpoint() -> bytes:
                return http.post(query.encode(), accept)

            def on_baseline() -> bytes:
                return base_http.post(query.encode(), accept)

            # The first round warms up and checks the bytes; quick queries get more warm-up.
            estimate, _, body = direct.run(query, with_body=True)
            timing = timings[name] = Timings(same_bytes=body == on_endpoint())
            for round_ in range(warmup if estimate < WARM_MS else 1):
                if round_:
                    direct.run(query)
                    on_endpoint()
                if base_http is not None:
                    on_baseline()
            pids = process_tree(server.pid)
            direct_cpu = client_cpu = 0.0
            server_cpu = cpu_ms(pids[:1]), cpu_ms(pids[1:])
            runs = runs_for(estimate, repeat)
            for round_ in range(runs):
                # The baseline's endpoint before this one every other round: each then follows
                # the other as often (outside the CPU counts, which are this server's).
                if base_http is not None and round_ % 2:
                    timing.baseline.append(time_ms(on_baseline))
                wall, cpu, _ = direct.run(query)
                timing.direct.append(wall)
                direct_cpu += cpu
                before = time.process_time()
                timing.endpoint.append(time_ms(on_endpoint))
                client_cpu += time.process_time() - before
                if base_http is not None and not round_ % 2:
                    timing.baseline.append(time_ms(on_baseline))
            timing.cpu = {"direct": direct_cpu / runs,
                          "client": client_cpu * 1000 / runs,
                          "server": (cpu_ms(pids[:1]) - server_cpu[0]) / runs,
                          "workers": (cpu_ms(pids[1:]) - server_cpu[1]) / runs}
    finally:
        http.close()
        if base_http is not None:
            base_http.close()
    return timings


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def serving(data_dir: Path, workers: int, checkout: Path = ROOT) -> Iterator[Server]:
    """`affiche serve` of `checkout` over `data_dir` in its own process on 127.0.0.1 (uvicorn,
    the lifespan starting the query workers), without the rate limit, with a generous timeout;
    yielded once its start-up work is done (`wait_until_idle`)."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AFFICHE_")},
           "AFFICHE_DATA_DIR": str(data_dir), "AFFICHE_BASE_URL": BASE,  # what the data is minted under
           "AFFICHE_SPARQL_RATE_PER_MINUTE": "0",
           "AFFICHE_SPARQL_TIMEOUT_S": "600", "AFFICHE_SPARQL_MAX_CONCURRENT": str(workers),
           "AFFICHE_SPARQL_MAX_ROWS": "1000000"}
    process = subprocess.Popen([sys.executable, "-m", "publisher.cli", "serve", "--port",
                                str(port)], cwd=checkout, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/sparql"
    try:
        wait_for(url + "?query=ASK%20%7B%7D", process)
        waited = wait_until_idle(process.pid) + wait_until_idle(os.getpid())
        print(f"the server (and this process) were idle {waited:.0f} s after it answered",
              flush=True)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_starts(data_dir: Path, starts: int, repeat: int, workers: int, client: str = "stdlib",
               baseline: Path | None = None) -> list[Start]:
    """`starts` times: a fresh direct process over `data_dir/direct`, a fresh `affiche serve`
    over `data_dir/served` (and the baseline's over `data_dir/served-baseline`), all timed in
    the same rounds; the direct process and the servers' query workers on one CPU, another CPU
    each start (`pin`)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    done = []
    for number in range(1, starts + 1):
        cpu = cpus[(number - 1) % len(cpus)] if cpus else None
        on = "" if cpu is None else f" (the direct process and the query workers on CPU {cpu})"
        print(f"start {number} of {starts}{on}", flush=True)
        with ExitStack() as stack:
            direct = DirectProcess(data_dir / "direct")
            stack.callback(direct.close)
            server = stack.enter_context(serving(data_dir / "served", workers))
            served_baseline = None if baseline is None else stack.enter_context(
                serving(data_dir / "served-baseline", workers, baseline))
            pin([direct.pid, *process_tree(server.pid)[1:], *(
                [] if served_baseline is None else process_tree(served_baseline.pid)[1:])], cpu)
            # Warm-up rounds on every side. Queries one at a time all go to the worker that
            # answered last (sparql.workers.IdleWorkers), whose caches are then warm.
            done.append(measure(direct, server, repeat, warmup=2 * workers, client=client,
                                baseline=served_baseline))
    return done


def pin(pids: list[int], cpu: int | None) -> None:
    """Keep these processes, every thread, on `cpu` (threads they start later inherit it). On
    this shared virtual machine one CPU ran the same query up to 20 % slower than the other for
    seconds at a time, either CPU, while two processes on the same CPU, timed in turn, agreed
    within a few per cent; the system keeps a busy process on its CPU, so a worker and the
    direct process on different CPUs looked like a fast and a slow process. The server and the
    client stay where the system puts them."""
    if cpu is None:
        return
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), {cpu})
            except (OSError, ValueError):
                continue  # a thread that ended meanwhile


# --- the report -----------------------------------------------------------------------------


def pooled(starts: list[Start], name: str, side: str) -> list[float]:
    return [ms for start in starts for ms in getattr(start[name], side)]


def judged(starts: list[Start], name: str) -> bool:
    return name in QUERIES and statistics.median(pooled(starts, name, "direct")) >= 10


def overhead(starts: list[Start], name: str) -> float:
    """The verdict's figure: the median, over the starts, of each start's overhead ratio."""
    return statistics.median(start[name].ratio for start in starts)


def report(starts: list[Start]) -> bool:
    """Print the tables; whether every judged query's overhead is within 20 %."""
    names = list(starts[0])
    print(f"\nall starts pooled{'':<19} {'direct p50/p95/p99 ms':>24} "
          f"{'/sparql p50/p95/p99 ms':>26} {'runs':>5}")
    for name in names:
        d, e = percentiles(pooled(starts, name, "direct")), percentiles(
            pooled(starts, name, "endpoint"))
        mark = "" if all(start[name].same_bytes for start in starts) else \
            " (the client got other bytes than the direct query)"
        print(f"{name:<36} {d[0]:8.1f} {d[1]:7.1f} {d[2]:7.1f} {e[0]:10.1f} {e[1]:7.1f} "
              f"{e[2]:7.1f} {len(pooled(starts, name, 'direct')):5d}{mark}")
    within = True
    print(f"\n{'overhead (endpoint p50 / direct p50)':<36} {'each start':>{7 * len(starts)}} "
          f"{'median':>7}")
    for name in names:
        ratio = overhead(starts, name)
        if judged(starts, name):
            verdict = "ok" if ratio <= 1.2 else "OVER"
            within &= ratio <= 1.2
        else:
            verdict = "(<10 ms)" if name in QUERIES else "(fixed cost)"
        each = "".join(f"{start[name].ratio:7.2f}" for start in starts)
        print(f"{name:<36} {each} {ratio:7.2f} {verdict}")
    print(f"\nCPU ms per query, mean of starts: {'direct':>6} | {'client':>7} {'server':>7} "
          f"{'workers':>8} {'sum':>7} | (sum / direct) each start")
    for name in names:
        cpu = {part: statistics.fmean(start[name].cpu[part] for start in starts)
               for part in ("direct", "client", "server", "workers")}
        spent = cpu["client"] + cpu["server"] + cpu["workers"]
        each = " ".join(f"{cpu_ratio(start[name].cpu):5.2f}" for start in starts)
        print(f"{name:<36} {cpu['direct']:7.1f} | {cpu['client']:7.1f} {cpu['server']:7.1f} "
              f"{cpu['workers']:8.1f} {spent:7.1f} | {each}")
    if any(start[name].baseline for start in starts for name in names):
        print(f"\n{'this checkout against --baseline':<36} {'baseline p50/p95 ms':>20} "
              f"{'its ratio':>10} {'this/baseline p50 (median of starts)':>37}")
        for name in names:
            b = percentiles(pooled(starts, name, "baseline"))
            d = percentiles(pooled(starts, name, "direct"))
            versus = statistics.median(statistics.median(start[name].endpoint)
                                       / statistics.median(start[name].baseline)
                                       for start in starts)
            print(f"{name:<36} {b[0]:10.1f} {b[1]:8.1f} {b[0] / d[0]:10.2f} {versus:20.2f}")
    for name in names:
        plain = name.removesuffix(FAST_FORM)
        if plain != name and plain in names:
            fast = statistics.median(pooled(starts, name, "direct"))
            slow = statistics.median(pooled(starts, plain, "direct"))
            print(f"{plain}: the fast form takes {fast / slow:.2f}× the time of the plain one "
                  "(direct p50)")
    return within


def cpu_ratio(cpu: dict[str, float]) -> float:
    return (cpu["client"] + cpu["server"] + cpu["workers"]) / max(cpu["direct"], 0.01)


def parser() -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--events", type=int, default=100_000, help="synthetic events (100000)")
    args.add_argument("--repeat", type=int, default=30,
                      help="timed runs per query and start, fewer for slow queries (30)")
    args.add_argument("--starts", type=int, default=3,
                      help="fresh server and direct process starts, each timed and judged (3)")
    args.add_argument("--workers", type=int, default=2,
                      help="worker processes of the endpoint (2)")
    args.add_argument("--client", choices=sorted(CLIENTS), default="stdlib",
                      help="the HTTP client timing /sparql (stdlib: http.client)")
    args.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                      help="also time /sparql of this checkout of the project, in the same rounds")
    return args


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.starts < 1 or options.repeat < 2:
        parser().error("--starts must be 1 or more, --repeat 2 or more")
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-sparql-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        quads = build_store(data_dir / "store", options.events)
        print(f"/sparql timed with the {options.client} client")
        print(f"{options.events} events, {quads} quads loaded in "
              f"{time.perf_counter() - started:.1f} s")
        # The server gets its own copy (a checkpoint): the store is held by one process at a
        # time. The direct side reads another checkpoint, read-only, as the workers read the
        # snapshot they take of the server's.
        store = EmbeddedStore(data_dir / "store")
        try:
            store.snapshot(data_dir / "direct")
            for served in ("served", "served-baseline"):
                (data_dir / served).mkdir()
                if served == "served" or options.baseline is not None:
                    store.snapshot(data_dir / served / "store")
        finally:
            store.close()
        starts = run_starts(data_dir, options.starts, options.repeat, options.workers,
                            options.client, options.baseline)
    within = report(starts)
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}, at the end: "
          "{:.2f} {:.2f} {:.2f}".format(*load_at_start, *os.getloadavg()))
    print(f"\noverhead (median of {len(starts)} starts) within 20 % for every query of 10 ms or "
          "more" if within else
          f"\noverhead (median of {len(starts)} starts) over 20 % for some query of 10 ms or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
