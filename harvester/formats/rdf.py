"""RDF files already in schema.org: Turtle, N-Triples and RDF/XML (JSON-LD has its own module)."""

from __future__ import annotations

import re

from rdflib import Graph, URIRef

from . import FeedFormat, ParseContext, Parsed, ParseError, head_text
from ._events import event_nodes

_RDFLIB_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def guess_syntax(content: bytes) -> str:
    head = head_text(content)
    if head.startswith("<"):
        return "xml"
    if re.match(r"^(<[^>]+>\s+<[^>]+>\s+\S)", head) and "@prefix" not in head:
        return "nt"
    return "turtle"


def parse(content: bytes, context: ParseContext) -> Parsed:
    syntax = guess_syntax(content)
    if syntax == "xml" and _DOCTYPE.search(content):
        raise ParseError("RDF/XML with a DOCTYPE or entity declarations is refused (entity expansion)")
    graph = Graph()
    try:
        graph.parse(data=content.decode("utf-8-sig"), format=syntax, publicID=context.base_url)
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})") from exc
    except Exception as exc:  # rdflib's parsers raise their own exception types
        raise ParseError(f"not valid {_label(syntax)}: {exc}") from exc
    parsed = Parsed(graph=graph)
    for node in event_nodes(graph):
        parsed.origins[node] = str(node) if isinstance(node, URIRef) else "document"
    return parsed


def _label(syntax: str) -> str:
    return {"xml": "RDF/XML", "nt": "N-Triples", "turtle": "Turtle"}[syntax]


def sniff(content: bytes) -> bool:
    head = head_text(content)
    if head.lower().startswith(("@prefix", "prefix", "@base")):
        return True
    if head.startswith("<?xml") or head.startswith("<rdf:RDF"):
        return "rdf:RDF" in head or "22-rdf-syntax-ns" in head
    return bool(re.match(r"^<[^>\s]+>\s+<[^>\s]+>\s+", head))


FORMAT = FeedFormat(
    name="rdf",
    label="RDF (Turtle, N-Triples, RDF/XML)",
    media_types=tuple(_RDFLIB_FORMATS),
    extensions=(".ttl", ".nt", ".rdf", ".owl"),
    sniff=sniff,
    parse=parse,
)
