"""The store behind Affiche: one named graph per source, the public view is their union.

`Store` is the small interface the rest of the code uses; `EmbeddedStore` implements it over
pyoxigraph on disk (the default, zero set-up); `sparql.remote.RemoteStore` implements it over a
SPARQL 1.1 server. Values are bound through pyoxigraph substitutions (or, remotely, a VALUES
block built from parsed terms), never pasted into query text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Protocol
from uuid import uuid4

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from .queries import load_query


class StoreError(Exception):
    """The store cannot do what was asked (an outage, not a missing resource)."""


class StoreBusy(StoreError):
    """The embedded store is held by another process (RocksDB holds a lock)."""


class StoreTimeout(StoreError):
    """The store did not answer within its deadline (the query was stopped, or given up on)."""


class QuerySyntaxError(ValueError):
    """A SPARQL query that does not parse; the message carries the parser's position."""


@dataclass(frozen=True)
class NTriples:
    """A graph already written as N-Triples (a harvest worker's output): the embedded store loads
    it as it is, without building an rdflib graph on the way."""

    data: bytes
    triples: int
    # written by Oxigraph from terms it built (what a harvest worker hands over): their IRIs and
    # language tags were checked then, so a first load skips checking them again (`lenient`:
    # measured 8-13 % less CPU for the bulk load)
    checked: bool = False
    # given the N-Triples the graph holds now (as the store writes them) and `data`, what to write
    # instead (harvester.harvest_times keeps the unchanged events' times): the embedded store
    # calls it with the graph it reads anyway to write only what changed
    amend: Callable[[bytes, bytes], bytes] | None = None

    def __len__(self) -> int:
        return self.triples


@dataclass(frozen=True)
class QueryAnswer:
    """A serialised query answer: bytes in one media type."""

    body: bytes
    media_type: str
    kind: str  # "solutions" | "boolean" | "graph"


@dataclass(frozen=True)
class Written:
    """What `replace_graph` wrote: the graph's new stamp (`EmbeddedStore.stamp`), and the
    N-Triples the graph now holds (None: nothing changed, the stamp is the one it had)."""

    stamp: str | None
    data: bytes | None


class Store(Protocol):
    def replace_graph(self, graph_iri: str, graph: Graph) -> Written | None: ...
    def drop_graph(self, graph_iri: str) -> None: ...
    # a token that changes whenever the graph is written (None: unknown, or cannot be told)
    def stamp(self, graph_iri: str) -> str | None: ...
    def graphs(self) -> list[str]: ...
    def select(self, query: str, bindings: dict[str, Node] | None = None) -> list[dict[str, Node]]: ...
    def construct(self, query: str, bindings: dict[str, Node] | None = None) -> Graph: ...
    def run(self, query: str, *, results_format: str, rdf_format: str,
            default_graphs: list[str] | None = None,
            named_graphs: list[str] | None = None) -> QueryAnswer: ...
    def dump_nquads(self, out: IO[bytes]) -> None: ...
    def dump_graph(self, out: IO[bytes], graph_iri: str, rdf_format: str = "nt") -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


# --- term conversion ------------------------------------------------------------------------


def to_ox(term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"cannot convert {term!r}")


