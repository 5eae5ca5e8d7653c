"""An entity's description as plain Python values: what its HTML page is built from.

An event page needs some forty triples: the event, what it points to (its venue, organisers,
performers, offers) and what those point to (the venue's address). Building an rdflib graph of them
cost more than everything else on the page, so pages read them into `Description`: a dict of
subject -> predicate -> objects, with three small term types (`Iri`, `Blank`, `Lit`).

`read_description` follows `describe.rq` (the entity, what it points to, and what those point to
except through `rdf:type`). On the embedded store it reads the quad index with one pattern lookup
per node, and keeps the nodes shared by many events (venues, organisers, schema.org enumerations,
disciplines) in a `NodeCache` until the store's next write; any other store answers `describe.rq`.
RDF answers (`.ttl`, `.jsonld`…) still go through the store's CONSTRUCT and rdflib serialisers.
"""

from __future__ import annotations

import weakref
from datetime import date, datetime
from typing import Iterator, NamedTuple

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from sparql.queries import load_query

from .http_cache import GenerationCache

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


class Iri(str):
    """An IRI (a `str`, so it is its own text, hashable and sortable)."""

    __slots__ = ()


class Blank(str):
    """A blank node, written `_:id` so that it never equals an IRI."""

    __slots__ = ()


class Lit(NamedTuple):
    """A literal: its lexical value, language tag ("" for none) and datatype IRI."""

    value: str
    language: str = ""
    datatype: str = XSD_STRING

    def __str__(self) -> str:
        return self.value

    def python(self) -> object:
        """A date, date-time, bool or the text: what page code formats."""
        if self.datatype == XSD + "dateTime":
            try:
                return datetime.fromisoformat(self.value)
            except ValueError:
                return self.value
        if self.datatype == XSD + "date":
            try:
                return date.fromisoformat(self.value)
            except ValueError:
                return self.value
        if self.datatype == XSD + "boolean" and self.value in ("true", "1", "false", "0"):
            return self.value in ("true", "1")
        return self.value


Term = Iri | Blank | Lit


def term_text(term: Term) -> str:
    """The IRI or lexical value (what `str()` of an rdflib term gives): the sort key of values."""
    return term.value if isinstance(term, Lit) else str(term)


class Description:
    """Triples about a few nodes: subject -> predicate -> objects (no duplicates, store order)."""

    __slots__ = ("_index",)

    def __init__(self) -> None:
        self._index: dict[str, dict[str, list[Term]]] = {}

    def add(self, subject: str, predicate: str, obj: Term) -> None:
        objects = self._index.setdefault(subject, {}).setdefault(predicate, [])
        if obj not in objects:
            objects.append(obj)

    def merge(self, subject: str, properties: dict[str, list[Term]]) -> None:
        if subject not in self._index:
            self._index[subject] = {p: list(o) for p, o in properties.items()}
            return
        for predicate, objects in properties.items():
            for obj in objects:
                self.add(subject, predicate, obj)

    def __contains__(self, node: object) -> bool:
        return node in self._index

    def properties(self, node: str) -> dict[str, list[Term]]:
        return self._index.get(node, {})

    def objects(self, node: str, predicate: str) -> list[Term]:
        return self._index.get(node, {}).get(predicate, [])

    def value(self, node: str, predicate: str) -> Term | None:
        objects = self.objects(node, predicate)
        return objects[0] if objects else None

    def triples(self) -> Iterator[tuple[str, str, Term]]:
        for subject, properties in self._index.items():
            for predicate, objects in properties.items():
                for obj in objects:
                    yield subject, predicate, obj

    def __len__(self) -> int:
        return sum(len(o) for properties in self._index.values() for o in properties.values())

    @classmethod
    def from_graph(cls, graph: Graph) -> "Description":
        """The same triples from an rdflib graph (the checker's graph, a remote store's answer)."""
        description = cls()
        for s, p, o in graph:
            description.add(_from_rdflib(s), str(p), _from_rdflib(o))
        return description


