"""The benchmark suite: a region's listings harvested, validated and published, in one table.

    .venv/bin/python -m bench.run --events 10000 [--json out.json] [--compare old.json]

Generates a synthetic region (`bench/synthetic.py`: many sources in five feed formats, shared
venues, French and English, recurrences, offers, about 2 % invalid events) as local feed files,
then measures, each next to a baseline taken in the same run:

- full harvest: each format's sources through the real `harvest()` (fetch from disk, parse,
  normalise, validate, load into an embedded store, change log, feed history), in a fresh process
  per format: events per second and peak memory (VmHWM) next to the largest source's size;
- affiche harvest (`command`): the whole region through one `affiche harvest` into an empty data
  directory, as a deployment runs it (every source in one process and its workers, then the
  dumps): seconds end to end and the writing process's peak memory;
- re-harvest: every source again unchanged (same bytes), then with 1 % of the events changed:
  seconds, store writes (graphs replaced, triples deleted or inserted) and change-feed members;
- one 10,000-event source (CSV): full harvest, unchanged re-harvest, and a forced re-parse;
- validation: Affiche's compiled path vs whole-graph pyshacl (on a subset: pyshacl is slow);
- dumps: each format's graph files on their own (seconds, MB/s of uncompressed output, from each
  graph's N-Triples, as a harvest makes them), then `write_dumps` after the harvest (the graph
  files current), then with every graph read from the store, next to the store read out as raw
  N-Quads (the baseline);
- SPARQL: typical aggregator queries, p50/p99 directly on the store vs through `/sparql`;
- event pages: req/s and p50/p99 of `/event/{key}` vs a static file of the same bytes, same
  server (wrk when installed, else httpx), and the server's resident memory;
- change feed: replaying `/feed` pages over HTTP (members per second) vs reading the log.

`--page-scale N` also bulk-loads N ready-made events (bench_pages' generator) into a second store
and measures event pages there, to compare the cost per request at N with the cost at `--events`.
`--compare old.json` prints new/old ratios of every figure of two runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402
from bench.processes import in_child, status_mb, wait_until_idle  # noqa: E402
from bench.bench_pages import BASE, free_port, stop_server, wait_for  # noqa: E402

TREE_MEMBER = "https://w3id.org/tree#member"


@dataclass
class Figure:
    section: str
    measure: str
    value: float
    unit: str
    note: str = ""


# --- harvesting in a fresh process ------------------------------------------------------------


class _CountingOxigraph:
    """pyoxigraph's store, counting the triples each write sends it: the lines of a load, and
    those an update deletes or inserts (a re-harvest writes what changed, not the whole graph).
    A graph with blank nodes is replaced by `DROP` + `INSERT DATA`: only its inserts count."""

    def __init__(self, store) -> None:
        self._store, self.triples = store, 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def bulk_load(self, data, *args, **kwargs):
        self.triples += data.count(b"\n")
        return self._store.bulk_load(data, *args, **kwargs)

    def load(self, data, *args, **kwargs):
        self.triples += data.count(b"\n")
        return self._store.load(data, *args, **kwargs)

    def update(self, update, *args, **kwargs):
        self.triples += sum(1 for line in update.splitlines() if line.endswith(" ."))
        return self._store.update(update, *args, **kwargs)


def _counting_store(path: Path):
    """The embedded store, counting what a harvest writes (graphs replaced, triples written)."""
    from sparql.store import EmbeddedStore

    class CountingStore(EmbeddedStore):
        writes = 0

        def __init__(self, path) -> None:
            super().__init__(path)
            self._store = self._counting = _CountingOxigraph(self._store)

        @property
        def triples(self) -> int:  # read after `close` too
            return self._counting.triples

        def replace_graph(self, graph_iri, graph):
            self.writes += 1
            return super().replace_graph(graph_iri, graph)

    return CountingStore(path)


def _harvest_child(data_dir: str, config: str, source_ids: list[str] | None, use_history: bool,
                   profile: str | None, workers: int, queue) -> None:
    from harvester.changes import ChangeLog
    from harvester.incremental import FeedHistory
    from harvester.pipeline import HarvestTask, harvest_all
    from harvester.sources import load_sources
    from harvester.fetch import FetchPolicy
    from publisher.dumps import graph_files
    from publisher.settings import Settings

    data = Path(data_dir)
    settings = Settings(base_url=BASE, data_dir=data)
    sources = [s for s in load_sources(Path(config)) if source_ids is None or s.id in source_ids]
    store = _counting_store(data / "store")
    changes = ChangeLog(data, page_size=settings.feed_page_size)
    # the settings that matter for local feed files (publisher.cli.fetch_policy has them all)
    policy = FetchPolicy(max_bytes=settings.fetch_max_bytes, max_triples=settings.harvest_max_triples,
                         max_events=settings.harvest_max_events,
                         recurrence_days=settings.harvest_recurrence_days)
    before = changes.position().seq if changes.path.exists() else 0
    rss_before = status_mb("VmRSS")
    totals = {"found": 0, "published": 0, "quarantined": 0, "unchanged": 0, "errors": 0}
    profiler = _start_profiler() if profile else None
    cpu_started = _cpu_seconds()
    started = time.perf_counter()
    tasks = [HarvestTask(source, FeedHistory(settings.harvest_dir, source.id,
                                             settings.harvest_archive_keep) if use_history else None)
             for source in sources]
    # workers from the start (workers_after_s=0): the writing process's memory is then the
    # writer's alone, not that of the sources it would read itself before starting them
    # as `affiche harvest`: each graph's dump files made as it is written (then `write_dumps`
    # puts them together: the dumps section)
    reports = harvest_all(tasks, store, BASE, settings.reports_dir, policy, changes, workers,
                          workers_after_s=0, graph_files=graph_files(settings.dumps_dir))
    for report in reports:
        for key, value in report.summary.items():
            if key in totals:
                totals[key] += value
        totals["unchanged"] += report.unchanged
        totals["errors"] += report.error is not None
    store.flush()
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_started  # what other load on the machine leaves alone
    if profiler is not None:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(show_all=False), encoding="utf-8")
    after = changes.position().seq if changes.path.exists() else 0
    store.close()
    queue.put({**totals, "seconds": seconds, "cpu_seconds": cpu_seconds, "writes": store.writes, "triples": store.triples,
               "members": after - before, "rss_before_mb": rss_before,
               "peak_mb": status_mb("VmHWM"), "workers_peak_mb": _workers_peak_mb(), "workers": workers,
               "largest_source_mb": max(s.path.stat().st_size for s in sources) / 1e6,
               "sources": len(sources)})


def _command_child(data_dir: str, config: str, workers: int, queue) -> None:
    """`affiche harvest` as the command runs it (`publisher.cli.harvest_sources`: every source of
    the region in one process, then `write_dumps`), into an empty data directory."""
    from harvester.sources import load_sources
    from publisher.cli import harvest_sources
    from publisher.settings import Settings

    settings = Settings(base_url=BASE, data_dir=Path(data_dir), harvest_workers=workers)
    sources = load_sources(Path(config))
    cpu_started = _cpu_seconds()
    started = time.perf_counter()
    reports = harvest_sources(settings, sources, show_progress=False)
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu_started,
               "found": sum(r.summary["found"] for r in reports),
               "failed": sum(r.error is not None for r in reports), "sources": len(sources),
               "peak_mb": status_mb("VmHWM"), "workers_peak_mb": _workers_peak_mb(),
               "dumps": len(list((Path(data_dir) / "dumps").glob("*.gz")))})


def command_section(work: Path, config: Path, workers: int, figures: list[Figure]) -> dict:
    """The whole region through one `affiche harvest` (harvest and dumps), timed end to end."""
    r = in_child(_command_child, str(work / "command-data"), str(config), workers)
    shutil.rmtree(work / "command-data", ignore_errors=True)
    figures.append(Figure("affiche harvest", "whole region, harvest + dumps: seconds", r["seconds"],
                          "s", f"{r['found']} events from {r['sources']} sources in one process "
                          f"and {workers} worker process(es), {r['failed']} failed; "
                          f"{r['dumps']} dump files"))
    figures.append(Figure("affiche harvest", "events/s", r["found"] / r["seconds"], "ev/s",
                          f"{r['found'] / r['cpu_seconds']:.0f} events/CPU-s"))
    figures.append(Figure("affiche harvest", "peak memory", r["peak_mb"], "MB",
                          f"the writing process, for the whole region (workers: "
                          f"{r['workers_peak_mb']:.0f} MB at most)"))
    return r


def _cpu_seconds() -> float:
    """CPU time of this process and of its worker processes that ended (all of them, once a
    harvest returns): the work done, whatever else the machine was doing."""
    own = time.process_time()
    children = os.times()
    return own + children.children_user + children.children_system


def _workers_peak_mb() -> float:
    """The largest peak resident memory of a worker process that ended (Linux: kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _start_profiler():
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: .venv/bin/pip install pyinstrument") from None
    profiler = Profiler(interval=0.005)
    profiler.start()
    return profiler


def _dumps_child(data_dir: str, queue) -> None:
    from harvester.changes import ChangeLog
    from publisher import dumps
    from sparql.graph_files import MAKERS, compress, one_triple_a_line
    from sparql.store import EmbeddedStore

    data = Path(data_dir)
    store = EmbeddedStore(data / "store")
    figures: dict = {}
    # write_dumps as `affiche harvest` runs it: the harvest made the graph files
    rss = status_mb("VmRSS")
    started = time.perf_counter()
    files = dumps.write_dumps(store, data / "dumps", changes=ChangeLog(data))
    figures["write_dumps"] = {"seconds": time.perf_counter() - started, "files": len(files),
                              "gz_mb": sum(f.size for f in files) / 1e6,
                              "growth_mb": status_mb("VmHWM") - rss}
    sources = dumps.source_graphs(store)
    # the baseline: the whole store streamed out as raw N-Quads (what every dump used to read)
    counter = _CountingWriter()
    started = time.perf_counter()
    store.dump_nquads(counter.wrapping(_Discard()))
    figures["raw"] = {"seconds": time.perf_counter() - started, "mb": counter.bytes / 1e6}
    # each format's graph files, made from each graph's N-Triples (as a harvest makes them)
    for name in MAKERS:
        figures[name] = {"seconds": 0.0, "mb": 0.0, "gz_mb": 0.0}
    for source in sources:
        buffer = io.BytesIO()
        store.dump_graph(buffer, source.graph, "nt")
        ntriples = one_triple_a_line(buffer.getvalue())
        for name, make in MAKERS.items():
            started = time.perf_counter()
            text = make(source.graph, ntriples)
            member = compress(text)
            figures[name]["seconds"] += time.perf_counter() - started
            figures[name]["mb"] += len(text) / 1e6
            figures[name]["gz_mb"] += len(member) / 1e6
    # and with no graph file to start from (a store written by hand, or a remote store)
    shutil.rmtree(data / "dumps" / dumps.PARTS)
    started = time.perf_counter()
    dumps.write_dumps(store, data / "dumps", changes=ChangeLog(data))
    figures["from_store"] = {"seconds": time.perf_counter() - started}
    store.close()
    queue.put(figures)


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _CountingWriter:
    """Counts the uncompressed bytes a dump writes on their way into gzip."""

    def __init__(self) -> None:
        self.bytes, self._out = 0, None

    def wrapping(self, out):
        self._out = out
        return self

    def write(self, data) -> int:
        self.bytes += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


# --- the sections ---------------------------------------------------------------------------


def full_harvest(data_dir: Path, config: Path, sources: list[synthetic.SyntheticSource],
                 figures: list[Figure], profile_dir: Path | None = None, workers: int = 1) -> dict:
    """Each format's sources harvested in a fresh process, with `workers` worker processes
    (a profile is taken with one: the whole pipeline in the profiled process)."""
    total = {"seconds": 0.0, "found": 0, "peak_mb": 0.0}
    workers = 1 if profile_dir else workers
    for feed_format in synthetic.FORMATS:
        ids = [s.id for s in sources if s.format == feed_format]
        if not ids:
            continue
        profile = str(profile_dir / f"harvest-{feed_format}.txt") if profile_dir else None
        r = in_child(_harvest_child, str(data_dir), str(config), ids, True, profile, workers)
        largest = max((s for s in sources if s.format == feed_format), key=lambda s: s.events)
        # measures are named alike at every size, so that --compare finds them; counts go in notes
        label = feed_format
        figures.append(Figure("full harvest", f"{label} events/s", r["found"] / r["seconds"], "ev/s",
                              f"{r['sources']} sources, {r['found']} events, {r['quarantined']} quarantined, "
                              f"{r['errors']} failed, {r['seconds']:.1f} s"))
        figures.append(Figure("full harvest", f"{label} events/CPU-s", r["found"] / r["cpu_seconds"],
                              "ev/s", "per second of the harvesting process's CPU time"))
        figures.append(Figure("full harvest", f"{label} peak memory", r["peak_mb"], "MB",
                              f"the writing process; {r['rss_before_mb']:.0f} MB before the first "
                              f"source; largest source {r['largest_source_mb']:.2f} MB, "
                              f"{largest.events} events"))
        peak = max(r["peak_mb"], r["workers_peak_mb"])
        # where the feeds were read: the workers, or the writing process itself when it had none
        reader = r["workers_peak_mb"] or r["peak_mb"]
        per_event_kb = (reader - r["rss_before_mb"]) * 1000 / largest.events
        figures.append(Figure("full harvest", f"{label} worker peak memory", r["workers_peak_mb"],
                              "MB", f"the largest of {r['workers']} worker processes (0: none, the "
                              f"writing process read the feeds); {per_event_kb:.0f} kB per event "
                              "of the largest source, above an idle process"))
        total["seconds"] += r["seconds"]
        total["cpu_seconds"] = total.get("cpu_seconds", 0.0) + r["cpu_seconds"]
        total["found"] += r["found"]
        total["peak_mb"] = max(total["peak_mb"], peak)
    figures.append(Figure("full harvest", "all formats events/s", total["found"] / total["seconds"],
                          "ev/s", f"{total['found']} events in {total['seconds']:.1f} s; "
                          f"{total['found'] / total['cpu_seconds']:.0f} events/CPU-s; "
                          f"{workers} worker process(es)"))
    figures.append(Figure("machine", "load average (1 min) after the harvest", os.getloadavg()[0],
                          "", f"{os.cpu_count()} CPUs: above it, other work slowed the figures"))
    return total


def reharvest(data_dir: Path, config: Path, sources: list[synthetic.SyntheticSource],
              figures: list[Figure], workers: int = 1) -> None:
    r = in_child(_harvest_child, str(data_dir), str(config), None, True, None, workers)
    figures.append(Figure("re-harvest", "unchanged: seconds", r["seconds"], "s",
                          f"{r['unchanged']}/{r['sources']} sources unchanged"))
    figures.append(Figure("re-harvest", "unchanged: store writes", r["writes"], "graphs",
                          f"{r['triples']} triples deleted or inserted"))
    changed = synthetic.change_events(sources, 0.01, config.parent)
    r = in_child(_harvest_child, str(data_dir), str(config), None, True, None, workers)
    events = sum(s.events for s in sources)
    figures.append(Figure("re-harvest", "1% changed: seconds", r["seconds"], "s",
                          f"{len(changed)} of {len(sources)} sources changed; "
                          f"{r['unchanged']} unchanged"))
    figures.append(Figure("re-harvest", "1% changed: store writes", r["writes"], "graphs",
                          f"{r['triples']} triples deleted or inserted "
                          f"({r['triples'] / max(1, round(events * 0.01)):.1f} per changed event)"))
    figures.append(Figure("re-harvest", "1% changed: feed members", r["members"], "members",
                          f"{round(events * 0.01)} events changed"))


def one_big_source(work: Path, events: int, figures: list[Figure]) -> dict:
    """One CSV source of `events` events: full harvest, unchanged re-harvest, forced re-parse."""
    directory = work / "big-source"
    sources = synthetic.plan_region(events, seed=3, formats=("csv",))
    merged = synthetic.SyntheticSource(id="csv-big", name="Grand programme", format="csv",
                                       language="fr", timezone="Europe/Paris",
                                       records=[r for s in sources for r in s.records])
    config = synthetic.write_region([merged], directory)
    data_dir = directory / "data"
    full = in_child(_harvest_child, str(data_dir), str(config), None, True, None, 1)
    same = in_child(_harvest_child, str(data_dir), str(config), None, True, None, 1)
    forced = in_child(_harvest_child, str(data_dir), str(config), None, False, None, 1)
    label = "big CSV source"
    figures.append(Figure("one source", f"{label}: full harvest", full["seconds"], "s",
                          f"{merged.events} events; peak {full['peak_mb']:.0f} MB for a "
                          f"{full['largest_source_mb']:.1f} MB feed"))
    figures.append(Figure("one source", f"{label}: unchanged re-harvest", same["seconds"], "s",
                          f"{same['writes']} store writes (same bytes: hash, no parse)"))
    figures.append(Figure("one source", f"{label}: forced re-parse", forced["seconds"], "s",
                          f"{forced['writes']} store write, {forced['members']} feed members "
                          "(no feed history: parse, validate, load)"))
    return {"events": merged.events, "unchanged_s": same["seconds"], "forced_s": forced["seconds"]}


def validation(events: int, pyshacl_events: int, figures: list[Figure]) -> None:
    from bench.bench_validation import synthetic_feed
    from shapes import validate

    graph, nodes = synthetic_feed(events)
    started = time.perf_counter()
    validate(graph, nodes)
    compiled = events / (time.perf_counter() - started)
    graph, nodes = synthetic_feed(pyshacl_events)
    started = time.perf_counter()
    reference = validate(graph, nodes, engine="pyshacl")
    pyshacl_rate = pyshacl_events / (time.perf_counter() - started)
    ours = validate(graph, nodes)
    differing = sum(ours[e].problems != reference[e].problems for e in nodes)
    figures.append(Figure("validation", "Affiche (compiled)", compiled, "ev/s", f"{events} events"))
    figures.append(Figure("validation", "pyshacl whole graph", pyshacl_rate,
                          "ev/s", f"{pyshacl_events} events; ratio Affiche/pyshacl {compiled / pyshacl_rate:.0f}x; "
                          f"{differing} events judged differently"))


def dumps_section(data_dir: Path, figures: list[Figure]) -> float:
    result = in_child(_dumps_child, str(data_dir))
    raw = result["raw"]
    figures.append(Figure("dumps", "baseline: the store read out as N-Quads", raw["seconds"], "s",
                          f"{raw['mb']:.1f} MB, {raw['mb'] / raw['seconds']:.0f} MB/s"))
    for name in ("nq", "nt", "ttl", "jsonld"):
        f = result[name]
        figures.append(Figure("dumps", f"{name} graph files: seconds", f["seconds"], "s",
                              f"{f['mb']:.1f} MB ({f['gz_mb']:.1f} MB gzipped)"))
        figures.append(Figure("dumps", f"{name} graph files: MB/s", f["mb"] / f["seconds"], "MB/s"))
    w = result["write_dumps"]
    figures.append(Figure("dumps", "write_dumps after a harvest (every file)", w["seconds"], "s",
                          f"{w['files']} files, {w['gz_mb']:.1f} MB; memory growth "
                          f"{w['growth_mb']:.0f} MB; the graph files were made by the harvest"))
    figures.append(Figure("dumps", "write_dumps, every graph read from the store",
                          result["from_store"]["seconds"], "s",
                          f"{result['from_store']['seconds'] / raw['seconds']:.2f}x the baseline"))
    return w["seconds"]


SPARQL_PREFIXES = "PREFIX schema: <http://schema.org/>\nPREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n"
SPARQL_QUERIES = {
    "ASK {} (fixed cost)": "ASK {}",
    "next 20 in a town": SPARQL_PREFIXES + """
SELECT ?e ?name ?start WHERE {
  ?e schema:startDate ?start ; schema:name ?name ;
     schema:location/schema:address/schema:addressLocality "Lyon" .
  FILTER (?start >= "2027-06-01T00:00:00+02:00"^^xsd:dateTime)
} ORDER BY ?start LIMIT 20""",
    "at one venue": SPARQL_PREFIXES + """
SELECT ?e ?name ?start WHERE { ?e schema:location <{place}> ; schema:name ?name ;
  schema:startDate ?start } ORDER BY ?start""",
    "towns by month": SPARQL_PREFIXES + """
SELECT ?town ?month (COUNT(?e) AS ?n) WHERE {
  ?e schema:startDate ?start ; schema:location/schema:address/schema:addressLocality ?town .
  BIND (MONTH(?start) AS ?month) } GROUP BY ?town ?month ORDER BY ?town ?month""",
    "free events": SPARQL_PREFIXES + """
SELECT ?e ?name WHERE { ?e schema:name ?name ; schema:offers/schema:price 0 } LIMIT 200""",
    "describe one event": "DESCRIBE <{event}>",
}
FAST_FORM = ", fast form"


def sparql_queries() -> dict[str, str]:
    """The queries, with the fast form of "next 20 in a town" the `/sparql` page ships
    (`sparql/queries/example_next_in_town.rq`) after its plain form, for the same town and day."""
    from sparql.queries import load_query

    example = load_query("example_next_in_town")
    fast = example.replace('"2027-01-01T00:00:00+01:00"', '"2027-06-01T00:00:00+02:00"')
    assert fast != example and 'STR(?town) = "Lyon"' in fast, "the example changed: update this"
    queries = {}
    for name, query in SPARQL_QUERIES.items():
        queries[name] = query
        if name == "next 20 in a town":
            queries[name + FAST_FORM] = fast
    return queries


def sparql_section(data_dir: Path, repeat: int, figures: list[Figure]) -> None:
    from bench.bench_sparql import StdlibClient, percentiles, serving
    from sparql.store import EmbeddedStore

    store = EmbeddedStore(data_dir / "store")
    try:
        row = store.select(SPARQL_PREFIXES + "SELECT ?e ?p WHERE { ?e schema:startDate ?d ; "
                           "schema:location ?p } LIMIT 1")[0]
        served = data_dir.parent / "sparql-served"
        served.mkdir()
        store.snapshot(served / "store")
        with serving(served, 2) as server:
            http = StdlibClient(server.url)  # a lean client: see bench_sparql's docstring
            direct_p50: dict[str, float] = {}
            for name, query in sparql_queries().items():
                query = query.replace("{place}", str(row["p"])).replace("{event}", str(row["e"]))
                graph = query.startswith("DESCRIBE")
                accept = "text/turtle" if graph else "application/sparql-results+json"
                direct, endpoint = [], []
                for attempt in range(repeat + 2):  # two warm-up rounds
                    began = time.perf_counter()
                    store.run(query, results_format="json", rdf_format="turtle")
                    middle = time.perf_counter()
                    http.post(query.encode(), accept)
                    if attempt >= 2:
                        direct.append((middle - began) * 1000)
                        endpoint.append((time.perf_counter() - middle) * 1000)
                d, e = percentiles(direct), percentiles(endpoint)
                figures.append(Figure("sparql", f"{name}: /sparql p50", e[0], "ms",
                                      f"direct p50 {d[0]:.1f} ms; ratio {e[0] / d[0]:.2f}"))
                figures.append(Figure("sparql", f"{name}: /sparql p99", e[2], "ms",
                                      f"direct p99 {d[2]:.1f} ms"))
                direct_p50[name] = d[0]
                plain = name.removesuffix(FAST_FORM)
                if plain != name:
                    figures.append(Figure("sparql", f"{plain}: fast form / plain form",
                                          d[0] / direct_p50[plain], "x", "direct p50"))
            http.close()
        shutil.rmtree(served, ignore_errors=True)
    finally:
        store.close()


# --- event pages and the change feed over HTTP ---------------------------------------------------


WRK_SCRIPT = """
math.randomseed(5)
local paths = {{{paths}}}
request = function()
  return wrk.format("GET", paths[math.random(1, #paths)], {{["Accept"] = "text/html"}})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def load_test(base: str, paths: list[str], seconds: int, connections: int, work: Path) -> dict:
    """Requests per second and p50/p99 over `paths` picked at random (wrk, else httpx)."""
    if shutil.which("wrk"):
        script = work / "paths.lua"
        script.write_text(WRK_SCRIPT.format(paths=", ".join(json.dumps(p) for p in paths)),
                          encoding="utf-8")
        out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                              "-s", str(script), base], capture_output=True, text=True, check=True)
        line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
        requests, duration_us, errors, p50, p99 = map(int, line.split()[1:])
        return {"rps": requests / (duration_us / 1e6), "errors": errors, "p50_ms": p50 / 1000,
                "p99_ms": p99 / 1000, "tool": "wrk"}
    from bench.bench_pages import run_httpx

    results = [run_httpx(base, path, 1, max(1, seconds // len(paths[:5])), connections)
               for path in random.Random(5).sample(paths, min(5, len(paths)))]
    return {"rps": sum(r["rps"] for r in results) / len(results), "tool": "httpx",
            "errors": sum(r["errors"] for r in results),
            "p50_ms": sorted(r["p50_ms"] for r in results)[len(results) // 2],
            "p99_ms": max(r["p99_ms"] for r in results)}


def event_paths(store_dir: Path, limit: int = 2000) -> list[str]:
    from sparql.store import EmbeddedStore

    store = EmbeddedStore(store_dir)
    try:
        rows = store.select("SELECT ?e WHERE { ?e <http://schema.org/startDate> ?d }")
    finally:
        store.close()
    iris = sorted(str(r["e"]) for r in rows if str(r["e"]).startswith(BASE + "/event/"))
    return [iri[len(BASE):] for iri in random.Random(5).sample(iris, min(limit, len(iris)))]


def pages_section(data_dir: Path, work: Path, label: str, args, figures: list[Figure],
                  feed_pages: int = 0) -> dict:
    import httpx

    paths = event_paths(data_dir / "store")
    static_dir = work / f"static-{label.replace(' ', '-')}"
    static_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFICHE_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bench_pages.py"), "--serve",
                               str(data_dir), str(static_dir), str(port)], env=env)
    try:
        wait_for(base + "/robots.txt", server)
        page = httpx.get(base + paths[0], headers={"Accept": "text/html"}, timeout=60)
        page.raise_for_status()
        (static_dir / "event.html").write_bytes(page.content)
        # the server's start-up work (the page warmer's agenda and sitemap over every event) and
        # the store's compactions after a harvest are not what a page costs: timed once done
        idle_after_s = wait_until_idle(server.pid, timeout_s=900)
        best = {}
        for _ in range(args.rounds):
            for name, chosen in (("static", ["/bench-static/event.html"]), ("event pages", paths)):
                result = load_test(base, chosen, args.seconds, args.connections, work)
                if name not in best or result["rps"] > best[name]["rps"]:
                    best[name] = result
        # latency alone: one connection, so that p50/p99 are the cost of a request, not a queue
        alone = load_test(base, paths, args.seconds, 1, work)
        static_alone = load_test(base, ["/bench-static/event.html"], args.seconds, 1, work)
        rss = status_mb("VmRSS", server.pid)
        static, pages = best["static"], best["event pages"]
        figures.append(Figure("event pages", f"{label}: req/s", pages["rps"], "req/s",
                              f"static file {static['rps']:.0f} req/s (ratio "
                              f"{pages['rps'] / static['rps']:.2f}); {pages['errors']} errors; "
                              f"{pages['tool']}, {args.connections} connections"))
        figures.append(Figure("event pages", f"{label}: p50, {args.connections} connections",
                              pages["p50_ms"], "ms", f"static {static['p50_ms']:.1f} ms"))
        figures.append(Figure("event pages", f"{label}: p99, {args.connections} connections",
                              pages["p99_ms"], "ms", f"static {static['p99_ms']:.1f} ms"))
        figures.append(Figure("event pages", f"{label}: p50, 1 connection", alone["p50_ms"], "ms",
                              f"static {static_alone['p50_ms']:.2f} ms; {alone['rps']:.0f} req/s"))
        figures.append(Figure("event pages", f"{label}: p99, 1 connection", alone["p99_ms"], "ms",
                              f"static {static_alone['p99_ms']:.2f} ms"))
        figures.append(Figure("event pages", f"{label}: server resident memory", rss, "MB",
                              "one uvicorn process, after the load test"))
        figures.append(Figure("event pages", f"{label}: server busy after start", idle_after_s, "s",
                              "its start-up work (page warmer, store compactions) before the "
                              "load tests began (they wait until it used < 5 % of a core for 3 s)"))
        if feed_pages:
            feed_replay(base, data_dir, feed_pages, figures)
        return {"rps": pages["rps"], "p50_ms": alone["p50_ms"], "p99_ms": alone["p99_ms"],
                "rss_mb": rss, "cost_ms": 1000 / pages["rps"]}
    finally:
        stop_server(server)


def feed_replay(base: str, data_dir: Path, max_pages: int, figures: list[Figure]) -> None:
    """A client replaying the change feed page by page (TriG, parsed), vs reading the log."""
    import httpx
    import pyoxigraph as ox

    from harvester.changes import ChangeLog

    members, pages = 0, 0
    started = time.perf_counter()
    with httpx.Client(timeout=60) as http:
        while pages < max_pages:
            answer = http.get(f"{base}/feed/{pages}", headers={"Accept": "application/trig"})
            if answer.status_code == 404:
                break
            answer.raise_for_status()
            members += sum(1 for q in ox.parse(answer.content, ox.RdfFormat.TRIG)
                           if q.predicate.value == TREE_MEMBER)
            pages += 1
    replay_s = time.perf_counter() - started
    started = time.perf_counter()
    read = len(ChangeLog(data_dir).members_after(None))
    log_s = time.perf_counter() - started
    figures.append(Figure("change feed", "replay over HTTP", members / replay_s, "members/s",
                          f"{members} members in {pages} pages; reading the whole log "
                          f"({read} members) in process: {read / log_s:.0f} members/s"))


def bulk_store(work: Path, events: int) -> tuple[Path, float]:
    import pyoxigraph as ox

    data_dir = work / f"bulk-{events}"
    data_dir.mkdir(parents=True, exist_ok=True)  # pyoxigraph makes the store's directory, not its parents
    started = time.perf_counter()
    store = ox.Store(str(data_dir / "store"))
    store.bulk_load(synthetic.region_nquads(events), format=ox.RdfFormat.N_QUADS)
    store.flush()
    del store
    return data_dir, time.perf_counter() - started


# --- targets, table, comparison -------------------------------------------------------------


def million_target(events: int, harvest_total: dict, dump_s: float) -> Figure:
    """1M events harvested, validated and published (dumps included), from this run's harvest
    and `write_dumps`."""
    return _million("1M events harvested+validated+published, dumps included", events,
                    harvest_total["seconds"] + dump_s,
                    f"harvest {harvest_total['seconds']:.0f} s + write_dumps {dump_s:.0f} s; "
                    f"harvest CPU time alone: "
                    f"{harvest_total['cpu_seconds'] * 1_000_000 / events / 60:.0f} min")


def command_target(events: int, command: dict) -> Figure:
    """1M events harvested, validated and published by one `affiche harvest` (the command a
    deployment runs), end to end."""
    return _million("1M events through one affiche harvest (harvest + dumps)", events,
                    command["seconds"], f"writing process peak {command['peak_mb']:.0f} MB")


def _million(measure: str, events: int, seconds: float, detail: str) -> Figure:
    """The 10-minute target from `seconds` for `events`: measured at 1M, else extrapolated
    linearly."""
    million_s = seconds * 1_000_000 / events
    how = ("measured" if events == 1_000_000 else
           f"extrapolated linearly from {events} events in {seconds:.0f} s")
    return Figure("targets", measure, million_s / 60, "min",
                  f"target < 10 min; {'MET' if million_s < 600 else 'MISSED'} — {how} ({detail})")


def targets(events: int, harvest_total: dict, dump_s: float | None, big: dict | None,
            pages: dict | None, scaled: dict | None, figures: list[Figure],
            command: dict | None = None) -> None:
    """The issue's targets, each from the sections that ran (`--only`)."""
    if dump_s is not None:
        figures.append(million_target(events, harvest_total, dump_s))
    if command is not None:
        figures.append(command_target(events, command))
    if big is not None:
        figures.append(Figure("targets", "unchanged re-harvest of the one big source",
                              big["unchanged_s"], "s",
                              f"target < 5 s; {'MET' if big['unchanged_s'] < 5 else 'MISSED'}"
                              f" (forced re-parse: {big['forced_s']:.1f} s)"))
    if pages is not None:
        _page_targets(events, pages, scaled, figures)
    figures.append(Figure("targets", "harvest peak memory", harvest_total["peak_mb"], "MB",
                          "bounded by the largest source: compare runs at two sizes"))


def _page_targets(events: int, pages: dict, scaled: dict | None, figures: list[Figure]) -> None:
    at = scaled or pages
    size = "the bulk-loaded store" if scaled else "the harvested region"
    figures.append(Figure("targets", f"event page p50 at {size}", at["p50_ms"], "ms",
                          f"target < 10 ms; {'MET' if at['p50_ms'] < 10 else 'MISSED'} (1 connection; "
                          f"{scaled['events'] if scaled else events} events)"))
    figures.append(Figure("targets", f"event page p99 at {size}", at["p99_ms"], "ms",
                          f"target < 50 ms; {'MET' if at['p99_ms'] < 50 else 'MISSED'} (1 connection)"))
    if scaled:
        ratio = scaled["cost_ms"] / pages["cost_ms"]
        figures.append(Figure("targets", "page cost, bulk-loaded store / harvested region", ratio, "x",
                              f"target <= 1.5; {'MET' if ratio <= 1.5 else 'MISSED'}"))
    figures.append(Figure("targets", f"serving memory at {size}", at["rss_mb"], "MB",
                          f"target < 1024 MB at 1M; {'MET' if at['rss_mb'] < 1024 else 'MISSED'}"))


def print_table(figures: list[Figure], stream=sys.stdout) -> None:
    width = max(len(f"{f.section} | {f.measure}") for f in figures)
    stream.write(f"{'section | measure':<{width}} {'value':>12} {'unit':<9} note\n")
    stream.write("-" * (width + 40) + "\n")
    for f in figures:
        stream.write(f"{f.section + ' | ' + f.measure:<{width}} {_number(f.value):>12} {f.unit:<9} {f.note}\n")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def compare(new: dict, old: dict, stream=sys.stdout) -> None:
    """new/old for every figure both runs have (same section and measure)."""
    before = {(f["section"], f["measure"]): f for f in old["figures"]}
    stream.write(f"\ncompared with {old['meta'].get('events')} events on {old['meta'].get('started')}\n")
    for f in new["figures"]:
        o = before.get((f["section"], f["measure"]))
        if o is None:
            continue
        ratio = f["value"] / o["value"] if o["value"] else float("nan")
        stream.write(f"{f['section'] + ' | ' + f['measure']:<64} {_number(o['value']):>12} -> "
                     f"{_number(f['value']):>12} {f['unit']:<9} x{ratio:.2f}\n")


def run(args) -> dict:
    figures: list[Figure] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="affiche-bench-run-", dir=args.work_dir))
    try:
        region = args.region or work / "region"
        sources = synthetic.plan_region(args.events, args.seed)
        config = _written_region(sources, region, f"{args.events} {args.seed}")
        size = sum((region / s.file_name).stat().st_size for s in sources) / 1e6
        print(f"{args.events:,} events in {len(sources)} sources ({size:.1f} MB of feeds) under {work}",
              flush=True)
        data_dir = work / "data"
        print("full harvest…", flush=True)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        harvest_total = full_harvest(data_dir, config, sources, figures, args.profile,
                                     args.harvest_workers)
        wanted = set(args.only if args.only is not None else SECTIONS)
        dump_s = big = pages = scaled = command = None
        if "command" in wanted:
            print("affiche harvest, end to end…", flush=True)
            command = command_section(work, config, args.harvest_workers, figures)
        if "dumps" in wanted:
            print("dumps…", flush=True)
            dump_s = dumps_section(data_dir, figures)
        if "reharvest" in wanted:
            print("re-harvest…", flush=True)
            (region / "plan.txt").unlink(missing_ok=True)  # the re-harvest rewrites some feeds
            reharvest(data_dir, config, sources, figures, args.harvest_workers)
        if "big" in wanted:
            print("one big source…", flush=True)
            big = one_big_source(work, min(args.events, 10_000), figures)
        if "validation" in wanted:
            print("validation…", flush=True)
            validation(min(args.events, 5000), args.pyshacl_events, figures)
        if "sparql" in wanted:
            print("sparql…", flush=True)
            sparql_section(data_dir, args.sparql_repeat, figures)
        if "pages" in wanted:
            print("event pages and change feed…", flush=True)
            pages = pages_section(data_dir, work, "harvested region", args, figures,
                                  feed_pages=args.feed_pages)
        if args.page_scale and "pages" in wanted:
            print(f"bulk-loading {args.page_scale:,} events for pages…", flush=True)
            bulk_dir, load_s = bulk_store(work, args.page_scale)
            figures.append(Figure("event pages", f"bulk load of {args.page_scale} events", load_s, "s"))
            scaled = pages_section(bulk_dir, work, "bulk-loaded store", args, figures)
            scaled["events"] = args.page_scale
        targets(args.events, harvest_total, dump_s, big, pages, scaled, figures, command)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return _results(args, started, sources, figures)


