"""What pages show, built from an entity's graph: plain dicts for the templates.

Routes query the store once, then build these views and render them; nothing here reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlencode

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.term import Node

from ontology import AFFICHE, SCHEMA, disciplines

MONTHS = {
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"],
}
DAYS = {
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
STATUS_WORDS = {
    SCHEMA.EventCancelled: "cancelled", SCHEMA.EventPostponed: "postponed",
    SCHEMA.EventRescheduled: "rescheduled", SCHEMA.EventMovedOnline: "moved_online",
}


def text(graph: Graph, node: Node, prop: URIRef, language: str) -> str:
    values = [v for v in graph.objects(node, prop) if isinstance(v, Literal)]
    if not values:
        return ""
    for value in values:
        if value.language == language:
            return str(value)
    for value in values:
        if not value.language:
            return str(value)
    return str(sorted(values, key=lambda v: v.language or "")[0])


def link(graph: Graph, node: Node, prop: URIRef) -> str | None:
    """A http(s) IRI value, safe to render as a link (never `javascript:`)."""
    for value in sorted(graph.objects(node, prop), key=str):
        if isinstance(value, URIRef) and str(value).startswith(("http://", "https://")):
            return str(value)
    return None


def format_time(python: datetime, language: str) -> str:
    if language == "fr":
        return f"{python.hour} h {python.minute:02d}"
    return f"{python.hour % 12 or 12}:{python.minute:02d} {'am' if python.hour < 12 else 'pm'}"


def format_offset(value: Node | None) -> str:
    """`UTC+01:00`: the event's own zone offset, shown beside its local time."""
    python = value.toPython() if isinstance(value, Literal) else None
    if not isinstance(python, datetime) or python.utcoffset() is None:
        return ""
    minutes = int(python.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_end(start: Node | None, end: Node | None, language: str) -> str:
    """The end, without repeating the day when the event ends on the day it starts."""
    if end is None:
        return ""
    first = start.toPython() if isinstance(start, Literal) else None
    last = end.toPython() if isinstance(end, Literal) else None
    if isinstance(first, datetime) and isinstance(last, datetime) and first.date() == last.date():
        return format_time(last, language)
    return format_when(end, language)


def format_when(value: Node | None, language: str) -> str:
    if value is None:
        return ""
    python = value.toPython() if isinstance(value, Literal) else value
    if isinstance(python, datetime):
        day = f"{DAYS[language][python.weekday()]} {python.day} {MONTHS[language][python.month - 1]} {python.year}"
        return f"{day}, {format_time(python, language)}"
    if isinstance(python, date):
        return f"{DAYS[language][python.weekday()]} {python.day} {MONTHS[language][python.month - 1]} {python.year}"
    return str(value)


@dataclass
class PlaceView:
    iri: str
    name: str
    street: str = ""
    postal_code: str = ""
    locality: str = ""
    country: str = ""
    address_text: str = ""
    map_url: str | None = None

    @property
    def address_line(self) -> str:
        if self.address_text:
            return self.address_text
        parts = [self.street, " ".join(p for p in (self.postal_code, self.locality) if p), self.country]
        return ", ".join(p for p in parts if p)


@dataclass
class OfferView:
    price: str
    currency: str
    url: str | None
    name: str = ""
    free: bool = False


@dataclass
class EventView:
    iri: str
    name: str
    description: str = ""
    start: str = ""
    end: str = ""
    start_iso: str = ""
    status: str | None = None
    image: str | None = None
    url: str | None = None
    place: PlaceView | None = None
    organizers: list[dict] = field(default_factory=list)
    performers: list[dict] = field(default_factory=list)
    offers: list[OfferView] = field(default_factory=list)
    disciplines: list[str] = field(default_factory=list)
    source: str | None = None
    timezone: str = ""
    attendance: str | None = None
    accessibility: list[str] = field(default_factory=list)
    free: bool = False


def place_view(graph: Graph, node: Node, language: str) -> PlaceView:
    view = PlaceView(iri=str(node), name=text(graph, node, SCHEMA.name, language))
    address = next(graph.objects(node, SCHEMA.address), None)
    if isinstance(address, Literal):
        view.address_text = str(address)
    elif address is not None:
        view.street = text(graph, address, SCHEMA.streetAddress, language)
        view.postal_code = text(graph, address, SCHEMA.postalCode, language)
        view.locality = text(graph, address, SCHEMA.addressLocality, language)
        view.country = text(graph, address, SCHEMA.addressCountry, language)
    geo = next(graph.objects(node, SCHEMA.geo), None)
    if geo is not None:
        lat, lon = graph.value(geo, SCHEMA.latitude), graph.value(geo, SCHEMA.longitude)
        if lat is not None and lon is not None:
            query = urlencode({"mlat": str(lat), "mlon": str(lon)})
            view.map_url = f"https://www.openstreetmap.org/?{query}#map=17/{lat}/{lon}"
    if view.map_url is None and view.address_line:
        view.map_url = "https://www.openstreetmap.org/search?" + urlencode(
            {"query": f"{view.name}, {view.address_line}"})
    return view


def _agents(graph: Graph, node: Node, prop: URIRef, language: str) -> list[dict]:
    agents = []
    for agent in sorted(graph.objects(node, prop), key=str):
        agents.append({"iri": str(agent) if "#" not in str(agent) else None,
                       "name": text(graph, agent, SCHEMA.name, language) or str(agent),
                       "url": link(graph, agent, SCHEMA.url)})
    return agents


CURRENCY_SIGNS = {"EUR": "€", "CAD": "$ CA", "USD": "$ US", "GBP": "£", "CHF": "CHF"}


def format_price(value: Node | None, language: str) -> str:
    """`18,00` in French, `18.00` in English; the value as written when it is not a number."""
    if value is None:
        return ""
    try:
        amount = f"{float(str(value)):.2f}"
    except ValueError:
        return str(value)
    return amount.replace(".", ",") if language == "fr" else amount


def _offers(graph: Graph, node: Node, language: str) -> list[OfferView]:
    offers = []
    for offer in sorted(graph.objects(node, SCHEMA.offers), key=str):
        price = graph.value(offer, SCHEMA.price) or graph.value(offer, SCHEMA.lowPrice)
        high = graph.value(offer, SCHEMA.highPrice)
        shown = format_price(price, language)
        if high is not None:
            shown = f"{shown}–{format_price(high, language)}"
        offers.append(OfferView(
            price=shown,
            currency=CURRENCY_SIGNS.get(str(graph.value(offer, SCHEMA.priceCurrency) or ""),
                                        str(graph.value(offer, SCHEMA.priceCurrency) or "")),
            url=link(graph, offer, SCHEMA.url),
            name=text(graph, offer, SCHEMA.name, language),
            free=price is not None and high is None and _is_zero(price),
        ))
    return offers


def _is_zero(value: Node) -> bool:
    try:
        return float(str(value)) == 0.0
    except ValueError:
        return False


ATTENDANCE_WORDS = {
    SCHEMA.OfflineEventAttendanceMode: "attendance_offline",
    SCHEMA.OnlineEventAttendanceMode: "attendance_online",
    SCHEMA.MixedEventAttendanceMode: "attendance_mixed",
}


def accessibility(graph: Graph, nodes: list[Node], language: str) -> list[str]:
    """What the event and its venue say about access: summaries, then features as written."""
    said: list[str] = []
    for node in nodes:
        summary = text(graph, node, SCHEMA.accessibilitySummary, language)
        if summary:
            said.append(summary)
        for feature in sorted(graph.objects(node, SCHEMA.accessibilityFeature), key=str):
            if isinstance(feature, Literal) and (feature.language in (None, language)):
                said.append(str(feature))
            elif isinstance(feature, URIRef):
                said.append(str(feature).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return list(dict.fromkeys(said))


def event_view(graph: Graph, event: URIRef, language: str) -> EventView:
    start = graph.value(event, SCHEMA.startDate)
    end = graph.value(event, SCHEMA.endDate)
    location = next(graph.objects(event, SCHEMA.location), None)
    labels = disciplines()
    return EventView(
        iri=str(event),
        name=text(graph, event, SCHEMA.name, language),
        description=text(graph, event, SCHEMA.description, language),
        start=format_when(start, language),
        end=format_end(start, end, language),
        start_iso=str(start) if start is not None else "",
        status=STATUS_WORDS.get(graph.value(event, SCHEMA.eventStatus)),
        image=link(graph, event, SCHEMA.image),
        url=link(graph, event, SCHEMA.url),
        place=place_view(graph, location, language) if location is not None else None,
        organizers=_agents(graph, event, SCHEMA.organizer, language),
        performers=_agents(graph, event, SCHEMA.performer, language),
        offers=_offers(graph, event, language),
        disciplines=sorted(labels[d].get(language, str(d)) for d in graph.objects(event, AFFICHE.discipline)
                           if d in labels),
        timezone=format_offset(start),
        attendance=ATTENDANCE_WORDS.get(graph.value(event, SCHEMA.eventAttendanceMode)),
        accessibility=accessibility(graph, [event, *([location] if location is not None else [])],
                                    language),
        free=graph.value(event, SCHEMA.isAccessibleForFree) == Literal(True),
    )


def entity_view(graph: Graph, node: URIRef, language: str) -> dict:
    """Places, organisations, people and works: their name, kind and a few facts."""
    types = sorted(str(t).rsplit("/", 1)[-1] for t in graph.objects(node, RDF.type))
    view = {"iri": str(node), "name": text(graph, node, SCHEMA.name, language) or str(node),
            "types": types, "description": text(graph, node, SCHEMA.description, language),
            "url": link(graph, node, SCHEMA.url), "same_as": sorted(
                str(s) for s in graph.objects(node, SCHEMA.sameAs)
                if str(s).startswith(("http://", "https://")))}
    if (node, SCHEMA.address, None) in graph:
        view["place"] = place_view(graph, node, language)
    return view
