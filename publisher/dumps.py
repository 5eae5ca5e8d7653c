"""Bulk dumps, streamed from the store into files that always sit at the same URL.

`affiche.nq.gz` (one named graph per source, so provenance survives), `affiche.nt.gz`,
`affiche.ttl.gz`, `affiche.jsonld.gz`, one `source-{id}.nq.gz` per source, and one dated snapshot
`affiche-YYYY-MM-DD.nq.gz` per day (the newest few kept). Nothing is built in memory: each file is
streamed from the store into a temporary file in the dumps directory; only when every file is
complete are they renamed over the old ones (a rename is atomic), so a dump being regenerated is
never served half-written and a crash leaves the previous dumps in place. The metadata (sizes,
triple counts, SHA-256, licences, the change-feed position the dump includes) is written last, to
`.index.json`, and is what `/dumps/` lists.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Callable, Iterator

import pyoxigraph as ox

from harvester.changes import ChangeLog
from sparql.queries import load_query
from sparql.store import Store

NQUADS = "affiche.nq.gz"
NTRIPLES = "affiche.nt.gz"
TURTLE = "affiche.ttl.gz"
JSONLD = "affiche.jsonld.gz"
INDEX = ".index.json"

MEDIA_TYPES = {
    ".nq.gz": "application/n-quads",
    ".nt.gz": "application/n-triples",
    ".ttl.gz": "text/turtle",
    ".jsonld.gz": "application/ld+json",
}
SNAPSHOT = re.compile(r"^affiche-(\d{4}-\d{2}-\d{2})\.nq\.gz$")
_SOURCE_FILE = re.compile(r"^source-([a-z0-9-]+)\.nq\.gz$")


@dataclass(frozen=True)
class DumpFile:
    name: str
    size: int
    modified: str
    sha256: str
    media_type: str
    triples: int | None = None
    licenses: list[str] = field(default_factory=list)
    source: str | None = None  # the source id, for a one-source file
    snapshot: bool = False  # a dated copy that will never change


@dataclass(frozen=True)
class _Planned:
    """One file to write: its name, how to stream it, and what its metadata will say."""

    name: str
    write: Callable[[IO[bytes]], None] | None  # None: written by `_write_graphs_once`
    graphs: list[str]  # whose triples it holds (their counts make its triple count)
    licenses: list[str]
    source: str | None = None


@dataclass
class SourceGraph:
    id: str
    graph: str
    title: str | None
    license: str | None
    triples: int = 0  # counted while its file is written


def remove_orphans(dumps_dir: Path) -> list[Path]:
    """Delete the temporary files of dump writers that died (`kill -9`) before renaming them.

    A temporary file names its writer's process id; one whose process no longer runs is an orphan.
    """
    removed = []
    for path in dumps_dir.glob(".*.tmp"):
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_runs(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_dumps(store: Store, dumps_dir: Path, *, changes: ChangeLog | None = None,
                snapshots: int = 7, today: date | None = None) -> list[DumpFile]:
    """(Re)write every dump; returns what is now published."""
    dumps_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(dumps_dir)
    # Read the feed's position before reading the store: every member up to it is then in the dump
    # (a harvest loads its graph before it records its members), so replaying from it is exact.
    position = changes.position() if changes is not None else None
    sources = source_graphs(store)
    every = [s.graph for s in sources]
    licenses = sorted({s.license for s in sources if s.license})
    plan = [
        # one file per source, N-Quads and N-Triples: written together from one read of each
        # graph (`_write_graphs_once`), which counts the sources' triples
        *(_Planned(_source_file(s), None, [s.graph], [s.license] if s.license else [], s.id)
          for s in sources),
        _Planned(NQUADS, None, every, licenses),
        _Planned(NTRIPLES, None, every, licenses),
        _Planned(TURTLE, lambda out: _each_graph(store, sources, "turtle", out), every, licenses),
        # JSON-LD is converted from the N-Quads just written, quad by quad, not from the store.
        _Planned(JSONLD, lambda out: _nquads_to_jsonld(written[NQUADS], out), every, licenses),
    ]
    written: dict[str, Path] = {}
    try:
        _write_graphs_once(store, sources, dumps_dir, written)
        for planned in plan:
            if planned.write is not None:
                written[planned.name] = _write_gzip(dumps_dir / planned.name, planned.write)
        counts = {s.graph: s.triples for s in sources}
        entries = {p.name: _entry(written[p.name], p, sum(counts[g] for g in p.graphs)) for p in plan}
        for name, temporary in written.items():
            temporary.replace(dumps_dir / name)
        written.clear()
    finally:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
    _drop_stale_source_files(dumps_dir, {f"source-{s.id}.nq.gz" for s in sources})
    entries.update(_snapshot(dumps_dir, entries[NQUADS], today or datetime.now(timezone.utc).date(),
                             snapshots))
    index = {
        "generated": _now(),
        "feed": {"seq": position.seq, "timestamp": position.timestamp} if position else None,
        "sources": [asdict(s) for s in sources],
        "files": entries,
    }
    _write_atomically(dumps_dir / INDEX, json.dumps(index, ensure_ascii=False, indent=1).encode("utf-8"))
    return list_dumps(dumps_dir)


def source_graphs(store: Store) -> list[SourceGraph]:
    """The named graphs of the store, with their source's title and licence."""
    found = {graph: SourceGraph(id=_graph_id(graph), graph=graph, title=None, license=None)
             for graph in store.graphs()}
    for row in store.select(load_query("dump_graphs")):
        graph = found.get(str(row["graph"]))
        if graph is None:
            continue
        if "title" in row and graph.title is None:
            graph.title = str(row["title"])
        if "license" in row and graph.license is None:
            graph.license = str(row["license"])
    return sorted(found.values(), key=lambda s: s.graph)


