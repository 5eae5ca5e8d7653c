"""Each named graph written once in every dump format, as gzip members kept beside the dumps.

A dump of the whole store is the concatenation of its graphs' files: RFC 1952 lets a gzip file
hold several members, read by every gzip reader as one stream, and concatenated N-Quads,
N-Triples or Turtle documents are one document of the same format (JSON-LD takes a bracket and
commas between the graphs). So the dumps are remade from the files of the graphs that changed,
not by reading the whole store again (at 1,000,000 events, reading the store back took 3 minutes
before anything was compressed).

A harvest writes a graph's files when it writes the graph: a worker process makes them from the
N-Triples it hands over (`stage`), and the writing process keeps them (`keep`) when the store took
those N-Triples as they were, or makes them from what it did write (`write`). `publisher.dumps`
makes the missing and stale ones from the store.

A graph's files are current when their record names the store's stamp for the graph
(`EmbeddedStore.stamp`). The store removes a graph's stamp before it writes the graph and gives
it a new one after, so files made before a write are never taken for the graph after it, even
when the process dies in between; a store without stamps (a remote one) has its graphs' files
made again for every dump.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
from isal import isal_zlib

from .store import write_atomically

# ISA-L's deflate at level 2 (of 0-3): 2.6 GB/s of N-Triples on this project's 2-core machines,
# where zlib at level 6 (gzip's default) does 0.2 GB/s, for files about a third larger (measured on
# the synthetic events: 3.16 MB against 2.35 MB for 53.6 MB of N-Triples). At 1,000,000 events the
# four formats hold 10 GB of text: zlib would spend more CPU on them than the harvest's writer.
LEVEL = 2
_GZIP = 31  # wbits: a gzip member (header with mtime 0, so the same data gives the same bytes)

_counter = itertools.count(1)


def compress(data: bytes) -> bytes:
    """One gzip member holding `data`."""
    return isal_zlib.compress(data, LEVEL, wbits=_GZIP)


@dataclass(frozen=True)
class GraphRecord:
    """What the files of one graph hold: for which graph, made for which of its stamps, and
    how many triples."""

    graph: str
    stamp: str | None
    triples: int


@dataclass(frozen=True)
class Staged:
    """A graph's files made by a worker process, waiting for the writing process to keep them."""

    graph: str
    paths: dict[str, Path]  # kind -> file
    triples: int


