"""UiTdatabank events (Flanders), as its JSON-LD read model and search API return them.

UiTdatabank's documents carry `"@context": "/contexts/event"`, a relative context that cannot be
resolved (and would be fetched if it could), so they are read as JSON and mapped key by key.
Accepted: one event, a search result (`{"member": [...]}`, Hydra's PagedCollection) or an array.

The four calendar types:
- `single`: one `schema:Event` with the dates of its only subEvent (or of the event);
- `multiple`: an `EventSeries` (the UiTdatabank event) with one `schema:Event` per subEvent;
- `periodic`: one `schema:Event` from `startDate` to `endDate`, its `openingHours` as `eventSchedule`;
- `permanent`: no dates at all; the event is kept with its opening hours and reported, since
  Affiche publishes dated events (validation quarantines it with its report).

Terms (eventtype, theme) become `schema:keywords` in Dutch; the disciplines scheme has their labels
as `skos:altLabel`s, so the normaliser maps them. `priceInfo` becomes one `Offer` per tariff.
Events UiTdatabank itself does not publish (`workflowStatus` DRAFT, REJECTED, DELETED) are reported
and left out.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rdflib import Graph, Literal
from rdflib.namespace import RDF
from rdflib.term import Node

from ontology import SCHEMA

from . import FeedFormat, ParseContext, Parsed, ParseError, ParseProblem, new_blank
from ._json import (
    add_address, add_geo, add_localized, add_offer, http_url, load_json, parse_items, sniff_head,
    temporal,
)

_STATUS = {
    "Available": SCHEMA.EventScheduled,
    "TemporarilyUnavailable": SCHEMA.EventPostponed,
    "Unavailable": SCHEMA.EventCancelled,
}
_ATTENDANCE = {
    "offline": SCHEMA.OfflineEventAttendanceMode,
    "online": SCHEMA.OnlineEventAttendanceMode,
    "mixed": SCHEMA.MixedEventAttendanceMode,
}
_UNPUBLISHED = {"DRAFT", "REJECTED", "DELETED"}
_CALENDAR_TYPES = ("single", "multiple", "periodic", "permanent")
_DAYS = {d.lower(): SCHEMA[d] for d in (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}


def sniff(content: bytes) -> bool:
    """UiTdatabank's own keys: `calendarType` with `mainLanguage`, or its relative event context."""
    head = sniff_head(content)
    if not head.startswith(("{", "[")):
        return False
    return '"calendarType"' in head and ('"mainLanguage"' in head or "/contexts/event" in head)


def parse(content: bytes, ctx: ParseContext) -> Parsed:
    document = load_json(content, "a UiTdatabank export")
    return parse_items(_events_of(document), _where, _add_event, ctx)


def _events_of(document: Any) -> list:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if isinstance(document.get("member"), list):
            return document["member"]
        if "calendarType" in document or "@id" in document:
            return [document]
    raise ParseError("not a UiTdatabank export: expected an event, or a list under `member`")


def _where(item: Any, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("@id"), str):
        return f"event {item['@id'].rstrip('/').rsplit('/', 1)[-1]}"
    return f"event {index}"


def _add_event(item: dict, where: str, ctx: ParseContext, parsed: Parsed) -> None:
    workflow = item.get("workflowStatus")
    if workflow in _UNPUBLISHED:
        parsed.problems.append(ParseProblem(
            where=where, field="workflowStatus",
            message=f"not published by UiTdatabank (workflowStatus {workflow}); left out"))
        return
    calendar = item.get("calendarType")
    if calendar not in _CALENDAR_TYPES:
        parsed.problems.append(ParseProblem(
            where=where, field="calendarType",
            message=f"calendarType {calendar!r} is not one of {', '.join(_CALENDAR_TYPES)}; "
                    "the event's own startDate and endDate are used"))
        calendar = "periodic"
    language = item.get("mainLanguage") if isinstance(item.get("mainLanguage"), str) else ctx.language
    subevents = [s for s in item.get("subEvent") or [] if isinstance(s, dict)]
    if calendar == "multiple" and len(subevents) > 1:
        _add_multiple(item, subevents, where, language, parsed)
        return
    node = _event_node(item)
    _describe(parsed.graph, node, item, language)
    parsed.origins[node] = where
    if calendar == "permanent":
        parsed.problems.append(ParseProblem(
            where=where, field="calendarType",
            message="a permanent event has no dates; Affiche publishes dated events, so it is "
                    "quarantined (publish it as a place with opening hours instead)"))
    elif calendar in ("single", "multiple") and subevents:
        _add_dates(parsed, node, subevents[0], where, "subEvent[0]")
        _add_status(parsed.graph, node, subevents[0].get("status"))
    else:
        _add_dates(parsed, node, item, where, "")
    _add_opening_hours(parsed.graph, node, item.get("openingHours"))


