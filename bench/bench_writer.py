"""The writing process of a harvest at scale: its memory and its replace time against the store's size.

    .venv/bin/python bench/bench_writer.py [--sizes 0,100000,300000] [--source-events 5000]
                                           [--sources 6]

Prepares `--sources` CSV sources of `--source-events` synthetic events each once (`prepare`, what
a harvest's worker processes hand over), then for every store size: bulk-loads that many events
(bench_pages' generator) into a fresh embedded store and, in a fresh process, commits every source
twice — a first harvest (an empty graph: one load) then a re-harvest with every event changed
(a graph replaced) — through the real `commit` (store, change log, reports). It prints, per store
size, the writing process's resident memory before, after each round and at its peak (VmHWM),
and the median and worst seconds per replace.

The figures that matter are the ratios to the empty store, measured in the same run: the peak
growth (peak minus the memory with the store open) and the replace time at N events over the same
at 0. "Bounded by the largest source, not by the store" means ratios near 1.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402
from bench.bench_pages import BASE, build_store  # noqa: E402
from bench.processes import in_child, status_mb  # noqa: E402


def prepare_sources(work: Path, count: int, events: int) -> Path:
    """`count` sources of `events` events, prepared once; two versions of each (the second with
    every event renamed), pickled for the writing processes."""
    from harvester.fetch import FetchPolicy
    from harvester.pipeline import HarvestTask, prepare

    planned = synthetic.plan_region(events, seed=3, formats=("csv",))
    merged = synthetic.SyntheticSource(id="csv-w0", name="Programme", format="csv", language="fr",
                                       timezone="Europe/Paris",
                                       records=[r for s in planned for r in s.records])
    config = synthetic.write_region([merged], work / "feeds")
    from harvester.sources import load_sources

    source = load_sources(config)[0]
    policy = FetchPolicy(recurrence_days=800)
    first = prepare(HarvestTask(source), BASE, policy)
    for record in merged.records:
        if record.name:
            record.name = record.name + " (reprise)"
    synthetic.write_region([merged], work / "feeds")
    second = prepare(HarvestTask(source), BASE, policy)
    target = work / "prepared.pickle"
    target.write_bytes(pickle.dumps((first, second)))
    return target


def _variant(prepared, number: int):
    """The same prepared source under another id: its graph, events and descriptions renamed."""
    from sparql.store import NTriples

    old, new = prepared.source.id, f"csv-w{number}"
    if number == 0:
        return prepared
    data = prepared.published.data.replace(old.encode(), new.encode())
    descriptions = {iri.replace(old, new): text.replace(old, new)
                    for iri, text in prepared.descriptions.items()}
    report = replace(prepared.report, source_id=new)
    return replace(prepared, source=replace(prepared.source, id=new), report=report,
                   published=NTriples(data, prepared.published.triples), descriptions=descriptions)


def _commit_child(data_dir: str, prepared_file: str, count: int, queue) -> None:
    from harvester.changes import ChangeLog
    from harvester.pipeline import commit
    from sparql.store import EmbeddedStore

    first, second = pickle.loads(Path(prepared_file).read_bytes())
    data = Path(data_dir)
    store = EmbeddedStore(data / "store")
    changes = ChangeLog(data)
    opened = status_mb("VmRSS")
    rounds = {}
    for label, prepared in (("load", first), ("replace", second)):
        seconds, cpu = [], []
        for number in range(count):
            variant = _variant(prepared, number)
            started, cpu_started = time.perf_counter(), time.process_time()
            report = commit(variant, store, BASE, data / "reports", changes=changes)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)  # with the store's own threads
            if report.error:
                raise RuntimeError(report.error)
            del variant, report
        rounds[label] = {"seconds": seconds, "cpu": cpu, "rss_mb": status_mb("VmRSS")}
    queue.put({"opened_mb": opened, "peak_mb": status_mb("VmHWM"), "rounds": rounds,
               "triples": first.published.triples, "events": first.event_count})
    store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,100000,300000",
                        help="events already in the store, comma-separated (0 first: the baseline)")
    parser.add_argument("--source-events", type=int, default=5000)
    parser.add_argument("--sources", type=int, default=6, help="sources committed per store size")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--prepared", type=Path, default=None,
                        help="keep the prepared sources in this file, or reuse them if it exists "
                        "(to compare two versions of the writer on the same input)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="affiche-bench-writer-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        if args.prepared and args.prepared.exists():
            prepared = args.prepared
        else:
            prepared = prepare_sources(work, args.sources, args.source_events)
            if args.prepared:
                shutil.copyfile(prepared, args.prepared)
        print(f"prepared {args.sources} sources of {args.source_events} events "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        rows = []
        for size in sizes:
            data_dir = work / f"store-{size}"
            data_dir.mkdir()
            load_s = build_store(data_dir, size) if size else 0.0
            result = in_child(_commit_child, str(data_dir), str(prepared), args.sources)
            rows.append((size, load_s, result))
            print(f"  {size:>9,} events in store (bulk load {load_s:.0f} s): done", flush=True)
            _remove(data_dir)
    print(f"\nload average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} on {os.cpu_count()} CPUs; "
          f"each source {rows[0][2]['events']} events, {rows[0][2]['triples']} triples; "
          f"{args.sources} sources loaded then replaced per store size\n")
    print(f"{'events in store':>15} {'opened MB':>10} {'after load':>11} {'after repl.':>12} "
          f"{'peak MB':>8} {'growth':>7} {'x':>5} {'load s p50':>11} {'repl. s p50':>12} "
          f"{'repl. s max':>12} {'x':>5} {'repl. CPU s':>12} {'x':>5}")
    base_growth = rows[0][2]["peak_mb"] - rows[0][2]["opened_mb"]
    base_replace = statistics.median(rows[0][2]["rounds"]["replace"]["seconds"])
    base_cpu = statistics.median(rows[0][2]["rounds"]["replace"]["cpu"])
    for size, _, r in rows:
        growth = r["peak_mb"] - r["opened_mb"]
        replace_s = r["rounds"]["replace"]["seconds"]
        print(f"{size:>15,} {r['opened_mb']:>10.0f} {r['rounds']['load']['rss_mb']:>11.0f} "
              f"{r['rounds']['replace']['rss_mb']:>12.0f} {r['peak_mb']:>8.0f} {growth:>7.0f} "
              f"{growth / base_growth:>5.2f} {statistics.median(r['rounds']['load']['seconds']):>11.2f} "
              f"{statistics.median(replace_s):>12.2f} {max(replace_s):>12.2f} "
              f"{statistics.median(replace_s) / base_replace:>5.2f} "
              f"{statistics.median(r['rounds']['replace']['cpu']):>12.2f} "
              f"{statistics.median(r['rounds']['replace']['cpu']) / base_cpu:>5.2f}")
    return 0


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
