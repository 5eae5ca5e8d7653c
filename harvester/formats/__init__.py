"""Feed formats: one module per format, each turning raw bytes into RDF as the organiser wrote it.

A format module defines `FORMAT = FeedFormat(...)`; adding a format means adding a module and
listing it in `_MODULES` below. Parsers raise `ParseError` when the whole feed is unreadable and
add a `ParseProblem` for each event they could not read, so one broken event never stops the others.
"""

from __future__ import annotations

import importlib
import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cache
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit
from uuid import uuid4

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

from ontology import SCHEMA

from ..fetch import Fetched, FetchPolicy

# Specific JSON formats come before generic JSON-LD: detection tries them in this order.
_MODULES = ("html", "openagenda", "uitdatabank", "jsonld", "ics", "csv", "rdf", "sitemap", "site")


class ParseError(Exception):
    """The feed as a whole cannot be read as the format it claims to be."""


@dataclass(frozen=True)
class ParseProblem:
    """One event (or row, or item) that could not be read; the rest of the feed still is."""

    where: str  # "line 12", "item 3", "VEVENT UID=…"
    message: str
    field: str | None = None


@dataclass(frozen=True)
class ParseContext:
    source_id: str
    language: str = "fr"
    timezone: str = "Europe/Paris"
    base_url: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    recurrence_days: int = 548  # how far ahead iCalendar recurrences are expanded (18 months)
    fetch_policy: FetchPolicy | None = None  # for formats that fetch more pages (sitemap, site)


# IRI text -> the one object of the vocabulary's IRIs in this process (`canonical`)
_CANONICAL: dict[str, URIRef] = {}


def canonical(term: URIRef) -> URIRef:
    """The one object for this vocabulary IRI in this process (the first one given). Parsers and
    normalisation holding the same objects, a dictionary keyed by one finds the others by
    identity, where an equal but distinct IRI costs a Python call (`URIRef.__eq__`) at every
    look-up. Only for the vocabulary (a few hundred IRIs), never a feed's own IRIs."""
    return _CANONICAL.setdefault(str(term), term)


def canonical_iri(text: str) -> URIRef:
    """The vocabulary's object for this IRI (`canonical`), or a new IRI."""
    known = _CANONICAL.get(text)
    return URIRef(text) if known is None else known


class SameTerms:
    """A namespace whose terms are made once each (`canonical`). rdflib's namespaces make a new
    IRI at every attribute read, and a graph or dictionary holding the IRI already compares each
    new one with it by a Python call: for a parser that names its properties once per statement,
    a large part of the cost of every later look-up."""

    def __init__(self, namespace) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str) -> URIRef:
        if name.startswith("__"):
            raise AttributeError(name)
        term = canonical(getattr(self._namespace, name))
        setattr(self, name, term)  # found as an attribute from now on, without this call
        return term

    def __getitem__(self, name: str) -> URIRef:
        return getattr(self, name)

    def __str__(self) -> str:
        return str(self._namespace)


SCHEMA_TERMS, RDF_TERMS, XSD_TERMS = SameTerms(SCHEMA), SameTerms(RDF), SameTerms(XSD)

# `new_blank`'s labels: this process's own prefix (rdflib's are "N" and 32 hex digits), then a
# number
_BLANK_PREFIX = f"N{uuid4().hex[:12]}x"
_blank_numbers = itertools.count(1)


def new_blank() -> BNode:
    """A new blank node for a parser, unique in this process and unlike any rdflib makes. rdflib's
    `BNode()` draws a uuid4 for each (a tenth of the cost of reading a JSON-LD event); a
    blank node's label says nothing and is not published (normalise names the nodes)."""
    return BNode(_BLANK_PREFIX + str(next(_blank_numbers)))


def new_graph() -> Graph:
    """An empty graph for a feed read triple by triple (CSV, iCalendar, JSON APIs). rdflib's
    default store also keeps contexts (named graphs), which such a graph never has: about a third
    of the cost of every add and look-up. SimpleMemory keeps the same triples without them.
    (rdflib's own JSON-LD, microdata and Turtle parsers want the default, context-aware store.)"""
    return Graph(store="SimpleMemory")


