"""iCalendar feeds (RFC 5545): each VEVENT, or each occurrence of a recurring one, is an Event.

Recurring series (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides) are expanded with
`recurring_ical_events` in a window around the harvest time, because schema.org has no usable way to
say "every Tuesday" that search engines and aggregators read; the occurrences point to one
`schema:EventSeries` through `schema:superEvent`. Times stay in the zone the feed wrote them in: the
normaliser, not the parser, decides on zones for floating times.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrulestr
from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from ..fetch import FetchPolicy
from . import (
    FeedFormat, FeedTriples, ParseContext, ParseError, Parsed, ParseProblem, decode_text,
    RDF_TERMS, SCHEMA_TERMS, XSD_TERMS, head_text, is_web_address, new_blank,
    temporal_literal as _temporal_literal,
)

# each term one object, shared with normalisation (`SameTerms`)
SCHEMA, RDF, XSD = SCHEMA_TERMS, RDF_TERMS, XSD_TERMS

# A broken value in one of these leaves nothing to place the event in time: the VEVENT is reported.
_ESSENTIAL = {
    "DTSTART": "startDate",
    "RRULE": "eventSchedule",
    "RDATE": "eventSchedule",
    "EXDATE": "eventSchedule",
    "RECURRENCE-ID": "eventSchedule",
}
# A broken value in one of these is dropped and reported; the event is still published without it.
_OPTIONAL = {"DTEND": "endDate", "DURATION": "endDate", "GEO": "geo"}
# RFC 5545 allows these once in a VEVENT; icalendar gives a list when a feed repeats one. A repeated
# start leaves the event nowhere in time (reported); of the others the first is kept (reported).
_ONCE_ESSENTIAL = {"DTSTART": "startDate", "RECURRENCE-ID": "eventSchedule"}
_ONCE = {"UID": "identifier", "DTEND": "endDate", "DURATION": "endDate", "GEO": "geo",
         "SUMMARY": "name", "DESCRIPTION": "description", "LOCATION": "location", "URL": "url",
         "STATUS": "eventStatus", "ORGANIZER": "organizer"}
_RECURRENCE = ("RRULE", "RDATE", "RECURRENCE-ID")
_STATUS = {"CANCELLED": SCHEMA.EventCancelled, "CONFIRMED": SCHEMA.EventScheduled}
# What recurring_ical_events and icalendar raise for a series they cannot expand (all ValueErrors).
_EXPANSION_ERRORS = (recurring_ical_events.InvalidCalendar, icalendar.InvalidCalendar, ValueError,
                     OverflowError)  # dates near the year 9999
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def sniff(content: bytes) -> bool:
    """An iCalendar stream starts with BEGIN:VCALENDAR, whatever the media type says."""
    return head_text(content).upper().startswith("BEGIN:VCALENDAR")


def parse(content: bytes, ctx: ParseContext) -> Parsed:
    """Turn an iCalendar feed into one schema:Event node per VEVENT or occurrence."""
    text = decode_text(content)  # UTF-8 as RFC 5545 requires, else Windows-1252
    calendars = _read_calendars(text)
    graph = FeedTriples()
    graph.bind("schema", SCHEMA)
    parsed = Parsed(graph=graph)
    window = (ctx.now - timedelta(days=1), ctx.now + timedelta(days=ctx.recurrence_days))
    max_events = (ctx.fetch_policy or FetchPolicy()).max_events
    uid_lines = _uid_lines(text)
    for series in _group_series(calendars):
        _parse_series(series, _where(series, uid_lines), window, parsed, max_events)
    return parsed


@dataclass
class _Series:
    """The VEVENTs sharing one UID: a single event, or a master with its overrides."""

    uid: str | None
    components: list[icalendar.Event]
    position: int  # of its first VEVENT in the feed, to point at a VEVENT without UID


def _read_calendars(text: str) -> list[icalendar.Calendar]:
    if not text.lstrip("\ufeff \t\r\n").upper().startswith("BEGIN:VCALENDAR"):
        raise ParseError("not an iCalendar feed: it does not start with BEGIN:VCALENDAR")
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as error:
        where = _error_line(text, str(error))
        raise ParseError(f"not a valid iCalendar feed{where}: {error}") from None
    except OSError:  # zoneinfo opening a TZID such as `Europe`, a folder of its database
        names = sorted(set(re.findall(r";TZID=([^;:\r\n]*)", text, flags=re.IGNORECASE)))
        raise ParseError("not a valid iCalendar feed: a TZID names no time zone "
                         f"(one of {', '.join(map(repr, names))[:300]})") from None
    if not calendars:
        raise ParseError(
            "not a valid iCalendar feed: no complete VCALENDAR (is END:VCALENDAR missing?)"
        )
    return [_apply_x_wr_timezone(calendar) for calendar in calendars]


def _apply_x_wr_timezone(calendar: icalendar.Calendar) -> icalendar.Calendar:
    """Google-style feeds write UTC times and name the real zone in X-WR-TIMEZONE."""
    try:
        return x_wr_timezone.to_standard(calendar)
    except (KeyError, ValueError):  # an unknown zone name: keep the times as written
        return calendar


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfolded content lines with the physical line number each starts on."""
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line[:1] in (" ", "\t") and lines:
            start, previous = lines[-1]
            lines[-1] = (start, previous + line[1:])
        else:
            lines.append((number, line))
    return lines


