"""Public queries on the embedded store run in worker processes that are killed at their deadline.

Neither pyoxigraph nor `oxigraph serve` can cancel a running query, and a pyoxigraph query has no
timeout: a cartesian `COUNT(*)` would burn a core for hours. So `/sparql` queries run in a small
pool of processes, each reading a *snapshot* of the store (`EmbeddedStore.snapshot`: a RocksDB
checkpoint, hard links on the same filesystem), never the live store, which another process must
not open while it is written. Every write bumps the store's generation; the next query takes a
fresh snapshot, so answers are at most one write behind. A query still running at its deadline
has its process killed (SIGKILL is safe: the snapshot is read-only) and replaced, while the other
workers keep answering. With a memory limit, a worker's data segment is capped (`RLIMIT_DATA`:
the memory it allocates, heap and anonymous mappings; not the files it maps): a query that needs
more fails its allocation there, not in the server. What a worker writes on its stderr (Rust's
"memory allocation of … bytes failed" as pyoxigraph aborts, a traceback) comes to the server on
a pipe and is logged by it, a line for each, the allocation failure as one line saying what it
means (`relay_stderr`).

The worker does the whole answer — runs the query, cuts it at the row cap, serialises it in the
format asked for (`answers.evaluate`) — and writes the bytes on a pipe, framed by a small header.
The server waits for them on its event loop (`loop.add_reader`), without a thread, and answers
with those bytes as they are: the path of a query costs one pipe round trip.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import pickle
import re
import resource
import shutil
import signal
import struct
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pyoxigraph as ox

from .answers import Answer, PublicQuery, evaluate
from .store import EmbeddedStore, QuerySyntaxError, StoreError, StoreTimeout

# Spawn, not fork: the server process holds threads (uvicorn, RocksDB) that fork would copy
# half-way through whatever they were doing.
_CONTEXT = multiprocessing.get_context("spawn")

# A reply on the pipe: the length of the pickled `Reply`, the length of the answer's bytes, then
# both. The server reads whatever the pipe holds each time the event loop finds it readable; a
# pipe wider than Linux's 64 KiB default (when the system allows) lets most answers through at once.
_HEADER = struct.Struct("!IQ")
_PIPE_BYTES = 1 << 20
_READ_BYTES = 1 << 20
_LOGGED_LINE_CHARS = 500
_ALLOCATION_FAILED = re.compile(r"memory allocation of (\d+) bytes failed")

log = logging.getLogger("affiche.sparql")


class QueryOverMemory(StoreError):
    """The query needed more memory than a worker may have; it was stopped."""


@dataclass(frozen=True)
class Job:
    """One query, as sent to a worker: what to answer and on which snapshot."""

    snapshot: str
    query: PublicQuery


@dataclass(frozen=True)
class Reply:
    """A worker's word on a job; the answer's bytes follow it on the pipe."""

    status: str  # "ready" | "answer" | "syntax" | "memory" | "error"
    media_type: str = ""
    truncated: bool = False
    message: str = ""


# --- the worker process ---------------------------------------------------------------------


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _send(fd: int, reply: Reply, body: bytes = b"") -> None:
    """Write a reply in one system call (when the pipe has room for it): the server's event loop
    then wakes once for it, rather than once for its header and again for its body — on a busy
    machine each wake-up may wait for a CPU."""
    meta = pickle.dumps(reply)
    head = _HEADER.pack(len(meta), len(body)) + meta
    written = os.writev(fd, [head, body]) if body else 0
    if written < len(head):
        _write_all(fd, head[written:])
        _write_all(fd, body)
    else:
        _write_all(fd, memoryview(body)[written - len(head):])


def limit_memory(memory_mb: int) -> None:
    """Cap the memory this process allocates: beyond it allocations fail (pyoxigraph then aborts
    the process, Python raises MemoryError), instead of the machine swapping or the OOM killer
    choosing a victim. `RLIMIT_DATA` rather than `RLIMIT_AS`: the address space also counts
    what is only reserved (allocator arenas, thread stacks), which grows with the machine's
    cores, not with the query."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def serve_jobs(jobs: Connection, replies: Connection, memory_mb: int = 0,
               stderr: Connection | None = None) -> None:
    """A worker's loop: answer jobs until the pipe closes; keep the last snapshot open. What
    the process writes on its stderr goes to `stderr`, for the server to log."""
    if stderr is not None:
        os.dup2(stderr.fileno(), 2)
        stderr.close()
    limit_memory(memory_mb)
    out = replies.fileno()
    path, store = None, None
    _send(out, Reply("ready"))  # the imports are done
    while True:
        try:
            job = jobs.recv()
        except EOFError:
            return
        if job is None:
            return
        if job.snapshot != path:
            path, store = None, None  # the old snapshot is closed before the next opens
            try:
                store = ox.Store.read_only(job.snapshot)
                path = job.snapshot
            except Exception as exc:  # reported to the server, which answers 502
                _send(out, Reply("error", message=f"cannot open the snapshot: {exc}"))
                continue
        _send(out, *_answer_job(store, job.query))


