"""Load and harvest at once: pages and /sparql under concurrent clients while harvests run.

    .venv/bin/python bench/load_test.py [--seconds 120] [--concurrency 8] [--events 1500]
                                        [--max-requests 200000] [--memory-csv FILE]

Everything stays on 127.0.0.1 and is bounded in time and count. The script starts `affiche demo`
(real uvicorn, the embedded store, /sparql in worker processes, the organiser API) in a
subprocess, and a feed server of its own serving an invented CSV programme (the Théâtre des
Hirondelles, Namur) that changes on every request, so every harvest writes. An operator token
registers that feed as a source through the API. Then, in the same run:

1. `baseline`: a quarter of the time, the clients alone (home, event and place pages, a source
   report, the sitemap, three /sparql queries);
2. `with harvests`: the rest of the time, the same clients while harvests of the feed are
   triggered one after the other through the API.

Printed per phase: requests, errors (any status ≥ 400 or transport error, by kind), throughput,
latency percentiles per kind of request, and apart from errors the /sparql queries shed by the
concurrency cap (503 with Retry-After, the designed answer when more than
AFFICHE_SPARQL_MAX_CONCURRENT queries are running); the ratio of the second phase's percentiles to the
baseline's; harvests completed and failed; the resident memory of the server and its worker
processes sampled every two seconds (first, last, highest; the least-squares slope over the second
half of the run in MiB/min and the means of the first and last quarters, to tell a leak from a
warm-up); `--memory-csv` keeps every sample. Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pages import free_port, stop_server  # noqa: E402
from publisher.accounts import Accounts  # noqa: E402

LOOPBACK = "127.0.0.1"
QUERIES = [
    "PREFIX schema: <http://schema.org/> SELECT ?e ?n WHERE { ?e a schema:Event ; schema:name ?n } LIMIT 50",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "PREFIX schema: <http://schema.org/> SELECT ?p (COUNT(?e) AS ?n) WHERE { ?e schema:location ?p } "
    "GROUP BY ?p ORDER BY DESC(?n) LIMIT 10",
]


# --- the feed ----------------------------------------------------------------------------------


def programme(events: int, edition: int) -> bytes:
    """A CSV programme; each edition renames a tenth of the events, so each harvest has work."""
    header = "identifiant;titre;description;debut;lieu;adresse;code_postal;ville;pays;prix;devise\n"
    rows = []
    for n in range(events):
        title = f"Concert n°{n}" + (f" (édition {edition})" if n % 10 == edition % 10 else "")
        rows.append(f"hir-{n:05d};{title};Musique de chambre aux Hirondelles.;"
                    f"{n % 28 + 1:02d}/{n % 12 + 1:02d}/2027 20h00;Théâtre des Hirondelles;"
                    f"12 rue des Brasseurs;5000;Namur;BE;18;EUR\n")
    return (header + "".join(rows)).encode("utf-8")


def start_feed_server(events: int) -> tuple[ThreadingHTTPServer, str]:
    editions = iter(range(1, 1_000_000))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = programme(events, next(editions))
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{LOOPBACK}:{server.server_address[1]}/agenda.csv"


# --- the server ----------------------------------------------------------------------------------


def start_affiche(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(data_dir),
           "AFFICHE_DATA_DIR": str(data_dir), "AFFICHE_SPARQL_RATE_PER_MINUTE": "0",
           "AFFICHE_FETCH_ALLOW_HOSTS": LOOPBACK, "AFFICHE_HARVEST_MAX_LOSS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "publisher.cli", "demo", "--host", LOOPBACK,
                                "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"affiche demo exited with {process.returncode}")
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("affiche demo did not answer within 120 s")


def rss_kib(pid: int, descendants: bool = True) -> int:
    """Resident memory of a process and all its descendants (the /sparql workers), from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{current}/task").iterdir() if descendants else ():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (OSError, StopIteration):
            continue
    return total


# --- the load ------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.shed: Counter[str] = Counter()  # 503 with Retry-After: over AFFICHE_SPARQL_MAX_CONCURRENT
        self.requests = 0

    def summary(self, seconds: float) -> dict:
        every = [x for values in self.latencies.values() for x in values]
        return {"requests": self.requests, "errors": sum(self.errors.values()),
                "per_second": self.requests / seconds if seconds else 0.0,
                "kinds": {kind: percentiles(values) for kind, values in sorted(self.latencies.items())},
                "all": percentiles(every)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1] * 1000,
            "mean": statistics.fmean(ordered) * 1000}


