"""What a re-harvest with 1 % of the events changed writes to the store, with and without keeping
the harvest time of the events whose description did not change (`harvester.harvest_times`).

    .venv/bin/python bench/bench_reharvest_writes.py [--events 20000] [--share 0.01]

Harvests a synthetic region (bench.synthetic) with its change log into a fresh embedded store,
changes `--share` of the events in their feeds, and harvests again (2 worker processes). For every
graph the re-harvest replaces, it counts the triples the store really deletes and inserts, and —
the baseline, from the same run and the same graphs — what it would have deleted and inserted had
every event been stamped with the new harvest time. It prints both, their ratio, the change-feed
members and the writer's CPU seconds for the re-harvest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402

BASE = "http://bench.affiche.test"


def line_changes(current: bytes, data: bytes) -> tuple[int, int]:
    """(deleted, inserted) lines going from `current` to `data`, as `replacing_update` counts."""
    before, after = set(current.splitlines()) - {b""}, set(data.splitlines()) - {b""}
    return len(before - after), len(after - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import sparql.store as store_module
    from harvester.changes import ChangeLog
    from harvester.incremental import FeedHistory
    from harvester.pipeline import HarvestTask, harvest_all
    from harvester.sources import load_sources

    stamped: dict[str, bytes] = {}  # graph -> the N-Triples as the workers stamped them
    counts = {"kept": [0, 0], "stamped": [0, 0], "graphs": 0}
    replace_graph = store_module.EmbeddedStore.replace_graph

    def recording_replace(self, graph_iri, graph):
        stamped[graph_iri] = graph.data  # before the store amends it (`NTriples.amend`)
        return replace_graph(self, graph_iri, graph)

    replacing = store_module.replacing_update

    def counting_update(graph_iri, current, data):
        counts["graphs"] += 1
        for key, written in (("kept", data), ("stamped", stamped.pop(graph_iri, data))):
            deleted, inserted = line_changes(current, written)
            counts[key][0] += deleted
            counts[key][1] += inserted
        return replacing(graph_iri, current, data)

    store_module.EmbeddedStore.replace_graph = recording_replace
    store_module.replacing_update = counting_update

    with tempfile.TemporaryDirectory(prefix="affiche-bench-reharvest-") as tmp:
        work = Path(tmp)
        sources = synthetic.plan_region(args.events, seed=3)
        config = synthetic.write_region(sources, work / "region")
        data = work / "data"
        store = store_module.EmbeddedStore(data / "store")
        changes = ChangeLog(data)

        def tasks() -> list[HarvestTask]:
            return [HarvestTask(s, FeedHistory(data / "harvest", s.id, 2))
                    for s in load_sources(Path(config))]

        harvest_all(tasks(), store, BASE, data / "reports", changes=changes,
                    workers=args.workers, workers_after_s=0)
        changed = synthetic.change_events(sources, args.share, Path(config).parent)
        before = changes.position().seq
        counts.update(kept=[0, 0], stamped=[0, 0], graphs=0)
        cpu = time.process_time()
        reports = harvest_all(tasks(), store, BASE, data / "reports", changes=changes,
                              workers=args.workers, workers_after_s=0)
        cpu = time.process_time() - cpu
        members = changes.position().seq - before
        store.close()

    kept, baseline = sum(counts["kept"]), sum(counts["stamped"])
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg()[:2])} on "
          f"{os.cpu_count()} CPUs; {args.events} events, {len(sources)} sources, "
          f"{len(changed)} changed, {sum(r.unchanged for r in reports)} unchanged feeds")
    print(f"graphs replaced by an update: {counts['graphs']}; change-feed members: {members}")
    print(f"every event stamped anew (baseline): {counts['stamped'][0]} deleted + "
          f"{counts['stamped'][1]} inserted = {baseline} triples")
    print(f"unchanged events keep their time:   {counts['kept'][0]} deleted + "
          f"{counts['kept'][1]} inserted = {kept} triples  "
          f"(x{kept / baseline if baseline else 1:.2f})")
    print(f"writer CPU for the re-harvest: {cpu:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