def _error_line(text: str, message: str) -> str:
    """icalendar quotes the bad content line in its message but does not number it."""
    for number, line in _logical_lines(text):
        if len(line) > 2 and f"'{line}'" in message:
            return f" (line {number})"
    return ""


def _uid_lines(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for number, line in _logical_lines(text):
        name, _, value = line.partition(":")
        if name.split(";")[0].strip().upper() == "UID":
            found.setdefault(value.strip(), number)
    return found


def _where(series: _Series, uid_lines: dict[str, int]) -> str:
    if series.uid is None:
        return f"VEVENT #{series.position} (no UID)"
    line = uid_lines.get(series.uid)
    return f"VEVENT UID={series.uid}" + (f" (line {line})" if line else "")


def _group_series(calendars: list[icalendar.Calendar]) -> list[_Series]:
    by_uid: dict[str, list[icalendar.Event]] = defaultdict(list)
    series: list[_Series] = []
    components = [component for calendar in calendars for component in calendar.walk("VEVENT")]
    for position, component in enumerate(components, start=1):
        uid = str(_first(component.get("UID", ""))).strip()
        if not uid:
            series.append(_Series(uid=None, components=[component], position=position))
            continue
        if uid not in by_uid:
            series.append(_Series(uid=uid, components=by_uid[uid], position=position))
        by_uid[uid].append(component)
    return series


def _parse_series(
    series: _Series, where: str, window: tuple[datetime, datetime], parsed: Parsed, max_events: int
) -> None:
    fatal = _broken(series.components, where, _ESSENTIAL)
    fatal += _repeated(series.components, where, _ONCE_ESSENTIAL, "the event is left out")
    if fatal:
        parsed.problems.extend(fatal)
        return
    parsed.problems.extend(_broken(series.components, where, _OPTIONAL))
    parsed.problems.extend(_repeated(series.components, where, _ONCE, "the first is kept"))
    components = [_first_only(_without_broken(component)) for component in series.components]
    timed = [c for c in components if "DTSTART" in c]
    # Without DTSTART there is nothing to expand: the VEVENT is kept as one event, so that
    # validation quarantines it under its name instead of it vanishing here.
    singles = [c for c in components if "DTSTART" not in c]
    if any(key in c for c in timed for key in _RECURRENCE):
        _add_recurring(series.uid, timed, where, window, parsed, max_events)
    else:
        singles += timed
    for component in singles:
        identifier = _single_identifier(series.uid, component, singles)
        node = _add_event(parsed, component, where, identifier)
        parsed.origins[node] = where


def _broken(
    components: list[icalendar.Event], where: str, names: dict[str, str]
) -> list[ParseProblem]:
    """icalendar keeps unreadable values as vBroken and lists them in `errors`."""
    summary = _summary(components)
    return [
        ParseProblem(
            where=where, field=names[name], message=f"{summary}{name} cannot be read: {message}"
        )
        for component in components
        for name, message in _unreadable(component)
        if name in names
    ]


def _unreadable(component: icalendar.Event) -> list[tuple[str, str]]:
    """(property, why) for each value icalendar could not read. Its `errors` list is lost when
    x_wr_timezone rewrites the calendar, but the values stay vBroken: both are looked at."""
    found = [(name, message) for name, message in getattr(component, "errors", []) if name]
    rules = component.get("RRULE", [])
    if any("FREQ" not in rule for rule in (rules if isinstance(rules, list) else [rules])):
        found.append(("RRULE", "no FREQ"))
    listed = {name for name, _ in found}
    for name, value in component.items():
        values = value if isinstance(value, list) else [value]
        broken = [v for v in values if isinstance(v, icalendar.vBroken)]
        if broken and name not in listed:
            why = getattr(broken[0], "parse_error", None) or f"expected {broken[0].expected_type}"
            found.append((name, str(why)))
    return found


def _summary(components: list[icalendar.Event]) -> str:
    for component in components:
        if component.get("SUMMARY"):
            return f"'{component['SUMMARY']}': "
    return ""


def _repeated(
    components: list[icalendar.Event], where: str, names: dict[str, str], outcome: str
) -> list[ParseProblem]:
    return [
        ParseProblem(where=where, field=names[name],
                     message=f"{name} appears {len(component[name])} times, once allowed: {outcome}")
        for component in components
        for name in names
        if isinstance(component.get(name), list)
    ]


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value


def _first_only(component: icalendar.Event) -> icalendar.Event:
    repeated = [name for name in _ONCE if isinstance(component.get(name), list)]
    if not repeated:
        return component
    copy = component.copy()
    for name in repeated:
        copy[name] = component[name][0]
    return copy


def _without_broken(component: icalendar.Event) -> icalendar.Event:
    broken = [name for name, _ in _unreadable(component) if name in _OPTIONAL]
    if not broken:
        return component
    copy = component.copy()
    for name in broken:
        copy.pop(name, None)
    return copy


def _single_identifier(
    uid: str | None, component: icalendar.Event, siblings: list[icalendar.Event]
) -> str | None:
    """The UID, made unique by the start when a sloppy feed reuses one UID for several dates."""
    if uid is None or len(siblings) < 2 or "DTSTART" not in component:
        return uid
    return f"{uid}/{component['DTSTART'].dt.isoformat()}"


def _add_recurring(
    uid: str | None,
    components: list[icalendar.Event],
    where: str,
    window: tuple[datetime, datetime],
    parsed: Parsed,
    max_events: int,
) -> None:
    room = max_events - len(parsed.origins)  # one origin per event node added so far
    if _occurrences_at_most(components, window, room + 1) > room:
        raise ParseError(
            f"{where}: {_summary(components)}the recurrence gives more occurrences in the next "
            f"{(window[1] - window[0]).days - 1} days than the cap of {max_events} events per feed "
            "(AFFICHE_HARVEST_MAX_EVENTS)"
        )
    calendar = icalendar.Calendar()
    for component in components:
        calendar.add_component(_without_idle_rules(_alone(component), window))
    try:
        occurrences = recurring_ical_events.of(calendar).between(*window)
    except _EXPANSION_ERRORS as error:
        message = f"{_summary(components)}the recurrence cannot be expanded: {error}"
        parsed.problems.append(ParseProblem(where=where, field="eventSchedule", message=message))
        return
    series_node = _add_series(parsed.triples, uid, components)
    for occurrence in occurrences:
        node = _add_event(parsed, occurrence, where, _occurrence_identifier(uid, occurrence))
        parsed.triples.add((node, SCHEMA.superEvent, series_node))
        parsed.origins[node] = where


def _occurrences_at_most(
    components: list[icalendar.Event], window: tuple[datetime, datetime], limit: int
) -> int:
    """How many occurrences a series has in the window at most (RRULE and RDATE; EXDATE not
    taken off), counted with dateutil without building them, and no further than `limit`:
    expanding `FREQ=SECONDLY` for 18 months would otherwise take hours and gigabytes."""
    total = 0
    for component in components:
        if "RECURRENCE-ID" in component:
            total += 1
            continue
        rdates = component.get("RDATE", [])
        total += sum(len(getattr(value, "dts", [value])) for value in _as_list(rdates))
        for rule in _as_list(_without_idle_rules(component, window).get("RRULE", [])):
            if total > limit:
                return total
            total += _rule_occurrences(rule, component["DTSTART"].dt, window, limit - total + 1)
    return total


def _alone(component: icalendar.Event) -> icalendar.Event:
    """The component without what is nested in it: a VEVENT whose END:VEVENT is missing swallows
    the next one, which the expansion would then read as part of the series."""
    if not component.subcomponents:
        return component
    copy = component.copy()
    copy.subcomponents = []
    return copy


def _without_idle_rules(component: icalendar.Event, window: tuple[datetime, datetime]) -> icalendar.Event:
    """The component without the RRULEs and EXRULEs that match no day in the window: expanding a
    rule that never matches (30 February) would keep dateutil searching until the year 9999."""
    idle = [name for name in ("RRULE", "EXRULE") if name in component
            and not any(_matches_a_day(rule, window) for rule in _as_list(component[name]))]
    if not idle:
        return component
    copy = component.copy()
    for name in idle:
        copy.pop(name)
    return copy


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _matches_a_day(rule: icalendar.vRecur, window: tuple[datetime, datetime]) -> bool:
    """Whether any day of the window passes the rule's day filters, asked of a yearly rule with the
    same filters (ordinals dropped: a superset of the days) moved 400 years at a time towards the
    year 9999, so that dateutil's search ends within four centuries of yearly steps (the
    Gregorian calendar repeats every 400 years, weekdays included)."""
    days = {name: rule[name] for name in ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "WKST")
            if name in rule}
    if "BYDAY" in rule:
        days["BYDAY"] = sorted({re.sub(r"^[+-]?\d+", "", str(day)) for day in _as_list(rule["BYDAY"])})
    shift = 400 * ((datetime.max.year - 1 - window[1].year) // 400)
    start, end = (_naive(moment).replace(year=moment.year + shift) for moment in window)
    try:
        yearly = rrulestr("FREQ=YEARLY;" + icalendar.vRecur(days).to_ical().decode(), dtstart=start)
        first = next(iter(yearly.xafter(start, inc=True)), None)
    except (ValueError, TypeError, OverflowError):
        return True  # unreadable: the expansion reports it
    return first is not None and first <= end + timedelta(days=1)


def _naive(moment: date) -> datetime:
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day)
    return moment.replace(tzinfo=None)


