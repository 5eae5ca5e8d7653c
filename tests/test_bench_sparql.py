"""bench/bench_sparql.py keeps working: a tiny run over several starts times every query on both
sides in each, and the verdict is the median of the starts' overhead ratios. No timing is
asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_sparql
from bench.bench_sparql import MIN_RUNS, QUERIES, Timings, overhead, report, runs_for

CPU = {"direct": 10.0, "client": 0.5, "server": 1.0, "workers": 10.0}
QUERY = "free dance events"


def start_with_ratio(ratio: float, direct_ms: float = 20.0) -> dict[str, Timings]:
    return {QUERY: Timings(direct=[direct_ms] * 3, endpoint=[direct_ms * ratio] * 3, cpu=CPU)}


def test_the_verdict_is_the_median_of_the_starts_ratios(capsys):
    starts = [start_with_ratio(r) for r in (1.1, 1.6, 1.15)]
    assert overhead(starts, QUERY) == pytest.approx(1.15)
    assert report(starts) is True  # one slow start does not decide
    printed = capsys.readouterr().out
    assert "1.10   1.60   1.15    1.15 ok" in printed


def test_a_query_over_in_most_starts_is_over(capsys):
    starts = [start_with_ratio(r) for r in (1.3, 1.1, 1.25)]
    assert report(starts) is False
    assert "OVER" in capsys.readouterr().out


def test_a_query_under_10_ms_is_not_judged():
    assert report([start_with_ratio(3.0, direct_ms=2.0)]) is True


def test_slow_queries_get_fewer_runs_but_never_too_few():
    assert runs_for(12.0, 30) == 30
    assert runs_for(2400.0, 30) == MIN_RUNS
    assert MIN_RUNS < runs_for(1000.0, 30) < 30
    assert runs_for(2400.0, 2) == 2  # --repeat caps every query


def test_fewer_than_one_start_is_refused():
    with pytest.raises(SystemExit):
        bench_sparql.main(["--starts", "0"])


def test_the_readme_documents_every_option():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for action in bench_sparql.parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert option in readme, option


@pytest.mark.server
def test_a_tiny_run_times_every_query_in_each_start(tmp_path):
    bench_sparql.build_store(tmp_path / "original", 300)
    original = bench_sparql.EmbeddedStore(tmp_path / "original")
    try:
        original.snapshot(tmp_path / "direct")
        (tmp_path / "served").mkdir()
        original.snapshot(tmp_path / "served" / "store")
    finally:
        original.close()
    starts = bench_sparql.run_starts(tmp_path, starts=2, repeat=2, workers=1)
    assert len(starts) == 2
    for start in starts:
        assert set(start) == {"ASK {} (fixed cost)", *QUERIES}
        for name, timing in start.items():
            assert timing.same_bytes, name  # the client got the direct query's bytes
            assert len(timing.direct) == len(timing.endpoint) == 2, name
            assert timing.ratio > 0 and timing.cpu["direct"] >= 0, name
    # each start's direct process is stopped with it
    assert not [p for p in bench_sparql.multiprocessing.active_children()
                if p.name == "bench-sparql-direct"]


@pytest.mark.skipif(not hasattr(bench_sparql.os, "sched_setaffinity"), reason="Linux only")
def test_pinning_keeps_every_thread_of_a_process_on_one_cpu():
    import subprocess
    import sys

    cpu = max(bench_sparql.os.sched_getaffinity(0))
    child = subprocess.Popen([sys.executable, "-c", "import threading, time\n"
                              "threading.Thread(target=time.sleep, args=(30,)).start()\n"
                              "print('up', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
        bench_sparql.pin([child.pid], cpu)
        threads = list(Path(f"/proc/{child.pid}/task").iterdir())
        assert len(threads) == 2
        assert all(bench_sparql.os.sched_getaffinity(int(t.name)) == {cpu} for t in threads)
    finally:
        child.kill()
        child.wait()
