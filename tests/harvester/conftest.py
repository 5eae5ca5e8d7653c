"""Fixtures for harvester tests: a real HTTP server on 127.0.0.1 serving fixture sites."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.fetch import FetchPolicy

from .site_server import SiteServer, start

SITES = Path(__file__).parent.parent / "fixtures" / "sites"


@pytest.fixture
def site_server():
    """A server for the Cirque du Nord's fictional site; tests may add `routes`."""
    site = SiteServer(root=SITES / "cirque-du-nord")
    server, thread = start(site)
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def local_policy() -> FetchPolicy:
    """The guarded fetcher, allowed to reach 127.0.0.1 only, crawling without delay."""
    return FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), crawl_delay_s=0.0, timeout_s=10.0)