class TripleIndex:
    """Triples as subject -> predicate -> objects, each triple once, in the order added: what
    rdflib's SimpleMemory keeps, without its two other indexes and `Graph.add`'s checks. A parser's
    `FeedTriples` and the normalised graph (`normalise.Triples`) are both one."""

    __slots__ = ("spo",)

    def __init__(self) -> None:
        self.spo: dict[Node, dict[Node, dict[Node, None]]] = {}

    def add_all(self, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        spo = self.spo
        for s, p, o in triples:
            po = spo.get(s)
            if po is None:
                spo[s] = {p: {o: None}}
                continue
            objects = po.get(p)
            if objects is None:
                po[p] = {o: None}
            else:
                objects[o] = None

    def __iter__(self) -> Iterator[tuple[Node, Node, Node]]:
        for s, po in self.spo.items():
            for p, objects in po.items():
                for o in objects:
                    yield s, p, o

    def __len__(self) -> int:
        return sum(len(objects) for po in self.spo.values() for objects in po.values())


class FeedTriples(TripleIndex):
    """A feed's triples as its parser reads them, iterated in the order rdflib's SimpleMemory
    would give them: cheaper to fill than an rdflib graph, whose adds cost more than the parsing
    of a CSV row itself. The harvest reads them as they are; `Parsed.graph` makes an rdflib graph
    of them when one is asked for (a parser adds to `Parsed.triples`, never to that graph)."""

    __slots__ = ("prefixes",)

    def __init__(self) -> None:
        super().__init__()
        self.prefixes: list[tuple[str, str]] = []

    def add(self, triple: tuple[Node, Node, Node]) -> FeedTriples:
        # `add_all`'s body again: parsers call this once per triple, where a call more shows
        s, p, o = triple
        po = self.spo.get(s)
        if po is None:
            self.spo[s] = {p: {o: None}}
            return self
        objects = po.get(p)
        if objects is None:
            po[p] = {o: None}
        else:
            objects[o] = None
        return self

    def bind(self, prefix: str, namespace: str) -> None:
        self.prefixes.append((prefix, str(namespace)))

    def subjects_typed(self, types: Iterable[Node]) -> set[Node]:
        """The subjects with one of these rdf:types (`Graph.subjects(RDF.type, t)` for each)."""
        wanted = frozenset(types)
        rdf_type = RDF_TERMS.type  # the parsers' own object: found by identity
        return {s for s, po in self.spo.items()
                if (typed := po.get(rdf_type)) is not None and not wanted.isdisjoint(typed)}

    def as_graph(self) -> Graph:
        graph = new_graph()
        add = graph.store.add
        for triple in self:
            add(triple, graph, False)
        for prefix, namespace in self.prefixes:
            graph.bind(prefix, namespace)
        return graph


class Parsed:
    """A feed as read: its triples (`FeedTriples`, or an rdflib graph for the formats that read
    their own triples again while parsing), the problems of what could not be read, and where
    each event was read (event node -> "line 12", page URL…)."""

    def __init__(self, graph: Graph | FeedTriples | None = None,
                 problems: list[ParseProblem] | None = None,
                 origins: dict[Node, str] | None = None) -> None:
        self.triples: Graph | FeedTriples = FeedTriples() if graph is None else graph
        self.problems: list[ParseProblem] = [] if problems is None else problems
        self.origins: dict[Node, str] = {} if origins is None else origins
        self._graph: Graph | None = None

    @property
    def graph(self) -> Graph:
        """The triples as an rdflib graph (made once, when first asked for)."""
        if not isinstance(self.triples, FeedTriples):
            return self.triples
        if self._graph is None:
            self._graph = self.triples.as_graph()
        return self._graph

    @graph.setter
    def graph(self, graph: Graph) -> None:
        self.triples, self._graph = graph, None


@dataclass(frozen=True)
class FeedFormat:
    name: str
    label: str
    media_types: tuple[str, ...]
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    parse: Callable[[bytes, ParseContext], Parsed]


@cache
def formats() -> dict[str, FeedFormat]:
    table = {}
    for module_name in _MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        table[module.FORMAT.name] = module.FORMAT
    return table


def get_format(name: str) -> FeedFormat:
    try:
        return formats()[name]
    except KeyError:
        known = ", ".join(formats())
        raise ParseError(f"unknown format {name!r}; known formats: {known}") from None


def detect_format(fetched: Fetched) -> FeedFormat:
    """Pick the format from the content type, then the extension, then the content itself."""
    table = formats()
    media_type = fetched.media_type
    candidates: list[FeedFormat] = []
    if media_type:
        candidates += [f for f in table.values() if media_type in f.media_types]
    lowered = fetched.location.lower().split("?")[0]
    candidates += [f for f in table.values() if lowered.endswith(f.extensions)]
    for candidate in candidates:
        if candidate.sniff(fetched.content):
            return candidate
    for candidate in table.values():
        if candidate.sniff(fetched.content):
            return candidate
    raise ParseError(
        f"{fetched.location}: cannot tell the feed's format (content type {media_type or 'none'}); "
        f"give it explicitly, one of: {', '.join(table)}"
    )


def enforce_caps(parsed: Parsed, location: str, policy: FetchPolicy | None) -> None:
    """Refuse a feed that brings more triples or events than the operator allows, before any of
    it is normalised or stored (the last good data stays published)."""
    from ._events import event_nodes

    policy = policy or FetchPolicy()
    triples = len(parsed.triples)
    if triples > policy.max_triples:
        raise ParseError(f"{location}: {triples} triples, over the cap of "
                         f"{policy.max_triples} per feed (AFFICHE_HARVEST_MAX_TRIPLES)")
    events = len(event_nodes(parsed.triples))
    if events > policy.max_events:
        raise ParseError(f"{location}: {events} events, over the cap of {policy.max_events} "
                         "per feed (AFFICHE_HARVEST_MAX_EVENTS)")


def decode_text(content: bytes) -> str:
    """UTF-8 (a BOM is dropped) as the formats require, else Windows-1252, which French Excel and
    old calendar exports still write."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def temporal_literal(value: date) -> Literal:
    """xsd:dateTime in the value's own zone (no offset when floating), xsd:date for a day."""
    if isinstance(value, datetime):
        return Literal(value.replace(microsecond=0).isoformat(), datatype=_XSD_DATE_TIME)
    return Literal(value.isoformat(), datatype=_XSD_DATE)


_XSD_DATE_TIME, _XSD_DATE = XSD.dateTime, XSD.date


def head_text(content: bytes, size: int = 2048) -> str:
    """The start of a feed as text, without BOM or leading blanks, for sniffing."""
    return content[:size].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def is_web_address(text: str) -> bool:
    """An absolute http(s) URL with a host and no blank; a malformed one (`http://[`, a port out of
    range) is not, rather than an error."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises on a port that is not a number or out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", text)
