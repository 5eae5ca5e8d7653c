"""The rate limiter and the concurrency gate on their own, with a clock the test moves; who the
client is behind proxies, on its own and through the router."""

from __future__ import annotations

import httpx
import pytest

from sparql.errors import ServiceBusy, TooManyRequests
from sparql.guard import SparqlLimits
from sparql.throttle import (
    MAX_FORWARDED_HOPS,
    MAX_TRACKED_CLIENTS,
    ClientAddresses,
    ConcurrencyGate,
    RateLimiter,
    parse_networks,
    rate_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_may_burst_up_to_its_rate_then_gets_429_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.admit("192.0.2.1")
    with pytest.raises(TooManyRequests) as refused:
        limiter.admit("192.0.2.1")
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "20"  # one token every 20 s


def test_tokens_come_back_with_time() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, clock=clock)
    for _ in range(60):
        limiter.admit("198.51.100.7")
    with pytest.raises(TooManyRequests):
        limiter.admit("198.51.100.7")
    clock.now += 1.0
    limiter.admit("198.51.100.7")
    with pytest.raises(TooManyRequests):
        limiter.admit("198.51.100.7")


def test_clients_are_counted_apart() -> None:
    limiter = RateLimiter(per_minute=1, clock=Clock())
    limiter.admit("192.0.2.1")
    limiter.admit("192.0.2.2")
    with pytest.raises(TooManyRequests):
        limiter.admit("192.0.2.1")


def test_an_ipv6_client_is_its_slash_64() -> None:
    limiter = RateLimiter(per_minute=1, clock=Clock())
    limiter.admit("2001:db8:a:b::1")
    with pytest.raises(TooManyRequests):  # another address of the same /64: the same client
        limiter.admit("2001:db8:a:b:ffff:ffff:ffff:fffe")
    limiter.admit("2001:db8:a:c::1")  # the next /64 is another client
    limiter.admit("::ffff:192.0.2.1")  # an IPv4-mapped address is its IPv4 address…
    with pytest.raises(TooManyRequests):
        limiter.admit("192.0.2.1")
    limiter.admit("192.0.2.2")  # …and IPv4 clients stay one per address


def test_rate_keys() -> None:
    assert rate_key("2001:DB8:a:b:1:2:3:4") == "2001:db8:a:b::/64"
    assert rate_key("192.0.2.1") == "192.0.2.1"
    assert rate_key("testclient") == "testclient"  # no address: counted by its name


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(per_minute=0, clock=Clock())
    for _ in range(1000):
        limiter.admit("192.0.2.1")


def test_idle_clients_are_forgotten_when_there_are_many() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, clock=clock)
    for number in range(MAX_TRACKED_CLIENTS):
        limiter.admit(f"client-{number}")
    clock.now += 61
    limiter.admit("one-more")
    assert len(limiter._buckets) == 1


def test_busy_clients_are_not_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, clock=clock)
    for number in range(MAX_TRACKED_CLIENTS):
        limiter.admit(f"client-{number}")
    limiter.admit("one-more")
    with pytest.raises(TooManyRequests):
        limiter.admit("client-0")


def test_the_gate_admits_up_to_its_limit_and_frees_slots() -> None:
    gate = ConcurrencyGate(2)
    with gate.slot(), gate.slot():
        with pytest.raises(ServiceBusy) as refused:
            with gate.slot():
                pass
        assert refused.value.headers["Retry-After"] == "1"
    with gate.slot():
        assert gate.running == 1
    assert gate.running == 0


def test_a_failing_query_frees_its_slot() -> None:
    gate = ConcurrencyGate(1)
    with pytest.raises(RuntimeError):
        with gate.slot():
            raise RuntimeError("the store failed")
    assert gate.running == 0


# --- who the client is: X-Forwarded-For, from trusted proxies only ---------------------------

