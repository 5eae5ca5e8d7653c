"""RDF files already in schema.org: Turtle, N-Triples and RDF/XML (JSON-LD has its own module).

pyoxigraph reads them (several times faster than rdflib); a file it refuses, or that it might
read differently from rdflib (see `_oxigraph`), is read by rdflib as before, so that every file
reads as it did. When both refuse a file, pyoxigraph's message is given: it names the line and
column.
"""

from __future__ import annotations

import re

import pyoxigraph
from rdflib import Graph, URIRef

from . import FeedFormat, ParseContext, Parsed, ParseError, head_text
from ._events import events_in
from ._oxigraph import (
    DiffersFromRdflib, Terms, Triple, add_triples, language_tags, renamed_blank_nodes, to_triples,
)

_RDFLIB_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_OXIGRAPH_FORMATS = {
    "turtle": pyoxigraph.RdfFormat.TURTLE,
    "nt": pyoxigraph.RdfFormat.N_TRIPLES,
    "xml": pyoxigraph.RdfFormat.RDF_XML,
}
# Where language tags are written: after a string in Turtle and N-Triples, in xml:lang in RDF/XML.
_LANGUAGE_TAGS = {
    "turtle": re.compile(r"[\"']@([a-zA-Z]+(?:-[a-zA-Z0-9]+)*)"),
    "nt": re.compile(r"[\"']@([a-zA-Z]+(?:-[a-zA-Z0-9]+)*)"),
    "xml": re.compile(r"xml:lang\s*=\s*[\"']([^\"']*)[\"']"),
}
_UPPER = re.compile(r"[A-Z]")
# A reference that is only a query (`<?page=2>`): rdflib resolves it against the base's directory
# (`…/agenda/?page=2`), RFC 3986 and pyoxigraph against the base itself (`…/agenda/saison?page=2`).
_QUERY_REFERENCE = {"turtle": re.compile(r"<\?"), "nt": re.compile(r"<\?"),
                    "xml": re.compile(r"=\s*[\"']\?")}


def guess_syntax(content: bytes) -> str:
    head = head_text(content)
    # N-Triples first: its lines start with "<" too, but its IRIs hold no blank (XML tags do)
    if re.match(r"^<[^>\s\"]+>\s+<[^>\s\"]+>\s+\S", head) and "@prefix" not in head:
        return "nt"
    if head.startswith("<"):
        return "xml"
    return "turtle"


def parse(content: bytes, context: ParseContext) -> Parsed:
    syntax = guess_syntax(content)
    if syntax == "xml" and _DOCTYPE.search(content):
        raise ParseError("RDF/XML with a DOCTYPE or entity declarations is refused (entity expansion)")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})") from exc
    refused: SyntaxError | None = None
    try:
        triples = _read_with_oxigraph(text, syntax, context.base_url)
    except SyntaxError as exc:
        triples, refused = None, exc
    except (DiffersFromRdflib, ValueError):  # ValueError: a base IRI pyoxigraph will not take
        triples = None
    if triples is None:
        triples = _read_with_rdflib(text, syntax, context.base_url, refused)
    parsed = Parsed()
    add_triples(parsed.triples, triples)
    for node in events_in(triples):
        parsed.origins[node] = str(node) if isinstance(node, URIRef) else "document"
    return parsed


def _read_with_oxigraph(text: str, syntax: str, base: str | None) -> list[Triple]:
    if _QUERY_REFERENCE[syntax].search(text):
        raise DiffersFromRdflib("a reference that is only a query")
    quads = pyoxigraph.parse(text.encode(), format=_OXIGRAPH_FORMATS[syntax], base_iri=base)
    written = _LANGUAGE_TAGS[syntax].findall(text)
    tags = language_tags(written) if any(_UPPER.search(tag) for tag in written) else {}
    return to_triples(quads, Terms(base, language_tags=tags))


def _read_with_rdflib(text: str, syntax: str, base: str | None,
                      refused: SyntaxError | None) -> list[Triple]:
    graph = Graph()
    try:
        graph.parse(data=text, format=syntax, publicID=base)
    except Exception as exc:  # rdflib's parsers raise their own exception types
        message = str(exc)
        if refused is not None and "No scheme found" not in str(refused):
            message = str(refused)  # with the line and columns, in RDF's own terms
        raise ParseError(f"not valid {_label(syntax)}: {message}") from exc
    return renamed_blank_nodes(graph)


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
