"""The JSON-LD embedded in event pages: one nested schema.org tree, as search engines read it.

Crawlers expect `"@context": "https://schema.org"`, one object per entity nested in place
(location → address), plain strings for dates and URLs: Google's Event documentation shows exactly
that shape. The same graph is served flat and fully typed at the entity's `.jsonld` URL.
"""

from __future__ import annotations

import json

from rdflib import Graph

from ontology import SCHEMA

from .description import RDF_TYPE, XSD, Blank, Description, Iri, Lit, Term, as_description, term_text

_SCHEMA = str(SCHEMA)
_PUBLIC_SCHEMA = "https://schema.org/"
_MAX_DEPTH = 4
_GENERIC_TYPES = {"Event", "Place", "Organization", "Thing"}
_BOOLEAN = XSD + "boolean"


def _local(term: str) -> str | None:
    return term[len(_SCHEMA):] if term.startswith(_SCHEMA) else None


def _pick_language(values: list[Lit], language: str) -> Lit:
    for value in values:
        if value.language == language:
            return value
    for value in values:
        if not value.language:
            return value
    return sorted(values, key=lambda v: v.language)[0]


def _value(data: Description, term: Term, language: str, depth: int, seen: frozenset) -> object:
    if type(term) is Lit:
        if term.datatype == _BOOLEAN and term.value in ("true", "false", "1", "0"):
            return term.value in ("true", "1")
        return term.value
    if type(term) is Iri:
        local = _local(term)
        if local is not None:  # an enumeration member such as EventCancelled
            return _PUBLIC_SCHEMA + local
        if depth < _MAX_DEPTH and term not in seen and term in data:
            return _tree(data, term, language, depth + 1, seen | {term})
        return str(term)
    if depth < _MAX_DEPTH and term not in seen and term in data:  # a blank node described here
        return _tree(data, term, language, depth + 1, seen | {term})
    return None


def _tree(data: Description, node: str, language: str, depth: int, seen: frozenset) -> dict:
    tree: dict = {}
    properties = data.properties(node)
    types = [t for t in (_local(t) for t in properties.get(RDF_TYPE, ()) if type(t) is Iri) if t]
    if len(types) > 1:  # crawlers want the most specific type: TheaterEvent, not [Event, TheaterEvent]
        types = [t for t in types if t not in _GENERIC_TYPES] or types
    if types:
        tree["@type"] = types[0] if len(types) == 1 else sorted(types)
    if type(node) is not Blank and "#" not in node:
        tree["@id"] = str(node)
    inner = seen | {node}
    for predicate in sorted(properties, key=lambda p: _local(p) or ""):
        name = _local(predicate)
        if name is None or predicate == RDF_TYPE:
            continue
        objects = properties[predicate]
        literals = [o for o in objects if type(o) is Lit and o.language]
        if literals and len(literals) == len(objects):
            objects = [_pick_language(literals, language)]
        values = [_value(data, o, language, depth, inner) for o in sorted(objects, key=term_text)]
        values = [v for v in values if v is not None]
        if values:
            tree[name] = values[0] if len(values) == 1 else values
    return tree


def node_tree(data: Description | Graph, node: str, language: str, depth: int = 0,
              seen: frozenset = frozenset()) -> dict:
    """The node as one nested schema.org object (an rdflib graph is converted first)."""
    return _tree(as_description(data), Iri(str(node)), language, depth,
                 frozenset(Iri(str(s)) for s in seen))


def embedded_jsonld(data: Description | Graph, root: str, language: str) -> str:
    """The `<script type="application/ld+json">` body; `<` escaped so no string can close it."""
    tree = {"@context": "https://schema.org", **node_tree(data, root, language, 0, frozenset({root}))}
    text = json.dumps(tree, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