def _answer_job(store, query: PublicQuery) -> tuple[Reply, bytes]:
    try:
        answer = evaluate(store, query)
    except QuerySyntaxError as exc:
        return Reply("syntax", message=str(exc)), b""
    except MemoryError:
        return Reply("memory"), b""
    except Exception as exc:  # reported to the server, which answers 502
        return Reply("error", message=f"{type(exc).__name__}: {exc}"), b""
    return Reply("answer", answer.media_type, answer.truncated), answer.body


# --- the server's end -----------------------------------------------------------------------


def relay_stderr(fd: int, pid: int, memory_mb: int) -> None:
    """Log what a worker writes on its stderr, a line at a time, until the worker ends (run in
    a thread of its own; closes `fd`). Rust's allocation failure is said as what it is, in one
    line; what follows it is the abort's own noise (a backtrace, which fails to allocate in
    turn), logged at debug level only."""
    aborting = False
    with open(fd, "rb") as stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()[:_LOGGED_LINE_CHARS]
            failed = _ALLOCATION_FAILED.search(line)
            if aborting:
                log.debug("sparql: query worker (pid %d): %s", pid, line)
            elif failed and memory_mb > 0:
                aborting = True
                log.warning("sparql: a query worker (pid %d) reached its memory limit "
                            "(AFFICHE_SPARQL_WORKER_MEMORY_MB=%d) asking for %s bytes more; its "
                            "query was stopped", pid, memory_mb, failed[1])
            elif line:
                log.warning("sparql: query worker (pid %d): %s", pid, line)


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or over /proc/sys/fs/pipe-max-size: the default pipe works too


class _Frame:
    """A reply being read off the pipe: the header, the pickled `Reply`, then the body."""

    def __init__(self) -> None:
        self.head = b""
        self.meta_size = self.body_size = -1
        self.meta = b""
        self.chunks: list[bytes] = []
        self.received = 0

    @property
    def complete(self) -> bool:
        return self.body_size >= 0 and len(self.meta) == self.meta_size and \
            self.received == self.body_size

    def wanted(self) -> int:
        """How many bytes to read next (never past this reply)."""
        if self.meta_size < 0:
            return _HEADER.size - len(self.head)
        if len(self.meta) < self.meta_size:
            return self.meta_size - len(self.meta)
        return min(self.body_size - self.received, _READ_BYTES)

    def take(self, data: bytes) -> None:
        if self.meta_size < 0:
            self.head += data
            if len(self.head) == _HEADER.size:
                self.meta_size, self.body_size = _HEADER.unpack(self.head)
        elif len(self.meta) < self.meta_size:
            self.meta += data
        else:
            self.chunks.append(data)
            self.received += len(data)

    def reply(self) -> tuple[Reply, bytes]:
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        return pickle.loads(self.meta), body


