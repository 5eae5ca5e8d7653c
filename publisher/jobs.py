"""Harvest jobs: run in the background, one at a time per source, a bounded number overall.

A job is a row of `DATA_DIR/jobs.sqlite` (queued → running → done | failed; a job that a restart
cut short is marked interrupted), so the history survives restarts and `GET /api/jobs/{id}` can
answer from any process. A finished job holds the same report as `affiche check --json`.

`JobRunner` runs jobs in a thread pool inside the process that holds the store (`affiche serve`,
or `affiche harvest --due`); `due_sources` says which scheduled sources are due, and `Scheduler`
asks it every few seconds.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harvester.changes import ChangeLog
from harvester.fetch import FetchPolicy
from harvester.incremental import FeedHistory
from harvester.pipeline import Report, harvest, worker_pool
from harvester.sources import Source
from sparql.store import Store

from .accounts import Accounts, RegisteredSource, now_iso
from .dumps import NQUADS, graph_files, write_dumps
from .memory import release_free_memory
from .settings import Settings
from .withdrawal import drop_event, drop_source

FILE_NAME = "jobs.sqlite"
log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    progress TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    report TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_source ON jobs (source, created_at);
"""


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    trigger: str  # "api" | "upload" | "schedule" | "cli" | "confirm"
    state: str
    progress: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    report: str | None  # JSON, as `affiche check --json` prints it
    error: str | None

    def to_json(self) -> dict:
        report = json.loads(self.report) if self.report else None
        return {"id": self.id, "source": self.source, "trigger": self.trigger, "state": self.state,
                "progress": self.progress, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "error": self.error, "held_back": bool(report and report.get("held_back")),
                "report": report}