def _rule_occurrences(
    rule: icalendar.vRecur, start: date, window: tuple[datetime, datetime], limit: int
) -> int:
    """Occurrences of one RRULE in the window, up to `limit`, in naive time with a day of margin
    (zones do not matter for a bound); 0 when dateutil cannot read the rule (the expansion then
    reports it)."""
    fields = dict(rule)
    until = fields.pop("UNTIL", [None])[0]
    end = _naive(window[1]) + timedelta(days=1)
    if isinstance(until, date):
        end = min(end, _naive(until) + timedelta(days=1))
    try:
        occurrences = rrulestr(icalendar.vRecur(fields).to_ical().decode(), dtstart=_naive(start))
        count = 0
        for occurrence in occurrences.xafter(_naive(window[0]) - timedelta(days=1), inc=True):
            if occurrence > end or count >= limit:
                break
            count += 1
    except (ValueError, TypeError, OverflowError):
        return 0
    return count


def _occurrence_identifier(uid: str | None, occurrence: icalendar.Event) -> str | None:
    """UID plus the original start (RECURRENCE-ID), so a moved occurrence keeps its identifier."""
    if uid is None:
        return None
    original = occurrence.get("RECURRENCE-ID") or occurrence["DTSTART"]
    return f"{uid}/{original.dt.isoformat()}"