def _event_node(item: dict) -> Node:
    """The event's own IRI is kept (the normaliser mints ours and keeps it as sameAs)."""
    return http_url(item.get("@id")) or new_blank()


def _add_multiple(item: dict, subevents: list[dict], where: str, language: str, parsed: Parsed) -> None:
    graph = parsed.graph
    series = _event_node(item)
    graph.add((series, RDF.type, SCHEMA.EventSeries))
    add_localized(graph, series, SCHEMA.name, item.get("name"), language)
    identifier = _identifier(item)
    for position, sub in enumerate(subevents):
        node = new_blank()
        _describe(graph, node, item, language, with_type=True, with_ids=False)
        if identifier:
            graph.add((node, SCHEMA.identifier, Literal(f"{identifier}/{sub.get('startDate')}")))
        _add_dates(parsed, node, sub, where, f"subEvent[{position}]")
        _add_status(graph, node, sub.get("status"))
        graph.add((node, SCHEMA.superEvent, series))
        graph.add((series, SCHEMA.subEvent, node))
        parsed.origins[node] = f"{where}, subEvent {sub.get('id', position)}"


def _identifier(item: dict) -> str | None:
    iri = item.get("@id")
    return f"uitdatabank:{iri.rstrip('/').rsplit('/', 1)[-1]}" if isinstance(iri, str) else None


def _add_dates(parsed: Parsed, node: Node, holder: dict, where: str, prefix: str) -> None:
    for key, predicate in (("startDate", SCHEMA.startDate), ("endDate", SCHEMA.endDate)):
        raw = holder.get(key)
        if raw is None:
            continue
        value = temporal(raw)
        field = f"{prefix}.{key}" if prefix else key
        if value is None:
            parsed.problems.append(ParseProblem(
                where=where, field=field, message=f"unreadable date {raw!r}; left out"))
            continue
        parsed.graph.add((node, predicate, value))


def _add_status(graph: Graph, node: Node, status: Any) -> None:
    if isinstance(status, dict) and status.get("type") in _STATUS:
        graph.remove((node, SCHEMA.eventStatus, None))
        graph.add((node, SCHEMA.eventStatus, _STATUS[status["type"]]))


def _describe(graph: Graph, node: Node, item: dict, language: str, with_type: bool = True,
              with_ids: bool = True) -> None:
    if with_type:
        graph.add((node, RDF.type, SCHEMA.Event))
    add_localized(graph, node, SCHEMA.name, item.get("name"), language)
    add_localized(graph, node, SCHEMA.description, item.get("description"), language)
    if with_ids:
        identifier = _identifier(item)
        if identifier:
            graph.add((node, SCHEMA.identifier, Literal(identifier)))
        for same in item.get("sameAs") or []:
            url = http_url(same)
            if url is not None:
                graph.add((node, SCHEMA.sameAs, url))
    _add_status(graph, node, item.get("status"))
    mode = item.get("attendanceMode")
    mode = _ATTENDANCE.get(mode) if isinstance(mode, str) else None
    if mode is not None:
        graph.add((node, SCHEMA.eventAttendanceMode, mode))
    for term in item.get("terms") or []:
        if isinstance(term, dict) and term.get("domain") in ("eventtype", "theme"):
            label = term.get("label")
            if isinstance(label, str) and label.strip():
                graph.add((node, SCHEMA.keywords, Literal(label.strip(), lang="nl")))
    image = http_url(item.get("image"))
    if image is not None:
        graph.add((node, SCHEMA.image, image))
    age = item.get("typicalAgeRange")
    if isinstance(age, str) and age.strip() not in ("", "-"):
        graph.add((node, SCHEMA.typicalAgeRange, Literal(age.strip())))
    _add_location(graph, node, item.get("location"), language)
    _add_organizer(graph, node, item.get("organizer"), language)
    _add_offers(graph, node, item, language)
    online = http_url(item.get("onlineUrl"))
    if online is not None:
        virtual = new_blank()
        graph.add((node, SCHEMA.location, virtual))
        graph.add((virtual, RDF.type, SCHEMA.VirtualLocation))
        graph.add((virtual, SCHEMA.url, online))


