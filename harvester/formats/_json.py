"""What the JSON event formats (OpenAgenda, UiTdatabank) share: reading the document, localized
text, dates checked before they enter the graph, places and offers written the schema.org way.

These formats are JSON with their own keys, not JSON-LD: each module maps its keys onto schema.org
itself, and everything here writes plain schema.org triples the normaliser then canonicalises.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

from ontology import SCHEMA

from . import ParseContext, Parsed, ParseError, ParseProblem, head_text, new_blank, new_graph

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
SNIFF_BYTES = 65536


def load_json(content: bytes, label: str) -> Any:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start}): {label} must be UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise ParseError(f"the JSON is nested too deeply to be {label}") from exc


def parse_items(items: list, where_of: Callable[[Any, int], str],
                add_event: Callable[[dict, str, ParseContext, Parsed], None],
                ctx: ParseContext) -> Parsed:
    """One event per item; an item that is not an object is reported and the others still read."""
    graph = new_graph()
    graph.bind("schema", SCHEMA)
    parsed = Parsed(graph=graph)
    for index, item in enumerate(items, 1):
        where = where_of(item, index)
        if not isinstance(item, dict):
            parsed.problems.append(ParseProblem(where=where, message="not a JSON object"))
            continue
        add_event(item, where, ctx, parsed)
    return parsed


def sniff_head(content: bytes) -> str:
    """The start of a JSON document (a generous one: the keys that tell formats apart come late)."""
    return head_text(content, SNIFF_BYTES)


def add_localized(graph: Graph, node: Node, predicate: URIRef, value: Any, default: str | None) -> None:
    """`{"fr": "…", "en": "…"}` becomes one tagged literal per language; a bare string takes `default`."""
    if isinstance(value, str):
        text = value.strip()
        if text:
            graph.add((node, predicate, Literal(text, lang=default)))
        return
    if not isinstance(value, dict):
        return
    for language, text in value.items():
        items = text if isinstance(text, list) else [text]
        for item in items:
            if isinstance(item, str) and item.strip():
                tag = language if _LANGUAGE_TAG.match(str(language)) else None
                graph.add((node, predicate, Literal(item.strip(), lang=tag)))


def first_localized(value: Any, preferred: str | None = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value:
        if preferred in value and isinstance(value[preferred], str):
            return value[preferred]
        return next((v for v in value.values() if isinstance(v, str)), "")
    return ""


def temporal(text: Any) -> Literal | None:
    """An ISO 8601 date or date-time as written (offset kept), or None when unreadable."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return Literal(date.fromisoformat(value).isoformat(), datatype=XSD.date)
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return Literal(value, datatype=XSD.dateTime)


def http_url(value: Any) -> URIRef | None:
    if isinstance(value, str) and re.match(r"^https?://\S+$", value.strip()):
        return URIRef(value.strip())
    return None


def decimal_literal(value: Any) -> Literal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return Literal(str(number), datatype=XSD.decimal)


def add_address(graph: Graph, place: Node, fields: dict[str, Any]) -> None:
    """`fields`: schema.org PostalAddress property -> value; empty values are left out."""
    present = {k: v for k, v in fields.items() if isinstance(v, (str, int)) and str(v).strip()}
    if not present:
        return
    address = new_blank()
    graph.add((place, SCHEMA.address, address))
    graph.add((address, RDF.type, SCHEMA.PostalAddress))
    for key, value in present.items():
        graph.add((address, SCHEMA[key], Literal(str(value).strip())))


def add_geo(graph: Graph, place: Node, latitude: Any, longitude: Any) -> None:
    lat, lon = decimal_literal(latitude), decimal_literal(longitude)
    if lat is None or lon is None:
        return
    if not (-90 <= Decimal(str(lat)) <= 90 and -180 <= Decimal(str(lon)) <= 180):
        return
    geo = new_blank()
    graph.add((place, SCHEMA.geo, geo))
    graph.add((geo, RDF.type, SCHEMA.GeoCoordinates))
    graph.add((geo, SCHEMA.latitude, lat))
    graph.add((geo, SCHEMA.longitude, lon))


def add_offer(graph: Graph, node: Node, price: Decimal | None, currency: str | None = None,
              name: Any = None, url: URIRef | None = None, language: str | None = None) -> Node:
    offer = new_blank()
    graph.add((node, SCHEMA.offers, offer))
    graph.add((offer, RDF.type, SCHEMA.Offer))
    if price is not None:
        graph.add((offer, SCHEMA.price, Literal(str(price), datatype=XSD.decimal)))
        if currency:
            graph.add((offer, SCHEMA.priceCurrency, Literal(currency)))
    if name is not None:
        add_localized(graph, offer, SCHEMA.name, name, language)
    if url is not None:
        graph.add((offer, SCHEMA.url, url))
    return offer