def _graph_id(graph_iri: str) -> str:
    return graph_iri.rstrip("/").rsplit("/", 1)[-1]


# --- writing --------------------------------------------------------------------------------


@contextmanager
def _gzip_temporary(target: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A gzip stream into a temporary file beside `target`, complete and on disk once the block
    ends; removed if the block fails."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as raw:
            # mtime=0: the same data gives the same bytes, so the checksum only moves with the data
            # (level 6: nearly the size of level 9, at a fraction of its time)
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=6) as compressed:
                yield compressed, temporary
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_gzip(target: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Stream into a temporary file beside `target`; returns it, complete and on disk."""
    with _gzip_temporary(target) as (out, temporary):
        write(out)
    return temporary


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def _each_graph(store: Store, sources: list[SourceGraph], rdf_format: str, out: IO[bytes]) -> None:
    # Concatenated N-Triples are N-Triples; concatenated Turtle documents are Turtle (a prefix may
    # be declared again between statements). A place shared by two sources appears twice.
    for source in sources:
        store.dump_graph(out, source.graph, rdf_format)
        out.write(b"\n")


def _source_file(source: SourceGraph) -> str:
    return f"source-{source.id}.nq.gz"


def _write_graphs_once(store: Store, sources: list[SourceGraph], dumps_dir: Path,
                       written: dict[str, Path]) -> None:
    """Each source's file, the whole N-Quads and the whole N-Triples, from one read of each graph
    (reading the store is most of a dump's cost); temporary files go into `written`."""
    with ExitStack() as files:
        nquads, written[NQUADS] = files.enter_context(_gzip_temporary(dumps_dir / NQUADS))
        ntriples, written[NTRIPLES] = files.enter_context(_gzip_temporary(dumps_dir / NTRIPLES))
        for source in sources:
            name = _source_file(source)
            with _gzip_temporary(dumps_dir / name) as (own, temporary):
                written[name] = temporary
                splitter = _GraphWriter(source.graph, nquads=[own, nquads], ntriples=[ntriples])
                store.dump_graph(splitter, source.graph, "nt")
                splitter.close()
                source.triples = splitter.lines
            # concatenated N-Triples are N-Triples; a place shared by two sources appears twice
            ntriples.write(b"\n")


class _GraphWriter:
    """The N-Triples of one graph written into it, written on as they are into `ntriples` and as
    N-Quads of that graph into `nquads`, counting the triples. Whole lines at a time: a line of
    the store's N-Triples ends with " .\n" and holds no other line break (N-Triples escapes them),
    so naming the graph is one replace per chunk; any other layout goes line by line."""

    def __init__(self, graph_iri: str, *, nquads: list[IO[bytes]], ntriples: list[IO[bytes]]) -> None:
        self._nquads, self._ntriples = nquads, ntriples
        self._suffix, self._pending = f" <{graph_iri}> .\n".encode(), b""
        self.lines = 0

    def write(self, data: bytes) -> int:
        chunk = self._pending + bytes(data)
        end = chunk.rfind(b"\n") + 1
        self._pending = chunk[end:]
        self._whole_lines(chunk[:end])
        return len(data)

    def _whole_lines(self, chunk: bytes) -> None:
        if not chunk:
            return
        count = chunk.count(b"\n")
        if chunk.count(b" .\n") != count:
            chunk = b"".join(self._tidy(line) for line in chunk.split(b"\n"))
            count = chunk.count(b"\n")
        for out in self._ntriples:
            out.write(chunk)
        quads = chunk.replace(b" .\n", self._suffix)
        for out in self._nquads:
            out.write(quads)
        self.lines += count

    @staticmethod
    def _tidy(line: bytes) -> bytes:
        """A line as the store would write it ("s p o .\n"), or nothing (blank, comment)."""
        line = line.strip()
        if not line or line.startswith(b"#"):
            return b""
        assert line.endswith(b"."), line
        return line[:-1].rstrip() + b" .\n"

    def close(self) -> None:
        self._whole_lines(self._pending + b"\n" if self._pending.strip() else b"")
        self._pending = b""

    def flush(self) -> None:
        pass


def _nquads_to_jsonld(nquads_gz: Path, out: IO[bytes]) -> None:
    with gzip.open(nquads_gz, "rb") as source:
        ox.serialize(ox.parse(source, ox.RdfFormat.N_QUADS), out, ox.RdfFormat.JSON_LD)


def _entry(path: Path, planned: _Planned, triples: int) -> dict:
    return {"size": path.stat().st_size, "sha256": _sha256(path), "triples": triples,
            "licenses": planned.licenses, "source": planned.source}


def _drop_stale_source_files(dumps_dir: Path, current: set[str]) -> None:
    """A source that is gone takes its file with it (its data has left the store too)."""
    for path in dumps_dir.iterdir():
        if _SOURCE_FILE.match(path.name) and path.name not in current:
            path.unlink(missing_ok=True)


def _snapshot(dumps_dir: Path, latest: dict, today: date, keep: int) -> dict[str, dict]:
    """Today's dated copy of the N-Quads dump (a hard link), and the retention of older ones."""
    entries: dict[str, dict] = {}
    previous = _read_index(dumps_dir).get("files", {})
    if keep > 0:
        name = f"affiche-{today.isoformat()}.nq.gz"
        temporary = dumps_dir / f".{name}.{os.getpid()}.tmp"
        temporary.unlink(missing_ok=True)
        try:
            os.link(dumps_dir / NQUADS, temporary)
        except OSError:
            shutil.copyfile(dumps_dir / NQUADS, temporary)
        temporary.replace(dumps_dir / name)
        entries[name] = latest
    dated = sorted((p for p in dumps_dir.iterdir() if SNAPSHOT.match(p.name)), reverse=True)
    for path in dated[keep:]:
        path.unlink(missing_ok=True)
    for path in dated[:keep]:
        if path.name not in entries and path.name in previous:
            entries[path.name] = previous[path.name]
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- reading --------------------------------------------------------------------------------


def _read_index(dumps_dir: Path) -> dict:
    try:
        return json.loads((dumps_dir / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def dump_metadata(dumps_dir: Path) -> dict:
    """What the last `write_dumps` recorded: when, the feed position, the sources and licences."""
    index = _read_index(dumps_dir)
    return {"generated": index.get("generated"), "feed": index.get("feed"),
            "sources": index.get("sources", [])}


def list_dumps(dumps_dir: Path) -> list[DumpFile]:
    """The published files, with what the index says of them (hashed here when it says nothing)."""
    if not dumps_dir.is_dir():
        return []
    known = _read_index(dumps_dir).get("files", {})
    files = []
    for path in sorted(dumps_dir.iterdir()):
        suffix = next((s for s in MEDIA_TYPES if path.name.endswith(s)), None)
        if suffix is None or path.name.startswith("."):
            continue
        stat = path.stat()
        entry = known.get(path.name)
        if entry is None or entry.get("size") != stat.st_size:
            entry = {"sha256": _sha256(path)}
        files.append(DumpFile(
            name=path.name,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc).replace(microsecond=0).isoformat(),
            sha256=entry["sha256"],
            media_type=MEDIA_TYPES[suffix],
            triples=entry.get("triples"),
            licenses=list(entry.get("licenses") or []),
            source=entry.get("source"),
            snapshot=bool(SNAPSHOT.match(path.name)),
        ))
    return files