class OxTerms(dict):
    """rdflib term -> pyoxigraph term, each converted once: a feed names the same venues, types
    and predicates over and over."""

    def __missing__(self, term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
        converted = self[term] = to_ox(term)
        return converted


def from_ox(term) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        if datatype == _XSD_STRING:
            return Literal(term.value)
        if datatype == _XSD_DECIMAL and "." not in term.value and "e" not in term.value.lower():
            # Oxigraph writes 18.00 as "18"; Turtle can only abbreviate "18.0", so every format
            # would not carry the same literal. Keep the XSD 1.0 canonical form, with a point.
            return Literal(term.value + ".0", datatype=URIRef(datatype))
        return Literal(term.value, datatype=URIRef(datatype))
    raise TypeError(f"cannot convert {term!r}")


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"


def solution_rows(solutions: ox.QuerySolutions) -> list[dict[str, Node]]:
    """SELECT solutions as rows of rdflib terms, unbound variables left out (every store's
    `select`)."""
    names = [v.value for v in solutions.variables]
    return [{name: from_ox(solution[name]) for name in names if solution[name] is not None}
            for solution in solutions]


def triples_graph(triples: Iterable) -> Graph:
    """pyoxigraph triples as an rdflib graph (every store's `construct`)."""
    graph = Graph()
    for triple in triples:
        graph.add((from_ox(triple.subject), from_ox(triple.predicate), from_ox(triple.object)))
    return graph


def dataset_options(default_graphs: Iterable[str] | None = None,
                    named_graphs: Iterable[str] | None = None) -> dict:
    """`ox.Store.query` options for a public query's dataset: the union of the named graphs by
    default (what aggregators expect), or the graphs named by `default-graph-uri` /
    `named-graph-uri`."""
    options: dict = {}
    if default_graphs:
        options["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
    else:
        options["use_default_graph_as_union"] = True
    if named_graphs:
        options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
    return options


def _graph_to_ntriples(graph: Graph) -> str:
    return graph.serialize(format="nt")


# N-Triples bytes written between two flushes of the embedded store: about 2,000 events.
FLUSH_EVERY_BYTES = 4_000_000

# A new graph of at most this many triples is written with pyoxigraph's bulk loader: 3x less CPU
# than a transactional load (measured: 2.0 s against 6.5 s for 300,000 triples on a store of
# 100,000 events), because it writes sorted files that RocksDB takes in whole instead of filling
# its memory tables and compacting them. Oxigraph cuts a bulk load into batches of at least
# 1,000,000 quads and hands each batch's files, every index and the strings together, to one
# RocksDB ingestion, which is atomic (all or nothing, even across a crash): below the batch size,
# readers see the whole new graph or none of it, as with a transaction.
BULK_LOAD_MAX_TRIPLES = 900_000


def replacing_update(graph_iri: str, current: bytes, data: bytes) -> str | None:
    """The SPARQL update turning a graph holding `current` into one holding `data` (both
    N-Triples, one triple a line, as Oxigraph writes them): the lines that left deleted, the lines
    that came inserted, in one request (one transaction); None when nothing changed.

    A literal the store writes in another form than the feed's (`+00:00` read back as `Z`) is
    deleted and inserted again, which leaves it in place. Blank nodes cannot be deleted by value
    (SPARQL forbids them in DELETE DATA, and the store names them anew), so a graph with any is
    dropped and inserted whole."""
    if b"_:" in current or b"_:" in data:
        text = data.decode("utf-8")
        return f"DROP SILENT GRAPH <{graph_iri}> ;\nINSERT DATA {{ GRAPH <{graph_iri}> {{\n{text}\n}} }}"
    before, after = set(current.splitlines()), set(data.splitlines())
    before.discard(b"")
    after.discard(b"")
    removed, added = before - after, after - before
    if not removed and not added:
        return None
    deleted, inserted = (b"\n".join(lines).decode("utf-8") for lines in (removed, added))
    return (f"DELETE DATA {{ GRAPH <{graph_iri}> {{\n{deleted}\n}} }} ;\n"
            f"INSERT DATA {{ GRAPH <{graph_iri}> {{\n{inserted}\n}} }}")


RESULTS_FORMATS = {
    "json": ox.QueryResultsFormat.JSON,
    "xml": ox.QueryResultsFormat.XML,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
}
RDF_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "xml": ox.RdfFormat.RDF_XML,
    "json-ld": ox.RdfFormat.JSON_LD,
    "nq": ox.RdfFormat.N_QUADS,
}


class EmbeddedStore:
    """pyoxigraph on disk (or in memory when `path` is None)."""

    def __init__(self, path: Path | None) -> None:
        try:
            if path is None:
                self._store = ox.Store()
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._store = ox.Store(str(path))
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(
                    f"the store at {path} is in use by another Affiche process (for example "
                    "`affiche serve`); stop it, or trigger the harvest through the running server"
                ) from exc
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        self.path = path
        # Bumped by every write, so that readers of snapshots (sparql.workers) know theirs is stale.
        self.generation = 0
        # inside the store's directory (RocksDB leaves files it does not know alone): a store
        # copied or restored elsewhere takes its stamps with it, and only its own
        self._stamps = GraphStamps(None if path is None else path / "affiche-stamps.json")
        self._unflushed = 0  # bytes written since the last flush

    @classmethod
    def read_only(cls, path: Path) -> "EmbeddedStore":
        """Open a store (a snapshot) for reading only; no other process may be writing it."""
        store = cls.__new__(cls)
        try:
            store._store = ox.Store.read_only(str(path))
        except OSError as exc:
            raise StoreError(f"cannot open the snapshot at {path}: {exc}") from exc
        store.path, store.generation, store._stamps = path, 0, GraphStamps(None)
        return store

    def snapshot(self, target: Path) -> None:
        """Write a consistent copy of the store to `target` (a new directory), for readers in
        other processes. On disk this is RocksDB's checkpoint: hard links, cheap on the same
        filesystem. An in-memory store is copied quad by quad."""
        try:
            if self.path is not None:
                self._store.backup(str(target))
                return
            copy = ox.Store(str(target))
            copy.bulk_extend(self._store.quads_for_pattern(None, None, None, None))
            copy.flush()
            del copy
        except (OSError, RuntimeError) as exc:
            raise StoreError(f"cannot snapshot the store to {target}: {exc}") from exc

    # writes

    def replace_graph(self, graph_iri: str, graph: Graph | NTriples) -> Written:
        """Replace one named graph in a single transaction: readers see the old or the new.

        A graph that holds nothing yet is filled by one bulk load (`_load_new_graph`: one atomic
        ingestion); otherwise one update deletes the triples that left and
        inserts those that came (`replacing_update`): a re-harvest writes what changed, not the
        whole graph again. What was written is flushed to disk every `FLUSH_EVERY_BYTES`, so the
        store's write buffers stay the size of a source, not of everything harvested since the
        store was opened.

        The graph's stamp is removed before the write and renewed after it (`stamp`)."""
        name = ox.NamedNode(graph_iri)
        data = graph.data if isinstance(graph, NTriples) else _graph_to_ntriples(graph).encode("utf-8")
        try:
            if next(iter(self._store.quads_for_pattern(None, None, None, name)), None) is None:
                self._stamps.remove(graph_iri)
                self._load_new_graph(name, data, isinstance(graph, NTriples) and graph.checked)
                return Written(self._stamps.renew(graph_iri), data)
            current = self._store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=name)
            if isinstance(graph, NTriples) and graph.amend is not None:
                data = graph.amend(current, data)
            update = replacing_update(graph_iri, current, data)
            if not update:
                return Written(self._stamps.get(graph_iri), None)
            self._stamps.remove(graph_iri)
            self._store.update(update)
            self._written(len(update))
            return Written(self._stamps.renew(graph_iri), data)
        except OSError as exc:
            raise StoreError(f"cannot write graph {graph_iri}: {exc}") from exc
        finally:
            self.generation += 1

    def _load_new_graph(self, name: ox.NamedNode, data: bytes, checked: bool = False) -> None:
        """Fill a graph that holds nothing yet: bulk-loaded when it fits one ingestion
        (`BULK_LOAD_MAX_TRIPLES`), else one transactional load. `checked`: `NTriples.checked`."""
        if data.count(b"\n") > BULK_LOAD_MAX_TRIPLES:
            self._store.load(data, format=ox.RdfFormat.N_TRIPLES, to_graph=name, lenient=checked)
            self._written(len(data))
            return
        try:
            self._store.bulk_load(data, format=ox.RdfFormat.N_TRIPLES, to_graph=name,
                                  lenient=checked)
        except (SyntaxError, ValueError, OSError):
            # nothing is ingested before the batch is complete; make sure the graph is empty again
            if name in set(self._store.named_graphs()):
                self._store.remove_graph(name)
            raise

    def _written(self, size: int) -> None:
        """RocksDB keeps writes in memory tables until they reach their own (large) limits;
        flushing once a source's worth has been written keeps the writer's memory that size."""
        self._unflushed += size
        if self._unflushed >= FLUSH_EVERY_BYTES:
            self.flush()

    def drop_graph(self, graph_iri: str) -> None:
        try:
            self._stamps.remove(graph_iri)
            self._store.update(f"DROP SILENT GRAPH <{graph_iri}>")
        finally:
            self.generation += 1

    def stamp(self, graph_iri: str) -> str | None:
        """A token that changes whenever `replace_graph` or `drop_graph` writes the graph, kept
        in the store's directory (`affiche-stamps.json`); None while a write is under way or unknown (a
        store written by an older version, or by hand). What was made from the graph for a
        stamp (its dump files: `sparql.graph_files`) is current while the stamp stays."""
        return self._stamps.get(graph_iri)

    # reads

    def graphs(self) -> list[str]:
        return sorted(g.value for g in self._store.named_graphs())

    def _query(self, query: str, bindings: dict[str, Node] | None, **options):
        substitutions = {ox.Variable(k): to_ox(v) for k, v in (bindings or {}).items()}
        try:
            return self._store.query(query, substitutions=substitutions or None, **options)
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def select(self, query: str, bindings: dict[str, Node] | None = None) -> list[dict[str, Node]]:
        """Run a SELECT over the union of the published graphs; rows as dicts of rdflib terms."""
        return solution_rows(self._query(query, bindings, use_default_graph_as_union=True))

    def construct(self, query: str, bindings: dict[str, Node] | None = None) -> Graph:
        return triples_graph(self._query(query, bindings, use_default_graph_as_union=True))

    def named(self, name: str, bindings: dict[str, Node] | None = None) -> list[dict[str, Node]]:
        return self.select(load_query(name), bindings)

    def run(self, query: str, *, results_format: str = "json", rdf_format: str = "turtle",
            default_graphs: list[str] | None = None,
            named_graphs: list[str] | None = None) -> QueryAnswer:
        """Run any read query and serialise its answer (the /sparql endpoint's path)."""
        answer = self._query(query, None, **dataset_options(default_graphs, named_graphs))
        if isinstance(answer, ox.QueryTriples):
            fmt = RDF_FORMATS[rdf_format]
            return QueryAnswer(answer.serialize(format=fmt), fmt.media_type, "graph")
        fmt = RESULTS_FORMATS[results_format]
        kind = "boolean" if isinstance(answer, ox.QueryBoolean) else "solutions"
        return QueryAnswer(answer.serialize(format=fmt), fmt.media_type, kind)

    def quads_about(self, subject: ox.NamedNode | ox.BlankNode, predicate=None, obj=None,
                    graph=None) -> Iterator[ox.Quad]:
        """The quads matching a pattern in every graph: a direct index lookup, no SPARQL parse
        (entity pages read their entity this way)."""
        return iter(self._store.quads_for_pattern(subject, predicate, obj, graph))

    def dump_nquads(self, out: IO[bytes]) -> None:
        """Stream every named graph as N-Quads (the default graph is not used)."""
        self._store.dump(out, format=ox.RdfFormat.N_QUADS)

    def dump_graph(self, out: IO[bytes], graph_iri: str, rdf_format: str = "nt") -> None:
        self._store.dump(out, format=RDF_FORMATS[rdf_format], from_graph=ox.NamedNode(graph_iri))

    def flush(self) -> None:
        self._store.flush()
        self._unflushed = 0

    def close(self) -> None:
        del self._store


