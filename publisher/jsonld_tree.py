"""The JSON-LD embedded in event pages: one nested schema.org tree, as search engines read it.

Crawlers expect `"@context": "https://schema.org"`, one object per entity nested in place
(location → address), plain strings for dates and URLs: Google's Event documentation shows exactly
that shape. The same graph is served flat and fully typed at the entity's `.jsonld` URL.
"""

from __future__ import annotations

import json

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.term import Node

from ontology import SCHEMA

_SCHEMA = str(SCHEMA)
_PUBLIC_SCHEMA = "https://schema.org/"
_MAX_DEPTH = 4
_GENERIC_TYPES = {"Event", "Place", "Organization", "Thing"}


def _local(term: URIRef) -> str | None:
    text = str(term)
    return text[len(_SCHEMA):] if text.startswith(_SCHEMA) else None


def _pick_language(values: list[Literal], language: str) -> Literal:
    for value in values:
        if value.language == language:
            return value
    for value in values:
        if not value.language:
            return value
    return sorted(values, key=lambda v: v.language or "")[0]


def _value(graph: Graph, term: Node, language: str, depth: int, seen: frozenset) -> object:
    if isinstance(term, Literal):
        python = term.toPython()
        if isinstance(python, bool):
            return python
        return str(term)
    if isinstance(term, URIRef):
        local = _local(term)
        if local is not None:  # an enumeration member such as EventCancelled
            return _PUBLIC_SCHEMA + local
        if depth < _MAX_DEPTH and term not in seen and (term, None, None) in graph:
            return node_tree(graph, term, language, depth + 1, seen | {term})
        return str(term)
    return None


def node_tree(graph: Graph, node: URIRef, language: str, depth: int = 0,
              seen: frozenset = frozenset()) -> dict:
    tree: dict = {}
    types = [t for t in (_local(t) for t in graph.objects(node, RDF.type)) if t]
    if len(types) > 1:  # crawlers want the most specific type: TheaterEvent, not [Event, TheaterEvent]
        types = [t for t in types if t not in _GENERIC_TYPES] or types
    if types:
        tree["@type"] = types[0] if len(types) == 1 else sorted(types)
    if "#" not in str(node):
        tree["@id"] = str(node)
    by_property: dict[str, list] = {}
    for predicate, obj in graph.predicate_objects(node):
        name = _local(predicate)
        if name is None or predicate == RDF.type:
            continue
        by_property.setdefault(name, []).append(obj)
    for name, objects in sorted(by_property.items()):
        literals = [o for o in objects if isinstance(o, Literal) and o.language]
        if literals and len(literals) == len(objects):
            objects = [_pick_language(literals, language)]
        values = [_value(graph, o, language, depth, seen | {node}) for o in
                  sorted(objects, key=str)]
        values = [v for v in values if v is not None]
        if values:
            tree[name] = values[0] if len(values) == 1 else values
    return tree


def embedded_jsonld(graph: Graph, root: URIRef, language: str) -> str:
    """The `<script type="application/ld+json">` body; `<` escaped so no string can close it."""
    tree = {"@context": "https://schema.org", **node_tree(graph, root, language, 0, frozenset({root}))}
    text = json.dumps(tree, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
