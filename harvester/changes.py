"""The change log: every creation, update and removal of an event, kept as an immutable member.

The log lives beside the store, in `DATA_DIR/changes.sqlite`, and never in a named graph of the
store: queries without GRAPH see the union of all named graphs, so old versions and tombstones would
show up there as events. It is append-only: one row per member, holding the event's description as
N-Triples (empty for a removal). The feed (`/feed`) publishes these rows as an LDES.

An event's description is what the harvest published about it (the event and the nodes it reaches:
places, offers, addresses…) minus `affiche:harvestedAt`, which moves on every harvest and would
otherwise make every harvest a new version of every event.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import pyoxigraph as ox
from rdflib import Graph
from rdflib.term import Node

from ontology import AFFICHE
from sparql.store import OxTerms

FILE_NAME = "changes.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    page INTEGER NOT NULL,
    event TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'removed')),
    timestamp TEXT NOT NULL,
    digest TEXT NOT NULL,
    ntriples TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_event ON members (event, seq);
CREATE INDEX IF NOT EXISTS members_source ON members (source, seq);
CREATE INDEX IF NOT EXISTS members_page ON members (page, seq);
"""


@dataclass(frozen=True)
class Member:
    """One immutable member of the feed: a version of an event, or its tombstone."""

    seq: int
    page: int
    event: str
    source: str
    kind: str  # "created" | "updated" | "removed"
    timestamp: str  # xsd:dateTime in UTC, milliseconds, strictly increasing from one harvest to the next
    digest: str
    ntriples: str

    def graph(self) -> Graph:
        """The event's description in this version (empty for a removal)."""
        graph = Graph()
        if self.ntriples:
            graph.parse(data=self.ntriples, format="nt")
        return graph


@dataclass(frozen=True)
class Position:
    """Where the log stands: the last member's number and time (0 and None when empty)."""

    seq: int
    timestamp: str | None


def canonical_descriptions(descriptions: dict[str, Iterable[tuple[Node, Node, Node]]],
                           terms: OxTerms | None = None) -> dict[str, str]:
    """Each description (a graph, or its triples) as sorted N-Triples, without
    `affiche:harvestedAt`, spelled as the store spells it.

    The store keeps values, not spellings (`"12.0"^^xsd:decimal` comes back as `"12"`, `@fr-BE`
    as `@fr-be`): going through the same encoding makes members spell every literal exactly as
    the dumps do. Each distinct term of the batch goes through one in-memory store once
    (`spellings`), and each description is written from these spellings. `terms` shares the
    conversions already made for the same feed.
    """
    left_out = {AFFICHE.harvestedAt}  # a set: an IRI's hash is cached, equality is a Python call
    kept = {iri: [t for t in graph if t[1] not in left_out] for iri, graph in descriptions.items()}
    spelled = spellings((term for triples in kept.values() for triple in triples for term in triple),
                        terms)
    return {iri: "".join(sorted({f"{spelled[s]} {spelled[p]} {spelled[o]} .\n" for s, p, o in triples}))
            for iri, triples in kept.items()}


def canonical_node_descriptions(index: dict[Node, list[tuple[Node, Node]]],
                                described: dict[str, list[Node]],
                                spelled: dict[Node, str]) -> dict[str, str]:
    """`canonical_descriptions` of descriptions given as the nodes they describe (each node's
    triples are in `index`, its terms in `spelled`): the lines of a node several events share (a
    venue, an organiser) are written once."""
    left_out = {AFFICHE.harvestedAt}
    lines_of: dict[Node, list[str]] = {}
    out = {}
    for iri, nodes in described.items():
        lines: set[str] = set()
        for node in nodes:
            written = lines_of.get(node)
            if written is None:
                pairs = index.get(node, ())
                s = spelled[node] if pairs else ""
                written = lines_of[node] = [f"{s} {spelled[p]} {spelled[o]} .\n"
                                            for p, o in pairs if p not in left_out]
            lines.update(written)
        out[iri] = "".join(sorted(lines))
    return out


def digest_descriptions(descriptions: dict[str, str]) -> dict[str, str]:
    """Each canonical description's SHA-256 (what members compare)."""
    return {iri: hashlib.sha256(text.encode("utf-8")).hexdigest()
            for iri, text in descriptions.items()}


