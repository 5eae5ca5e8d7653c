"""OpenAgenda events, as its API returns them (v2 and v3 JSON).

Accepted documents: one event (`GET …/events/{uid}`), a v3 list (`{"data": [...], "pagination"}`)
or a v2 list (`{"events": [...], "total"}`), or a bare array of events. Each event's `timings` are
its occurrences: one timing gives one `schema:Event`; several give one occurrence each, all pointing
(`schema:superEvent`) to an `EventSeries` that carries the OpenAgenda uid — the same shape as a
recurring iCalendar event. Texts are OpenAgenda's multilingual maps (`{"fr": …, "en": …}`) and
keep their languages. An event OpenAgenda does not publish (moderation `state` other than 2) is
reported and left out.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rdflib import Graph, Literal
from rdflib.namespace import RDF
from rdflib.term import Node

from ontology import SCHEMA

from . import FeedFormat, ParseContext, Parsed, ParseError, ParseProblem, new_blank
from ._json import (
    add_address, add_geo, add_localized, add_offer, first_localized, http_url, load_json, parse_items,
    sniff_head, temporal,
)

_STATUS = {
    1: SCHEMA.EventScheduled,
    2: SCHEMA.EventRescheduled,
    3: SCHEMA.EventMovedOnline,
    4: SCHEMA.EventPostponed,
    5: SCHEMA.EventScheduled,  # "full": still happening, no tickets left (the offer says so)
    6: SCHEMA.EventCancelled,
}
_ATTENDANCE = {
    1: SCHEMA.OfflineEventAttendanceMode,
    2: SCHEMA.OnlineEventAttendanceMode,
    3: SCHEMA.MixedEventAttendanceMode,
}
_PUBLISHED_STATE = 2
_FREE = re.compile(r"^\s*(gratuit|gratuite|entrée libre|entree libre|accès libre|free)\b", re.I)


def sniff(content: bytes) -> bool:
    """JSON with OpenAgenda's keys: `uid` and `timings` (or `firstTiming`/`dateRange`), no `@context`."""
    head = sniff_head(content)
    if not head.startswith(("{", "[")) or '"@context"' in head:
        return False
    return '"uid"' in head and any(key in head for key in ('"timings"', '"firstTiming"', '"dateRange"'))


def parse(content: bytes, ctx: ParseContext) -> Parsed:
    document = load_json(content, "an OpenAgenda export")
    return parse_items(_events_of(document), _where, _add_event, ctx)


def _events_of(document: Any) -> list:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        for key in ("data", "events"):  # v3 list, v2 list
            if isinstance(document.get(key), list):
                return document[key]
        if "uid" in document:
            return [document]
    raise ParseError("not an OpenAgenda export: expected an event, or a list under `data` or `events`")


def _where(item: Any, index: int) -> str:
    uid = item.get("uid") if isinstance(item, dict) else None
    return f"event uid={uid}" if uid is not None else f"event {index}"


def _add_event(item: dict, where: str, ctx: ParseContext, parsed: Parsed) -> None:
    state = item.get("state")
    if isinstance(state, int) and state != _PUBLISHED_STATE:
        parsed.problems.append(ParseProblem(
            where=where, field="state",
            message=f"not published on OpenAgenda (moderation state {state}); left out"))
        return
    language = ctx.language  # texts are keyed by language; a bare string takes the source's
    timings = _timings(item, where, parsed)
    graph = parsed.graph
    uid = item.get("uid")
    if len(timings) <= 1:
        node = new_blank()
        _describe(graph, node, item, language)
        if uid is not None:
            graph.add((node, SCHEMA.identifier, Literal(f"openagenda:{uid}")))
        if timings:
            _add_timing(graph, node, *timings[0])
        parsed.origins[node] = where
        return
    series = new_blank()
    graph.add((series, RDF.type, SCHEMA.EventSeries))
    add_localized(graph, series, SCHEMA.name, item.get("title"), language)
    if uid is not None:
        graph.add((series, SCHEMA.identifier, Literal(f"openagenda:{uid}")))
    for begin, end in timings:
        node = new_blank()
        _describe(graph, node, item, language)
        if uid is not None:
            graph.add((node, SCHEMA.identifier, Literal(f"openagenda:{uid}/{begin}")))
        _add_timing(graph, node, begin, end)
        graph.add((node, SCHEMA.superEvent, series))
        graph.add((series, SCHEMA.subEvent, node))
        parsed.origins[node] = f"{where}, timing {begin}"


def _timings(item: dict, where: str, parsed: Parsed) -> list[tuple[Literal, Literal | None]]:
    timings = item.get("timings")
    if not isinstance(timings, list):
        timings = [item["firstTiming"]] if isinstance(item.get("firstTiming"), dict) else []
    read = []
    for position, timing in enumerate(timings):
        if not isinstance(timing, dict):
            parsed.problems.append(ParseProblem(where=where, field=f"timings[{position}]",
                                                message="a timing must be an object with begin and end"))
            continue
        begin = temporal(timing.get("begin"))
        if begin is None:
            parsed.problems.append(ParseProblem(
                where=where, field=f"timings[{position}].begin",
                message=f"unreadable date-time {timing.get('begin')!r}; this occurrence is left out"))
            continue
        end = temporal(timing.get("end"))
        if end is None and timing.get("end") is not None:
            parsed.problems.append(ParseProblem(
                where=where, field=f"timings[{position}].end",
                message=f"unreadable date-time {timing.get('end')!r}; the occurrence has no end"))
        read.append((begin, end))
    if not read:
        parsed.problems.append(ParseProblem(where=where, field="timings",
                                            message="no usable timing: the event has no date"))
    return read