def _add_series(graph: FeedTriples, uid: str | None, components: list[icalendar.Event]) -> BNode:
    node = new_blank()
    graph.add((node, RDF.type, SCHEMA.EventSeries))
    master = next((c for c in components if "RECURRENCE-ID" not in c), components[0])
    _add_text(graph, node, SCHEMA.name, master.get("SUMMARY"))
    if uid is not None:
        graph.add((node, SCHEMA.identifier, Literal(uid)))
    return node


def _add_event(
    parsed: Parsed, component: icalendar.Event, where: str, identifier: str | None
) -> BNode:
    graph = parsed.triples
    node = new_blank()
    graph.add((node, RDF.type, SCHEMA.Event))
    if identifier is not None:
        graph.add((node, SCHEMA.identifier, Literal(identifier)))
    _add_text(graph, node, SCHEMA.name, component.get("SUMMARY"))
    _add_text(graph, node, SCHEMA.description, component.get("DESCRIPTION"))
    _add_times(graph, node, component)
    _add_url(parsed, node, component.get("URL"), where)
    _add_place(graph, node, component)
    for category in _categories(component):
        graph.add((node, SCHEMA.keywords, Literal(category)))
    status = _STATUS.get(str(component.get("STATUS", "")).strip().upper())
    if status is not None:
        graph.add((node, SCHEMA.eventStatus, status))
    _add_organizer(graph, node, component.get("ORGANIZER"))
    return node


