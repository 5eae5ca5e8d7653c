"""What measuring SPARQL inclusions per source costs `/sparql`, on real servers.

    .venv/bin/python bench/bench_sparql_usage.py [--events 20000] [--repeat 40]

Writes N synthetic events (bench_sparql's generator, with event IRIs minted as Affiche mints them,
`/event/{source}-{12 hex}`, so that answers name sources) into an embedded store, copies it, and
starts two `affiche serve` on 127.0.0.1 over the two copies: one with
`AFFICHE_USAGE_SPARQL_SAMPLE=0` (inclusions not measured), one with `=1` (every answer read: the
worst case; the default reads one in ten). The same queries go to both, alternately, one at a
time, so whatever else the machine does weighs on both alike. Prints p50/p95 of each and the
ratio measured / not measured per query. Figures are only compared within one run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_pages import free_port, wait_for  # noqa: E402
from bench.bench_sparql import (  # noqa: E402
    BASE, PREFIXES, QUERIES, rdf_kind, synthetic_nquads,
)

ALL_EVENTS = PREFIXES + "SELECT ?e ?start WHERE { ?e schema:startDate ?start } LIMIT 10000"


def minted(nquads: bytes) -> bytes:
    """Event IRIs as Affiche mints them (`{source}-{12 hex}`), so answers name their sources."""
    return re.sub(rb"/event/e-(\d+)",
                  lambda m: b"/event/source-%02d-%012x" % (int(m[1]) % 40, int(m[1])), nquads)


def build(path: Path, events: int) -> None:
    import pyoxigraph as ox

    path.parent.mkdir(parents=True, exist_ok=True)
    store = ox.Store(str(path))
    store.bulk_load(minted(synthetic_nquads(events)), format=ox.RdfFormat.N_QUADS)
    store.flush()
    del store


@contextmanager
def serving(data_dir: Path, sample: int):
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "AFFICHE_DATA_DIR": str(data_dir),
           "AFFICHE_BASE_URL": BASE, "AFFICHE_SPARQL_RATE_PER_MINUTE": "0",
           "AFFICHE_SPARQL_MAX_CONCURRENT": "1", "AFFICHE_SPARQL_TIMEOUT_S": "600",
           "AFFICHE_SCHEDULER_POLL_S": "0", "AFFICHE_USAGE_SPARQL_SAMPLE": str(sample)}
    process = subprocess.Popen([sys.executable, "-m", "publisher.cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/sparql"
    try:
        wait_for(url + "?query=ASK%20%7B%7D", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def timed(client: httpx.Client, url: str, query: str) -> float:
    started = time.perf_counter()
    accept = "application/n-triples" if rdf_kind(query) else "application/sparql-results+json"
    answer = client.get(url, params={"query": query}, headers={"Accept": accept})
    answer.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--only", help="only the queries whose name contains this")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affiche-bench-usage-"))
    build(work / "off" / "store", args.events)
    shutil.copytree(work / "off", work / "on")
    queries = {name: minted(query.encode()).decode()  # the IRIs the data now has
               for name, query in {"10,000 events named": ALL_EVENTS, **QUERIES}.items()
               if not args.only or args.only in name}
    times = {(name, side): [] for name in queries for side in ("off", "on")}
    with ExitStack() as stack, httpx.Client(timeout=600) as client:
        urls = {side: stack.enter_context(serving(work / side, sample))
                for side, sample in (("off", 0), ("on", 1))}
        for name, query in queries.items():
            timed(client, urls["off"], query), timed(client, urls["on"], query)  # warm
            for index in range(args.repeat):
                for side in (("off", "on") if index % 2 else ("on", "off")):
                    times[(name, side)].append(timed(client, urls[side], query))
    counted = 0
    if (work / "on" / "usage.sqlite").exists():  # written when the server stopped
        with sqlite3.connect(work / "on" / "usage.sqlite") as db:
            [(counted,)] = db.execute("SELECT SUM(count) FROM usage WHERE kind = 'sparql'")
    print(f"{args.events} events, {args.repeat} runs per query and server, alternating; "
          f"{counted} inclusions counted by the measuring server")
    print(f"{'query':<36} {'not measured p50/p95':>22} {'measured p50/p95':>18} {'ratio p50':>10}")
    for name in queries:
        off, on = times[(name, "off")], times[(name, "on")]
        p = lambda xs, q: statistics.quantiles(xs, n=20)[q] if len(xs) > 1 else xs[0]  # noqa: E731
        print(f"{name:<36} {statistics.median(off):9.1f} /{p(off, 18):7.1f} ms "
              f"{statistics.median(on):7.1f} /{p(on, 18):7.1f} ms "
              f"{statistics.median(on) / statistics.median(off):9.3f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
