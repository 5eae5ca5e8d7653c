"""`/calendar.ics`: any agenda listing as an iCalendar feed people can subscribe to.

Same filters as the home page (`from`, `to`, `city`, `discipline`, `q`, `free`); times in UTC
(no VTIMEZONE needed), all-day events as dates; the UID is the event's IRI, so calendar apps
update an event in place when it changes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import icalendar
from fastapi import APIRouter, Request
from fastapi.responses import Response
from rdflib import Literal
from starlette.concurrency import run_in_threadpool

from ..agenda import matching_events, parse_filters, summaries
from ..http_cache import cache_control, listing_modified, store_cache
from ..i18n import page_language

router = APIRouter()
MEDIA_TYPE = "text/calendar; charset=utf-8"
ICS_STATUS = {"cancelled": "CANCELLED"}


def _when(value) -> date | datetime | None:
    python = value.toPython() if isinstance(value, Literal) else None
    if isinstance(python, datetime):
        return python.astimezone(timezone.utc) if python.tzinfo else python
    if isinstance(python, date):
        return python
    return None


def calendar_entry(entry: dict, stamp: datetime) -> icalendar.Event | None:
    """One VEVENT; None for an event whose start cannot be read as a date."""
    start = _when(entry["start_value"])
    if start is None:
        return None
    event = icalendar.Event()
    event.add("uid", entry["iri"])
    event.add("dtstamp", stamp)
    event.add("summary", entry["name"])
    event.add("dtstart", start)
    end = _when(entry["end_value"]) if entry.get("end_value") is not None else None
    if isinstance(start, datetime) and isinstance(end, datetime) and end >= start:
        event.add("dtend", end)
    elif not isinstance(start, datetime):
        last = end if isinstance(end, date) and not isinstance(end, datetime) and end >= start else start
        event.add("dtend", last + timedelta(days=1))  # DTEND of an all-day event is exclusive
    where = ", ".join(p for p in (entry["place"], entry["street"], entry["locality"]) if p)
    if where:
        event.add("location", where)
    if entry["description"]:
        event.add("description", entry["description"])
    event.add("url", entry["url"] or entry["iri"])
    if entry["status"] in ICS_STATUS:
        event.add("status", ICS_STATUS[entry["status"]])
    return event


def build_calendar(entries: list[dict], name: str, stamp: datetime) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", f"-//{name}//Affiche//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for entry in entries:
        event = calendar_entry(entry, stamp)
        if event is not None:
            calendar.add_component(event)
    return calendar.to_ical()


def _calendar(app, filters, language: str) -> tuple[bytes, str | None]:
    settings, store = app.state.settings, app.state.store
    modified = listing_modified(app)
    return store_cache(app).get(("calendar", filters, language), (modified, filters.first_day),
                                lambda: (_build(store, settings, filters, language, modified), modified))


def _build(store, settings, filters, language: str, modified: str | None) -> bytes:
    events = matching_events(store, filters, limit=settings.calendar_max_events)
    stamp = (datetime.strptime(modified, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
             if modified else datetime(2000, 1, 1, tzinfo=timezone.utc))
    return build_calendar(summaries(store, events, language), settings.site_name, stamp)


@router.get("/calendar.ics", include_in_schema=False)
async def calendar(request: Request) -> Response:
    settings = request.app.state.settings
    filters = parse_filters(request.query_params)
    language = page_language(request, settings.default_language)
    body, modified = await run_in_threadpool(_calendar, request.app, filters, language)
    headers = {"Cache-Control": cache_control(settings.page_max_age), "Vary": "Accept-Language",
               "Content-Disposition": 'inline; filename="affiche.ics"'}
    if modified:
        headers["Last-Modified"] = modified
    return Response(body, media_type=MEDIA_TYPE, headers=headers)
