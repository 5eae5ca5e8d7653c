"""The rate limiter and the concurrency gate on their own, with a clock the test moves."""

from __future__ import annotations

import pytest

from sparql.errors import ServiceBusy, TooManyRequests
from sparql.throttle import MAX_TRACKED_CLIENTS, ConcurrencyGate, RateLimiter


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
