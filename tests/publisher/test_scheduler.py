"""Scheduled harvests: which sources are due, one job per source, a bounded pool, restarts, and
the same from cron (`affiche harvest --due`) and inside `affiche serve`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harvester.sources import Source
from publisher.accounts import Accounts, RegisteredSource, now_iso
from publisher.cli import fetch_policy
from publisher.jobs import JobLog, JobRunner, due_sources
from publisher.settings import Settings
from sparql.store import EmbeddedStore
from tests.conftest import free_port, wait_for_http

from .organiser_fixtures import AURORES_FEED, BASE_URL, RIDEAU_FEED, event_iris

ROOT = Path(__file__).parents[2]


class GatedFeeds:
    """A feed server on 127.0.0.1 whose answers wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.arrived = threading.Semaphore(0)
        gated = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                gated.arrived.release()
                gated.gate.wait(timeout=60)
                body = AURORES_FEED if "aurores" in self.path else RIDEAU_FEED
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds():
    gated = GatedFeeds()
    yield gated
    gated.close()


def registered(source_id: str, url: str | None, minutes: int | None, organiser: str = "rideau-rouge",
               withdrawn: bool = False) -> RegisteredSource:
    return RegisteredSource(id=source_id, organiser=organiser, name=source_id, url=url, upload=None,
                            format="jsonld", language="fr", timezone="Europe/Brussels",
                            license=None, schedule_minutes=minutes, created_at=now_iso(),
                            withdrawn_at=now_iso() if withdrawn else None)


@pytest.fixture
def accounts(tmp_path) -> Accounts:
    accounts = Accounts(tmp_path)
    accounts.add_organiser("rideau-rouge", "Théâtre du Rideau Rouge")
    return accounts


def test_due_sources_follow_their_interval(tmp_path, accounts):
    accounts.add_source(registered("rideau-agenda", "https://rideau-rouge.example/agenda.jsonld", 60))
    accounts.add_source(registered("rideau-jeune", "https://rideau-rouge.example/jeune.jsonld", None))
    accounts.add_source(registered("rideau-ancien", "https://rideau-rouge.example/old.jsonld", 60,
                                   withdrawn=True))
    jobs = JobLog(tmp_path)
    now = datetime.now(timezone.utc)
    assert [s.id for s in due_sources(accounts, jobs, now)] == ["rideau-agenda"]
    job = jobs.create("rideau-agenda", "schedule")
    jobs.finish(job.id, "done", None, None)
    assert due_sources(accounts, jobs, now + timedelta(minutes=59)) == []
    assert [s.id for s in due_sources(accounts, jobs, now + timedelta(minutes=61))] == ["rideau-agenda"]


def test_a_restart_marks_unfinished_jobs_interrupted_and_they_are_due_again(tmp_path, accounts):
    accounts.add_source(registered("rideau-agenda", "https://rideau-rouge.example/agenda.jsonld", 60))
    jobs = JobLog(tmp_path)
    left = jobs.create("rideau-agenda", "schedule")
    jobs.start(left.id, "fetching")
    assert due_sources(accounts, jobs) == []
    settings = Settings(base_url=BASE_URL, data_dir=tmp_path)
    store = EmbeddedStore(tmp_path / "store")
    try:
        JobRunner(settings, store, fetch_policy(settings), workers=1).close()
    finally:
        store.close()
    assert jobs.get(left.id).state == "interrupted"
    assert [s.id for s in due_sources(accounts, jobs)] == ["rideau-agenda"]


@pytest.fixture
def runner(tmp_path):
    settings = Settings(base_url=BASE_URL, data_dir=tmp_path, fetch_allow_hosts=["127.0.0.1"])
    store = EmbeddedStore(tmp_path / "store")
    runner = JobRunner(settings, store, fetch_policy(settings), workers=1)
    yield runner
    runner.close()
    store.close()


def test_one_job_at_a_time_per_source_and_a_bounded_pool(runner, feeds):
    rideau = Source(id="rideau-agenda", name="Rideau", url=f"{feeds.base}/rideau.jsonld", format="jsonld")
    aurores = Source(id="aurores-prog", name="Aurores", url=f"{feeds.base}/aurores.jsonld", format="jsonld")
    first, created = runner.submit(rideau, "api")
    assert created
    assert feeds.arrived.acquire(timeout=60)  # the first job is fetching, held at the gate
    again, created_again = runner.submit(rideau, "schedule")
    assert not created_again and again.id == first.id
    other, created_other = runner.submit(aurores, "api")
    assert created_other
    assert runner.jobs.get(other.id).state == "queued"  # one worker, busy with the first
    assert runner.jobs.get(first.id).state == "running"
    feeds.gate.set()
    assert runner.wait(first.id, 60).state == "done"
    assert runner.wait(other.id, 60).state == "done"
    assert runner.wait(other.id).to_json()["report"]["summary"]["published"] == 1
    third, created_third = runner.submit(rideau, "api")
    assert created_third and third.id != first.id
    runner.wait(third.id, 60)


