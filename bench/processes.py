"""Running one benchmark step in a fresh process, so its memory and time are its own."""

from __future__ import annotations

import multiprocessing
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