def ntriples(triples: Iterable[tuple[Node, Node, Node]], spelled: dict[Node, str]) -> bytes:
    """N-Triples of the triples, each term as `spellings` gives it."""
    return "".join(f"{spelled[s]} {spelled[p]} {spelled[o]} .\n" for s, p, o in triples).encode("utf-8")


_SPELLING_PREFIX = "urn:affiche:spelling:"


def spellings(terms: Iterable[Node], converted: OxTerms | None = None) -> dict[Node, str]:
    """Each distinct term -> its N-Triples spelling once through an in-memory store, as the
    store's dumps write it. Raises ValueError for a term the store refuses (an IRI it cannot
    hold, a malformed language tag)."""
    converted = OxTerms() if converted is None else converted
    distinct = list(dict.fromkeys(terms))
    store = ox.Store()
    predicate = ox.NamedNode(_SPELLING_PREFIX)
    store.extend(ox.Quad(ox.NamedNode(f"{_SPELLING_PREFIX}{i}"), predicate, converted[term])
                 for i, term in enumerate(distinct))
    text = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph()).decode("utf-8")
    head = len(_SPELLING_PREFIX) + 1  # "<urn:affiche:spelling:"
    skip = len(_SPELLING_PREFIX) + 3  # "<urn:affiche:spelling:> " before the term
    spelled = {}
    for line in text.splitlines():
        if line:
            number, _, rest = line[head:].partition("> ")
            spelled[distinct[int(number)]] = rest[skip:-2]  # and " ." after it
    return spelled


def without_harvest_time(graph: Graph) -> Graph:
    out = Graph()
    for triple in graph:
        if triple[1] != AFFICHE.harvestedAt:
            out.add(triple)
    return out


