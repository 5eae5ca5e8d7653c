"""HTTP caching for every page: `ETag`, `304 Not Modified`, and `HEAD` on every GET route.

Two small ASGI middlewares, so that no route has to remember them:

- `ConditionalMiddleware` gives every complete 200 answer to a GET a weak `ETag` (a hash of the
  body, weak because gzip may re-encode it) and answers `304` when the client's `If-None-Match`
  names it, or — when it sent no `If-None-Match` — when `If-Modified-Since` is not older than
  the answer's `Last-Modified`. Streamed answers (the dumps) keep their own validators.
- `HeadMiddleware` answers `HEAD` as the same `GET` without the body (FastAPI routes declared
  with `get` otherwise answer 405).

Routes set `Last-Modified` (`last_modified_header`) and `Cache-Control` (`cache_control`).
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparql.queries import load_query

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


class VersionedCache:
    """Answers computed from the whole store (agenda pages, the sitemap, dataset counts), kept
    until the data changes: each key is stored with the data version (the latest harvest time)
    it was computed for. Bounded; the oldest entry goes first. One per app (`app.state`)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, key, version, compute):
        if version is None or (isinstance(version, tuple) and None in version):
            return compute()  # no harvest recorded: nothing tells when the data changes
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (version, value)
            while len(self._entries) > self.size:
                self._entries.pop(next(iter(self._entries)))
        return value


def store_cache(app) -> VersionedCache:
    cache = getattr(app.state, "versioned_cache", None)
    if cache is None:
        cache = app.state.versioned_cache = VersionedCache()
    return cache
