"""The agenda: the visitor's filters, checked once, and the events that match them.

The home page and `/calendar.ics` read the same filters from the query string and run the same
query (`agenda.rq`); every value goes in as an RDF term written by pyoxigraph (`with_constants`),
never as request text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

from rdflib import Literal, URIRef
from rdflib.namespace import XSD
from starlette.datastructures import QueryParams

from ontology import DISCIPLINE, disciplines
from sparql.errors import BadRequest
from sparql.queries import load_query
from sparql.store import to_ox

from .views import STATUS_WORDS

MAX_TEXT = 100


@dataclass(frozen=True)
class AgendaFilters:
    start: date | None = None  # None: from today, whatever day the page is read (subscriptions)
    end: date | None = None
    city: str = ""
    discipline: str = ""  # the concept's local name (`music`), "" for every discipline
    text: str = ""
    free: bool = False

    def bindings(self) -> dict:
        """The values of agenda.rq's variables (as RDF terms); "" means no filter."""
        return {
            "from": Literal(self.first_day.isoformat()),
            "until": Literal((self.end + timedelta(days=1)).isoformat() if self.end else ""),
            "city": Literal(self.city.lower()),
            "discipline": DISCIPLINE[self.discipline] if self.discipline else Literal(""),
            "text": Literal(self.text.lower()),
            "free": Literal(self.free, datatype=XSD.boolean),
        }

    @property
    def first_day(self) -> date:
        return self.start or today()

    @property
    def any(self) -> bool:
        return self != AgendaFilters()

    def query_string(self, **extra) -> str:
        """The filters as a query string (for pagination links and the calendar link)."""
        values = {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                  "city": self.city, "discipline": self.discipline, "q": self.text,
                  "free": "1" if self.free else "", **extra}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def today() -> date:
    return datetime.now(timezone.utc).date()


def _date(params: QueryParams, name: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date written YYYY-MM-DD, not {value[:40]!r}") from None


def discipline_names() -> dict[str, URIRef]:
    """`music` -> the concept, for every concept of the discipline scheme."""
    return {str(c)[len(str(DISCIPLINE)):]: c for c in disciplines() if str(c).startswith(str(DISCIPLINE))}


def parse_filters(params: QueryParams) -> AgendaFilters:
    """Read and check the filters; a bad value is a 400 that says which and why."""
    start = _date(params, "from")
    end = _date(params, "to")
    if end is not None and end < (start or today()):
        raise BadRequest("to must not be before from")
    discipline = params.get("discipline", "").strip()
    if discipline and discipline not in discipline_names():
        raise BadRequest(f"unknown discipline {discipline[:40]!r}; use one of: "
                         f"{', '.join(sorted(discipline_names()))}")
    text = " ".join(params.get("q", "").split())
    if len(text) > MAX_TEXT:
        raise BadRequest(f"q is limited to {MAX_TEXT} characters")
    city = " ".join(params.get("city", "").split())[:MAX_TEXT]
    free = params.get("free", "").lower() in ("1", "true", "on", "yes")
    return AgendaFilters(start=start, end=end, city=city, discipline=discipline, text=text, free=free)


FILTERS_MARK = "  # filters\n"


def agenda_query(name: str, filters: AgendaFilters) -> str:
    """agenda.rq or agenda_count.rq with one pattern file per active filter at `# filters`, and
    the filters' values written in as constants (`with_constants`).

    Inactive filters add nothing: a filter that is off costs nothing in the store."""
    active = [("city", filters.city), ("discipline", filters.discipline), ("text", filters.text),
              ("free", filters.free)]
    patterns = "".join(load_query(f"agenda_filter_{part}") for part, on in active if on)
    query = load_query(name)
    if FILTERS_MARK not in query:
        raise ValueError(f"{name}.rq has no '# filters' line")
    return with_constants(query.replace(FILTERS_MARK, patterns), filters.bindings())


def with_constants(query: str, bindings: dict) -> str:
    """The query with each `?name` of `bindings` replaced by its value as an RDF term, written by
    pyoxigraph (quotes, backslashes and line breaks escaped): request text never becomes query
    syntax. pyoxigraph 0.5 plans joins around constants, not around substituted variables: the
    town filter took 6 times longer bound by substitution (or VALUES)."""
    terms = {name: str(to_ox(value)) for name, value in bindings.items()}
    pattern = re.compile(r"\?(" + "|".join(map(re.escape, terms)) + r")\b")
    return "".join(line if line.lstrip().startswith("#") else
                   pattern.sub(lambda m: terms[m.group(1)], line)
                   for line in query.splitlines(keepends=True))


def paged(query: str, limit: int, offset: int) -> str:
    """The query with LIMIT/OFFSET. SPARQL cannot bind them, so they are appended as text: both are
    integers computed from checked numbers (`int()` again here), never request text."""
    return f"{query}\nLIMIT {int(limit)}\nOFFSET {int(offset)}\n"


def matching_events(store, filters: AgendaFilters, limit: int, offset: int = 0) -> list[URIRef]:
    """One page of matching events, in start order (IRIs only: the page then reads its few events).

    Paging happens in the store: at 100,000 events, bringing every match back to Python to slice
    it costs seconds."""
    rows = store.select(paged(agenda_query("agenda", filters), limit, offset))
    return [row["event"] for row in rows]


def count_events(store, filters: AgendaFilters) -> int:
    rows = store.select(agenda_query("agenda_count", filters))
    return int(rows[0]["count"].toPython()) if rows else 0


def summaries(store, events: list[URIRef], language: str) -> list[dict]:
    """What listings and calendars show of each event, in the visitor's language when possible."""
    query = load_query("event_summary")
    return [entry for entry in (summary(store.select(query, {"event": e}), e, language)
                                for e in events) if entry is not None]


def summary(rows: list[dict], event: URIRef, language: str) -> dict | None:
    """The event's summary from `event_summary`'s rows (one per key and value), or None when it
    has no start or no name (not an event a listing shows)."""
    values: dict[str, list] = {}
    for row in rows:
        values.setdefault(str(row["key"]), []).append(row["value"])
    if not values.get("start") or not values.get("name"):
        return None

    def first(key: str):
        return values[key][0] if values.get(key) else None

    url = first("url")
    return {
        "iri": str(event),
        "name": _in_language(values.get("name", []), language),
        "description": _in_language(values.get("description", []), language),
        "start": str(first("start")),
        "start_value": first("start"),
        "end_value": first("end"),
        "url": str(url) if isinstance(url, URIRef) else "",
        "place": _in_language(values.get("placeName", []), language),
        "street": _in_language(values.get("street", []), language),
        "locality": _in_language(values.get("locality", []), language),
        "status": STATUS_WORDS.get(first("status")),
    }


def _in_language(values: list, language: str) -> str:
    for value in values:
        if isinstance(value, Literal) and value.language == language:
            return str(value)
    for value in values:
        if not (isinstance(value, Literal) and value.language):
            return str(value)
    return str(values[0]) if values else ""


def cities(store, day: date | None = None) -> list[str]:
    """The towns with an upcoming published event (from `day`, today by default), by name."""
    first_day = Literal((day or today()).isoformat())
    check = load_query("city_has_upcoming")
    towns = {str(row["locality"]) for row in store.select(load_query("cities"))
             if store.select(check, {"locality": row["locality"], "today": first_day})}
    return sorted(towns, key=str.lower)
