"""What pages show, built from an entity's description: plain values for the templates.

Routes read the entity once (`description.read_description`), then build these views and render
them; nothing here reads the store. Views work on `Description` (plain Python terms): an rdflib
graph given instead is converted first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from urllib.parse import urlencode

from rdflib import Graph

from ontology import SCHEMA, disciplines

from .description import RDF_TYPE, Blank, Description, Iri, Lit, Term, as_description, term_text

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
# Keyed by rdflib terms, for the listings built from query rows (agenda, events_of).
STATUS_WORDS = {
    SCHEMA.EventCancelled: "cancelled", SCHEMA.EventPostponed: "postponed",
    SCHEMA.EventRescheduled: "rescheduled", SCHEMA.EventMovedOnline: "moved_online",
}
_STATUS = {str(k): v for k, v in STATUS_WORDS.items()}

S = str(SCHEMA)
NAME, DESCRIPTION, URL, IMAGE = S + "name", S + "description", S + "url", S + "image"
START, END, LOCATION, STATUS = S + "startDate", S + "endDate", S + "location", S + "eventStatus"
ADDRESS, GEO, LATITUDE, LONGITUDE = S + "address", S + "geo", S + "latitude", S + "longitude"
OFFERS, PRICE, LOW_PRICE, HIGH_PRICE = S + "offers", S + "price", S + "lowPrice", S + "highPrice"
CURRENCY, ORGANIZER, PERFORMER = S + "priceCurrency", S + "organizer", S + "performer"
SAME_AS, ATTENDANCE, FREE = S + "sameAs", S + "eventAttendanceMode", S + "isAccessibleForFree"
ACCESS_SUMMARY, ACCESS_FEATURE = S + "accessibilitySummary", S + "accessibilityFeature"
DISCIPLINE = "https://affiche.example/ns#discipline"


def text(data: Description, node: str, prop: str, language: str) -> str:
    """The value in the visitor's language, else one without language, else the first by tag."""
    values = [v for v in data.objects(node, prop) if type(v) is Lit]
    if not values:
        return ""
    for value in values:
        if value.language == language:
            return value.value
    for value in values:
        if not value.language:
            return value.value
    return sorted(values, key=lambda v: v.language)[0].value


def link(data: Description, node: str, prop: str) -> str | None:
    """A http(s) IRI value, safe to render as a link (never `javascript:`)."""
    for value in sorted(v for v in data.objects(node, prop) if type(v) is Iri):
        if value.startswith(("http://", "https://")):
            return str(value)
    return None


def _python(value: Term | date | None) -> object:
    if isinstance(value, Lit):
        return value.python()
    return value


def format_time(python: datetime, language: str) -> str:
    if language == "fr":
        return f"{python.hour} h {python.minute:02d}"
    return f"{python.hour % 12 or 12}:{python.minute:02d} {'am' if python.hour < 12 else 'pm'}"