def test_a_push_during_a_harvest_is_harvested_right_after_it(runner, feeds, tmp_path):
    by_url = Source(id="rideau-agenda", name="Rideau", url=f"{feeds.base}/rideau.jsonld", format="jsonld")
    running, _ = runner.submit(by_url, "schedule")
    assert feeds.arrived.acquire(timeout=60)
    pushes = []
    for index in range(2):
        pushed = tmp_path / f"push-{index}.jsonld"
        pushed.write_bytes(AURORES_FEED)
        pushes.append(runner.submit(Source(id="rideau-agenda", name="Rideau", path=pushed,
                                           format="jsonld"), "upload", follow_up=True))
    (first, created), (second, created_again) = pushes
    assert created and first.id != running.id
    assert not created_again and second.id == first.id  # the newest push replaces the queued one
    assert runner.jobs.get(first.id).state == "queued"
    feeds.gate.set()
    assert runner.wait(running.id, 60).to_json()["report"]["summary"]["found"] == 2
    done = runner.wait(first.id, 60).to_json()
    assert done["state"] == "done" and done["report"]["input"].endswith("push-1.jsonld")
    assert done["report"]["summary"]["found"] == 1


def test_a_failed_fetch_is_a_failed_job_with_the_reason(runner):
    source = Source(id="rideau-agenda", name="Rideau", url="http://127.0.0.1:9/agenda.jsonld",
                    format="jsonld")
    job, _ = runner.submit(source, "api")
    done = runner.wait(job.id, 60)
    assert done.state == "failed"
    assert "previously published data is kept" in done.error
    assert done.to_json()["report"]["error"] == done.error


def affiche(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "AFFICHE_DATA_DIR": str(data_dir),
           "AFFICHE_BASE_URL": BASE_URL, "AFFICHE_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", "publisher.cli", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_harvest_due_from_cron(tmp_path, accounts, feeds):
    feeds.gate.set()
    accounts.add_source(registered("rideau-agenda", f"{feeds.base}/rideau.jsonld", 60))
    accounts.add_source(registered("rideau-jeune", f"{feeds.base}/jeune.jsonld", None))
    first = affiche(tmp_path, "harvest", "--due")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "rideau-agenda" in first.stdout and "rideau-jeune" not in first.stdout
    [job] = JobLog(tmp_path).of_source("rideau-agenda")
    assert job.state == "done" and job.trigger == "schedule"
    dump = (tmp_path / "dumps" / "affiche.nq.gz")
    assert dump.exists()
    second = affiche(tmp_path, "harvest", "--due")
    assert second.returncode == 0 and "no source is due" in second.stdout


def test_harvest_sees_registered_sources_without_a_toml_file(tmp_path, accounts, feeds):
    feeds.gate.set()
    assert affiche(tmp_path, "harvest").returncode == 2  # nothing registered, no config
    accounts.add_source(registered("rideau-agenda", f"{feeds.base}/rideau.jsonld", None))
    accounts.add_source(registered("rideau-ancien", f"{feeds.base}/rideau.jsonld", None, withdrawn=True))
    result = affiche(tmp_path, "harvest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rideau-agenda" in result.stdout and "rideau-ancien" not in result.stdout
    store = EmbeddedStore(tmp_path / "store")
    try:
        rows = store.select("SELECT DISTINCT ?e WHERE { ?e <http://schema.org/startDate> ?d }")
    finally:
        store.close()
    assert {str(r["e"]) for r in rows} == set(event_iris("rideau-agenda").values())


@pytest.mark.server
def test_serve_runs_due_harvests_in_the_background_and_keeps_history_across_restarts(
        tmp_path, accounts, feeds):
    feeds.gate.set()
    accounts.add_source(registered("rideau-agenda", f"{feeds.base}/rideau.jsonld", 60))
    token = accounts.issue_token("rideau-rouge").token
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AFFICHE_DATA_DIR": str(tmp_path),
           "AFFICHE_FETCH_ALLOW_HOSTS": "127.0.0.1", "AFFICHE_SCHEDULER_POLL_S": "0.2",
           "AFFICHE_SPARQL_MAX_CONCURRENT": "1"}

    def serve_until_jobs(count: int) -> list[dict]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # A restart keeps its public base URL, whatever port it listens on this time.
        process = subprocess.Popen([sys.executable, "-m", "publisher.cli", "serve", "--port", str(port)],
                                   env={**env, "AFFICHE_BASE_URL": BASE_URL}, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_http(base + "/", process)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                jobs = httpx.get(f"{base}/api/sources/rideau-agenda/jobs",
                                 headers={"Authorization": f"Bearer {token}"}).json()
                if len(jobs) >= count and jobs[0]["state"] not in ("queued", "running"):
                    return jobs
                time.sleep(0.2)
            raise TimeoutError("no scheduled job finished")
        finally:
            process.terminate()
            process.wait(timeout=30)

    [job] = serve_until_jobs(1)
    assert job["state"] == "done" and job["trigger"] == "schedule"
    assert job["report"]["summary"]["published"] == 2
    # Two hours pass while the server is down: after the restart the schedule is due again, and
    # the first job is still in the history.
    earlier = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0).isoformat()
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:
        db.execute("UPDATE jobs SET created_at = ? WHERE id = ?", (earlier, job["id"]))
    jobs = serve_until_jobs(2)
    assert [j["id"] for j in jobs][1] == job["id"]
    assert jobs[0]["trigger"] == "schedule" and jobs[0]["state"] == "done"
