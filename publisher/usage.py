"""Privacy-friendly usage figures per source: counts by day and kind, nothing about the visitor.

No address, user agent, referrer or cookie is stored, only how many times a day a source's event
pages were viewed (by people or by crawlers: the user agent is looked at, then forgotten), how
often its events were fetched as JSON-LD or another RDF syntax, how often its dump was
downloaded, and how many `/sparql` answers named at least one of its events (measured on a
sample of the answers, after they are sent, so that queries are not slowed). Counts are kept in
memory and added to `DATA_DIR/usage.sqlite` in batches, written in a worker thread once the answer
that filled the batch is sent (a SQLite commit on the event loop would hold every other request
up). `HEAD` requests are never counted: they fetch no page.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

FILE_NAME = "usage.sqlite"
KINDS = ("page_human", "page_crawler", "jsonld", "rdf", "dump", "sparql")
BATCH = 200  # counted answers between two writes
SCAN_INLINE_BYTES = 64 * 1024  # a smaller sampled answer is read on the event loop (microseconds)
CRAWLER = re.compile(r"bot|crawl|spider|slurp|archiv|facebookexternalhit|preview|validator", re.I)
_EVENT = re.compile(r"^/event/(?P<source>[a-z0-9][a-z0-9-]*)-[0-9a-f]{12}(?:\.[a-z]+)?$")
_DUMP = re.compile(r"^/dumps/source-(?P<source>[a-z0-9][a-z0-9-]*)\.[a-z.]+$")
HEAD_FLAG = "affiche.head"  # set on a HEAD request's scope before it is answered as a GET
SPARQL_SCAN_BYTES = 8 * 1024 * 1024  # of a sampled answer; a longer one is counted on its start

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, day, kind)
);
"""


def classify(path: str, media_type: str, user_agent: str) -> tuple[str, str] | None:
    """(source, kind) for a successful answer worth counting, else None."""
    dump = _DUMP.match(path)
    if dump:
        return dump["source"], "dump"
    event = _EVENT.match(path)
    if not event:
        return None
    if media_type.startswith("text/html"):
        return event["source"], "page_crawler" if CRAWLER.search(user_agent) else "page_human"
    if media_type.startswith("application/ld+json"):
        return event["source"], "jsonld"
    return event["source"], "rdf"


def sources_named(body: bytes, base_url: str) -> set[str]:
    """The sources whose events a SPARQL answer names (by their full IRI)."""
    pattern = re.compile(re.escape(base_url.encode("utf-8")) +
                         rb"/event/([a-z0-9][a-z0-9-]*)-[0-9a-f]{12}(?![0-9a-zA-Z-])")
    return {m.decode("ascii") for m in set(pattern.findall(body))}


