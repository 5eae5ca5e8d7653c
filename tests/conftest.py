"""Shared fixtures: the demo feeds harvested into a real embedded store, and the app over it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harvester.pipeline import harvest
from harvester.sources import load_sources
from publisher.app import create_app
from publisher.cli import demo_config
from publisher.dumps import write_dumps
from publisher.settings import Settings
from sparql.store import EmbeddedStore

BASE_URL = "http://affiche.test"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def demo_sources():
    return load_sources(demo_config())


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory, demo_sources):
    """The demo feeds harvested once into an on-disk embedded store, with reports and dumps."""
    data_dir = tmp_path_factory.mktemp("affiche-data")
    settings = Settings(base_url=BASE_URL, data_dir=data_dir)
    store = EmbeddedStore(data_dir / "store")
    reports = {s.id: harvest(s, store, BASE_URL, settings.reports_dir) for s in demo_sources}
    write_dumps(store, settings.dumps_dir)
    yield settings, store, reports
    store.close()


@pytest.fixture(scope="session")
def demo_store(demo_data) -> EmbeddedStore:
    return demo_data[1]


@pytest.fixture(scope="session")
def demo_app(demo_data):
    settings, store, _ = demo_data
    return create_app(settings, store=store)


@pytest.fixture
async def client(demo_app):
    transport = httpx.ASGITransport(app=demo_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Ask a server started by a test to stop; kill it if it has not within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """The real thing: `affiche demo` in a subprocess on a free port of 127.0.0.1."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("demo-server")
    env = {"PATH": "/usr/bin:/bin", "AFFICHE_DATA_DIR": str(data_dir), "HOME": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "demo", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/", process)
        yield base
    finally:
        stop_process(process, timeout=10)
