"""Who may query now: a per-client rate limit and a cap on queries running at once.

Both answer at once rather than queue: a client over its rate gets 429, a query beyond the
concurrency cap gets 503, each with `Retry-After`, so that a burst costs the server nothing.
They belong to one router: no global state.

A client is its IP address (`ClientAddresses`): the peer's, unless the peer is one of the
operator's trusted proxies, which alone may say, in `X-Forwarded-For`, whom they forward for.
The rate is counted per IPv4 address but per IPv6 /64 (`rate_key`): one subscriber line or host
usually holds a whole /64, and could otherwise take a fresh address, and a fresh bucket, for
every query.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .errors import ServiceBusy, TooManyRequests

MAX_TRACKED_CLIENTS = 10_000
MAX_FORWARDED_HOPS = 20

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_RATE_PREFIX = 64


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """Addresses (`192.0.2.10`, `2001:db8::1`) or networks (`10.0.0.0/8`); ValueError names a
    bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return networks


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it in X-Forwarded-For: bare, `[v6]`, or with a port."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class ClientAddresses:
    """Who a request comes from. The peer's address, unless the peer is a trusted proxy: then
    `X-Forwarded-For` is read from the right (each proxy appends the address it was reached
    from), over the trusted proxies, and the first address that is not one is the client. What
    lies left of it was written by the client itself and could be anything, so it is never
    read. Without trusted proxies the header is ignored: anyone may send it."""

    def __init__(self, trusted: Iterable[str | IPNetwork] = ()) -> None:
        self.trusted = [t if not isinstance(t, str) else parse_networks([t])[0] for t in trusted]

    def is_trusted(self, address) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def client(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
        if peer is None:
            return "unknown"
        current = _address(peer)
        if not self.is_trusted(current):
            return str(current) if current is not None else peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        hops = [hop for hop in hops if hop][-MAX_FORWARDED_HOPS:]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:  # a trusted proxy wrote something that is no address
                return hop[:100]
            if not self.is_trusted(address):
                return str(address)
            current = address
        return str(current)  # every hop is a trusted proxy: the left-most is the client


def rate_key(client: str) -> str:
    """What a client's rate is counted by: its IPv4 address, its IPv6 address's /64, or, for
    what is no address (a junk hop, a test client), the name as it is."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    address = getattr(address, "ipv4_mapped", None) or address
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, IPV6_RATE_PREFIX), strict=False))
    return str(address)


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client (per `rate_key`: an IPv6 /64 is one client): `per_minute`
    queries a minute, refilled continuously, with bursts of up to `per_minute`. Zero means no
    limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._buckets: dict[str, Bucket] = {}

    def admit(self, client: str) -> None:
        """Take one token for `client`, or raise 429 saying when the next one will be there."""
        if self.per_minute <= 0:
            return
        client = rate_key(client)
        now, rate = self.clock(), self.per_minute / 60.0
        bucket = self._buckets.get(client)
        if bucket is None:
            self._forget_idle_clients(now)
            bucket = self._buckets[client] = Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = math.ceil((1.0 - bucket.tokens) / rate)
            raise TooManyRequests(
                f"this endpoint answers {self.per_minute} queries a minute per client; "
                f"try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1.0

    def _forget_idle_clients(self, now: float) -> None:
        """Bound the memory: drop the clients whose bucket has refilled (they lose nothing)."""
        if len(self._buckets) < MAX_TRACKED_CLIENTS:
            return
        refill = 60.0
        self._buckets = {client: bucket for client, bucket in self._buckets.items()
                         if now - bucket.updated < refill}


class Slot:
    """One admitted query; releasing it twice is harmless (a stream may end in two ways)."""

    def __init__(self, gate: ConcurrencyGate) -> None:
        self._gate: ConcurrencyGate | None = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._leave()


class ConcurrencyGate:
    """At most `limit` queries at once; the next one is refused (503) until one ends. A streamed
    answer holds its slot until its last byte, and may release it from another thread."""

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit, self.retry_after_s = limit, retry_after_s
        self.running = 0
        self._lock = threading.Lock()

    def acquire(self) -> Slot:
        with self._lock:
            if self.running >= self.limit:
                raise ServiceBusy(
                    f"{self.running} queries are already running, the most this endpoint runs "
                    "at once; try again shortly",
                    headers={"Retry-After": str(self.retry_after_s)},
                )
            self.running += 1
        return Slot(self)

    def _leave(self) -> None:
        with self._lock:
            self.running -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        admitted = self.acquire()
        try:
            yield
        finally:
            admitted.release()