def _add_timing(graph: Graph, node: Node, begin: Literal, end: Literal | None) -> None:
    graph.add((node, SCHEMA.startDate, begin))
    if end is not None:
        graph.add((node, SCHEMA.endDate, end))


def _scalar(value: object) -> object:
    """A code as a table key; an object or a list where a code belongs matches nothing."""
    return value if isinstance(value, (str, int)) else None


def _describe(graph: Graph, node: Node, item: dict, language: str) -> None:
    """Everything an occurrence says besides its dates (shared by every timing of the event)."""
    graph.add((node, RDF.type, SCHEMA.Event))
    add_localized(graph, node, SCHEMA.name, item.get("title"), language)
    description = item.get("description") or item.get("longDescription")
    add_localized(graph, node, SCHEMA.description, description, language)
    add_localized(graph, node, SCHEMA.keywords, item.get("keywords"), language)
    status = _STATUS.get(_scalar(item.get("status")))
    if status is not None:
        graph.add((node, SCHEMA.eventStatus, status))
    mode = _ATTENDANCE.get(_scalar(item.get("attendanceMode")))
    if mode is not None:
        graph.add((node, SCHEMA.eventAttendanceMode, mode))
    image = _image(item.get("image"))
    if image is not None:
        graph.add((node, SCHEMA.image, image))
    url = _event_url(item)
    if url is not None:
        graph.add((node, SCHEMA.url, url))
    _add_age(graph, node, item.get("age"))
    _add_location(graph, node, item.get("location"), language)
    _add_online(graph, node, item)
    _add_offers(graph, node, item, language)


def _image(value: Any):
    if isinstance(value, str):
        return http_url(value)
    if not isinstance(value, dict):
        return None
    if value.get("src"):  # v3
        return http_url(value["src"])
    if value.get("base") and value.get("filename"):  # v2
        return http_url(str(value["base"]) + str(value["filename"]))
    return None


def _event_url(item: dict):
    agenda = item.get("originAgenda")
    slug = item.get("slug")
    if isinstance(agenda, dict) and agenda.get("slug") and slug:
        return http_url(f"https://openagenda.com/{agenda['slug']}/events/{slug}")
    return None


def _add_age(graph: Graph, node: Node, age: Any) -> None:
    if not isinstance(age, dict):
        return
    low, high = age.get("min"), age.get("max")
    if isinstance(low, int) or isinstance(high, int):
        low_text = str(low) if isinstance(low, int) else "0"
        graph.add((node, SCHEMA.typicalAgeRange,
                   Literal(f"{low_text}-{high}" if isinstance(high, int) else f"{low_text}-")))


def _add_location(graph: Graph, node: Node, location: Any, language: str) -> None:
    if not isinstance(location, dict) or not location.get("name"):
        return
    place = new_blank()
    graph.add((node, SCHEMA.location, place))
    graph.add((place, RDF.type, SCHEMA.Place))
    add_localized(graph, place, SCHEMA.name, location.get("name"), language)
    if location.get("uid") is not None:
        graph.add((place, SCHEMA.identifier, Literal(f"openagenda-location:{location['uid']}")))
    add_address(graph, place, {
        "streetAddress": _street(location),
        "postalCode": location.get("postalCode"),
        "addressLocality": location.get("city"),
        "addressRegion": location.get("region"),
        "addressCountry": location.get("countryCode"),
    })
    add_geo(graph, place, location.get("latitude"), location.get("longitude"))
    website = http_url(location.get("website"))
    if website is not None:
        graph.add((place, SCHEMA.url, website))


def _street(location: dict) -> str | None:
    """OpenAgenda's `address` is the whole postal line (`21 rue X 33130 Bègles`): drop the tail
    that repeats the postal code and city, which have fields of their own."""
    address = location.get("address")
    if not isinstance(address, str):
        return None
    line = address.rstrip(" ,")
    tail = f"{location.get('postalCode') or ''} {location.get('city') or ''}".strip()
    if tail and line.endswith(tail):
        return line[: -len(tail)].rstrip(" ,") or address
    return address


def _add_online(graph: Graph, node: Node, item: dict) -> None:
    link = http_url(item.get("onlineAccessLink"))
    if link is None:
        return
    virtual = new_blank()
    graph.add((node, SCHEMA.location, virtual))
    graph.add((virtual, RDF.type, SCHEMA.VirtualLocation))
    graph.add((virtual, SCHEMA.url, link))


def _add_offers(graph: Graph, node: Node, item: dict, language: str) -> None:
    """`conditions` is free text; only "gratuit"/"free" is read as a price (0), the text is kept."""
    conditions = item.get("conditions")
    text = first_localized(conditions, language)
    links = [http_url(r.get("value")) for r in item.get("registration") or []
             if isinstance(r, dict) and r.get("type") == "link"]
    links = [link for link in links if link is not None]
    free = bool(_FREE.match(text or ""))
    if not (free or links or text):
        return
    offer = add_offer(graph, node, Decimal(0) if free else None, "EUR" if free else None,
                      url=links[0] if links else None)
    add_localized(graph, offer, SCHEMA.description, conditions, language)
    if free:
        graph.add((node, SCHEMA.isAccessibleForFree, Literal(True)))
    if item.get("status") == 5:
        graph.add((offer, SCHEMA.availability, SCHEMA.SoldOut))


FORMAT = FeedFormat(
    name="openagenda",
    label="OpenAgenda (API v2/v3 JSON)",
    media_types=("application/json",),
    extensions=(".json",),
    sniff=sniff,
    parse=parse,
)