def _written_region(sources: list, region: Path, plan: str) -> Path:
    """The region's feeds, written once: a `--region` directory that already holds the feeds of
    the same plan (events and seed) is reused, which saves minutes at 1M events between runs."""
    marker, config = region / "plan.txt", region / "sources.toml"
    if config.exists() and marker.exists() and marker.read_text(encoding="utf-8") == plan:
        return config
    marker.unlink(missing_ok=True)
    config = synthetic.write_region(sources, region)
    marker.write_text(plan, encoding="utf-8")
    return config


def _results(args, started: str, sources: list, figures: list[Figure]) -> dict:
    return {"meta": {"events": args.events, "started": started, "machine": platform.node(),
                     "cpus": os.cpu_count(), "python": platform.python_version(),
                     "sources": len(sources)},
            "figures": [asdict(f) for f in figures]}


# The sections after the full harvest, as `--only` names them.
SECTIONS = ("command", "dumps", "sparql", "pages", "reharvest", "big", "validation")


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "harvest")
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section {', '.join(unknown)}: use "
                                         f"harvest,{','.join(SECTIONS)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000, help="size of the synthetic region")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--json", type=Path, help="write the results here too")
    p.add_argument("--compare", type=Path, help="a previous run's JSON: print new/old ratios")
    p.add_argument("--seconds", type=int, default=5, help="seconds per page load test")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2, help="alternating page load tests (best kept)")
    p.add_argument("--sparql-repeat", type=int, default=20)
    p.add_argument("--pyshacl-events", type=int, default=150)
    p.add_argument("--feed-pages", type=int, default=20, help="change feed pages replayed")
    p.add_argument("--page-scale", type=int, default=0,
                   help="also measure event pages on a bulk-loaded store of this many events")
    p.add_argument("--profile", type=Path, default=None,
                   help="write a pyinstrument profile of each format's full harvest in this directory")
    p.add_argument("--harvest-workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes reading sources (AFFICHE_HARVEST_WORKERS; default: cores)")
    p.add_argument("--only", type=_sections, default=None,
                   help="run these sections alone, comma-separated, of harvest," + ",".join(SECTIONS)
                        + " (the full harvest always runs: the others read its store), and the "
                        "targets they measure")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--region", type=Path, default=None,
                   help="write the synthetic feeds here and reuse them in later runs of the same "
                        "--events and --seed (they are kept)")
    p.add_argument("--keep", action="store_true", help="keep the generated feeds and stores")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    results = run(args)
    print()
    print_table([Figure(**f) for f in results["figures"]])
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.compare:
        compare(results, json.loads(args.compare.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
