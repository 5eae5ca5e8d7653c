"""Coverage-guided fuzzing with atheris: every parser and the normaliser, for a bounded number of
inputs each, through the real harness (`fuzz/fuzz_parsers.py`, one libFuzzer process per target).

Skipped where atheris is not installed (it ships wheels for CPython on Linux x86-64 and macOS only).
Longer runs are for people: `.venv/bin/python fuzz/fuzz_parsers.py ics --seconds 600`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "fuzz" / "fuzz_parsers.py"
TARGETS = ("html", "jsonld", "ics", "csv", "rdf", "openagenda", "uitdatabank", "sitemap", "normalise")
RUNS = 400  # inputs per target beyond the seeds: ~60 s for all nine on two busy cores
DONE = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def run_harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HARNESS), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Each target fuzzed for RUNS inputs with a fixed seed, two at a time."""
    def one(target: str) -> subprocess.CompletedProcess:
        artifacts = tmp_path_factory.mktemp(f"artifacts-{target}")
        return run_harness(target, f"--runs={RUNS}", "--seconds=120", "--seed=1", "--timeout=20",
                           f"--artifacts={artifacts}", f"--corpus={artifacts / 'corpus'}",
                           cwd=artifacts)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(TARGETS, pool.map(one, TARGETS)))


def test_the_harness_lists_every_parser_and_the_normaliser():
    from harvester.formats import formats

    listed = run_harness("--list", cwd=ROOT).stdout.split()
    crawled = {"site"}  # crawling fetches pages: its reading of HTML is the `html` target
    assert set(listed) == set(formats()) - crawled | {"normalise"}
    assert set(listed) == set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_no_input_crashes_hangs_or_blows_up_a_parser(fuzzed, target):
    result = fuzzed[target]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Uncaught Python exception" not in output and "==ERROR" not in output
    executed = int(DONE.search(output).group(1))
    assert executed >= RUNS  # the seeds plus RUNS mutated inputs were all tried


def test_the_harness_reports_a_crashing_input(tmp_path):
    """The bad-input side: a replayed input that breaks a parser's promise is a failure with the
    traceback, not a silent pass. A parser that lets a stray exception out is simulated by
    replaying through a target whose parser is replaced, in a child process, by one that raises."""
    crash = tmp_path / "crash.csv"
    crash.write_bytes("titre;début\r\nLes Hirondelles;demain\r\n".encode())
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(HARNESS)!r}, 'csv', {str(crash)!r}, '--artifacts={tmp_path}']\n"
        "import harvester.formats as f\n"
        "from dataclasses import replace\n"
        "def broken(content, ctx):\n"
        "    raise KeyError('début')\n"
        "table = f.formats()\n"
        "table['csv'] = replace(table['csv'], parse=broken)\n"
        f"runpy.run_path({str(HARNESS)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "KeyError" in output and "début" in output


def test_the_harness_replays_a_good_input_cleanly(tmp_path):
    good = tmp_path / "programme.csv"
    good.write_bytes("titre;début;lieu\r\nBal des Hirondelles;12/03/2027 20h00;Namur\r\n".encode())
    result = run_harness("csv", str(good), f"--artifacts={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert int(DONE.search(result.stdout + result.stderr).group(1)) == 1
