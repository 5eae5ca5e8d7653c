"""Reading RDF with pyoxigraph's parsers (written in Rust, about ten times faster than rdflib's)
into the rdflib graph the rest of the harvest works on.

JSON-LD is read leniently (IRIs not checked, relative IRIs left as written), so that nothing is
dropped silently; Turtle, N-Triples and RDF/XML strictly. Every term is then checked here. Where
rdflib would have read the document differently (an IRI that is not absolute and well formed, a
relative IRI with no base, a named graph, an odd language tag), `DiffersFromRdflib` is raised and
the caller reads that document with rdflib as before: what was readable stays readable, and reads the same.
"""

from __future__ import annotations

from typing import Iterable

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef
from rdflib.plugins.shared.jsonld.util import norm_url
from rdflib.term import Node

from . import canonical_iri, new_blank

XSD_STRING = ox.NamedNode("http://www.w3.org/2001/XMLSchema#string")
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
# rdflib turns these into parsed XML/HTML values of its own, compared and printed its own way.
# An empty language tag (lenient pyoxigraph keeps it): rdflib reads the value with no language.
_ODD_DATATYPES = {ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#XMLLiteral"),
                  ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#HTML"),
                  ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#langString")}

Triple = tuple[Node, Node, Node]


class DiffersFromRdflib(Exception):
    """pyoxigraph's reading of this document may differ from rdflib's: read it with rdflib."""


class Terms:
    """rdflib terms for pyoxigraph's, each converted and checked once per feed.

    `base` resolves relative IRIs as rdflib's JSON-LD parser does (its own `norm_url`); with no
    base, a relative IRI is left to rdflib."""

    def __init__(self, base: str | None = None, resolve_relative: bool = False,
                 language_tags: dict[str, str] | None = None) -> None:
        self.base = base.split("#", 1)[0] if base else None
        self.resolve_relative = resolve_relative and bool(self.base)
        self.language_tags = language_tags or {}  # lower case -> as written (see language_tags)
        # absolute IRIs as written and literals: the same term wherever they stand
        self.known: dict[ox.NamedNode | ox.Literal, URIRef | Literal] = {}
        self._resolved: dict[ox.NamedNode, URIRef] = {}  # relative IRIs of subjects and objects

    def iri(self, node: ox.NamedNode) -> URIRef:
        """A property, type or datatype: absolute, as rdflib leaves relative ones out."""
        known = self.known.get(node)
        if known is None:
            value = node.value
            if not _is_absolute_iri(value):
                raise DiffersFromRdflib(f"the IRI {value[:80]!r} is not absolute")
            known = self.known[node] = canonical_iri(value)
        return known

    def node(self, node: ox.NamedNode) -> URIRef:
        """A subject or object (`@id`, a URL): relative to the base, as rdflib resolves it."""
        known = self.known.get(node) or self._resolved.get(node)
        if known is None:
            value = node.value
            if _is_absolute_iri(value):
                known = self.known[node] = canonical_iri(value)
            elif not self.resolve_relative or " " in value or ":" in value.split("/", 1)[0]:
                raise DiffersFromRdflib(f"the IRI {value[:80]!r} is not absolute")
            else:
                resolved = norm_url(self.base, value)
                if not _is_absolute_iri(resolved):
                    raise DiffersFromRdflib(f"the IRI {resolved[:80]!r} is not absolute")
                known = self._resolved[node] = URIRef(resolved)
        return known

    def literal(self, term: ox.Literal) -> Literal:
        known = self.known.get(term)
        if known is None:
            known = self.known[term] = self._new_literal(term)
        return known

    def _new_literal(self, term: ox.Literal) -> Literal:
        language = term.language
        if language:
            language = self.language_tags.get(language, language)
            if " " in language:  # rdflib's JSON-LD parser leaves such a value out
                raise DiffersFromRdflib(f"the language tag {language!r} has a blank")
            try:  # normalize=False: the same literal for a string, made without rdflib's casts
                return Literal(term.value, lang=language, normalize=False)
            except ValueError as exc:  # rdflib refuses the whole document
                raise DiffersFromRdflib(str(exc)) from exc
        datatype = term.datatype
        if datatype == XSD_STRING:
            return Literal(term.value, normalize=False)
        if datatype in _ODD_DATATYPES:
            raise DiffersFromRdflib(f"a literal typed {datatype.value}")
        return Literal(term.value, datatype=self.iri(datatype))

    def subject_or_object(self, term, blank: dict) -> Node:
        """The slow path of `to_triples`: a term seen for the first time, or a blank node."""
        if isinstance(term, ox.BlankNode):
            new = blank.get(term)
            if new is None:
                new = blank[term] = new_blank()
            return new
        if isinstance(term, ox.NamedNode):
            return self.node(term)
        if isinstance(term, ox.Literal):
            return self.literal(term)
        raise DiffersFromRdflib("a quoted triple")


def language_tags(written: Iterable[str]) -> dict[str, str]:
    """Language tags as a file writes them (`fr-CA`), by the lower case pyoxigraph's Turtle and
    RDF/XML parsers give (`fr-ca`); rdflib keeps them as written. A tag written two ways
    (`fr-CA`, `fr-ca`) cannot be told apart: then rdflib reads the file."""
    tags: dict[str, str] = {}
    for tag in written:
        lower = tag.lower()
        if tags.setdefault(lower, tag) != tag:
            raise DiffersFromRdflib(f"the language tag {tag!r} is written in two ways")
    return {lower: tag for lower, tag in tags.items() if lower != tag}


def _is_absolute_iri(value: str) -> bool:
    """An IRI the store can hold (RFC 3987, with a scheme), checked by pyoxigraph's own parser."""
    try:
        ox.NamedNode(value)
    except ValueError:
        return False
    return True


def to_triples(quads: Iterable[ox.Quad], terms: Terms) -> list[Triple]:
    """The default graph's triples as rdflib terms; blank nodes are new ones for each call, so that
    two documents (or two blocks of a page) never share one by accident of their labels."""
    blank: dict[ox.BlankNode, BNode] = {}
    known = terms.known.get  # the hot path: one look-up per term already seen in the feed
    slow, iri, default_graph = terms.subject_or_object, terms.iri, ox.DefaultGraph
    out = []
    for subject, predicate, obj, graph_name in quads:
        if type(graph_name) is not default_graph:
            raise DiffersFromRdflib("a named graph")
        s = known(subject)
        if s is None:
            s = blank.get(subject)
            if s is None:
                s = slow(subject, blank)
        p = known(predicate)
        if p is None:
            p = iri(predicate)
        o = known(obj)
        if o is None:
            o = blank.get(obj)
            if o is None:
                o = iri(obj) if predicate == RDF_TYPE and isinstance(obj, ox.NamedNode) else slow(obj, blank)
        out.append((s, p, o))
    return out


def add_triples(graph, triples: list[Triple]) -> None:
    """Add already-checked triples to a parser's `FeedTriples`, or to an rdflib graph bypassing
    `Graph.add`'s per-triple checks."""
    if hasattr(graph, "add_all"):
        graph.add_all(triples)
        return
    store_add, context = graph.store.add, graph
    for triple in triples:
        store_add(triple, context, False)


def renamed_blank_nodes(triples: Iterable[Triple]) -> list[Triple]:
    """Triples read by rdflib with their blank nodes replaced by new ones (rdflib keeps a document's
    labels, `_:b0`, which two documents may both use)."""
    fresh: dict[BNode, BNode] = {}

    def rename(term: Node) -> Node:
        if isinstance(term, BNode):
            new = fresh.get(term)
            if new is None:
                new = fresh[term] = new_blank()
            return new
        return term

    return [(rename(s), p, rename(o)) for s, p, o in triples]