def _add_text(graph: FeedTriples, node: Node, predicate: URIRef, value: icalendar.vText | None) -> None:
    """Plain literals, unless the feed itself says the language (LANGUAGE parameter)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return
    language = getattr(value, "params", {}).get("LANGUAGE")
    # normalize=False: the same literal for a string (see csv.py's `_Row.text`)
    if language and _LANGUAGE_TAG.match(language):
        graph.add((node, predicate, Literal(text, lang=language, normalize=False)))
    else:
        graph.add((node, predicate, Literal(text, normalize=False)))


def _add_times(graph: FeedTriples, node: Node, component: icalendar.Event) -> None:
    if "DTSTART" not in component:
        return
    start = component["DTSTART"].dt
    graph.add((node, SCHEMA.startDate, _temporal_literal(start)))
    end = _end(component, start)
    if end is not None:
        graph.add((node, SCHEMA.endDate, _temporal_literal(end)))


def _end(component: icalendar.Event, start: date) -> date | None:
    """The inclusive end, or None when the event has no real duration (same day, same instant)."""
    try:
        end = component.end
    except icalendar.IncompleteComponent:
        return None
    if not isinstance(start, datetime) and not isinstance(end, datetime):
        end -= timedelta(days=1)  # DTEND of an all-day event is exclusive (RFC 5545 3.6.1)
        return end if end > start else None
    if isinstance(start, datetime) != isinstance(end, datetime):
        return end
    try:
        # An end before the start is kept as written, so that validation reports it (and
        # quarantines the event) instead of the feed's mistake vanishing silently.
        return end if end != start else None
    except TypeError:  # a floating start with a zoned end: both as written
        return end


def _add_url(parsed: Parsed, node: Node, value: object, where: str) -> None:
    if value is None:
        return
    url = str(value).strip()
    if is_web_address(url):
        parsed.triples.add((node, SCHEMA.url, URIRef(url)))
    else:
        problem = ParseProblem(where=where, field="url", message=f"URL {url!r} is not http(s)")
        if problem not in parsed.problems:  # once per series, not once per occurrence
            parsed.problems.append(problem)


def _add_place(graph: FeedTriples, node: Node, component: icalendar.Event) -> None:
    """LOCATION is free text: 'Name, street, town' is common, so the first part names the place."""
    location = str(component.get("LOCATION", "")).strip()
    geo = component.get("GEO")
    if not location and geo is None:
        return
    place = new_blank()
    graph.add((node, SCHEMA.location, place))
    graph.add((place, RDF.type, SCHEMA.Place))
    if location:
        name = location.split(",")[0].strip()
        graph.add((place, SCHEMA.name, Literal(name or location)))
        if "," in location:
            graph.add((place, SCHEMA.address, Literal(location)))
    if geo is not None:
        coordinates = new_blank()
        graph.add((place, SCHEMA.geo, coordinates))
        graph.add((coordinates, RDF.type, SCHEMA.GeoCoordinates))
        graph.add((coordinates, SCHEMA.latitude, _decimal(geo.latitude)))
        graph.add((coordinates, SCHEMA.longitude, _decimal(geo.longitude)))


def _decimal(value: float) -> Literal:
    return Literal(str(Decimal(repr(value))), datatype=XSD.decimal)


def _categories(component: icalendar.Event) -> list[str]:
    values = component.get("CATEGORIES", [])
    if not isinstance(values, list):
        values = [values]
    names = [str(name).strip() for value in values for name in getattr(value, "cats", [value])]
    return [name for name in names if name]


def _add_organizer(graph: FeedTriples, node: Node, organizer: icalendar.vCalAddress | None) -> None:
    if organizer is None:
        return
    agent = new_blank()
    graph.add((node, SCHEMA.organizer, agent))
    graph.add((agent, RDF.type, SCHEMA.Organization))
    name = str(getattr(organizer, "params", {}).get("CN", "")).strip()
    if name:
        graph.add((agent, SCHEMA.name, Literal(name)))
    address = str(organizer).strip()
    if address.lower().startswith("mailto:") and len(address) > len("mailto:"):
        graph.add((agent, SCHEMA.email, Literal(address[len("mailto:"):])))


FORMAT = FeedFormat(
    name="ics",
    label="iCalendar",
    media_types=("text/calendar",),
    extensions=(".ics", ".ical", ".ifb"),
    sniff=sniff,
    parse=parse,
)
