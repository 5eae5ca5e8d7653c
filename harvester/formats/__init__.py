"""Feed formats: one module per format, each turning raw bytes into RDF as the organiser wrote it.

A format module defines `FORMAT = FeedFormat(...)`; adding a format means adding a module and
listing it in `_MODULES` below. Parsers raise `ParseError` when the whole feed is unreadable and
add a `ParseProblem` for each event they could not read, so one broken event never stops the others.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cache
from typing import Callable
from urllib.parse import urlsplit

from rdflib import Graph, Literal
from rdflib.namespace import XSD
from rdflib.term import Node

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


def new_graph() -> Graph:
    """An empty graph for a feed read triple by triple (CSV, iCalendar, JSON APIs). rdflib's
    default store also keeps contexts (named graphs), which such a graph never has: about a third
    of the cost of every add and look-up. SimpleMemory keeps the same triples without them.
    (rdflib's own JSON-LD, microdata and Turtle parsers want the default, context-aware store.)"""
    return Graph(store="SimpleMemory")


@dataclass
class Parsed:
    graph: Graph
    problems: list[ParseProblem] = field(default_factory=list)
    origins: dict[Node, str] = field(default_factory=dict)  # event node -> "line 12", page URL…


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
    if len(parsed.graph) > policy.max_triples:
        raise ParseError(f"{location}: {len(parsed.graph)} triples, over the cap of "
                         f"{policy.max_triples} per feed (AFFICHE_HARVEST_MAX_TRIPLES)")
    events = len(event_nodes(parsed.graph))
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
        return Literal(value.replace(microsecond=0).isoformat(), datatype=XSD.dateTime)
    return Literal(value.isoformat(), datatype=XSD.date)


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