class UsageCounter:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._calls = 0
        self._lock = threading.Lock()

    def count(self, source: str, kind: str, day: str | None = None, weight: int = 1) -> bool:
        """Add to the pending counts; True when the batch is full and should be flushed (by the
        caller, off the event loop)."""
        day = day or datetime.now(timezone.utc).date().isoformat()
        with self._lock:
            self._pending[(source, day, kind)] += weight
            self._calls += 1
            return self._calls >= BATCH

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._calls = self._pending, Counter(), 0
        if not pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection, connection:
            connection.executescript(_SCHEMA)
            connection.executemany(
                "INSERT INTO usage (source, day, kind, count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, day, kind) DO UPDATE SET count = count + excluded.count",
                [(s, d, k, n) for (s, d, k), n in pending.items()])

    def _select(self, query: str, parameters: tuple) -> list[tuple]:
        self.flush()
        if not self.path.exists():
            return []
        with closing(sqlite3.connect(self.path, timeout=30)) as connection:
            connection.executescript(_SCHEMA)
            return connection.execute(query, parameters).fetchall()

    def figures(self, source: str, days: int = 90) -> dict:
        """The source's counts for its last `days` days with any, and their totals."""
        rows = self._select(
            "SELECT day, kind, count FROM usage WHERE source = ? AND day IN (SELECT DISTINCT "
            "day FROM usage WHERE source = ? ORDER BY day DESC LIMIT ?)", (source, source, days))
        by_day: dict[str, dict[str, int]] = {}
        for day, kind, count in rows:
            by_day.setdefault(day, dict.fromkeys(KINDS, 0))[kind] = count
        totals = {kind: sum(d[kind] for d in by_day.values()) for kind in KINDS}
        return {"source": source, "days": [{"day": d, **by_day[d]} for d in sorted(by_day)],
                "totals": totals}

    def summary(self, source: str, today: date | None = None, months: int = 12) -> dict:
        """What the source page shows: the last 30 days (today included) and each month."""
        today = today or datetime.now(timezone.utc).date()
        since = (today - timedelta(days=29)).isoformat()
        rows = self._select(
            "SELECT SUBSTR(day, 1, 7) AS month, kind, SUM(count), SUM(CASE WHEN day >= ? THEN count "
            "ELSE 0 END) FROM usage WHERE source = ? AND day <= ? GROUP BY month, kind",
            (since, source, today.isoformat()))
        recent = dict.fromkeys(KINDS, 0)
        by_month: dict[str, dict[str, int]] = {}
        for month, kind, total, in_window in rows:
            if kind not in recent:
                continue
            recent[kind] += in_window
            by_month.setdefault(month, dict.fromkeys(KINDS, 0))[kind] = total
        kept = sorted(by_month)[-months:]
        return {"since": since, "until": today.isoformat(), "last_30_days": recent,
                "by_month": [{"month": m, **by_month[m]} for m in reversed(kept)]}


class HeadNotCounted:
    """Outermost middleware: marks `HEAD` requests before they are answered as `GET`s (by
    `http_cache.HeadMiddleware`), so `UsageMiddleware` never counts them as views."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, HEAD_FLAG: True}
        await self.app(scope, receive, send)


class UsageMiddleware:
    """Counts successful GETs of event pages and source dumps, and the sources a sample of the
    `/sparql` answers name (pure ASGI: nothing is buffered on the way to the client)."""

    def __init__(self, app, counter: UsageCounter) -> None:
        self.app, self.counter = app, counter
        self._sparql_answers = itertools.count()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get(HEAD_FLAG) or scope["method"] not in ("GET", "POST"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/sparql":
            return await self._sparql(scope, receive, send)
        if scope["method"] != "GET" or not (path.startswith("/event/")
                                            or path.startswith("/dumps/source-")):
            return await self.app(scope, receive, send)
        full = False

        async def counting_send(message):
            nonlocal full
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                agent = dict(scope.get("headers") or []).get(b"user-agent", b"")
                found = classify(path, headers.get(b"content-type", b"").decode("latin-1"),
                                 agent.decode("latin-1"))
                if found is not None:
                    full = self.counter.count(*found)
            await send(message)

        await self.app(scope, receive, counting_send)
        if full:
            await asyncio.to_thread(self.counter.flush)

    async def _sparql(self, scope, receive, send):
        """Every `sample`-th answer is read, once sent, for the event IRIs it names; each source
        named counts `sample` inclusions (an estimate, exact when the setting is 1)."""
        app = scope.get("app")
        settings = getattr(getattr(app, "state", None), "settings", None)
        sample = getattr(settings, "usage_sparql_sample", 0)
        if not sample or next(self._sparql_answers) % sample:
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        kept, ok = 0, False

        async def keeping_send(message):
            nonlocal kept, ok
            if message["type"] == "http.response.start":
                ok = message["status"] == 200
            elif message["type"] == "http.response.body" and ok and kept < SPARQL_SCAN_BYTES:
                body = message.get("body", b"")
                chunks.append(body)
                kept += len(body)
            await send(message)

        await self.app(scope, receive, keeping_send)
        if not (ok and chunks):
            return
        body = b"".join(chunks)
        if len(body) <= SCAN_INLINE_BYTES:
            named = sources_named(body, settings.base_url)
        else:
            named = await asyncio.to_thread(sources_named, body, settings.base_url)
        full = [self.counter.count(source, "sparql", weight=sample) for source in named]
        if any(full):
            await asyncio.to_thread(self.counter.flush)