PROXIES = ClientAddresses(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    nobody = ClientAddresses()
    assert nobody.client("198.51.100.20", ["203.0.113.5"]) == "198.51.100.20"


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    assert PROXIES.client("198.51.100.20", ["203.0.113.5"]) == "198.51.100.20"


def test_a_trusted_proxy_names_the_client() -> None:
    assert PROXIES.client("10.1.2.3", ["203.0.113.5"]) == "203.0.113.5"


def test_the_right_most_untrusted_hop_wins_over_what_the_client_wrote() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; its proxy appended the address it saw.
    assert PROXIES.client("10.1.2.3", ["1.1.1.1, 203.0.113.5"]) == "203.0.113.5"
    # Two trusted proxies in a row (a CDN, then the load balancer), headers on two lines.
    assert PROXIES.client("192.0.2.7", ["1.1.1.1, 203.0.113.5", "10.9.9.9"]) == "203.0.113.5"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert PROXIES.client("10.1.2.3", ["10.4.4.4, 10.5.5.5"]) == "10.4.4.4"
    assert PROXIES.client("10.1.2.3", []) == "10.1.2.3"


def test_addresses_as_proxies_write_them() -> None:
    assert PROXIES.client("10.1.2.3", ["203.0.113.5:41234"]) == "203.0.113.5"
    assert PROXIES.client("10.1.2.3", ["[2001:db9::1]:443"]) == "2001:db9::1"
    assert PROXIES.client("2001:db8::5", ["2001:DB9:0:0::1"]) == "2001:db9::1"
    assert PROXIES.client("::ffff:10.1.2.3", ["203.0.113.5"]) == "203.0.113.5"  # mapped IPv4
    assert PROXIES.client("10.1.2.3", ["203.0.113.5, unknown"]) == "unknown"


def test_a_bad_proxy_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="10.0.0.300"):
        parse_networks(["10.0.0.0/8", "10.0.0.300"])


@pytest.mark.anyio
@pytest.mark.parametrize("trusted", [(), ("10.0.0.0/8",)])
async def test_the_rate_limit_counts_clients_behind_a_trusted_proxy_apart(trusted) -> None:
    from .test_endpoint import make_app
    from .test_workers import BlockingStore

    store = BlockingStore()
    store.release.set()
    app = make_app(store, SparqlLimits(rate_per_minute=1, trusted_proxies=trusted))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 50000))

    async def ask(forwarded_for: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/sparql", params={"query": "SELECT * {}"},
                                      headers={"X-Forwarded-For": forwarded_for})
            return response.status_code

    statuses = [await ask("203.0.113.5"), await ask("203.0.113.6"), await ask("203.0.113.5")]
    if trusted:  # two clients, one query a minute each: the third is the first client's second
        assert statuses == [200, 200, 429]
    else:  # the header is not believed: all three come from the proxy, one client
        assert statuses == [200, 429, 429]


@pytest.mark.anyio
async def test_the_router_counts_an_ipv6_client_by_its_slash_64() -> None:
    from .test_endpoint import make_app
    from .test_workers import BlockingStore

    store = BlockingStore()
    store.release.set()
    app = make_app(store, SparqlLimits(rate_per_minute=1))

    async def ask(peer: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/sparql", params={"query": "SELECT * {}"})
            return response.status_code

    statuses = [await ask(peer) for peer in
                ("2001:db8:5:6::10", "2001:db8:5:6::11", "2001:db8:5:7::10", "192.0.2.8",
                 "192.0.2.9")]
    assert statuses == [200, 429, 200, 200, 200]


def test_the_setting_lists_addresses_and_networks(tmp_path) -> None:
    from publisher.settings import Settings

    settings = Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8, 192.0.2.7 ,::1")
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.7", "::1"]
    assert Settings(data_dir=tmp_path).trusted_proxies == []
    with pytest.raises(ValueError, match="proxy.example"):
        Settings(data_dir=tmp_path, trusted_proxies="proxy.example")


@pytest.mark.server
@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_affiche_serve_believes_only_the_proxies_it_is_told_of(tmp_path, trusted: str) -> None:
    """uvicorn alone would believe X-Forwarded-For from 127.0.0.1; `affiche serve` leaves that
    to AFFICHE_TRUSTED_PROXIES."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import free_port, wait_for_http

    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AFFICHE_DATA_DIR": str(tmp_path),
           "AFFICHE_SPARQL_RATE_PER_MINUTE": "1", "AFFICHE_SPARQL_MAX_CONCURRENT": "1",
           "AFFICHE_SCHEDULER_POLL_S": "0", "AFFICHE_TRUSTED_PROXIES": trusted}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "serve", "--port", str(port)], env=env,
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/robots.txt", process)
        statuses = [httpx.get(f"http://127.0.0.1:{port}/sparql", timeout=60,
                              params={"query": "ASK {}"},
                              headers={"X-Forwarded-For": client}).status_code
                    for client in ("203.0.113.5", "203.0.113.6")]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert statuses == ([200, 200] if trusted else [200, 429])


def test_junk_in_place_of_an_address_still_names_a_bounded_client() -> None:
    assert PROXIES.client("testclient") == "testclient"  # a peer that is no IP address
    assert PROXIES.client("10.1.2.3", ["x" * 5000]) == "x" * 100  # no unbounded bucket key
    # Only the last MAX_FORWARDED_HOPS hops are read: a header padded with trusted hops cannot
    # make the limiter walk it all, nor reach the address the client wrote on its left.
    padded = ", ".join(["203.0.113.5"] + ["10.0.0.1"] * (MAX_FORWARDED_HOPS + 5))
    assert PROXIES.client("10.1.2.3", [padded]) == "10.0.0.1"
