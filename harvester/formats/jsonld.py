"""JSON-LD files (`.jsonld`, `.json`) and the JSON-LD reading shared with HTML pages.

Organisers write the schema.org context every way there is (`"https://schema.org"`,
`"http://schema.org/"`, `"schema.org"`, the docs URL, a list, a `@vocab` object). Every one of
them is replaced by the pinned context before parsing, so nothing is ever fetched; any other remote
context is refused rather than fetched.
"""

from __future__ import annotations

import json
from typing import Any

from rdflib import Graph

from ontology import schema_context

from . import FeedFormat, ParseContext, Parsed, ParseError, ParseProblem, head_text
from ._events import event_nodes

SCHEMA_CONTEXT_NAMES = {
    "schema.org",
    "schema.org/docs/jsonldcontext.json",
    "schema.org/docs/jsonldcontext.jsonld",
}


class RemoteContextError(ValueError):
    """A JSON-LD document names a context Affiche will not fetch."""


def is_schema_context(value: str) -> bool:
    name = value.strip().lower()
    for prefix in ("https://", "http://", "//"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = name.removeprefix("www.").rstrip("/")
    return name in SCHEMA_CONTEXT_NAMES


def pin_contexts(node: Any) -> Any:
    """Return a copy of a JSON-LD document with schema.org contexts replaced by the pinned one."""
    if isinstance(node, list):
        return [pin_contexts(item) for item in node]
    if not isinstance(node, dict):
        return node
    pinned = {}
    for key, value in node.items():
        pinned[key] = _pin_context_value(value) if key == "@context" else pin_contexts(value)
    return pinned


def _pin_context_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_pin_context_value(item) for item in value]
    if isinstance(value, str):
        if is_schema_context(value):
            return schema_context()
        raise RemoteContextError(
            f"the @context {value!r} would have to be fetched from the network; "
            'use "https://schema.org" or an inline context'
        )
    if isinstance(value, dict):
        if "@import" in value:
            raise RemoteContextError("@import in a @context would fetch from the network")
        return {key: pin_contexts(item) for key, item in value.items()}
    return value


def _with_default_context(document: Any) -> Any:
    """Documents that forget @context altogether are read as schema.org, as search engines do."""
    if isinstance(document, dict) and "@context" not in document:
        return {"@context": schema_context(), **document}
    if isinstance(document, list):
        return [_with_default_context(item) for item in document]
    return document


def jsonld_document_to_graph(document: Any, graph: Graph, base: str | None) -> None:
    """Parse one JSON-LD document (already decoded) into `graph`; raises ValueError when unusable."""
    prepared = pin_contexts(_with_default_context(document))
    graph.parse(data=json.dumps(prepared), format="json-ld", base=base)


def decode_json(content: bytes) -> Any:
    text = content.decode("utf-8-sig", errors="strict")
    return json.loads(text)


def parse(content: bytes, context: ParseContext) -> Parsed:
    try:
        document = decode_json(content)
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start}): JSON-LD must be UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise ParseError("the JSON is nested too deeply to be an event listing") from exc
    graph = Graph()
    parsed = Parsed(graph=graph)
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items, 1):
        where = f"item {index}" if len(items) > 1 else "document"
        try:
            jsonld_document_to_graph(item, graph, context.base_url)
        except RemoteContextError as exc:
            parsed.problems.append(ParseProblem(where=where, message=str(exc), field="@context"))
        except Exception as exc:  # rdflib raises many types for malformed JSON-LD
            parsed.problems.append(ParseProblem(where=where, message=f"not valid JSON-LD: {exc}"))
    for node in event_nodes(graph):
        parsed.origins.setdefault(node, context.base_url or "document")
    return parsed


def sniff(content: bytes) -> bool:
    head = head_text(content)
    return head.startswith(("{", "[")) and ("@context" in head or "@type" in head)


FORMAT = FeedFormat(
    name="jsonld",
    label="JSON-LD",
    media_types=("application/ld+json", "application/json"),
    extensions=(".jsonld", ".json"),
    sniff=sniff,
    parse=parse,
)