class GraphFiles:
    """The directory of graph files (`.parts` inside the dumps directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    # --- naming ---

    @staticmethod
    def stem(graph_iri: str) -> str:
        # any graph name gives a safe file name; the record says which graph it is
        return hashlib.sha256(graph_iri.encode("utf-8")).hexdigest()[:24]

    def path(self, graph_iri: str, kind: str) -> Path:
        return self.directory / f"{self.stem(graph_iri)}.{kind}.gz"

    def _record_path(self, graph_iri: str) -> Path:
        return self.directory / f"{self.stem(graph_iri)}.json"

    @property
    def _staging(self) -> Path:
        return self.directory / ".staging"

    # --- making ---

    def stage(self, graph_iri: str, ntriples: bytes) -> Staged:
        """Make the graph's files under the staging directory (in a worker process)."""
        self._staging.mkdir(parents=True, exist_ok=True)
        members, triples = members_of(graph_iri, ntriples)
        name = f"{self.stem(graph_iri)}.{os.getpid()}.{next(_counter)}"
        paths = {}
        try:
            for kind, member in members.items():
                paths[kind] = self._staging / f"{name}.{kind}.gz"
                paths[kind].write_bytes(member)
        except BaseException:
            for path in paths.values():
                path.unlink(missing_ok=True)
            raise
        return Staged(graph_iri, paths, triples)

    def keep(self, staged: Staged, stamp: str | None) -> GraphRecord:
        """Put staged files in place as the graph's files, made for `stamp`."""
        self._record_path(staged.graph).unlink(missing_ok=True)  # no record while files move
        for kind, path in staged.paths.items():
            os.replace(path, self.path(staged.graph, kind))
        return self._record(GraphRecord(staged.graph, stamp, staged.triples))

    def write(self, graph_iri: str, ntriples: bytes, stamp: str | None) -> GraphRecord:
        """Make the graph's files here from the N-Triples it holds, for `stamp`."""
        return self.keep(self.stage(graph_iri, ntriples), stamp)

    def forget(self, graph_iri: str) -> None:
        """No record for the graph: its files are made again when next needed."""
        self._record_path(graph_iri).unlink(missing_ok=True)

    @staticmethod
    def discard(staged: Staged | None) -> None:
        """Staged files not kept (the harvest was held back, or wrote other N-Triples)."""
        if staged is not None:
            for path in staged.paths.values():
                path.unlink(missing_ok=True)

    def _record(self, record: GraphRecord) -> GraphRecord:
        write_atomically(self._record_path(record.graph), json.dumps(
            {"graph": record.graph, "stamp": record.stamp, "triples": record.triples}).encode("utf-8"))
        return record

    # --- reading ---

    def current(self, graph_iri: str, stamp: str | None) -> GraphRecord | None:
        """The graph's record when its files were made for `stamp` and are all there."""
        if stamp is None:
            return None
        record = self.record(graph_iri)
        if record is None or record.stamp != stamp:
            return None
        if not all(self.path(graph_iri, kind).is_file() for kind in MAKERS):
            return None
        return record

    def record(self, graph_iri: str) -> GraphRecord | None:
        try:
            data = json.loads(self._record_path(graph_iri).read_text(encoding="utf-8"))
            record = GraphRecord(str(data["graph"]), data.get("stamp"), int(data["triples"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if record.graph == graph_iri else None

    def remove_others(self, graphs: set[str]) -> None:
        """Delete the files of graphs not in `graphs` (gone from the store), and staged files
        whose worker no longer runs (killed before its files were kept)."""
        keep = {self.stem(graph) for graph in graphs}
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.is_file() and path.name.split(".", 1)[0] not in keep and path.name[0] != ".":
                    path.unlink(missing_ok=True)
        if self._staging.is_dir():
            for path in self._staging.iterdir():
                pid = path.name.split(".")[1] if path.name.count(".") >= 2 else ""
                if not pid.isdigit() or not process_runs(int(pid)):
                    path.unlink(missing_ok=True)


def members_of(graph_iri: str, ntriples: bytes) -> tuple[dict[str, bytes], int]:
    """The gzip members of one graph held as N-Triples, and its number of triples."""
    ntriples = one_triple_a_line(ntriples)
    return {kind: compress(make(graph_iri, ntriples)) for kind, make in MAKERS.items()}, \
        ntriples.count(b"\n")


def _nquads(graph_iri: str, ntriples: bytes) -> bytes:
    # each line ends with " .\n", and only there (N-Triples escapes line breaks in literals)
    return ntriples.replace(b" .\n", f" <{graph_iri}> .\n".encode("utf-8"))


def _turtle(graph_iri: str, ntriples: bytes) -> bytes:
    return ox.serialize(_parsed(ntriples), None, ox.RdfFormat.TURTLE)


def _jsonld(graph_iri: str, ntriples: bytes) -> bytes:
    # a graph object, as pyoxigraph writes each graph of N-Quads: {"@id": graph, "@graph": [...]}
    nodes = ox.serialize(_parsed(ntriples), None, ox.RdfFormat.JSON_LD)
    return b'{"@id":' + json.dumps(graph_iri).encode("utf-8") + b',"@graph":' + nodes + b"}"


# What each kind of member holds, from the graph's N-Triples (`one_triple_a_line`).
MAKERS = {"nq": _nquads, "nt": lambda graph_iri, ntriples: ntriples, "ttl": _turtle,
          "jsonld": _jsonld}


def _parsed(ntriples: bytes):
    # lenient: these N-Triples were written by Oxigraph (a worker's terms, or the store's own)
    return ox.parse(ntriples, ox.RdfFormat.N_TRIPLES, lenient=True)


def one_triple_a_line(ntriples: bytes) -> bytes:
    """N-Triples as Oxigraph writes them: each line a triple ending with " .\\n". Any other layout
    (comments, blank lines, a missing final line break) is written again that way."""
    if ntriples and not ntriples.endswith(b"\n"):
        ntriples += b"\n"
    if ntriples.count(b" .\n") == ntriples.count(b"\n"):
        return ntriples
    return ox.serialize(ox.parse(ntriples, ox.RdfFormat.N_TRIPLES), None, ox.RdfFormat.N_TRIPLES)


def process_runs(pid: int) -> bool:
    """Whether a process of that id runs (this one does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