class Worker:
    """One worker process, the pipe the server sends jobs on, and the pipe it reads replies from."""

    def __init__(self, memory_mb: int = 0) -> None:
        job_reader, self.jobs = _CONTEXT.Pipe(duplex=False)
        self.replies, reply_writer = _CONTEXT.Pipe(duplex=False)
        stderr_reader, stderr_writer = _CONTEXT.Pipe(duplex=False)
        for end in (self.jobs, self.replies):
            _widen_pipe(end.fileno())
        self.process = _CONTEXT.Process(
            target=serve_jobs, daemon=True, name="affiche-sparql-worker",
            args=(job_reader, reply_writer, memory_mb, stderr_writer))
        self.process.start()
        for end in (job_reader, reply_writer, stderr_writer):
            end.close()
        # The relay owns (a copy of) the reading end from now on, and ends with the process.
        relayed = os.dup(stderr_reader.fileno())
        stderr_reader.close()
        self._relay = threading.Thread(target=relay_stderr,
                                       args=(relayed, self.process.pid, memory_mb),
                                       daemon=True, name="affiche-sparql-worker-stderr")
        self._relay.start()
        os.set_blocking(self.replies.fileno(), False)  # read from the event loop only
        self.ready = False
        self.snapshot: str | None = None
        # close() (the app stopping) and a query's replacement of its worker may kill the same
        # worker at once; closing the pipes twice would close reused file descriptors.
        self._kill_lock = threading.Lock()

    async def receive(self, timeout_s: float) -> tuple[Reply, bytes]:
        """The next reply, read on the running event loop as it arrives. EOFError when the
        process ends first; asyncio.TimeoutError after `timeout_s`."""
        loop = asyncio.get_running_loop()
        fd, sentinel = self.replies.fileno(), self.process.sentinel
        frame, done = _Frame(), loop.create_future()

        def readable() -> None:
            try:
                while not frame.complete:
                    data = os.read(fd, frame.wanted())
                    if not data:
                        raise EOFError
                    frame.take(data)
            except BlockingIOError:
                return
            except (EOFError, OSError) as exc:
                if not done.done():
                    done.set_exception(EOFError(str(exc)))
                return
            if not done.done():
                done.set_result(frame.reply())

        def ended() -> None:
            readable()  # a reply written just before the end is still taken
            if not done.done():
                done.set_exception(EOFError("the worker process ended"))

        loop.add_reader(fd, readable)
        loop.add_reader(sentinel, ended)
        try:
            return await asyncio.wait_for(done, timeout_s)
        finally:
            loop.remove_reader(fd)
            loop.remove_reader(sentinel)

    async def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        try:
            reply, _ = await self.receive(timeout_s)
        except asyncio.TimeoutError:
            raise StoreError("a SPARQL worker process did not start in time") from None
        if reply.status != "ready":
            raise StoreError(f"a SPARQL worker process started badly: {reply}")
        self.ready = True

    def stop(self) -> None:
        try:
            self.jobs.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=2)
        self.kill()

    def kill(self) -> None:
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=10)
            for end in (self.jobs, self.replies):
                if not end.closed:
                    end.close()
        self._relay.join(timeout=2)  # what the process wrote last is logged by now


