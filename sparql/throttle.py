"""Who may query now: a per-client rate limit and a cap on queries running at once.

Both answer at once rather than queue: a client over its rate gets 429, a query beyond the
concurrency cap gets 503, each with `Retry-After`, so that a burst costs the server nothing.
They belong to one router: no global state.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from .errors import ServiceBusy, TooManyRequests

MAX_TRACKED_CLIENTS = 10_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: `per_minute` queries a minute, refilled continuously, with
    bursts of up to `per_minute`. Zero means no limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._buckets: dict[str, Bucket] = {}

    def admit(self, client: str) -> None:
        """Take one token for `client`, or raise 429 saying when the next one will be there."""
        if self.per_minute <= 0:
            return
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
