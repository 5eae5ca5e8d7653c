"""Running one benchmark step in a fresh process, so its memory and time are its own; what
other processes (a server and its workers) use, from /proc."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from queue import Empty


def in_child(target, *args):
    """Run `target(*args, queue)` in a fresh (spawned) process; return what it put in the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not child.is_alive():
                raise RuntimeError(f"{target.__name__} died (exit code {child.exitcode})")
    child.join()
    return result


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM…), in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def cpu_ms(pids: list[int]) -> float:
    """CPU time the processes' live threads have used so far, in ms (the scheduler's own count,
    in ns, rather than /proc/PID/stat's 10 ms ticks; 0 where /proc is not)."""
    total = 0
    for pid in pids:
        for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(schedstat.read_text(encoding="ascii").split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e6


def process_tree(pid: int) -> list[int]:
    """`pid`, then its children (the server, then its query workers and multiprocessing's
    resource tracker), whichever of its threads started them."""
    children: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(child) for child in listing.read_text(encoding="ascii").split()]
        except OSError:
            continue
    return [pid, *sorted(set(children))]


def wait_until_idle(pid: int, quiet_s: float = 3.0, timeout_s: float = 300.0) -> float:
    """Wait until the server's processes have used less than 5 % of a core for `quiet_s` in a
    row (its start-up work done); the seconds waited."""
    started = time.monotonic()
    quiet_since, before = started, cpu_ms(process_tree(pid))
    while time.monotonic() - started < timeout_s:
        time.sleep(0.5)
        now = cpu_ms(process_tree(pid))
        if now - before > 0.05 * 500:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            break
        before = now
    return time.monotonic() - started
