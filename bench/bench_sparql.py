"""SPARQL speed: typical aggregator queries on the store directly, and through `/sparql`.

    .venv/bin/python bench/bench_sparql.py [--events 100000] [--repeat 30] [--workers 2]
                                           [--client stdlib|httpx] [--baseline CHECKOUT]

Writes N synthetic schema.org events (spread over 40 source graphs, with venues, towns,
organisers, disciplines and prices) as N-Quads into an embedded store, then runs the same
queries (a) directly with `EmbeddedStore.run` and (b) through `/sparql` of `affiche serve` (real
uvicorn on 127.0.0.1 in its own process, over a checkpoint of the same store; public queries in
worker processes over a snapshot, with the guard, the row cap and negotiation), one at a time,
alternating (a) and (b), so that whatever else the machine does weighs on both alike. It prints
p50/p95/p99 of both and the overhead ratio (endpoint p50 / direct p50); the target is an
overhead within 20 % for queries of 10 ms or more. `ASK {}` shows the fixed cost of a request.
Two queries also come in the "fast form" the `/sparql` page's examples use, and the time of each
form is compared. Figures are only compared within one run; the load average at its start and
end is printed with them. `--baseline` also runs `affiche serve` from another checkout of the
project (the previous commit: `mkdir /tmp/base && git archive HEAD~1 | tar -x -C /tmp/base`) over
its own copy of the store, timed in the same rounds, and prints how the two endpoints compare: on
a shared machine, that ratio is what one run can tell about a change, far more than two runs'
figures.

What makes the comparison fair:
- the same work on both sides: the direct side serialises the answer in the format the client
  asks the endpoint for (SPARQL JSON, Turtle), and the client reads the whole answer (one
  kept-alive connection, gzip asked for as clients do, and decoded); the bytes the client gets
  are checked to be the direct side's, byte for byte, and a query where they are not is marked;
- a lean client: the direct side has no client at all, so the client's own cost is not the
  endpoint's overhead. The standard library's `http.client` cost the client 0.2-0.8 ms of CPU
  a query (measured with 3,000 events), httpx (`--client httpx`, what this benchmark used
  before) 0.7-1.6 ms: as much as the server's own path, for a budget of 2 ms at 10 ms;
- an idle server: `affiche serve` starts background work (the page warmer computes the agenda and
  the sitemap over every event: seconds of CPU at 100,000 events), which timed the first queries
  against a busy server on a 2-core machine. Timing starts once the server's processes, and
  this one, have used less than 5 % of a core for 3 s in a row; the direct side's store is
  opened read-only, as the workers open their snapshot, so that no compaction runs beside it;
- where the time goes: the CPU time each process spends per query (the client, the server, its
  worker processes, read from /proc) is printed next to the direct query's. On a loaded machine
  the endpoint's wall time also holds the waits for a CPU at each of its four hand-overs (client
  → server → worker → server → client), which the direct call does not have: when the CPU
  figures show little overhead and the wall figures much, the machine was busy.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
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
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_pages import free_port, wait_for  # noqa: E402
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


def cpu_ms(pids: list[int]) -> float:
    """CPU time the processes' live threads have used so far, in ms (the scheduler's own count,
    in ns, rather than /proc/PID/stat's 10 ms ticks; 0 where /proc is not)."""
    total = 0
    for pid in pids:
        for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(schedstat.read_text(encoding="ascii").split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e6


def process_tree(pid: int) -> list[int]:
    """`pid`, then its children (the server, then its query workers and multiprocessing's
    resource tracker), whichever of its threads started them."""
    children: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(child) for child in listing.read_text(encoding="ascii").split()]
        except OSError:
            continue
    return [pid, *sorted(set(children))]


def wait_until_idle(pid: int, quiet_s: float = 3.0, timeout_s: float = 300.0) -> float:
    """Wait until the server's processes have used less than 5 % of a core for `quiet_s` in a
    row (its start-up work done); the seconds waited."""
    started = time.monotonic()
    quiet_since, before = started, cpu_ms(process_tree(pid))
    while time.monotonic() - started < timeout_s:
        time.sleep(0.5)
        now = cpu_ms(process_tree(pid))
        if now - before > 0.05 * 500:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            break
        before = now
    return time.monotonic() - started


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


@dataclass
class Timings:
    """One query's runs: wall times (ms) of each side, CPU per run of each process, and whether
    the client got the direct side's bytes."""

    direct: list[float] = field(default_factory=list)
    endpoint: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)  # the --baseline checkout's endpoint
    cpu: dict[str, float] = field(default_factory=dict)
    same_bytes: bool = True


