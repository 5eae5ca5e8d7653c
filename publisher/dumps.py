"""Bulk dumps, streamed from the store into files that always sit at the same URL.

Each dump is written to a temporary file in the dumps directory and renamed over the old one, so a
dump being regenerated is never served half-written and a crash leaves the previous dump in place.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sparql.store import EmbeddedStore

NQUADS = "affiche.nq.gz"


@dataclass(frozen=True)
class DumpFile:
    name: str
    size: int
    modified: str
    sha256: str
    media_type: str


MEDIA_TYPES = {".nq.gz": "application/n-quads", ".nt.gz": "application/n-triples"}


def write_dumps(store: EmbeddedStore, dumps_dir: Path) -> list[DumpFile]:
    """(Re)write every dump; returns what is now published."""
    dumps_dir.mkdir(parents=True, exist_ok=True)
    _atomic_gzip(dumps_dir / NQUADS, store.dump_nquads)
    return list_dumps(dumps_dir)


def _atomic_gzip(target: Path, write) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as raw:
            # mtime=0: the same data gives the same bytes, so the checksum only moves with the data
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
                write(compressed)
            raw.flush()
            os.fsync(raw.fileno())
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_dumps(dumps_dir: Path) -> list[DumpFile]:
    if not dumps_dir.is_dir():
        return []
    files = []
    for path in sorted(dumps_dir.iterdir()):
        suffix = next((s for s in MEDIA_TYPES if path.name.endswith(s)), None)
        if suffix is None or path.name.startswith("."):
            continue
        stat = path.stat()
        files.append(DumpFile(
            name=path.name,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc).replace(microsecond=0).isoformat(),
            sha256=_sha256(path),
            media_type=MEDIA_TYPES[suffix],
        ))
    return files