def targets(base: str) -> list[tuple[str, str, dict]]:
    """(kind, URL, params) to pick from: pages of each kind and a few /sparql queries."""
    select = "PREFIX schema: <http://schema.org/> SELECT ?e ?p WHERE { ?e a schema:Event ; " \
             "schema:location ?p } LIMIT 40"
    rows = httpx.get(base + "/sparql", params={"query": select}, timeout=30,
                     headers={"Accept": "application/sparql-results+json"}).json()["results"]["bindings"]
    chosen = [("home", base + "/", {}), ("source", base + "/source/theatre-lumiere", {}),
              ("sitemap", base + "/sitemap.xml", {})]
    chosen += [("event", row["e"]["value"].replace("http://127.0.0.1:8000", base), {}) for row in rows]
    chosen += [("place", row["p"]["value"].replace("http://127.0.0.1:8000", base), {}) for row in rows[:5]]
    chosen += [("sparql", base + "/sparql", {"query": q}) for q in QUERIES]
    return chosen


async def client(http: httpx.AsyncClient, choices, tally: Tally, stop_at: float, budget: list[int],
                 rng: random.Random) -> None:
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        kind, url, params = rng.choice(choices)
        started = time.monotonic()
        try:
            response = await http.get(url, params=params, headers={"Accept": "text/html"}
                                      if kind != "sparql" else {"Accept": "application/sparql-results+json"})
            await response.aread()
            if response.status_code == 503 and "retry-after" in response.headers:
                tally.shed[kind] += 1  # the concurrency cap's backpressure, by design
            elif response.status_code >= 400:
                tally.errors[f"{kind} HTTP {response.status_code}"] += 1
        except httpx.HTTPError as exc:
            tally.errors[f"{kind} {type(exc).__name__}"] += 1
        tally.latencies[kind].append(time.monotonic() - started)
        tally.requests += 1


async def load(base: str, choices, seconds: float, concurrency: int, budget: list[int]) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http, choices, tally, stop_at, budget, random.Random(n))
                               for n in range(concurrency)))
    return tally