def measure(store: EmbeddedStore, server: "Server", repeat: int, warmup: int,
            client: str = "stdlib", baseline: "Server | None" = None) -> dict[str, Timings]:
    """Time each query directly and through /sparql (and the baseline's), alternating, so that
    whatever else the machine does weighs on all alike."""
    timings = {}
    http = CLIENTS[client](server.url)
    base_http = CLIENTS[client](baseline.url) if baseline is not None else None
    try:
        for name, query in {"ASK {} (fixed cost)": "ASK {}", **QUERIES}.items():
            accept = ACCEPT["turtle" if rdf_kind(query) else "json"]

            def on_store() -> bytes:
                return store.run(query, results_format="json", rdf_format="turtle").body

            def on_endpoint() -> bytes:
                return http.post(query.encode(), accept)

            def on_baseline() -> bytes:
                return base_http.post(query.encode(), accept)

            for _ in range(warmup):
                on_store()
                on_endpoint()
                if base_http is not None:
                    on_baseline()
            timing = timings[name] = Timings(same_bytes=on_store() == on_endpoint())
            pids = process_tree(server.pid)
            direct_cpu = client_cpu = 0.0
            server_cpu = cpu_ms(pids[:1]), cpu_ms(pids[1:])
            for round_ in range(repeat):
                # The baseline's endpoint before this one every other round: each then follows
                # the other as often (outside the CPU counts, which are this server's).
                if base_http is not None and round_ % 2:
                    timing.baseline.append(time_ms(on_baseline))
                cpu = time.process_time()
                timing.direct.append(time_ms(on_store))
                middle = time.process_time()
                timing.endpoint.append(time_ms(on_endpoint))
                direct_cpu += middle - cpu
                client_cpu += time.process_time() - middle
                if base_http is not None and not round_ % 2:
                    timing.baseline.append(time_ms(on_baseline))
            timing.cpu = {"direct": direct_cpu * 1000 / repeat,
                          "client": client_cpu * 1000 / repeat,
                          "server": (cpu_ms(pids[:1]) - server_cpu[0]) / repeat,
                          "workers": (cpu_ms(pids[1:]) - server_cpu[1]) / repeat}
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


def report(timings: dict[str, Timings]) -> bool:
    print(f"\n{'query':<36} {'direct p50/p95/p99 ms':>24} {'/sparql p50/p95/p99 ms':>26} "
          f"{'ratio':>6}")
    within = True
    for name, timing in timings.items():
        d, e = percentiles(timing.direct), percentiles(timing.endpoint)
        ratio = e[0] / d[0]
        judged = d[0] >= 10 and name in QUERIES
        verdict = ("ok" if ratio <= 1.2 else "OVER") if judged else "(<10 ms)"
        if not timing.same_bytes:
            verdict += " (the client got other bytes than the direct query)"
        within &= ratio <= 1.2 or not judged
        print(f"{name:<36} {d[0]:8.1f} {d[1]:7.1f} {d[2]:7.1f} {e[0]:10.1f} {e[1]:7.1f} "
              f"{e[2]:7.1f} {ratio:6.2f} {verdict}")
    print(f"\nCPU ms per query: {'direct':>8} | {'client':>7} {'server':>7} {'workers':>8} "
          f"{'sum':>7} {'ratio':>6}")
    for name, timing in timings.items():
        cpu = timing.cpu
        spent = cpu["client"] + cpu["server"] + cpu["workers"]
        print(f"{name:<36} {cpu['direct']:7.1f} | {cpu['client']:7.1f} {cpu['server']:7.1f} "
              f"{cpu['workers']:8.1f} {spent:7.1f} {spent / max(cpu['direct'], 0.01):6.2f}")
    if any(timing.baseline for timing in timings.values()):
        print(f"\n{'this checkout against --baseline':<36} {'baseline p50/p95 ms':>20} "
              f"{'its ratio':>10} {'this/baseline p50 p95':>22}")
        for name, timing in timings.items():
            b, e = percentiles(timing.baseline), percentiles(timing.endpoint)
            d = percentiles(timing.direct)
            print(f"{name:<36} {b[0]:10.1f} {b[1]:8.1f} {b[0] / d[0]:10.2f} "
                  f"{e[0] / b[0]:11.2f} {e[1] / b[1]:10.2f}")
    for name in timings:
        plain = name.removesuffix(FAST_FORM)
        if plain != name and plain in timings:
            fast = percentiles(timings[name].direct)[0]
            slow = percentiles(timings[plain].direct)[0]
            print(f"{plain}: the fast form takes {fast / slow:.2f}× the time of the plain one "
                  "(direct p50)")
    return within


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--events", type=int, default=100_000, help="synthetic events (100000)")
    args.add_argument("--repeat", type=int, default=30, help="timed runs per query (30)")
    args.add_argument("--workers", type=int, default=2,
                      help="worker processes of the endpoint (2)")
    args.add_argument("--client", choices=sorted(CLIENTS), default="stdlib",
                      help="the HTTP client timing /sparql (stdlib: http.client)")
    args.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                      help="also time /sparql of this checkout of the project, in the same rounds")
    options = args.parse_args(argv)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-sparql-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        quads = build_store(data_dir / "store", options.events)
        print(f"/sparql timed with the {options.client} client")
        print(f"{options.events} events, {quads} quads loaded in "
              f"{time.perf_counter() - started:.1f} s")
        store = EmbeddedStore(data_dir / "store")
        # The server gets its own copy (a checkpoint): the store is held by one process at a
        # time, and this one keeps the original to time the direct queries alongside, opened
        # read-only as the workers open their snapshot (no compaction running beside them).
        for served in ("served", "served-baseline"):
            (data_dir / served).mkdir()
            if served == "served" or options.baseline is not None:
                store.snapshot(data_dir / served / "store")
        store.close()
        store = EmbeddedStore.read_only(data_dir / "store")
        try:
            with ExitStack() as servers:
                server = servers.enter_context(serving(data_dir / "served", options.workers))
                baseline = None if options.baseline is None else servers.enter_context(
                    serving(data_dir / "served-baseline", options.workers, options.baseline))
                # Warm-up rounds on every side. Queries one at a time all go to the worker that
                # answered last (sparql.workers.IdleWorkers), whose caches are then warm.
                timings = measure(store, server, options.repeat, warmup=2 * options.workers,
                                  client=options.client, baseline=baseline)
        finally:
            store.close()
    within = report(timings)
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}, at the end: "
          "{:.2f} {:.2f} {:.2f}".format(*load_at_start, *os.getloadavg()))
    print("\noverhead within 20 % for every query of 10 ms or more" if within
          else "\noverhead over 20 % for some query of 10 ms or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