def _from_rdflib(term: Node) -> Term:
    if isinstance(term, Literal):
        if term.language:
            return Lit(str(term), term.language, LANG_STRING)
        return Lit(str(term), "", str(term.datatype) if term.datatype else XSD_STRING)
    if isinstance(term, BNode):
        return Blank(f"_:{term}")
    return Iri(str(term))


def _from_ox(term) -> Term:
    if type(term) is ox.NamedNode:
        return Iri(term.value)
    if type(term) is ox.Literal:
        language = term.language
        if language:
            return Lit(term.value, language, LANG_STRING)
        return Lit(term.value, "", term.datatype.value)
    return Blank(f"_:{term.value}")


_last_converted: tuple = (None, -1, None)  # (weak reference to a graph, its size, its description)


def as_description(data: Graph | Description) -> Description:
    """A description as is; an rdflib graph converted, the last one remembered (the checker
    builds the tree of each of a feed's events from the same graph)."""
    global _last_converted
    if isinstance(data, Description):
        return data
    reference, size, description = _last_converted
    if reference is not None and reference() is data and size == len(data):
        return description
    description = Description.from_graph(data)
    _last_converted = (weakref.ref(data), len(data), description)
    return description


# --- reading from the store ---------------------------------------------------------------------


class NodeCache(GenerationCache):
    """What the store says about single nodes (node -> its properties), kept until the store's
    next write; shared by every page of one app."""


def quad_lookup(store):
    """The embedded store's pattern lookup (subject -> its quads in every graph), or None: a
    remote store has none, and pages fall back to SPARQL."""
    return getattr(store, "quads_about", None)


def _properties(lookup, node: str) -> dict[str, list[Term]]:
    properties: dict[str, list[Term]] = {}
    for quad in lookup(ox.NamedNode(node), None, None, None):
        objects = properties.setdefault(quad.predicate.value, [])
        obj = _from_ox(quad.object)
        if obj not in objects:  # the same triple in two sources' graphs
            objects.append(obj)
    return properties


def _shared(node: str, root: str) -> bool:
    """Worth keeping for other pages: not the entity itself, nor one of its own `#` parts."""
    return not (node == root or node.startswith(root + "#"))


def read_description(store, iri: str, cache: NodeCache | None = None) -> Description:
    """The entity `iri`, what it points to, and what those point to (not through rdf:type)."""
    lookup = quad_lookup(store)
    if lookup is None:
        graph = store.construct(load_query("describe"), {"root": URIRef(iri)})
        return Description.from_graph(graph)
    generation = getattr(store, "generation", 0)
    description = Description()
    seen = {iri}
    frontier = [iri]
    for depth in range(3):
        following: list[str] = []
        for node in frontier:
            properties = _node(lookup, node, iri, cache, generation)
            if properties:
                description.merge(node, properties)
            if depth < 2:
                following += _links(properties, seen, through_type=depth == 0)
        frontier = following
        if not frontier:
            break
    return description


def _node(lookup, node: str, root: str, cache: NodeCache | None,
          generation: int) -> dict[str, list[Term]]:
    """What the store says about `node`: from the cache when other pages share the node."""
    shared = cache is not None and _shared(node, root)
    properties = cache.get(node, generation) if shared else None
    if properties is None:
        properties = _properties(lookup, node)
        if shared:
            cache.put(node, properties, generation)
    return properties


def _links(properties: dict[str, list[Term]], seen: set[str], through_type: bool) -> list[str]:
    """The IRIs a node points to that were not read yet (marked as seen)."""
    links = []
    for predicate, objects in properties.items():
        if predicate == RDF_TYPE and not through_type:
            continue
        for obj in objects:
            if type(obj) is Iri and obj not in seen:
                seen.add(obj)
                links.append(obj)
    return links


def to_rdflib(term: Term) -> Node:
    if isinstance(term, Lit):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = None if term.datatype == XSD_STRING else URIRef(term.datatype)
        return Literal(term.value, datatype=datatype)
    if isinstance(term, Blank):
        return BNode(term[2:])
    return URIRef(term)
