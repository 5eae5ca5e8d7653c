"""`kill -9` during a harvest and during a dump (real `affiche` processes on an embedded store):
after a restart the store opens, the next harvest completes, and the store, the dumps and the
change feed agree with each other — nothing published is lost, nothing half-written is served."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest

from harvester.changes import ChangeLog
from publisher.dumps import list_dumps
from sparql.store import EmbeddedStore

from .conftest import programme

pytestmark = pytest.mark.server

SOURCES = 3
EVENTS = 200  # per source
EVENT_QUERY = ("PREFIX schema: <http://schema.org/> SELECT ?g ?e WHERE { GRAPH ?g { "
               "?e a schema:Event } }")


def write_config(directory: Path) -> Path:
    tables = []
    for n in range(SOURCES):
        (directory / f"salle-{n}.csv").write_bytes(programme(EVENTS, first=1 + n * 1000))
        tables.append(f'[[source]]\nid = "salle-{n}"\nname = "Salle {n}"\npath = "salle-{n}.csv"\n'
                      f'format = "csv"\n')
    config = directory / "sources.toml"
    config.write_text("\n".join(tables), encoding="utf-8")
    return config


def affiche(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "AFFICHE_DATA_DIR": str(data_dir),
           "AFFICHE_BASE_URL": "http://affiche.test"}
    return subprocess.Popen([sys.executable, "-m", "publisher.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(data_dir: Path, *args: str) -> str:
    process = affiche(data_dir, *args)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def kill_after(data_dir: Path, delay_s: float, *args: str) -> bool:
    """Start the command, SIGKILL it after `delay_s`; True when it was still running then."""
    process = affiche(data_dir, *args)
    time.sleep(delay_s)
    alive = process.poll() is None
    if alive:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    return alive


def timed(data_dir: Path, *args: str) -> float:
    started = time.monotonic()
    run(data_dir, *args)
    return time.monotonic() - started


def store_events(data_dir: Path) -> dict[str, set[str]]:
    store = EmbeddedStore(data_dir / "store")
    try:
        by_graph: dict[str, set[str]] = {}
        for row in store.select(EVENT_QUERY):
            by_graph.setdefault(str(row["g"]), set()).add(str(row["e"]))
        return by_graph
    finally:
        store.close()


def dump_events(data_dir: Path) -> dict[str, set[str]]:
    with gzip.open(data_dir / "dumps" / "affiche.nq.gz") as dump:
        quads = ox.parse(dump.read(), format=ox.RdfFormat.N_QUADS)
        by_graph: dict[str, set[str]] = {}
        for quad in quads:
            if (quad.predicate.value == "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
                    and quad.object.value == "http://schema.org/Event"):
                by_graph.setdefault(quad.graph_name.value, set()).add(quad.subject.value)
        return by_graph


def feed_events(data_dir: Path) -> set[str]:
    """Events the change feed says are live: their latest member is not a removal."""
    log = ChangeLog(data_dir)
    latest = {}
    for member in log.members_after(None):
        latest[member.event] = member.kind
    return {event for event, kind in latest.items() if kind != "removed"}


def assert_consistent(data_dir: Path) -> None:
    in_store = store_events(data_dir)
    assert sorted(len(events) for events in in_store.values()) == [EVENTS] * SOURCES
    assert dump_events(data_dir) == in_store
    assert feed_events(data_dir) == set().union(*in_store.values())
    for dump in list_dumps(data_dir / "dumps"):  # every listed file whole and as the index says
        content = (data_dir / "dumps" / dump.name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == dump.sha256, dump.name
        gzip.decompress(content)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted harvest: how long it takes, to kill the others part of the way."""
    directory = tmp_path_factory.mktemp("kill-reference")
    config = write_config(directory)
    duration = timed(directory / "data", "harvest", "--config", str(config))
    assert_consistent(directory / "data")
    return config, duration


@pytest.mark.parametrize("share", [0.4, 0.8])
def test_kill_during_a_harvest_then_the_next_one_completes(reference, tmp_path, share):
    config, duration = reference
    data_dir = tmp_path / "data"
    delay = duration * share
    for _ in range(4):  # a machine busier during the reference run makes this one end sooner
        killed = kill_after(data_dir, delay, "harvest", "--config", str(config))
        if killed:
            break
        shutil.rmtree(data_dir)
        delay /= 2
    assert killed, "the harvest ended before the kill: the test proves nothing"
    output = run(data_dir, "harvest", "--config", str(config))
    assert Counter(line.split()[-1] for line in output.splitlines()[-SOURCES:]) in (
        Counter({"ok": SOURCES}), Counter({"ok": SOURCES - 1, "unchanged": 1}),
        Counter({"ok": 1, "unchanged": SOURCES - 1}), Counter({"unchanged": SOURCES})), output
    run(data_dir, "dump")
    assert_consistent(data_dir)


def test_kill_during_a_dump_leaves_the_previous_dump_served(reference, tmp_path):
    config, _ = reference
    data_dir = tmp_path / "data"
    run(data_dir, "harvest", "--config", str(config))
    before = {d.name: d.sha256 for d in list_dumps(data_dir / "dumps")}
    duration = timed(data_dir, "dump")
    kills = [kill_after(data_dir, duration * share, "dump") for share in (0.6, 0.9)]
    assert any(kills), "every dump ended before its kill: the test proves nothing"
    after_kill = list_dumps(data_dir / "dumps")
    assert {d.name for d in after_kill} >= {n for n in before if not n.startswith("affiche-")}
    assert_consistent(data_dir)  # every listed dump is whole
    run(data_dir, "dump")
    assert_consistent(data_dir)
