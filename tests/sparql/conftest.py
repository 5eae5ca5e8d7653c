"""Shared fixtures for the SPARQL tests: a real Oxigraph server on 127.0.0.1, and the three
ways a store answers /sparql (embedded directly, embedded through worker processes, remote)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from sparql.remote import RemoteStore, endpoints_for
from sparql.store import EmbeddedStore

OXIGRAPH = Path(sys.executable).parent / "oxigraph"


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering with `handler`; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def streaming_sparql_server(media_type: str, chunks: Sequence[bytes],
                            pause_s: float = 0.05) -> Iterator[str]:
    """A stand-in SPARQL server: answers every POST 200 in `media_type` at once, then sends
    `chunks` one every `pause_s` (a slow or broken server); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.end_headers()
            try:
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(pause_s)
            except OSError:  # the client gave up
                pass

        def log_message(self, *args) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class OxigraphServer:
    """`oxigraph serve` in a subprocess, as an operator would run it for Affiche."""

    def __init__(self, location: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(OXIGRAPH), "serve", "--location", str(location), "--bind",
             f"127.0.0.1:{self.port}", "--union-default-graph"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, "oxigraph serve exited"
            try:
                httpx.get(f"{self.url}/query", params={"query": "ASK {}"}, timeout=2)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "oxigraph serve did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def oxigraph_server_factory(tmp_path_factory) -> Iterator[Callable[[], OxigraphServer]]:
    """Start as many fresh, empty Oxigraph servers as a module needs; all stopped at its end."""
    if not OXIGRAPH.exists() and shutil.which("oxigraph") is None:
        pytest.skip("the `oxigraph` package (test extra) is not installed")
    servers: list[OxigraphServer] = []

    def start() -> OxigraphServer:
        servers.append(OxigraphServer(tmp_path_factory.mktemp("oxigraph")))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


STORE_KINDS = ["embedded", "remote"]


def new_store(kind: str, factory: Callable[[], OxigraphServer], tmp_dir: Path):
    """An empty store of one kind: embedded on disk, or a fresh Oxigraph server."""
    if kind == "embedded":
        return EmbeddedStore(tmp_dir / "store")
    return RemoteStore(endpoints_for(factory().url), timeout_s=30)
