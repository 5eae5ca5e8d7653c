"""What drawing the sector's quality over time costs, as the score history grows.

    .venv/bin/python bench/bench_quality_history.py [--sources 200] [--days 730] [--per-day 4]
        [--rounds 5]

Writes a synthetic score history (`reports/history/{source}.jsonl`: `--per-day` harvests a day
for `--days` days, for `--sources` sources, as `harvester.pipeline.append_history` writes them),
then times, alternating in each round:

- the baseline: `json.loads` of every line of every file (the least a full re-read costs);
- a cold read: a fresh `ScoreHistory` reads every file, then the series are computed;
- a warm look: nothing changed (what most `/stats` and `/source/{id}` requests do);
- one harvest later: one line appended to one file (read incrementally), then the series.

Prints milliseconds (medians over the rounds) and each one's ratio to the baseline, the resident
memory the reader keeps, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publisher.quality_history import ScoreHistory, quality_over_time  # noqa: E402


def write_history(directory: Path, sources: int, days: int, per_day: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 11, 29, tzinfo=timezone.utc) - timedelta(days=days)
    rng = random.Random(8)
    size = 0
    for index in range(sources):
        lines = []
        for step in range(days * per_day):
            when = start + timedelta(hours=24 * step / per_day)
            lines.append(json.dumps({"started_at": when.isoformat(),
                                     "score": round(rng.uniform(40, 95), 1), "error": None,
                                     "found": 40, "published": 39, "quarantined": 1,
                                     "warnings": 12}) + "\n")
        path = directory / f"source-{index:04d}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        size += path.stat().st_size
    return size


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--per-day", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        history_dir = Path(work) / "history"
        size = write_history(history_dir, options.sources, options.days, options.per_day)
        names = [f"source-{i:04d}" for i in range(options.sources)]
        until = datetime(2026, 11, 29).date()
        files = sorted(history_dir.iterdir())

        def baseline() -> None:
            for path in files:
                for line in path.read_bytes().splitlines():
                    json.loads(line)

        def series(reader: ScoreHistory) -> None:
            quality_over_time(reader.daily_scores()[1], names, until)

        results: dict[str, list[float]] = {"baseline": [], "cold": [], "warm": [], "append": []}
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reader = ScoreHistory(history_dir)
        for round_ in range(options.rounds):
            results["baseline"].append(timed(baseline))
            reader = ScoreHistory(history_dir)
            results["cold"].append(timed(lambda: series(reader)))
            results["warm"].append(timed(lambda: series(reader)))
            with (history_dir / f"{names[round_ % len(names)]}.jsonl").open("a") as out:
                out.write(json.dumps({"started_at": f"2026-11-29T1{round_}:00:00+00:00",
                                      "score": 77.7}) + "\n")
            results["append"].append(timed(lambda: series(reader)))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        lines = options.sources * options.days * options.per_day
        print(f"history: {options.sources} sources x {options.days} days x {options.per_day} "
              f"harvests = {lines:,} lines, {size / 1e6:.1f} MB")
        base = statistics.median(results["baseline"])
        labels = {"baseline": "json.loads of every line (baseline)",
                  "cold": "cold: read every file + series",
                  "warm": "warm: nothing changed + series",
                  "append": "one line appended + series"}
        for key, label in labels.items():
            value = statistics.median(results[key])
            print(f"{label:40} {value:9.1f} ms   x{value / base:.3f} of baseline")
        print(f"peak resident memory grew by {(rss_after - rss_before) / 1024:.1f} MB "
              f"(the reader keeps one score per source and day)")
        print("load average: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
