"""Bulk dumps, made from each graph's files, into files that always sit at the same URL.

`affiche.nq.gz` (one named graph per source, so provenance survives), `affiche.nt.gz`,
`affiche.ttl.gz`, `affiche.jsonld.gz`, one `source-{id}.nq.gz` per source, and one dated snapshot
`affiche-YYYY-MM-DD.nq.gz` per day (the newest few kept).

Each named graph has its files in every format, gzip members kept in `.parts/`
(`sparql.graph_files`): a harvest makes them as it writes the graph, and this module makes those
that are missing or were made for an older state of the graph, reading that graph alone from the
store. A whole-dataset file is then its graphs' members one after the other (a gzip file may hold
several members; every reader reads them as one stream), so a dump costs what changed plus a copy
of the compressed bytes, not a read of the whole store. Nothing is built in memory beyond one
graph. Each file is written as a temporary file in the dumps directory; only when every file is
complete (and on disk) are they renamed over the old ones (a rename is atomic), so a dump being
regenerated is never served half-written and a crash leaves the previous dumps in place. The
metadata (sizes, triple counts, SHA-256, licences, the change-feed position the dump includes) is
written last, to `.index.json`, and is what `/dumps/` lists.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from harvester.changes import ChangeLog
from sparql.graph_files import GraphFiles, compress, process_runs
from sparql.queries import load_query
from sparql.store import Store, temporary_beside, write_atomically

NQUADS = "affiche.nq.gz"
NTRIPLES = "affiche.nt.gz"
TURTLE = "affiche.ttl.gz"
JSONLD = "affiche.jsonld.gz"
INDEX = ".index.json"
PARTS = ".parts"  # each graph's files (`sparql.graph_files`)

MEDIA_TYPES = {
    ".nq.gz": "application/n-quads",
    ".nt.gz": "application/n-triples",
    ".ttl.gz": "text/turtle",
    ".jsonld.gz": "application/ld+json",
}
SNAPSHOT = re.compile(r"^affiche-(\d{4}-\d{2}-\d{2})\.nq\.gz$")
_SOURCE_FILE = re.compile(r"^source-([a-z0-9-]+)\.nq\.gz$")

# The whole-dataset files: which kind of graph file each is made of.
_WHOLE = {NQUADS: "nq", NTRIPLES: "nt", TURTLE: "ttl", JSONLD: "jsonld"}
_EMPTY = compress(b"")
# JSON-LD's graph objects go in one array: these members go before, between and after them
_OPEN, _COMMA, _CLOSE = compress(b"["), compress(b","), compress(b"]\n")


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


@dataclass
class SourceGraph:
    id: str
    graph: str
    title: str | None
    license: str | None
    triples: int = 0  # from its files' record


def remove_orphans(dumps_dir: Path) -> list[Path]:
    """Delete the temporary files of dump writers that died (`kill -9`) before renaming them.

    A temporary file names its writer's process id; one whose process no longer runs is an orphan.
    """
    removed = []
    for path in dumps_dir.glob(".*.tmp"):
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not process_runs(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def graph_files(dumps_dir: Path) -> GraphFiles:
    """Where each graph's files are kept, for harvests to make them as they write (`commit`)."""
    return GraphFiles(dumps_dir / PARTS)


def write_dumps(store: Store, dumps_dir: Path, *, changes: ChangeLog | None = None,
                snapshots: int = 7, today: date | None = None) -> list[DumpFile]:
    """(Re)write every dump; returns what is now published."""
    dumps_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(dumps_dir)
    # Read the feed's position before reading the store: every member up to it is then in the dump
    # (a harvest loads its graph before it records its members), so replaying from it is exact.
    position = changes.position() if changes is not None else None
    sources = source_graphs(store)
    parts = graph_files(dumps_dir)
    parts.remove_others({s.graph for s in sources})
    for source in sources:
        source.triples = _current_files(store, parts, source.graph).triples
    licenses = sorted({s.license for s in sources if s.license})
    written: dict[str, Path] = {}
    entries: dict[str, dict] = {}
    try:
        for source in sources:
            name = _source_file(source)
            written[name], digest = _linked(parts.path(source.graph, "nq"), dumps_dir / name)
            entries[name] = {"size": written[name].stat().st_size, "sha256": digest,
                             "triples": source.triples,
                             "licenses": [source.license] if source.license else [],
                             "source": source.id}
        total = sum(s.triples for s in sources)
        for name, kind in _WHOLE.items():
            members = [parts.path(s.graph, kind) for s in sources]
            written[name], digest = _concatenated(dumps_dir / name, members, json_array=kind == "jsonld")
            entries[name] = {"size": written[name].stat().st_size, "sha256": digest,
                             "triples": total, "licenses": licenses, "source": None}
        os.sync()  # every new file on disk before any takes an old one's name
        for name, temporary in written.items():
            temporary.replace(dumps_dir / name)
        written.clear()
    finally:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
    _drop_stale_source_files(dumps_dir, {_source_file(s) for s in sources})
    entries.update(_snapshot(dumps_dir, entries[NQUADS], today or datetime.now(timezone.utc).date(),
                             snapshots))
    index = {
        "generated": _now(),
        "feed": {"seq": position.seq, "timestamp": position.timestamp} if position else None,
        "sources": [asdict(s) for s in sources],
        "files": entries,
    }
    write_atomically(dumps_dir / INDEX, json.dumps(index, ensure_ascii=False, indent=1).encode("utf-8"))
    return list_dumps(dumps_dir)


def _current_files(store: Store, parts: GraphFiles, graph_iri: str):
    """The graph's files, made from the store when those kept are missing or stale."""
    stamp = store.stamp(graph_iri)  # read before the graph: a write in between makes it stale
    record = parts.current(graph_iri, stamp)
    if record is not None:
        return record
    buffer = io.BytesIO()  # one graph: a source's worth
    store.dump_graph(buffer, graph_iri, "nt")
    return parts.write(graph_iri, buffer.getvalue(), stamp)


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


def _source_file(source: SourceGraph) -> str:
    return f"source-{source.id}.nq.gz"


# --- writing --------------------------------------------------------------------------------


def _linked(member: Path, target: Path) -> tuple[Path, str]:
    """A temporary name for a graph's file, to be renamed to `target` (a hard link: the graph's
    file is replaced, never changed in place, by the next harvest); and its SHA-256."""
    temporary = temporary_beside(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(member, temporary)
    except OSError:
        shutil.copyfile(member, temporary)
    return temporary, _sha256(temporary)


def _concatenated(target: Path, members: list[Path], json_array: bool = False) -> tuple[Path, str]:
    """The members one after the other in a temporary file beside `target`, and its SHA-256."""
    temporary = temporary_beside(target)
    digest = hashlib.sha256()

    def put(data: bytes) -> None:
        out.write(data)
        digest.update(data)

    try:
        with open(temporary, "wb") as out:
            if json_array:
                put(_OPEN)
            elif not members:
                put(_EMPTY)  # a valid gzip file, holding nothing
            for number, member in enumerate(members):
                if json_array and number:
                    put(_COMMA)
                with open(member, "rb") as source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        put(block)
            if json_array:
                put(_CLOSE)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, digest.hexdigest()


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
        temporary = temporary_beside(dumps_dir / name)
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
