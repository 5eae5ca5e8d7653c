"""Web pages: schema.org as JSON-LD script blocks, microdata and RDFa, as search engines read them.

JSON-LD blocks are read one by one (so a broken block is reported with its line and the others
still count); microdata and RDFa are extracted with extruct.
"""

from __future__ import annotations

import json

import extruct
import lxml.etree
import lxml.html
from rdflib import Graph

from . import (
    FeedFormat, ParseContext, Parsed, ParseError, ParseProblem, decode_text, head_text,
)
from ._events import events_in
from ._oxigraph import add_triples, renamed_blank_nodes
from .jsonld import JsonLdReader, RemoteContextError


def parse(content: bytes, context: ParseContext) -> Parsed:
    text = decode_text(content)
    try:
        tree = lxml.html.fromstring(text)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ParseError(f"not an HTML page: {exc}") from exc
    parsed = Parsed()
    _read_jsonld_blocks(tree, context, parsed)
    _read_microdata_and_rdfa(text, context, parsed)
    return parsed


def _read_jsonld_blocks(tree, context: ParseContext, parsed: Parsed) -> None:
    blocks = tree.xpath('//script[translate(@type, "JSONLDAPPLICATIO+", "jsonldapplicatio+")'
                        '="application/ld+json"]')
    reader = JsonLdReader(parsed.triples, context.base_url)
    for index, block in enumerate(blocks, 1):
        where = f"JSON-LD block {index} (line {block.sourceline})"
        source = (block.text or "").strip()
        if not source:
            continue
        try:
            document = json.loads(source)
        except json.JSONDecodeError as exc:
            parsed.problems.append(ParseProblem(
                where=where,
                message=f"not valid JSON: {exc.msg} at line {block.sourceline + exc.lineno - 1}",
            ))
            continue
        except RecursionError:
            parsed.problems.append(ParseProblem(where=where, message="the JSON is nested too deeply"))
            continue
        try:  # a broken block adds nothing; its events are found among its own triples
            triples = reader.read(document)
        except RemoteContextError as exc:
            parsed.problems.append(ParseProblem(where=where, message=str(exc), field="@context"))
            continue
        except RecursionError:
            parsed.problems.append(ParseProblem(where=where, message="the JSON is nested too deeply"))
            continue
        except Exception as exc:  # rdflib raises many types for malformed JSON-LD
            parsed.problems.append(ParseProblem(where=where, message=f"not valid JSON-LD: {exc}"))
            continue
        for node in events_in(triples):
            parsed.origins.setdefault(node, where)


def _read_microdata_and_rdfa(text: str, context: ParseContext, parsed: Parsed) -> None:
    try:
        data = extruct.extract(
            text, base_url=context.base_url, syntaxes=["microdata", "rdfa"], uniform=False,
            errors="strict",
        )
    except Exception as exc:  # extruct surfaces parser errors of several libraries
        parsed.problems.append(ParseProblem(where="microdata/RDFa", message=str(exc)))
        return
    for index, item in enumerate(data.get("microdata", []), 1):
        try:
            _add_expanded(microdata_to_jsonld(item), context, parsed)
        except Exception as exc:
            parsed.problems.append(ParseProblem(where=f"microdata item {index}", message=str(exc)))
    rdfa = [node for node in data.get("rdfa", []) if len(node) > 2 or "@type" in node]
    if rdfa:
        try:
            _add_expanded(rdfa, context, parsed)
        except Exception as exc:
            parsed.problems.append(ParseProblem(where="RDFa", message=str(exc)))


def _add_expanded(document, context: ParseContext, parsed: Parsed) -> None:
    """Microdata or RDFa as expanded JSON-LD, read by rdflib (few pages have any) into a graph of
    its own; its events not already found in a JSON-LD block are said to come from it."""
    own = Graph()
    own.parse(data=json.dumps(document), format="json-ld", base=context.base_url)
    triples = renamed_blank_nodes(own)
    add_triples(parsed.triples, triples)
    for node in events_in(triples):
        parsed.origins.setdefault(node, "microdata/RDFa")


def microdata_to_jsonld(item: dict) -> dict:
    """Turn one extruct microdata item into expanded-IRI JSON-LD (no context needed)."""
    types = item.get("type") or []
    if isinstance(types, str):
        types = [types]
    vocab = _vocabulary_of(types[0]) if types else "http://schema.org/"
    node: dict = {}
    if types:
        node["@type"] = types
    if item.get("id"):
        node["@id"] = item["id"]
    for name, value in (item.get("properties") or {}).items():
        key = name if ":" in name else vocab + name
        values = value if isinstance(value, list) else [value]
        node[key] = [_microdata_value(v) for v in values]
    return node


def _microdata_value(value):
    if isinstance(value, dict) and ("properties" in value or "type" in value):
        return microdata_to_jsonld(value)
    return {"@value": str(value)}


def _vocabulary_of(type_iri: str) -> str:
    cut = max(type_iri.rfind("/"), type_iri.rfind("#"))
    return type_iri[: cut + 1] if cut >= 0 else "http://schema.org/"


def sniff(content: bytes) -> bool:
    head = head_text(content).lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head[:512]


FORMAT = FeedFormat(
    name="html",
    label="HTML page (JSON-LD, microdata, RDFa)",
    media_types=("text/html", "application/xhtml+xml"),
    extensions=(".html", ".htm", ".xhtml"),
    sniff=sniff,
    parse=parse,
)
