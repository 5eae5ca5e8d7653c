"""The server's memory stays flat under harvests: what the allocator holds free after a harvest is
given back (publisher/memory.py). The figures under load are `bench/load_test.py`'s; here, the
mechanism, in a fresh process so that its memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from publisher import memory

ROOT = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(memory._glibc() is None, reason="glibc's malloc only")

# What each child script below starts with: its resident memory, in MiB.
RSS_MIB = """
import json, sys

def rss_mib():
    with open("/proc/self/status") as status:
        return int(next(l.split()[1] for l in status if l.startswith("VmRSS"))) / 1024
"""


def in_child(script: str, mode: str) -> dict:
    """Run `script` (after RSS_MIB) in a fresh interpreter; the JSON it printed."""
    result = subprocess.run([sys.executable, "-c", RSS_MIB + script, mode], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


# Eight threads allocate ~240 MB in 2 KB blocks (served by malloc, not by Python's small-object
# allocator), keep one block in 64 alive, as a harvest keeps its report, and free the rest.
CHURN = """
import threading
from publisher.memory import release_free_memory

kept = []
def churn(seed):
    blocks = [bytes([seed]) * (1500 + (n % 7) * 200) for n in range(15_000)]
    kept.extend(blocks[::64])

before = rss_mib()
threads = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
freed = rss_mib()
released = release_free_memory() if sys.argv[1] == "release" else None
print(json.dumps({"before": before, "freed": freed, "after": rss_mib(), "released": released,
                  "kept": len(kept)}))
"""


@glibc_only
def test_memory_freed_by_threads_stays_resident_without_the_release():
    """The premise (and the probe that the next test can fail): freed is not given back."""
    figures = in_child(CHURN, "keep")
    assert figures["kept"] == 8 * 235
    assert figures["after"] - figures["before"] > 100, figures


@glibc_only
def test_the_release_gives_freed_memory_back():
    figures = in_child(CHURN, "release")
    assert figures["released"] is True
    grown, left = figures["freed"] - figures["before"], figures["after"] - figures["before"]
    assert grown > 100, figures
    assert left < grown / 2, figures


# A harvest's large buffers: glibc raises its mmap threshold when a large block is freed, so the
# next 1 MiB blocks come from the heap; the small blocks kept between them (a report, a cache
# entry) keep the heap from shrinking when they are freed.
LARGE_BLOCKS = """
from publisher.memory import bound_the_allocator

bounded = bound_the_allocator() if sys.argv[1] == "bounded" else None
before = rss_mib()
big = bytearray(16 << 20)
del big
blocks, kept = [], []
for _ in range(150):
    blocks.append(bytearray(1 << 20))
    kept.append(bytearray(4096))  # over 512 bytes: from malloc, between the blocks
del blocks
print(json.dumps({"before": before, "after": rss_mib(), "bounded": bounded}))
"""


@glibc_only
@pytest.mark.parametrize("mode", ["default", "bounded"])
def test_large_buffers_go_back_to_the_system_once_the_allocator_is_bounded(mode):
    figures = in_child(LARGE_BLOCKS, mode)
    left = figures["after"] - figures["before"]
    if mode == "default":  # the premise, and the proof that the other case can fail
        assert left > 100, figures
    else:
        assert figures["bounded"] is True and left < 20, figures


@glibc_only
def test_the_allocator_bounds_are_taken():
    """In a child: the bounds are the process's for good."""
    taken = subprocess.run([sys.executable, "-c", "from publisher.memory import bound_the_allocator; "
                            "print(bound_the_allocator())"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, check=True)
    assert taken.stdout.strip() == "True"


def test_without_glibc_both_are_harmless_no_ops(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.bound_the_allocator() is False and memory.release_free_memory() is False


# --- the server calls it after every harvest job, done or failed ----------------------------------

from tests.publisher.test_api import api, auth, feeds, finished, harvested, register, world  # noqa: E402,F401


@pytest.fixture
def releases(monkeypatch) -> list[str]:
    from publisher import jobs

    calls: list[str] = []
    monkeypatch.setattr(jobs, "release_free_memory", lambda: calls.append("released") or True)
    return calls


@pytest.mark.anyio
async def test_a_harvest_job_releases_what_it_freed(api, world, feeds, releases):
    job = await harvested(api, world, feeds)
    assert job["state"] == "done" and releases == ["released"]


@pytest.mark.anyio
async def test_a_failed_harvest_job_releases_too(api, world, feeds, releases):
    app, tokens = world
    answer = await register(api, tokens, url=f"{feeds.base}/disparu.jsonld")
    assert answer.status_code == 201, answer.text
    job = finished(app, await api.post("/api/sources/rideau-agenda/harvest", headers=auth(tokens, "rideau")))
    state = (await api.get(f"/api/jobs/{job['id']}", headers=auth(tokens, "rideau"))).json()["state"]
    assert state == "failed" and releases == ["released"]