def harvest_loop(base: str, token: str, stop: threading.Event, results: Counter,
                 durations: list[float]) -> None:
    """Trigger a harvest of the feed through the API, wait for it to end, and again, until stopped."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        while not stop.is_set():
            started = time.monotonic()
            try:
                state = run_one_harvest(http, stop, results)
            except httpx.HTTPError as exc:  # counted as a failure; the loop goes on
                results[f"transport error ({type(exc).__name__})"] += 1
                stop.wait(1)
                continue
            if state is None:
                continue
            results[state if not stop.is_set() else f"{state} at the end"] += 1
            if state == "done":
                durations.append(time.monotonic() - started)


def run_one_harvest(http: httpx.Client, stop: threading.Event, results: Counter) -> str | None:
    """Trigger one harvest and follow its job to its end; None when the API refused it."""
    job = http.post("/api/sources/hirondelles/harvest")
    if job.status_code not in (200, 202):
        results[f"refused {job.status_code}"] += 1
        stop.wait(1)
        return None
    job_url, state = job.json()["url"], job.json()["state"]
    while state in ("queued", "running") and not stop.is_set():
        stop.wait(0.5)
        state = http.get(job_url).json()["state"]
    return state


def descendants(pid: int) -> int:
    """How many processes run under `pid` (the /sparql workers and their helpers)."""
    count, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(child) for child in (task / "children").read_text().split()]
                count += len(children)
                pending.extend(children)
        except OSError:
            continue
    return count


def sample_memory(pid: int, stop: threading.Event, samples: list[tuple[float, int, int, int]],
                  every: float = 2.0) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, rss_kib(pid), rss_kib(pid, descendants=False),
                        descendants(pid)))
        stop.wait(every)


def slope_mib_per_minute(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (KiB) against time (s), in MiB per minute."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread / 1024 * 60


def memory_report(memory: list[tuple[float, int, int, int]], column: int) -> dict[str, float]:
    """First, last, highest; slope over the second half; means of the first and last quartiles."""
    values = [sample[column] / 1024 for sample in memory]
    end = memory[-1][0]
    half = [(sample[0], sample[column]) for sample in memory if sample[0] >= end / 2]
    quarter = max(1, len(values) // 4)
    return {"first": values[0], "last": values[-1], "highest": max(values),
            "half_from": half[0][1] / 1024, "half_to": half[-1][1] / 1024,
            "slope": slope_mib_per_minute(half), "q1": statistics.fmean(values[:quarter]),
            "q4": statistics.fmean(values[-quarter:])}


# --- report --------------------------------------------------------------------------------------


def print_phase(name: str, tally: Tally, seconds: float) -> dict:
    summary = tally.summary(seconds)
    print(f"\n== {name}: {summary['requests']} requests in {seconds:.0f} s "
          f"({summary['per_second']:.1f}/s), {summary['errors']} errors, "
          f"{tally.shed.total()} shed (503 with Retry-After)")
    for error, count in tally.errors.most_common():
        print(f"   error  {error}: {count}")
    print(f"   {'kind':<8} {'n':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, figures in [*summary["kinds"].items(), ("all", summary["all"])]:
        count = len(tally.latencies[kind]) if kind != "all" else tally.requests
        if not figures:  # no request answered in this phase (a very short run)
            print(f"   {kind:<8} {count:>7} {'—':>8} {'—':>8} {'—':>8} {'—':>8}")
            continue
        print(f"   {kind:<8} {count:>7} {figures['p50']:>8.1f} {figures['p90']:>8.1f} "
              f"{figures['p99']:>8.1f} {figures['max']:>8.1f}")
    return summary


def ratio(new: float | None, old: float | None) -> str:
    return f"{new / old:.2f}" if new and old else "—"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="whole run (at most 600)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--events", type=int, default=1500, help="events in the harvested feed")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many")
    parser.add_argument("--memory-csv", help="write every memory sample (seconds, KiB) to this file")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 8), 600)

    feed_server, feed_url = start_feed_server(args.events)
    with tempfile.TemporaryDirectory(prefix="affiche-load-") as temporary:
        data_dir = Path(temporary)
        process, base = start_affiche(data_dir)
        try:
            token = Accounts(data_dir).issue_token(label="load test").token
            http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            http.post("/api/organisers", json={"id": "hirondelles", "name": "Les Hirondelles"})
            created = http.post("/api/sources", json={
                "id": "hirondelles", "name": "Théâtre des Hirondelles", "url": feed_url,
                "format": "csv", "organiser": "hirondelles"})
            if created.status_code not in (201, 409):
                raise SystemExit(f"could not register the feed: {created.status_code} {created.text}")
            choices = targets(base)
            print(f"affiche demo at {base} (pid {process.pid}); {len(choices)} URLs; "
                  f"{args.concurrency} clients; feed of {args.events} events at {feed_url}")

            memory: list[tuple[float, int, int, int]] = []
            stop_sampling = threading.Event()
            sampler = threading.Thread(target=sample_memory, args=(process.pid, stop_sampling, memory))
            sampler.start()
            budget = [args.max_requests]

            baseline_s = seconds / 4
            baseline = asyncio.run(load(base, choices, baseline_s, args.concurrency, budget))

            harvests: Counter[str] = Counter()
            durations: list[float] = []
            stop_harvests = threading.Event()
            harvester = threading.Thread(target=harvest_loop,
                                         args=(base, token, stop_harvests, harvests, durations))
            harvester.start()
            loaded_s = seconds - baseline_s
            loaded = asyncio.run(load(base, choices, loaded_s, args.concurrency, budget))
            stop_harvests.set()
            harvester.join(timeout=120)
            stop_sampling.set()
            sampler.join()
            alive = process.poll() is None
        finally:
            stop_server(process)
            feed_server.shutdown()

    first = print_phase("baseline (no harvest)", baseline, baseline_s)
    second = print_phase("with harvests", loaded, loaded_s)
    print("\n== ratios, with harvests / baseline (same run)")
    for key in ("p50", "p90", "p99"):
        print(f"   {key}: {ratio(second['all'].get(key), first['all'].get(key))}")
    print(f"   throughput: {ratio(second['per_second'], first['per_second'])}")
    print(f"\n== harvests: {dict(harvests)}; each "
          + (f"{statistics.median(durations):.1f} s median" if durations else "—"))
    for label, column in (("server + workers", 1), ("server process alone", 2)):
        if not memory:
            break
        figures = memory_report(memory, column)
        print(f"\n== memory ({label}, RSS): first {figures['first']:.0f} MiB, last "
              f"{figures['last']:.0f} MiB, highest {figures['highest']:.0f} MiB ({len(memory)} samples)"
              f"\n   second half: {figures['half_from']:.0f} → {figures['half_to']:.0f} MiB, "
              f"slope {figures['slope']:+.2f} MiB/min; mean of the first quarter {figures['q1']:.0f} MiB,"
              f" of the last quarter {figures['q4']:.0f} MiB")
    if memory:
        print(f"   processes under the server: {min(s[3] for s in memory)}–{max(s[3] for s in memory)}")
    if args.memory_csv:
        with open(args.memory_csv, "w", encoding="utf-8") as out:
            out.write("seconds,server_and_workers_kib,server_kib,processes\n")
            out.writelines(f"{t:.1f},{a},{b},{n}\n" for t, a, b, n in memory)
    print(f"\n== server still running at the end: {alive}")
    failed = baseline.errors.total() + loaded.errors.total()
    broken = sum(count for outcome, count in harvests.items()
                 if outcome == "failed" or outcome.startswith("transport error"))
    return 1 if failed or not alive or broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
