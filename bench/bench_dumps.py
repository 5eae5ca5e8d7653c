"""Dumps and change log: time and memory, next to baselines measured in the same run.

    .venv/bin/python bench/bench_dumps.py [--events 100000] [--changed 0.01]

Loads N synthetic events (bench_pages' generator: 40 source graphs, shared venues, organisers and
performers, an offer each) into an embedded store, then measures:

- `raw N-Quads`: the store streamed as uncompressed N-Quads into a file (the cheapest dump);
- `write_dumps`: every dump (N-Quads, N-Triples, Turtle, JSON-LD, one file per source, the dated
  snapshot, the SHA-256 of each), with every graph read from the store (the events are
  bulk-loaded: no harvest made the graphs' dump files, `sparql.graph_files`; what a dump costs
  after a harvest is in `bench.run`'s dumps section), in a fresh process whose memory is read after one full read of
  the store (which fills the store's caches once) and at its peak while writing: the growth must
  stay near zero, since nothing is built in memory;
- `change log`: recording every event of the store as created, then again unchanged, then with
  `--changed` of them updated, next to serialising the same descriptions to N-Triples with rdflib;
- `feed page`: building one full page of the feed (100 members) next to reading its rows.

The figures that matter are the ratios: write_dumps / raw N-Quads, peak memory growth / data size,
change log / N-Triples serialisation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pages import BASE, build_store  # noqa: E402
from processes import in_child, status_mb  # noqa: E402


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a spawned child
    # would report the parent's peak (which held the synthetic data in memory).
    return status_mb("VmHWM")


def current_rss_mb() -> float:
    return status_mb("VmRSS")


def raw_nquads(data_dir: Path) -> tuple[float, int]:
    import pyoxigraph as ox

    store = ox.Store(str(data_dir / "store"))
    target = data_dir / "raw.nq"
    started = time.perf_counter()
    with open(target, "wb") as out:
        store.dump(out, format=ox.RdfFormat.N_QUADS)
    seconds = time.perf_counter() - started
    del store
    size = target.stat().st_size
    target.unlink()
    return seconds, size


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _dumps_in_child(data_dir: str, queue) -> None:
    from harvester.changes import ChangeLog
    from publisher.dumps import write_dumps
    from sparql.store import EmbeddedStore

    store = EmbeddedStore(Path(data_dir) / "store")
    cold = current_rss_mb()
    store.dump_nquads(_Discard())  # one full read first: the store's caches fill once, whatever reads
    before = current_rss_mb()
    started = time.perf_counter()
    files = write_dumps(store, Path(data_dir) / "dumps", changes=ChangeLog(Path(data_dir)))
    seconds = time.perf_counter() - started
    queue.put((seconds, cold, before, peak_rss_mb(), sum(f.size for f in files), len(files)))
    store.close()


def dumps(data_dir: Path) -> tuple[float, float, float, float, int, int]:
    return in_child(_dumps_in_child, str(data_dir))


def descriptions(data_dir: Path, changed: float) -> tuple[dict, dict]:
    """Every event's description from the store (as the pipeline would hand them), and a copy in
    which a share of them has a new name."""
    from rdflib import Graph, Literal, URIRef

    from harvester.pipeline import describe
    from ontology import SCHEMA
    from sparql.store import EmbeddedStore

    store = EmbeddedStore(data_dir / "store")
    graphs = {}
    for graph_iri in store.graphs():
        graph = store.construct(
            "CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }", {"g": URIRef(graph_iri)})
        events = frozenset(s for s in graph.subjects(SCHEMA.startDate, None))
        for event in events:
            graphs[str(event)] = describe(graph, [event], stop=events)
    store.close()
    step = max(1, round(1 / changed)) if changed else 0
    updated = {}
    for index, (iri, graph) in enumerate(sorted(graphs.items())):
        if step and index % step == 0:
            copy = Graph()
            copy += graph
            copy.set((URIRef(iri), SCHEMA.name, Literal(f"Nouveau titre {index}", lang="fr")))
            updated[iri] = copy
        else:
            updated[iri] = graph
    return graphs, updated


def change_log(data_dir: Path, changed: float) -> dict[str, float]:
    from harvester.changes import ChangeLog

    graphs, updated = descriptions(data_dir, changed)
    started = time.perf_counter()
    for graph in graphs.values():
        graph.serialize(format="nt")
    baseline = time.perf_counter() - started

    log = ChangeLog(data_dir / "bench-log", page_size=100)
    figures = {"events": len(graphs), "baseline": baseline}
    for label, batch in (("created", graphs), ("unchanged", graphs), ("updated", updated)):
        started = time.perf_counter()
        members = log.record("bench", batch)
        figures[label] = time.perf_counter() - started
        figures[label + " members"] = len(members)
    return figures


def feed_page(data_dir: Path) -> tuple[float, float]:
    from harvester.changes import ChangeLog
    from publisher.routes.feed import build_page

    log = ChangeLog(data_dir / "bench-log", page_size=100)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        log.page(1)
    rows = (time.perf_counter() - started) / rounds
    import pyoxigraph as ox

    started = time.perf_counter()
    for _ in range(rounds):
        doc = build_page(log, BASE, 1)
        ox.serialize(doc.quads, format=ox.RdfFormat.TRIG)
    page = (time.perf_counter() - started) / rounds
    return rows, page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of events updated")
    parser.add_argument("--dumps-only", action="store_true",
                        help="measure the dumps alone (not the change log and the feed page)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="affiche-bench-dumps-") as tmp:
        data_dir = Path(tmp)
        print(f"loading {args.events} events: {build_store(data_dir, args.events):.1f} s")

        raw_s, raw_size = raw_nquads(data_dir)
        print(f"raw N-Quads       {raw_s:8.2f} s   {raw_size / 1e6:8.1f} MB uncompressed")
        dump_s, rss_cold, rss_before, rss_after, total, count = dumps(data_dir)
        print(f"write_dumps       {dump_s:8.2f} s   {count} files, {total / 1e6:.1f} MB gzipped; "
              f"{raw_size / 1e6 / dump_s:.1f} MB/s of N-Quads (every graph read from the store)")
        print(f"  ratio write_dumps / raw N-Quads: {dump_s / raw_s:.1f}x "
              "(4 formats + per-source files + gzip + SHA-256)")
        print(f"  at 1,000,000 events, if linear: {dump_s * 1_000_000 / args.events / 60:.1f} min "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        growth = rss_after - rss_before
        print(f"  memory: {rss_cold:.0f} MB with the store open, {rss_before:.0f} MB after one full "
              f"read (its caches), peak {rss_after:.0f} MB while writing every dump "
              f"(+{growth:.0f} MB for {raw_size / 1e6:.0f} MB of data, read twice from the store)")

        if args.dumps_only:
            return
        figures = change_log(data_dir, args.changed)
        events, baseline = figures["events"], figures["baseline"]
        print(f"change log ({events} events; baseline: rdflib N-Triples of every description "
              f"{baseline:.2f} s)")
        for label in ("created", "unchanged", "updated"):
            print(f"  {label:<10} {figures[label]:8.2f} s  {figures[label + ' members']:>7} members  "
                  f"ratio {figures[label] / baseline:.1f}x")

        rows, page = feed_page(data_dir)
        print(f"feed page of 100  {page * 1000:8.1f} ms  (reading its rows {rows * 1000:.1f} ms; "
              f"ratio {page / rows:.0f}x)")


if __name__ == "__main__":
    main()