def _add_location(graph: Graph, node: Node, location: Any, language: str) -> None:
    if not isinstance(location, dict) or not location.get("name"):
        return  # a bare {"@type": "Place"} says nothing; validation reports the missing location
    place = http_url(location.get("@id")) or new_blank()
    graph.add((node, SCHEMA.location, place))
    graph.add((place, RDF.type, SCHEMA.Place))
    add_localized(graph, place, SCHEMA.name, location.get("name"), language)
    address = location.get("address")
    if isinstance(address, dict) and "streetAddress" not in address:
        address = address.get(language) or next(
            (v for v in address.values() if isinstance(v, dict)), None)  # keyed by language
    if isinstance(address, dict):
        add_address(graph, place, {k: address.get(k) for k in (
            "streetAddress", "postalCode", "addressLocality", "addressCountry")})
    geo = location.get("geo")
    if isinstance(geo, dict):
        add_geo(graph, place, geo.get("latitude"), geo.get("longitude"))


def _add_organizer(graph: Graph, node: Node, organizer: Any, language: str) -> None:
    if not isinstance(organizer, dict) or not organizer.get("name"):
        return
    agent = http_url(organizer.get("@id")) or new_blank()
    graph.add((node, SCHEMA.organizer, agent))
    graph.add((agent, RDF.type, SCHEMA.Organization))
    add_localized(graph, agent, SCHEMA.name, organizer.get("name"), language)
    url = http_url(organizer.get("url"))
    if url is not None:
        graph.add((agent, SCHEMA.url, url))


def _add_offers(graph: Graph, node: Node, item: dict, language: str) -> None:
    booking = item.get("bookingInfo")
    ticket_url = http_url(booking.get("url")) if isinstance(booking, dict) else None
    tariffs = [t for t in item.get("priceInfo") or [] if isinstance(t, dict)]
    for tariff in tariffs:
        try:
            price = Decimal(str(tariff.get("price")))
        except InvalidOperation:
            price = None
        name = tariff.get("name") if tariff.get("name") else None
        add_offer(graph, node, price if price is not None and price.is_finite() else None,
                  tariff.get("priceCurrency") or "EUR", name=name, url=ticket_url,
                  language=language)
        if tariff.get("category") == "base" and price == 0:
            graph.add((node, SCHEMA.isAccessibleForFree, Literal(True)))
    if not tariffs and ticket_url is not None:
        add_offer(graph, node, None, url=ticket_url)


def _add_opening_hours(graph: Graph, node: Node, hours: Any) -> None:
    """UiTdatabank opening hours (`dayOfWeek`, `opens`, `closes`) as schema:Schedule."""
    for entry in hours or []:
        if not isinstance(entry, dict):
            continue
        schedule = new_blank()
        graph.add((node, SCHEMA.eventSchedule, schedule))
        graph.add((schedule, RDF.type, SCHEMA.Schedule))
        for day in entry.get("dayOfWeek") or []:
            if isinstance(day, str) and day.lower() in _DAYS:
                graph.add((schedule, SCHEMA.byDay, _DAYS[day.lower()]))
        for key, predicate in (("opens", SCHEMA.startTime), ("closes", SCHEMA.endTime)):
            if isinstance(entry.get(key), str):
                graph.add((schedule, predicate, Literal(entry[key])))


FORMAT = FeedFormat(
    name="uitdatabank",
    label="UiTdatabank (JSON-LD read model)",
    media_types=("application/ld+json", "application/json"),
    extensions=(".jsonld", ".json"),
    sniff=sniff,
    parse=parse,
)