def _format_time(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class ChangeLog:
    """The append-only log of members, in SQLite under the data directory."""

    def __init__(self, directory: Path, *, page_size: int = 100) -> None:
        self.path = Path(directory) / FILE_NAME
        self.page_size = page_size

    def _connect(self, create: bool = True) -> sqlite3.Connection:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if create:
            connection.executescript(_SCHEMA)
        return connection

    def _rows(self, query: str, parameters: tuple = ()) -> list[tuple]:
        """Reads never create the log (an event page asks it whether the event was removed)."""
        if not self.path.exists():
            return []
        with closing(self._connect(create=False)) as connection:
            return connection.execute(query, parameters).fetchall()

    # --- writing ---------------------------------------------------------------------------

    def record(self, source_id: str, descriptions: dict[str, Graph],
               now: datetime | None = None) -> list[Member]:
        """Compare one source's freshly published events with their latest members; append the
        differences (created, updated, removed) as members sharing one timestamp, in one transaction.
        """
        return self.record_canonical(source_id, canonical_descriptions(descriptions), now)

    def record_canonical(self, source_id: str, descriptions: dict[str, str],
                         now: datetime | None = None,
                         digests: dict[str, str] | None = None) -> list[Member]:
        """`record` for descriptions already made canonical (`canonical_descriptions`), as a
        harvest worker process hands them over; `digests` (`digest_descriptions`), when the
        caller has them already."""
        if digests is None:
            digests = digest_descriptions(descriptions)
        with self._transaction() as connection:
            latest = self._latest_of_source(connection, source_id)
            changes = []
            for iri in sorted(descriptions):
                digest = digests[iri]
                before = latest.get(iri)
                if before is None or before[0] == "removed":
                    changes.append((iri, "created", digest, descriptions[iri]))
                elif before[1] != digest:
                    changes.append((iri, "updated", digest, descriptions[iri]))
            for iri in sorted(latest):
                if iri not in descriptions and latest[iri][0] != "removed":
                    changes.append((iri, "removed", "", ""))
            return self._append(connection, source_id, changes, now)

    def unchanged(self, source_id: str, digests: dict[str, str]) -> frozenset[str]:
        """The events whose description (`digests`, from `digest_descriptions`) is the one their
        latest member holds: what recording them would leave as it is."""
        if not self.path.exists():
            return frozenset()
        with closing(self._connect(create=False)) as connection:
            latest = self._latest_of_source(connection, source_id)
        return frozenset(iri for iri, digest in digests.items()
                         if (before := latest.get(iri)) is not None and before[0] != "removed"
                         and before[1] == digest)

    def withdraw(self, source_id: str, iris: list[str], now: datetime | None = None) -> list[Member]:
        """Tombstones for events their organiser withdrew (those not already removed)."""
        with self._transaction() as connection:
            latest = self._latest_of_source(connection, source_id)
            changes = [(iri, "removed", "", "") for iri in sorted(set(iris))
                       if iri in latest and latest[iri][0] != "removed"]
            return self._append(connection, source_id, changes, now)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (IMMEDIATE), committed or rolled back whole."""
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    @staticmethod
    def _latest_of_source(connection: sqlite3.Connection, source_id: str) -> dict[str, tuple[str, str]]:
        rows = connection.execute(
            "SELECT event, kind, digest FROM members WHERE seq IN "
            "(SELECT MAX(seq) FROM members WHERE source = ? GROUP BY event)", (source_id,)
        ).fetchall()
        return {event: (kind, digest) for event, kind, digest in rows}

    def _append(self, connection: sqlite3.Connection, source_id: str,
                changes: list[tuple[str, str, str, str]], now: datetime | None) -> list[Member]:
        if not changes:
            return []
        last = connection.execute(
            "SELECT seq, page, timestamp FROM members ORDER BY seq DESC LIMIT 1").fetchone()
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if last is not None and moment <= _parse_time(last[2]):
            # Time only moves forward in the feed, whatever the clock does: a client that read
            # everything up to T can then ask for what came strictly after T.
            moment = _parse_time(last[2]) + timedelta(milliseconds=1)
        timestamp = _format_time(moment)
        page = last[1] if last is not None else 0
        on_page = connection.execute("SELECT COUNT(*) FROM members WHERE page = ?", (page,)).fetchone()[0]
        rows = []
        for event, kind, digest, ntriples in changes:
            if on_page >= self.page_size:
                page, on_page = page + 1, 0
            rows.append((page, event, source_id, kind, timestamp, digest, ntriples))
            on_page += 1
        # one statement for the batch; inside this write transaction the rows take the numbers
        # after the last one in turn (AUTOINCREMENT, and nobody else can write meanwhile)
        connection.executemany(
            "INSERT INTO members (page, event, source, kind, timestamp, digest, ntriples) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        first = connection.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows) + 1
        return [Member(first + i, *row) for i, row in enumerate(rows)]

    # --- reading ---------------------------------------------------------------------------

    _COLUMNS = "seq, page, event, source, kind, timestamp, digest, ntriples"

    def removed_at(self, iri: str) -> str | None:
        """When the event was removed, if its latest member is a removal; else None."""
        rows = self._rows("SELECT kind, timestamp FROM members WHERE event = ? ORDER BY seq DESC LIMIT 1",
                          (iri,))
        if rows and rows[0][0] == "removed":
            return rows[0][1]
        return None

    def position(self) -> Position:
        rows = self._rows("SELECT seq, timestamp FROM members ORDER BY seq DESC LIMIT 1")
        return Position(rows[0][0], rows[0][1]) if rows else Position(0, None)

    def last_page(self) -> int:
        """The newest page's number; page 0 exists even when the log is empty."""
        rows = self._rows("SELECT MAX(page) FROM members")
        return rows[0][0] if rows and rows[0][0] is not None else 0

    def page(self, number: int) -> list[Member]:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM members WHERE page = ? ORDER BY seq", (number,))
        return [Member(*row) for row in rows]

    def first_timestamp(self, page: int) -> str | None:
        rows = self._rows("SELECT MIN(timestamp) FROM members WHERE page = ?", (page,))
        return rows[0][0] if rows else None

    def member(self, seq: int) -> Member | None:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM members WHERE seq = ?", (seq,))
        return Member(*rows[0]) if rows else None

    def members_after(self, timestamp: str | None) -> list[Member]:
        """Every member strictly after `timestamp` (all of them for None), oldest first."""
        if timestamp is None:
            rows = self._rows(f"SELECT {self._COLUMNS} FROM members ORDER BY seq")
        else:
            rows = self._rows(f"SELECT {self._COLUMNS} FROM members WHERE timestamp > ? ORDER BY seq",
                              (timestamp,))
        return [Member(*row) for row in rows]