class JobLog:
    """The jobs table; every call opens its own connection (jobs run in other threads)."""

    _COLUMNS = "id, source, trigger, state, progress, created_at, started_at, finished_at, report, error"

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME

    def _run(self, query: str, parameters: tuple = ()) -> list[tuple]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as connection:
            connection.executescript(_SCHEMA)
            return connection.execute(query, parameters).fetchall()

    def create(self, source_id: str, trigger: str) -> Job:
        job_id = secrets.token_hex(8)
        self._run("INSERT INTO jobs (id, source, trigger, state, progress, created_at) "
                  "VALUES (?, ?, ?, 'queued', 'waiting for a free worker', ?)",
                  (job_id, source_id, trigger, now_iso()))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        rows = self._run(f"SELECT {self._COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return Job(*rows[0]) if rows else None

    def of_source(self, source_id: str, limit: int = 20) -> list[Job]:
        rows = self._run(f"SELECT {self._COLUMNS} FROM jobs WHERE source = ? "
                         "ORDER BY created_at DESC, rowid DESC LIMIT ?", (source_id, limit))
        return [Job(*row) for row in rows]

    def start(self, job_id: str, progress: str) -> None:
        self._run("UPDATE jobs SET state = 'running', started_at = ?, progress = ? WHERE id = ?",
                  (now_iso(), progress, job_id))

    def progress(self, job_id: str, progress: str) -> None:
        self._run("UPDATE jobs SET progress = ? WHERE id = ?", (progress, job_id))

    def finish(self, job_id: str, state: str, report: dict | None, error: str | None) -> None:
        self._run("UPDATE jobs SET state = ?, finished_at = ?, progress = ?, report = ?, error = ? "
                  "WHERE id = ?", (state, now_iso(), "finished", json.dumps(report, ensure_ascii=False)
                                   if report is not None else None, error, job_id))

    def interrupt_leftovers(self) -> int:
        """Jobs a previous process left queued or running: they will not finish; say so."""
        before = self._run("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")[0][0]
        self._run("UPDATE jobs SET state = 'interrupted', finished_at = ?, progress = "
                  "'interrupted by a restart' WHERE state IN ('queued', 'running')", (now_iso(),))
        return before

    def last_run(self, source_id: str) -> datetime | None:
        """When the source's last job that was not interrupted was asked for."""
        rows = self._run("SELECT MAX(created_at) FROM jobs WHERE source = ? AND state != 'interrupted'",
                         (source_id,))
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None


def harvest_source(settings: Settings, store: Store, changes: ChangeLog, source: Source,
                   policy: FetchPolicy, withheld: frozenset[str] = frozenset(),
                   accept_loss: bool = False, pool: Executor | None = None) -> Report:
    """One source harvested as `affiche harvest` does it (incremental, with the change log);
    `accept_loss`: publish what a guard would hold back (the organiser confirmed it)."""
    history = FeedHistory(settings.harvest_dir, source.id, settings.harvest_archive_keep)
    return harvest(source, store, settings.base_url, settings.reports_dir, policy,
                   changes=changes, history=history, withheld=withheld, accept_loss=accept_loss,
                   pool=pool, graph_files=graph_files(settings.dumps_dir))


def due_sources(accounts: Accounts, jobs: JobLog, now: datetime | None = None) -> list[RegisteredSource]:
    """Scheduled, not withdrawn, and not harvested (or asked for) within their interval."""
    now = now or datetime.now(timezone.utc)
    due = []
    for source in accounts.sources(active_only=True):
        if not source.schedule_minutes or not (source.url or source.upload):
            continue
        last = jobs.last_run(source.id)
        if last is None or now - last >= timedelta(minutes=source.schedule_minutes):
            due.append(source)
    return due


class JobRunner:
    """Runs harvest jobs in at most `workers` threads; a second job for a busy source is the
    first one (the organiser gets the job already under way)."""

    def __init__(self, settings: Settings, store: Store, policy: FetchPolicy, workers: int) -> None:
        self.settings, self.store, self.policy = settings, store, policy
        self.accounts = Accounts(settings.data_dir)
        self.jobs = JobLog(settings.data_dir)
        self.changes = ChangeLog(settings.data_dir, page_size=settings.feed_page_size)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="affiche-job")
        # feeds are read and checked in worker processes (started at the first job), written here
        self._readers = worker_pool(settings.harvest_workers) if settings.harvest_workers > 1 else None
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}  # source id -> job id
        self._follow_ups: dict[str, tuple[str, Source]] = {}  # source id -> next job, after a push
        self._done: dict[str, threading.Event] = {}  # job id -> set when it finished
        self.write_lock = threading.Lock()  # dumps and withdrawals, one at a time
        self.jobs.interrupt_leftovers()

    def submit(self, source: Source, trigger: str, follow_up: bool = False,
               accept_loss: bool = False) -> tuple[Job, bool]:
        """The job harvesting `source`: a new one (True), or the one already queued or running.

        With `follow_up` (a push: new bytes the running job has not seen), a busy source gets a
        job that starts when the running one ends; a later push replaces what it will read.
        With `accept_loss` (a confirmation: only for a source that is not busy), the new job
        publishes what the loss guards would hold back.
        """
        with self._lock:
            running = self._active.get(source.id)
            if running is not None and not follow_up:
                return self.jobs.get(running), False
            if running is not None:
                queued = self._follow_ups.get(source.id)
                job = self.jobs.get(queued[0]) if queued else self.jobs.create(source.id, trigger)
                self._follow_ups[source.id] = (job.id, source)
                self._done.setdefault(job.id, threading.Event())
                return job, queued is None
            job = self.jobs.create(source.id, trigger)
            self._start(job.id, source, accept_loss)
            return job, True

    def busy(self, source_id: str) -> bool:
        with self._lock:
            return source_id in self._active

    def _start(self, job_id: str, source: Source, accept_loss: bool = False) -> None:
        """Under the lock: mark the source busy and hand the job to the pool."""
        self._active[source.id] = job_id
        self._done.setdefault(job_id, threading.Event())
        self._pool.submit(self._run, job_id, source, accept_loss)

    def wait(self, job_id: str, timeout_s: float | None = None) -> Job:
        done = self._done.get(job_id)
        if done is not None and not done.wait(timeout_s):
            raise TimeoutError(f"job {job_id} still {self.jobs.get(job_id).state}")
        return self.jobs.get(job_id)

    def _run(self, job_id: str, source: Source, accept_loss: bool = False) -> None:
        self.jobs.start(job_id, "fetching, reading and checking the feed")
        try:
            if self.accounts.withdrawn_at(source.id) is not None:
                self.jobs.finish(job_id, "failed", None, "the source was withdrawn")
                return
            before = self.changes.position()
            report = harvest_source(self.settings, self.store, self.changes, source, self.policy,
                                    self.accounts.withheld_events(source.id), accept_loss,
                                    self._readers)
            self.jobs.progress(job_id, "publishing")
            self._reconcile(source.id, report)
            self.refresh_dumps(before)
            self.jobs.finish(job_id, "failed" if report.error else "done",
                             report.to_json(source.language), report.error)
        except Exception as exc:  # a job must always finish, whatever broke
            self.jobs.finish(job_id, "failed", None, f"{type(exc).__name__}: {exc}")
        finally:
            release_free_memory()  # what the harvest freed, or the server keeps growing
            with self._lock:
                self._active.pop(source.id, None)
                self._done.pop(job_id).set()
                follow_up = self._follow_ups.pop(source.id, None)
                if follow_up is not None:
                    self._start(*follow_up)

    def _reconcile(self, source_id: str, report: Report) -> None:
        """A withdrawal that came while the job ran wins over what the job wrote."""
        with self.write_lock:
            if self.accounts.withdrawn_at(source_id) is not None:
                drop_source(self.store, self.changes, self.settings.base_url, source_id)
                return
            withheld = self.accounts.withheld_events(source_id)
            for event in report.events:
                if event.iri in withheld and event.status == "published":
                    drop_event(self.store, self.changes, self.settings.base_url, source_id, event.iri)

    def refresh_dumps(self, before=None) -> None:
        """Rewrite the dumps when the change log moved since `before` (None: always)."""
        with self.write_lock:
            self.store.flush()
            if (before is None or self.changes.position() != before
                    or not (self.settings.dumps_dir / NQUADS).exists()):
                write_dumps(self.store, self.settings.dumps_dir, changes=self.changes,
                            snapshots=self.settings.dump_snapshots)

    def submit_due(self, now: datetime | None = None) -> list[Job]:
        return [self.submit(source.as_source(), "schedule")[0]
                for source in due_sources(self.accounts, self.jobs, now)]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._readers is not None:
            self._readers.shutdown(wait=True, cancel_futures=True)


class Scheduler:
    """Asks the runner to start due harvests every `poll_s` seconds, in a daemon thread."""

    def __init__(self, runner: JobRunner, poll_s: float) -> None:
        self.runner, self.poll_s = runner, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="affiche-scheduler", daemon=True)

    def start(self) -> "Scheduler":
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.runner.submit_due()
            except Exception:  # a bad tick must not stop the schedule
                log.exception("looking for due harvests failed")
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
