"""A remote store (`oxigraph serve`) killed under a running app: pages answer 502/503/504 with a
clear message, never 404, and the app recovers on its own when the store comes back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harvester.pipeline import harvest
from publisher.app import create_app
from publisher.settings import Settings
from sparql.remote import RemoteStore, endpoints_for
from tests.conftest import free_port, wait_for_http
from tests.sparql.test_stores_in_app import serving

pytestmark = pytest.mark.server

OXIGRAPH = Path(sys.executable).parent / "oxigraph"
BASE = "http://affiche.test"
BROWSER = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


def start_oxigraph(location: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(OXIGRAPH), "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}",
         "--union-default-graph"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_http(f"http://127.0.0.1:{port}/query?query=ASK%20%7B%7D", process)
    return process


@pytest.fixture
def oxigraph(tmp_path):
    if not OXIGRAPH.exists() and shutil.which("oxigraph") is None:
        pytest.skip("the `oxigraph` package (test extra) is not installed")
    port = free_port()
    state = {"process": start_oxigraph(tmp_path / "oxigraph", port), "port": port,
             "location": tmp_path / "oxigraph"}
    yield state
    if state["process"].poll() is None:
        state["process"].kill()
        state["process"].wait()


def test_pages_fail_clearly_while_the_store_is_down_and_recover(oxigraph, demo_sources, tmp_path):
    url = f"http://127.0.0.1:{oxigraph['port']}"
    store = RemoteStore(endpoints_for(url), timeout_s=5)
    settings = Settings(base_url=BASE, data_dir=tmp_path / "data", store=url, store_timeout_s=5,
                        sparql_rate_per_minute=0)
    for source in demo_sources:
        assert harvest(source, store, BASE, settings.reports_dir).error is None
    event = str(store.select("PREFIX schema: <http://schema.org/> SELECT ?e WHERE "
                             "{ ?e a schema:Event } LIMIT 1")[0]["e"])
    app = create_app(settings, store=store)
    paths = [event.removeprefix(BASE), "/"]  # pages read from the store
    query = {"query": "SELECT ?e WHERE { ?e a <http://schema.org/Event> } LIMIT 1"}
    with serving(app) as site:
        before = [httpx.get(site + p, timeout=30).status_code for p in paths]
        os.kill(oxigraph["process"].pid, signal.SIGKILL)
        oxigraph["process"].wait()
        down_pages = [httpx.get(site + p, headers=BROWSER, timeout=30) for p in paths]
        down_json = httpx.get(site + paths[0], headers={"Accept": "application/ld+json"}, timeout=30)
        down_sparql = httpx.get(site + "/sparql", params=query, timeout=30)
        # the organiser's report is kept beside the store, not in it: still there for them
        down_report = httpx.get(site + "/source/theatre-lumiere", timeout=30)
        oxigraph["process"] = start_oxigraph(oxigraph["location"], oxigraph["port"])
        after = [httpx.get(site + p, timeout=30) for p in paths]
        after_sparql = httpx.get(site + "/sparql", params=query, timeout=30)
    assert before == [200, 200]
    assert down_report.status_code == 200
    for response in [*down_pages, down_json, down_sparql]:
        assert response.status_code in (502, 503, 504), (response.url, response.status_code)
    assert "SPARQL server" in down_json.json()["detail"]
    assert "SPARQL server" in down_sparql.json()["detail"]
    for response in down_pages:
        assert response.headers["content-type"].startswith("text/html")
    assert [r.status_code for r in after] == [200, 200]  # no restart of the app needed
    assert after_sparql.status_code == 200
    assert after_sparql.json()["results"]["bindings"][0]["e"]["value"] == event
