"""Privacy-friendly usage figures per source: counts by day and kind, nothing about the visitor.

No address, user agent, referrer or cookie is stored, only how many times a day a source's event
pages were viewed (by people or by crawlers: the user agent is looked at, then forgotten), how
often its events were fetched as JSON-LD or another RDF syntax, and how often its dump was
downloaded. Counts are kept in memory and added to `DATA_DIR/usage.sqlite` in batches.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

FILE_NAME = "usage.sqlite"
KINDS = ("page_human", "page_crawler", "jsonld", "rdf", "dump")
BATCH = 50
CRAWLER = re.compile(r"bot|crawl|spider|slurp|archiv|facebookexternalhit|preview|validator", re.I)
_EVENT = re.compile(r"^/event/(?P<source>[a-z0-9][a-z0-9-]*)-[0-9a-f]{12}(?:\.[a-z]+)?$")
_DUMP = re.compile(r"^/dumps/source-(?P<source>[a-z0-9][a-z0-9-]*)\.[a-z.]+$")

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


class UsageCounter:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, source: str, kind: str, day: str | None = None) -> None:
        day = day or datetime.now(timezone.utc).date().isoformat()
        with self._lock:
            self._pending[(source, day, kind)] += 1
            full = sum(self._pending.values()) >= BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection, connection:
            connection.executescript(_SCHEMA)
            connection.executemany(
                "INSERT INTO usage (source, day, kind, count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, day, kind) DO UPDATE SET count = count + excluded.count",
                [(s, d, k, n) for (s, d, k), n in pending.items()])

    def figures(self, source: str, days: int = 90) -> dict:
        """The source's counts for its last `days` days with any, and their totals."""
        self.flush()
        rows = []
        if self.path.exists():
            with closing(sqlite3.connect(self.path, timeout=30)) as connection:
                connection.executescript(_SCHEMA)
                rows = connection.execute(
                    "SELECT day, kind, count FROM usage WHERE source = ? AND day IN (SELECT DISTINCT "
                    "day FROM usage WHERE source = ? ORDER BY day DESC LIMIT ?)",
                    (source, source, days)).fetchall()
        by_day: dict[str, dict[str, int]] = {}
        for day, kind, count in rows:
            by_day.setdefault(day, dict.fromkeys(KINDS, 0))[kind] = count
        totals = {kind: sum(d[kind] for d in by_day.values()) for kind in KINDS}
        return {"source": source, "days": [{"day": d, **by_day[d]} for d in sorted(by_day)],
                "totals": totals}


class UsageMiddleware:
    """Counts successful GETs of event pages and source dumps (pure ASGI: nothing is buffered)."""

    def __init__(self, app, counter: UsageCounter) -> None:
        self.app, self.counter = app, counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if not (path.startswith("/event/") or path.startswith("/dumps/source-")):
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                agent = dict(scope.get("headers") or []).get(b"user-agent", b"")
                found = classify(path, headers.get(b"content-type", b"").decode("latin-1"),
                                 agent.decode("latin-1"))
                if found is not None:
                    self.counter.count(*found)
            await send(message)

        await self.app(scope, receive, counting_send)
