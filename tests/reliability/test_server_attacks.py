"""The real server (`affiche demo` in a subprocess, a small AFFICHE_SPARQL_TIMEOUT_S) under attack:
pathological SPARQL queries are stopped at the deadline while other visitors are still answered, and
traversal paths in static and dump URLs, sent byte for byte over a raw socket, reach no file."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.conftest import free_port, stop_process, wait_for_http

pytestmark = pytest.mark.server

TIMEOUT_S = 2
CARTESIAN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?o ?p }"
PROPERTY_PATH = ("SELECT (COUNT(*) AS ?n) WHERE { "
                 + " . ".join(f"?s{n} (<http://schema.org/name>|!<http://schema.org/name>)* ?o{n}"
                              for n in range(4)) + " }")
EVENTS = "PREFIX schema: <http://schema.org/> SELECT ?e WHERE { ?e a schema:Event } LIMIT 5"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    port = free_port()
    data_dir = tmp_path_factory.mktemp("guarded-server")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "AFFICHE_DATA_DIR": str(data_dir),
           "AFFICHE_SPARQL_TIMEOUT_S": str(TIMEOUT_S), "AFFICHE_SPARQL_MAX_CONCURRENT": "3",
           "AFFICHE_SPARQL_RATE_PER_MINUTE": "0"}
    process = subprocess.Popen([sys.executable, "-m", "publisher.cli", "demo", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/", process)
        yield base, port
    finally:
        stop_process(process)


def sparql(base: str, query: str) -> httpx.Response:
    return httpx.get(f"{base}/sparql", params={"query": query},
                     headers={"Accept": "application/sparql-results+json"}, timeout=60)


def test_pathological_queries_are_stopped_while_others_are_answered(guarded_server):
    base, _ = guarded_server
    answers: dict[str, httpx.Response] = {}
    attackers = [threading.Thread(target=lambda q=q, k=k: answers.__setitem__(k, sparql(base, q)))
                 for k, q in {"cartesian": CARTESIAN, "path": PROPERTY_PATH}.items()]
    for thread in attackers:
        thread.start()
    # While both run, a visitor and an aggregator are served (they are not queued behind them).
    page = httpx.get(f"{base}/", timeout=30)
    during = sparql(base, EVENTS)
    for thread in attackers:
        thread.join(timeout=60)
    assert page.status_code == 200
    assert during.status_code == 200 and len(during.json()["results"]["bindings"]) == 5
    for name in ("cartesian", "path"):
        assert answers[name].status_code == 504, (name, answers[name].status_code, answers[name].text[:200])
        assert answers[name].headers["content-type"].startswith("application/problem+json")
    after = sparql(base, EVENTS)  # the killed workers were replaced
    assert after.status_code == 200 and len(after.json()["results"]["bindings"]) == 5


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """One request with the target exactly as written: no client normalises `..` or `%2e`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                           .encode("latin-1"))
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


TRAVERSALS = [
    "/static/../pyproject.toml", "/static/..%2fpyproject.toml", "/static/%2e%2e/pyproject.toml",
    "/static/%2e%2e%2fpyproject.toml", "/static/..%5cpyproject.toml", "/static/%252e%252e/pyproject.toml",
    "/static/....//pyproject.toml", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/../../../../../../etc/passwd", "/static/..%00/pyproject.toml",
    "/dumps/../pyproject.toml", "/dumps/..%2f..%2fpyproject.toml", "/dumps/%2e%2e/store/CURRENT",
    "/dumps/%2e%2e%2freports%2ftheatre-lumiere.json", "/dumps/..%5c..%5cpyproject.toml",
    "/dumps//etc/passwd", "/dumps/%2fetc%2fpasswd", "/dumps/.index.json",
    "/source/..%2f..%2fpyproject.toml", "/event/..%2f..%2f..%2fetc%2fpasswd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_in_static_and_dump_urls_reaches_no_file(guarded_server, target):
    _, port = guarded_server
    status, body = raw_get(port, target)
    assert status in (400, 404), (target, status)
    assert b"[project]" not in body and b"root:" not in body and b"setuptools" not in body


def test_the_files_that_are_there_are_served(guarded_server):
    """The good case beside the traversals: the same server serves its real static and dump files."""
    _, port = guarded_server
    assert raw_get(port, "/static/style.css")[0] == 200
    status, body = raw_get(port, "/dumps/affiche.nq.gz")
    assert status == 200 and body[:2] == b"\x1f\x8b"
