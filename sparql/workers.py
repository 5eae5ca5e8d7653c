"""Public queries on the embedded store run in worker processes that are killed at their deadline.

Neither pyoxigraph nor `oxigraph serve` can cancel a running query, and a pyoxigraph query has no
timeout: a cartesian `COUNT(*)` would burn a core for hours. So `/sparql` queries run in a small
pool of processes, each reading a *snapshot* of the store (`EmbeddedStore.snapshot`: a RocksDB
checkpoint, hard links on the same filesystem), never the live store, which another process must
not open while it is written. Every write bumps the store's generation; the next query takes a
fresh snapshot, so answers are at most one write behind. A query still running at its deadline
has its process killed (SIGKILL is safe: the snapshot is read-only) and replaced, while the other
workers keep answering.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import shutil
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from .store import EmbeddedStore, QueryAnswer, QuerySyntaxError, StoreError, StoreTimeout

# Spawn, not fork: the server process holds threads (uvicorn, RocksDB) that fork would copy
# half-way through whatever they were doing.
_CONTEXT = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Job:
    """One query, as sent to a worker."""

    snapshot: str
    query: str
    results_format: str
    rdf_format: str
    default_graphs: list[str] | None
    named_graphs: list[str] | None


@dataclass(frozen=True)
class Outcome:
    """A worker's reply: the answer, or why there is none."""

    answer: QueryAnswer | None = None
    syntax_error: str | None = None
    error: str | None = None


def serve_jobs(conn: Connection) -> None:
    """A worker's loop: answer jobs until the pipe closes; keep the last snapshot open."""
    path, store = None, None
    conn.send(Outcome())  # ready: the imports are done
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            if job.snapshot != path:
                if store is not None:
                    store.close()
                path, store = None, None
                store = EmbeddedStore.read_only(Path(job.snapshot))
                path = job.snapshot
            answer = store.run(job.query, results_format=job.results_format,
                               rdf_format=job.rdf_format, default_graphs=job.default_graphs,
                               named_graphs=job.named_graphs)
            conn.send(Outcome(answer=answer))
        except QuerySyntaxError as exc:
            conn.send(Outcome(syntax_error=str(exc)))
        except Exception as exc:  # reported to the parent, which turns it into a 502
            conn.send(Outcome(error=f"{type(exc).__name__}: {exc}"))


class Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self) -> None:
        self.conn, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=serve_jobs, args=(child,), daemon=True,
                                        name="affiche-sparql-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.snapshot: str | None = None
        # close() (the app stopping) and a query thread's _replace() may kill the same worker at
        # once; closing the pipe twice concurrently would close a reused file descriptor.
        self._kill_lock = threading.Lock()

    def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        if not self.conn.poll(timeout_s):
            raise StoreError("a SPARQL worker process did not start in time")
        self.conn.recv()
        self.ready = True

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=2)
        self.kill()

    def kill(self) -> None:
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=10)
            if not self.conn.closed:
                self.conn.close()


@dataclass(frozen=True)
class Snapshot:
    path: Path
    generation: int


class QueryWorkers:
    """A pool of `processes` workers answering `run()` like a `Store`, within `timeout_s`.

    `run` blocks (call it from a thread); it waits for an idle worker, so callers should bound
    concurrency themselves (the router's gate admits at most `processes` queries at a time).
    """

    def __init__(self, store: EmbeddedStore, snapshot_dir: Path, *, processes: int,
                 timeout_s: float, start_timeout_s: float = 60.0) -> None:
        self.store, self.snapshot_dir = store, snapshot_dir
        self.processes, self.timeout_s, self.start_timeout_s = processes, timeout_s, start_timeout_s
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._workers: set[Worker] = set()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._names = itertools.count(1)
        self._closed = False

    def start(self) -> None:
        # Snapshots of a previous run are never reused: the store may have changed since.
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        self.snapshot_dir.mkdir(parents=True)
        for _ in range(self.processes):
            self._add_worker()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.stop()
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)

    def run(self, query: str, *, results_format: str = "json", rdf_format: str = "turtle",
            default_graphs: list[str] | None = None,
            named_graphs: list[str] | None = None) -> QueryAnswer:
        try:
            worker = self._idle.get(timeout=self.start_timeout_s)
        except queue.Empty:
            raise StoreError("no SPARQL worker process became free in time") from None
        try:
            worker.wait_ready(self.start_timeout_s)
            job = Job(self._snapshot_for(worker), query, results_format, rdf_format,
                      default_graphs, named_graphs)
            worker.conn.send(job)
            if not worker.conn.poll(self.timeout_s):
                self._replace(worker)
                worker = None
                raise StoreTimeout(
                    f"the query ran for more than {self.timeout_s:g} s and was stopped"
                )
            outcome: Outcome = worker.conn.recv()
        except (EOFError, OSError) as exc:
            self._replace(worker)
            worker = None
            raise StoreError("the SPARQL worker process stopped unexpectedly") from exc
        finally:
            if worker is not None:
                self._idle.put(worker)
            if not self._closed:
                self._collect_snapshots()
        if outcome.syntax_error is not None:
            raise QuerySyntaxError(outcome.syntax_error)
        if outcome.error is not None:
            raise StoreError(outcome.error)
        return outcome.answer

    # the pool

    def _add_worker(self) -> None:
        with self._lock:
            if self._closed:  # a query that ends while the pool closes starts no new worker
                return
            worker = Worker()
            self._workers.add(worker)
        self._idle.put(worker)

    def _replace(self, worker: Worker) -> None:
        """Kill a worker (stuck past its deadline, or dead) and start another in its place."""
        with self._lock:
            self._workers.discard(worker)
        worker.kill()
        self._add_worker()

    # snapshots

    def _snapshot_for(self, worker: Worker) -> str:
        """The current snapshot (taken now if the store changed since the last one), marked as
        the worker's in the same step, so that it is not collected before the worker opens it."""
        with self._lock:
            generation = self.store.generation
            if self._snapshot is None or self._snapshot.generation != generation:
                path = self.snapshot_dir / f"snapshot-{next(self._names)}"
                self.store.snapshot(path)
                self._snapshot = Snapshot(path, generation)
            worker.snapshot = str(self._snapshot.path)
            return worker.snapshot

    def _collect_snapshots(self) -> None:
        """Delete the snapshots no worker holds open any more."""
        with self._lock:
            if self._snapshot is None:
                return
            kept = {w.snapshot for w in self._workers} | {str(self._snapshot.path)}
            for path in self.snapshot_dir.iterdir():
                if str(path) not in kept:
                    shutil.rmtree(path, ignore_errors=True)


def start_public_runner(store, snapshot_dir: Path, *, processes: int, timeout_s: float):
    """What runs `/sparql` queries within `timeout_s`: worker processes over snapshots of an
    embedded store, or the remote server itself with that HTTP timeout. Close it when done."""
    from .remote import RemoteStore

    if isinstance(store, RemoteStore):
        return store.for_public_queries(timeout_s)
    workers = QueryWorkers(store, snapshot_dir, processes=processes, timeout_s=timeout_s)
    workers.start()
    return workers