class IdleWorkers:
    """The workers free for a query. Taken from the event loop (whichever one runs the query:
    tests run several), given back from it or from a thread that started a replacement.

    Last in, first out: the worker that answered last answers next, so that when queries come
    one at a time they all go to one process whose caches (RocksDB's blocks, the CPU's) hold
    what the last queries read; the others wait as spares, rather than each finding its caches
    colder in turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[Worker] = deque()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()

    def put(self, worker: Worker) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if not waiter.done():
                    try:
                        loop.call_soon_threadsafe(self._hand_over, waiter, worker)
                        return
                    except RuntimeError:  # that loop is closed
                        continue
            self._idle.append(worker)

    def _hand_over(self, waiter: asyncio.Future, worker: Worker) -> None:
        if waiter.done():  # its query gave up meanwhile: the next one takes the worker
            self.put(worker)
        else:
            waiter.set_result(worker)

    async def get(self, timeout_s: float) -> Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._idle:
                return self._idle.pop()
            waiter = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except asyncio.TimeoutError:
            raise StoreError("no SPARQL worker process became free in time") from None

    def __len__(self) -> int:
        return len(self._idle)


@dataclass(frozen=True)
class Snapshot:
    path: Path
    generation: int


class QueryWorkers:
    """A pool of `processes` workers answering public queries within `timeout_s`, each
    allocating at most `memory_mb` (0: no limit).

    `answer` waits for an idle worker, so callers should bound concurrency themselves (the
    router's gate admits at most `processes` queries at a time).
    """

    def __init__(self, store: EmbeddedStore, snapshot_dir: Path, *, processes: int,
                 timeout_s: float, memory_mb: int = 0, start_timeout_s: float = 60.0) -> None:
        self.store, self.snapshot_dir = store, snapshot_dir
        self.processes, self.timeout_s, self.memory_mb = processes, timeout_s, memory_mb
        self.start_timeout_s = start_timeout_s
        self._idle = IdleWorkers()
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

    async def answer(self, query: PublicQuery) -> Answer:
        """The answer to `query`, from a worker; StoreTimeout (the worker killed) past the
        deadline, QueryOverMemory past the memory limit, QuerySyntaxError, or StoreError."""
        worker = await self._idle_worker()
        try:
            await worker.wait_ready(self.start_timeout_s)
            previous = worker.snapshot
            snapshot = await self._snapshot_for(worker)
            worker.jobs.send(Job(snapshot, query))
            reply, body = await worker.receive(self.timeout_s)
        except asyncio.TimeoutError:
            await asyncio.to_thread(self._replace, worker)
            raise StoreTimeout(
                f"the query ran for more than {self.timeout_s:g} s and was stopped") from None
        except (EOFError, OSError) as exc:
            await asyncio.to_thread(self._replace, worker)
            raise self._ended(worker) from exc
        except BaseException:  # cancelled, or the pool broke: its late reply must not be read
            self._replace_in_background(worker)
            raise
        self._idle.put(worker)
        if previous is not None and previous != snapshot:
            await asyncio.to_thread(self._collect_snapshots)
        return self._outcome(reply, body)

    async def _idle_worker(self) -> Worker:
        """An idle worker; one that died while idle (killed from outside) is replaced rather
        than given a query to fail."""
        while True:
            worker = await self._idle.get(self.start_timeout_s)
            if worker.process.is_alive():
                return worker
            self._replace_in_background(worker)

    def _outcome(self, reply: Reply, body: bytes) -> Answer:
        if reply.status == "answer":
            return Answer(body, reply.media_type, reply.truncated)
        if reply.status == "syntax":
            raise QuerySyntaxError(reply.message)
        if reply.status == "memory":
            raise self._over_memory()
        raise StoreError(reply.message)

    def _over_memory(self) -> QueryOverMemory:
        return QueryOverMemory(f"the query needed more than the {self.memory_mb} MB of memory a "
                               "query may use, and was stopped")

    def _ended(self, worker: Worker) -> StoreError:
        """Why a worker ended: while starting (with a memory limit too low to start in?), at its
        memory limit during a query (an allocation that failed makes pyoxigraph abort), or for
        anything else."""
        aborted = self.memory_mb > 0 and worker.process.exitcode == -signal.SIGABRT
        if not worker.ready:
            hint = f" within {self.memory_mb} MB" if aborted else ""
            return StoreError(f"a SPARQL worker process could not start{hint} (exit code "
                              f"{worker.process.exitcode})")
        if aborted:
            return self._over_memory()
        return StoreError("the SPARQL worker process stopped unexpectedly")

    # the pool

    def _add_worker(self) -> None:
        with self._lock:
            if self._closed:  # a query that ends while the pool closes starts no new worker
                return
            worker = Worker(self.memory_mb)
            self._workers.add(worker)
        self._idle.put(worker)

    def _replace_in_background(self, worker: Worker) -> None:
        """`_replace` in a thread of its own, not awaited: for a query that was cancelled (its
        client went away), which can await nothing more. Killing and reaping a process and
        spawning the next take milliseconds that would otherwise stop every other request."""
        threading.Thread(target=self._replace, args=(worker,), daemon=True,
                         name="affiche-sparql-replace").start()

    def _replace(self, worker: Worker) -> None:
        """Kill a worker (stuck past its deadline, or dead) and start another in its place."""
        with self._lock:
            self._workers.discard(worker)
        worker.kill()
        self._add_worker()

    # snapshots

    async def _snapshot_for(self, worker: Worker) -> str:
        """The current snapshot (taken now, in a thread, if the store changed since the last
        one), marked as the worker's in the same step, so that it is not collected before the
        worker opens it."""
        snapshot = self._snapshot
        if snapshot is None or snapshot.generation != self.store.generation:
            snapshot = await asyncio.to_thread(self._take_snapshot)
        worker.snapshot = str(snapshot.path)
        return worker.snapshot

    def _take_snapshot(self) -> Snapshot:
        with self._lock:
            generation = self.store.generation
            if self._snapshot is None or self._snapshot.generation != generation:
                path = self.snapshot_dir / f"snapshot-{next(self._names)}"
                self.store.snapshot(path)
                self._snapshot = Snapshot(path, generation)
            return self._snapshot

    def _collect_snapshots(self) -> None:
        """Delete the snapshots no worker holds open any more."""
        with self._lock:
            if self._snapshot is None or self._closed:
                return
            kept = {w.snapshot for w in self._workers} | {str(self._snapshot.path)}
            for path in self.snapshot_dir.iterdir():
                if str(path) not in kept:
                    shutil.rmtree(path, ignore_errors=True)


def start_public_runner(store, snapshot_dir: Path, *, processes: int, timeout_s: float,
                        memory_mb: int = 0):
    """What runs `/sparql` queries within `timeout_s`: worker processes over snapshots of an
    embedded store (each within `memory_mb`), or the remote server itself with that HTTP
    timeout. Close it when done."""
    from .remote import RemoteStore

    if isinstance(store, RemoteStore):
        return store.for_public_queries(timeout_s)
    workers = QueryWorkers(store, snapshot_dir, processes=processes, timeout_s=timeout_s,
                           memory_mb=memory_mb)
    workers.start()
    return workers
