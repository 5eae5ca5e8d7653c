"""Incremental harvesting: an unchanged feed costs one request and no store write, and the raw
bytes of every harvest are archived, so a report can point at what the organiser actually sent.

Per source, under `{data_dir}/harvest/{source_id}/`:
- `state.json`: the last successful harvest's ETag, Last-Modified, SHA-256 and archive file;
- `archive/{time}-{sha256[:12]}{ext}`: the bytes as received, the newest `keep` kept.

A conditional GET (If-None-Match / If-Modified-Since) answered 304, or bytes whose hash equals the
last harvested ones, mean "unchanged". The state is written only after a harvest succeeded, so a
failed harvest is retried in full next time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .fetch import Fetched, FetchPolicy, fetch

# Crawled sites: the sitemap or start page may stay the same while its pages change.
ALWAYS_FULL = {"sitemap", "site"}
_EXTENSIONS = {"html": ".html", "jsonld": ".jsonld", "ics": ".ics", "csv": ".csv", "rdf": ".rdf",
               "openagenda": ".json", "uitdatabank": ".json", "sitemap": ".xml", "site": ".html"}


@dataclass
class FeedState:
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    archived: str | None = None  # file name under archive/
    harvested_at: str | None = None
    fingerprint: str | None = None  # of what else shapes the result: the source's declaration…


@dataclass
class Incoming:
    """What the fetch brought: the bytes (None when the server said 304) and their hash."""

    fetched: Fetched
    sha256: str | None
    unchanged: bool
    fingerprint: str | None = None


class FeedHistory:
    """The harvest state and archive of one source."""

    def __init__(self, root: Path, source_id: str, keep: int = 10) -> None:
        self.directory = root / source_id
        self.keep = keep

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def archive_dir(self) -> Path:
        return self.directory / "archive"

    def state(self) -> FeedState:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return FeedState()
        return FeedState(**{k: data.get(k) for k in FeedState.__dataclass_fields__})

    def fetch(self, location: str, policy: FetchPolicy, format_name: str | None,
              conditional: bool = True, fingerprint: str | None = None) -> Incoming:
        """Fetch conditionally; `unchanged` when the server or the hash says nothing changed.

        `conditional=False` (the store lost the source's data, or never had it) fetches in full;
        so does a new `fingerprint` (the same bytes read with another zone, language, base URL…).
        """
        state = self.state()
        full = (not conditional or format_name in ALWAYS_FULL or state.fingerprint != fingerprint)
        state = FeedState() if full else state
        validators = {}
        if state.sha256 and state.etag:
            validators["If-None-Match"] = state.etag
        if state.sha256 and state.last_modified:
            validators["If-Modified-Since"] = state.last_modified
        fetched = fetch(location, policy, validators or None)
        if fetched.not_modified:
            return Incoming(fetched=fetched, sha256=state.sha256, unchanged=True, fingerprint=fingerprint)
        digest = hashlib.sha256(fetched.content).hexdigest()
        return Incoming(fetched=fetched, sha256=digest, fingerprint=fingerprint,
                        unchanged=state.sha256 is not None and digest == state.sha256)

    def archive(self, incoming: Incoming, format_name: str | None, now: datetime | None = None) -> str:
        """Keep the bytes as received; returns the archive file's name. Old files beyond `keep` go."""
        now = now or datetime.now(timezone.utc)
        extension = _EXTENSIONS.get(format_name or "") or _suffix(incoming.fetched.location)
        name = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{incoming.sha256[:12]}{extension}"
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        target = self.archive_dir / name
        temporary = target.with_name(name + ".tmp")
        temporary.write_bytes(incoming.fetched.content)
        temporary.replace(target)
        kept = [p for p in self.archive_dir.iterdir() if not p.name.endswith(".tmp")]
        for old in sorted(kept, key=lambda p: (p.stat().st_mtime_ns, p.name))[:-self.keep]:
            old.unlink(missing_ok=True)
        return name

    def remember(self, incoming: Incoming, archived: str | None, now: datetime | None = None) -> None:
        """Record a successful harvest (only then: a failed one is retried in full)."""
        now = now or datetime.now(timezone.utc)
        state = FeedState(sha256=incoming.sha256, etag=incoming.fetched.etag,
                          last_modified=incoming.fetched.last_modified, archived=archived,
                          harvested_at=now.isoformat(), fingerprint=incoming.fingerprint)
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
        temporary.replace(self.state_path)


def _suffix(location: str) -> str:
    """The feed's own extension when it is a plain one (`.ics`, `.json`…), else `.bin`."""
    suffix = PurePosixPath(urlsplit(location).path).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"


# Raise when a change to the harvester should re-read unchanged feeds (new normalisation…).
HARVESTER_REVISION = "1"


def fingerprint(*parts: object) -> str:
    """A digest of what shapes a harvest besides the bytes (the source's declaration, the base
    URL, the limits) and of the harvester's revision."""
    text = json.dumps([HARVESTER_REVISION, *parts], default=_plain, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _plain(value: object) -> object:
    """JSON for dataclasses, sets and paths, the same in every process (no hash-seeded order)."""
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if hasattr(value, "__dataclass_fields__"):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    return str(value)