def format_offset(value: Term | None) -> str:
    """`UTC+01:00`: the event's own zone offset, shown beside its local time."""
    python = _python(value)
    if not isinstance(python, datetime) or python.utcoffset() is None:
        return ""
    minutes = int(python.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_end(start: Term | None, end: Term | None, language: str) -> str:
    """The end, without repeating the day when the event ends on the day it starts."""
    if end is None:
        return ""
    first, last = _python(start), _python(end)
    if isinstance(first, datetime) and isinstance(last, datetime) and first.date() == last.date():
        return format_time(last, language)
    return format_when(end, language)


def format_when(value: Term | date | None, language: str) -> str:
    """A date or date-time (a literal, or a Python value) in words; other values as written."""
    if value is None:
        return ""
    python = _python(value)
    if isinstance(python, datetime):
        day = f"{DAYS[language][python.weekday()]} {python.day} {MONTHS[language][python.month - 1]} {python.year}"
        return f"{day}, {format_time(python, language)}"
    if isinstance(python, date):
        return f"{DAYS[language][python.weekday()]} {python.day} {MONTHS[language][python.month - 1]} {python.year}"
    return term_text(value) if isinstance(value, (Lit, Iri, Blank)) else str(value)


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


def place_view(data: Description | Graph, node: str, language: str) -> PlaceView:
    data = as_description(data)
    view = PlaceView(iri=str(node), name=text(data, node, NAME, language))
    address = data.value(node, ADDRESS)
    if isinstance(address, Lit):
        view.address_text = address.value
    elif address is not None:
        view.street = text(data, address, S + "streetAddress", language)
        view.postal_code = text(data, address, S + "postalCode", language)
        view.locality = text(data, address, S + "addressLocality", language)
        view.country = text(data, address, S + "addressCountry", language)
    geo = data.value(node, GEO)
    if geo is not None and not isinstance(geo, Lit):
        lat, lon = data.value(geo, LATITUDE), data.value(geo, LONGITUDE)
        if lat is not None and lon is not None:
            lat, lon = term_text(lat), term_text(lon)
            query = urlencode({"mlat": lat, "mlon": lon})
            view.map_url = f"https://www.openstreetmap.org/?{query}#map=17/{lat}/{lon}"
    if view.map_url is None and view.address_line:
        view.map_url = "https://www.openstreetmap.org/search?" + urlencode(
            {"query": f"{view.name}, {view.address_line}"})
    return view


def _agents(data: Description, node: str, prop: str, language: str) -> list[dict]:
    agents = []
    for agent in sorted(data.objects(node, prop), key=term_text):
        if isinstance(agent, Lit):
            agents.append({"iri": None, "name": agent.value, "url": None})
            continue
        agents.append({"iri": str(agent) if type(agent) is Iri and "#" not in agent else None,
                       "name": text(data, agent, NAME, language) or term_text(agent),
                       "url": link(data, agent, URL)})
    return agents


CURRENCY_SIGNS = {"EUR": "€", "CAD": "$ CA", "USD": "$ US", "GBP": "£", "CHF": "CHF"}


def format_price(value: Term | None, language: str) -> str:
    """`18,00` in French, `18.00` in English; the value as written when it is not a number."""
    if value is None:
        return ""
    written = term_text(value)
    try:
        amount = f"{float(written):.2f}"
    except ValueError:
        return written
    return amount.replace(".", ",") if language == "fr" else amount


def _offers(data: Description, node: str, language: str) -> list[OfferView]:
    offers = []
    for offer in sorted(data.objects(node, OFFERS), key=term_text):
        if isinstance(offer, Lit):
            continue
        price = data.value(offer, PRICE) or data.value(offer, LOW_PRICE)
        high = data.value(offer, HIGH_PRICE)
        shown = format_price(price, language)
        if high is not None:
            shown = f"{shown}–{format_price(high, language)}"
        currency = term_text(data.value(offer, CURRENCY) or Lit(""))
        offers.append(OfferView(
            price=shown,
            currency=CURRENCY_SIGNS.get(currency, currency),
            url=link(data, offer, URL),
            name=text(data, offer, NAME, language),
            free=price is not None and high is None and _is_zero(price),
        ))
    return offers


def _is_zero(value: Term) -> bool:
    try:
        return float(term_text(value)) == 0.0
    except ValueError:
        return False


ATTENDANCE_WORDS = {
    S + "OfflineEventAttendanceMode": "attendance_offline",
    S + "OnlineEventAttendanceMode": "attendance_online",
    S + "MixedEventAttendanceMode": "attendance_mixed",
}


def accessibility(data: Description, nodes: list[str], language: str) -> list[str]:
    """What the event and its venue say about access: summaries, then features as written."""
    said: list[str] = []
    for node in nodes:
        summary = text(data, node, ACCESS_SUMMARY, language)
        if summary:
            said.append(summary)
        for feature in sorted(data.objects(node, ACCESS_FEATURE), key=term_text):
            if isinstance(feature, Lit):
                if feature.language in ("", language):
                    said.append(feature.value)
            elif type(feature) is Iri:
                said.append(feature.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return list(dict.fromkeys(said))


@cache
def discipline_labels() -> dict[str, dict[str, str]]:
    """Discipline IRI (text) -> {"fr": label, "en": label}."""
    return {str(concept): labels for concept, labels in disciplines().items()}


def _first_iri(data: Description, node: str, prop: str) -> str | None:
    value = data.value(node, prop)
    return str(value) if type(value) is Iri else None


def event_view(data: Description | Graph, event: str, language: str) -> EventView:
    data = as_description(data)
    event = str(event)
    start = data.value(event, START)
    end = data.value(event, END)
    location = data.value(event, LOCATION)
    place_node = location if location is not None and not isinstance(location, Lit) else None
    labels = discipline_labels()
    return EventView(
        iri=event,
        name=text(data, event, NAME, language),
        description=text(data, event, DESCRIPTION, language),
        start=format_when(start, language),
        end=format_end(start, end, language),
        start_iso=term_text(start) if start is not None else "",
        status=_STATUS.get(_first_iri(data, event, STATUS) or ""),
        image=link(data, event, IMAGE),
        url=link(data, event, URL),
        place=place_view(data, place_node, language) if place_node is not None else None,
        organizers=_agents(data, event, ORGANIZER, language),
        performers=_agents(data, event, PERFORMER, language),
        offers=_offers(data, event, language),
        disciplines=sorted(labels[d].get(language, d) for d in map(str, data.objects(event, DISCIPLINE))
                           if d in labels),
        timezone=format_offset(start),
        attendance=ATTENDANCE_WORDS.get(_first_iri(data, event, ATTENDANCE) or ""),
        accessibility=accessibility(data, [event, *([place_node] if place_node is not None else [])],
                                    language),
        free=data.value(event, FREE) in (Lit("true", "", "http://www.w3.org/2001/XMLSchema#boolean"),
                                         Lit("1", "", "http://www.w3.org/2001/XMLSchema#boolean")),
    )


def entity_view(data: Description | Graph, node: str, language: str) -> dict:
    """Places, organisations, people and works: their name, kind and a few facts."""
    data = as_description(data)
    node = str(node)
    types = sorted(str(t).rsplit("/", 1)[-1] for t in data.objects(node, RDF_TYPE))
    view = {"iri": node, "name": text(data, node, NAME, language) or node,
            "types": types, "description": text(data, node, DESCRIPTION, language),
            "url": link(data, node, URL), "same_as": sorted(
                str(s) for s in data.objects(node, SAME_AS)
                if type(s) is Iri and s.startswith(("http://", "https://")))}
    if data.objects(node, ADDRESS):
        view["place"] = place_view(data, node, language)
    return view
