"""HTTP caching for every page: `ETag`, `304 Not Modified`, and `HEAD` on every GET route.

Two small ASGI middlewares, so that no route has to remember them:

- `ConditionalMiddleware` gives every complete 200 answer to a GET a weak `ETag` (a hash of the
  body, weak because gzip may re-encode it) and answers `304` when the client's `If-None-Match`
  names it, or — when it sent no `If-None-Match` — when `If-Modified-Since` is not older than
  the answer's `Last-Modified`. Streamed answers (the dumps) keep their own validators.
- `HeadMiddleware` answers `HEAD` as the same `GET` without the body (FastAPI routes declared
  with `get` otherwise answer 405).

Routes set `Last-Modified` (`last_modified_header`) and `Cache-Control` (`cache_control`).

And what the server keeps between requests, until the data changes: `VersionedCache` (answers
computed from the whole store: agenda pages, the sitemap…) and `PageCache` (rendered entity
pages). Both follow the store's write generation, which every harvest and withdrawal bumps.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparql.queries import load_query
from sparql.store import EmbeddedStore

# Kept after a 304: what a cache needs to refresh its stored copy (RFC 9110, 15.4.5).
_KEPT_ON_304 = ("etag", "last-modified", "cache-control", "vary", "expires", "content-location")


def cache_control(max_age: int, shared_max_age: int | None = None) -> str:
    """Public answers a CDN may keep; `stale-while-revalidate` spares the store a burst of misses."""
    shared = shared_max_age if shared_max_age is not None else max_age * 4
    return f"public, max-age={max_age}, s-maxage={shared}, stale-while-revalidate={max_age}"


def last_modified_header(moment: str | datetime | None) -> str | None:
    """An ISO 8601 time (as the store keeps it) as an HTTP date; None when unknown or unreadable."""
    if moment is None or moment == "":
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


def weak_etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match asks (RFC 9110, 13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    return _opaque(etag) in {_opaque(t) for t in if_none_match.split(",")}


def not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
        modified = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None or modified.tzinfo is None:
        return False
    return modified <= since


class ConditionalMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        start: Message | None = None
        passing = False

        async def wrapped(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            if message.get("more_body", False) or start["status"] != 200:
                passing = True  # streamed or not a success: nothing to validate
                await send(start)
                await send(message)
                return
            await self._finish(start, message, request_headers, send)

        await self.app(scope, receive, wrapped)

    @staticmethod
    async def _finish(start: Message, body_message: Message, request_headers: Headers,
                      send: Send) -> None:
        headers = MutableHeaders(raw=list(start["headers"]))
        if "etag" not in headers:
            headers["ETag"] = weak_etag(body_message.get("body", b""))
        if_none_match = request_headers.get("if-none-match")
        if_modified_since = request_headers.get("if-modified-since")
        fresh = False
        if if_none_match is not None:
            fresh = etag_matches(if_none_match, headers["etag"])
        elif if_modified_since and "last-modified" in headers:
            fresh = not_modified_since(if_modified_since, headers["last-modified"])
        if not fresh:
            await send({**start, "headers": headers.raw})
            await send(body_message)
            return
        kept = [(k, v) for k, v in headers.raw if k.decode("latin-1").lower() in _KEPT_ON_304]
        await send({"type": "http.response.start", "status": 304, "headers": kept})
        await send({"type": "http.response.body", "body": b""})


class HeadMiddleware:
    """`HEAD` is the `GET` of the same URL, headers only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def data_modified(store) -> str | None:
    """When the published data last changed (the latest harvest), as an HTTP date."""
    rows = store.select(load_query("last_harvest"))
    return last_modified_header(str(rows[0]["modified"])) if rows and rows[0].get("modified") else None


def sole_writer(store) -> bool:
    """Whether this process is the store's only writer (the embedded store: RocksDB's lock), so
    that its write counter (`generation`, bumped by every harvest and withdrawal) tells every
    change. A remote store may be written by others: only its data says when it changed."""
    return isinstance(store, EmbeddedStore)


class VersionedCache:
    """Answers computed from the whole store (agenda pages, the sitemap, dataset counts), kept
    until the data changes. Each entry is stored with the store's write generation and the
    caller's version (the first day of an agenda…); a remote store, which others may write, also
    needs the caller's version to say when its data changed (the latest harvest time), and
    nothing is kept without one. Bounded; the oldest entry goes first. One per app."""

    def __init__(self, store_of=lambda: None, size: int = 256) -> None:
        self.size = size
        self._store_of = store_of
        self._entries: dict = {}
        self._computing: dict = {}
        self._lock = threading.Lock()

    def version(self, version) -> tuple | None:
        store = self._store_of()
        if not sole_writer(store) and (version is None or
                                       (isinstance(version, tuple) and None in version)):
            return None  # no harvest recorded: nothing tells when the data changes
        return (getattr(store, "generation", None), version)

    def peek(self, key, version):
        """The kept value, or None (nothing is computed)."""
        full = self.version(version)
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if full is not None and entry is not None and entry[0] == full else None

    def get(self, key, version, compute):
        full = self.version(version)
        if full is None:
            return compute()
        with self._lock:
            entry = self._entries.get(key)
            computing = self._computing.setdefault(key, threading.Lock())
        if entry is not None and entry[0] == full:
            return entry[1]
        with computing:  # one computation per key: the others (the warmer, a crawler) wait for it
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and entry[0] == full:
                return entry[1]
            value = compute()
            with self._lock:
                self._entries.pop(key, None)
                self._entries[key] = (full, value)
                while len(self._entries) > self.size:
                    self._computing.pop(next(iter(self._entries)), None)
                    self._entries.pop(next(iter(self._entries)))
        return value


_STATE_LOCK = threading.Lock()


def app_state_once(app, name: str, make):
    """`app.state.<name>`, made by `make()` the first time: once, even when two requests in the
    thread pool ask for it together (two caches would each lose half of what they keep)."""
    value = getattr(app.state, name, None)
    if value is None:
        with _STATE_LOCK:
            value = getattr(app.state, name, None)
            if value is None:
                value = make()
                setattr(app.state, name, value)
    return value


def store_cache(app) -> VersionedCache:
    return app_state_once(app, "versioned_cache", lambda: VersionedCache(lambda: app.state.store))


def listing_modified(app) -> str | None:
    """`Last-Modified` of listings (the latest harvest), read once per store generation."""
    store = app.state.store
    return store_cache(app).get(("data-modified",), None, lambda: data_modified(store))


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    media_type: str
    headers: dict[str, str]


class GenerationCache:
    """Entries kept until the store's next write, least recently used out first. Only for a store
    this process alone writes (`sole_writer`): its write generation, bumped by any harvest or
    withdrawal, then tells every change, and the next request sees the new data."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._generation: int | None = None
        self._lock = threading.Lock()

    def get(self, key, generation: int):
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
                return None
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key, value, generation: int) -> None:
        if self.size <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # computed from data a write has since replaced: never kept
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class PageCache(GenerationCache):
    """Rendered entity pages: key (path, language, media type) -> `CachedPage`."""