class GraphStamps:
    """`EmbeddedStore`'s stamps, in a JSON file written whole (atomically) at each change, or
    in memory for a store in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamps: dict[str, str] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self._stamps = {str(k): str(v) for k, v in loaded.items()}
            except (OSError, ValueError, AttributeError):
                self._stamps = {}  # none known: whatever was made from the graphs is made again

    def get(self, graph_iri: str) -> str | None:
        return self._stamps.get(graph_iri)

    def remove(self, graph_iri: str) -> None:
        if self._stamps.pop(graph_iri, None) is not None:
            self._save()

    def renew(self, graph_iri: str) -> str:
        self._stamps[graph_iri] = stamp = uuid4().hex
        self._save()
        return stamp

    def _save(self) -> None:
        if self.path is not None:
            write_atomically(self.path, json.dumps(self._stamps).encode("utf-8"))


def temporary_beside(target: Path) -> Path:
    """Where `target` is written before it is renamed into place: beside it, hidden, named after
    this process (so that what a writer killed half-way leaves is recognisable)."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target` (`temporary_beside`), then rename it
    over `target`: readers see the old file or the new one, never a part."""
    temporary = temporary_beside(target)
    try:
        temporary.write_bytes(data)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def open_store(location: str, data_dir: Path, *, query_url: str | None = None,
               update_url: str | None = None, gsp_url: str | None = None,
               token: str | None = None, timeout_s: float = 60.0) -> Store:
    """Open the configured store: `embedded` (under the data directory), `memory`, or the
    http(s) URL of a SPARQL 1.1 server (`sparql.remote`; the other URLs override its layout)."""
    if location.startswith(("http://", "https://")):
        from .remote import RemoteStore, endpoints_for

        return RemoteStore(endpoints_for(location, query_url, update_url, gsp_url, token),
                           timeout_s=timeout_s)
    if query_url or update_url or gsp_url or token:
        raise StoreError(
            f"the store is {location!r}, yet remote endpoint URLs are set: set AFFICHE_STORE to "
            "the server's URL to use a remote store"
        )
    if location == "embedded":
        return EmbeddedStore(data_dir / "store")
    if location == "memory":
        return EmbeddedStore(None)
    raise StoreError(
        f"unknown store {location!r}: use 'embedded', 'memory' or the http(s) URL of a SPARQL "
        "1.1 server"
    )


def ids(values: Iterable[Node]) -> list[str]:
    return [str(v) for v in values]
