"""CSV / spreadsheet feeds: one event per row, under headers written in English or in French.

Organisers keep their programme in a spreadsheet; they export it as CSV with `;` (French Excel),
`,` or tab between cells, in UTF-8 (with or without BOM) or Windows-1252. Headers are matched
case-insensitively, ignoring accents, spaces, underscores and hyphens (`Date de début` =
`date_debut` = `DATEDEBUT`). Unknown columns are ignored and reported once.

| column | accepted headers | becomes |
| --- | --- | --- |
| id | id, identifiant, identifier | `schema:identifier` |
| name (required) | name, title, titre, nom | `schema:name` |
| description | description | `schema:description` |
| start (required) | start, start_date, date, debut, date_debut, date de début | `startDate` |
| end | end, end_date, fin, date_fin, date de fin | `schema:endDate` |
| venue | venue, lieu | `schema:location` → `schema:Place` `schema:name` |
| address | address, adresse | … `schema:address` → `schema:PostalAddress` … `streetAddress` |
| postal_code | postal_code, code_postal | … `schema:postalCode` |
| city | city, ville | … `schema:addressLocality` |
| country | country, pays | … `schema:addressCountry` (as written) |
| latitude | latitude | … `schema:geo` → `schema:GeoCoordinates` |
| longitude | longitude | … `schema:geo` → `schema:GeoCoordinates` |
| price | price, prix, tarif | `schema:offers` → `schema:Offer` (`AggregateOffer` for a range) |
| currency | currency, devise | … `schema:priceCurrency` (default EUR) |
| ticket_url | ticket_url, billetterie | … `schema:url` of the offer |
| url | url, lien | `schema:url` |
| image | image | `schema:image` |
| organizer | organizer, organiser, organisateur | `schema:organizer` → `schema:Organization` |
| performer | performer(s), interprète(s), artiste(s) | `schema:performer` → `PerformingGroup` |
| category | category, categorie, discipline | `schema:keywords`, one per value |
| status | status, statut | `schema:eventStatus` |
| language | language, langue | the language tag of the row's text |

Values:

- dates: ISO 8601 (`2027-03-12T20:30`, `2027-03-12 20:30`, with or without offset) or day first
  (`12/03/2027 20h30`, `12/03/2027 20:30`, `12.03.2027`, `12-03-2027`); a date alone is an
  all-day date; a time alone in `end` (`22h30`) is on the start's day. Times without an offset stay
  without one: the normaliser gives them the zone of the place or source.
- prices: `12,50 €`, `12.50`, `€12.50`, `10-25` or `10 à 25 €` (a range); `0`, `gratuit`, `free`,
  `entrée libre` mean free. An empty cell says nothing about the price.
- several performers or categories in one cell are separated by `;` or `|`.
- status: `scheduled`/`prévu`/`confirmé`, `cancelled`/`annulé`, `postponed`/`reporté`,
  `rescheduled`/`déplacé`, `online`/`en ligne`.
- language: a BCP 47 tag (`fr`, `en`, `nl-BE`, `fr-CA`) given to the row's text (names, description,
  keywords, street and town), not to codes and identifiers. Rows without one stay untagged.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Iterator

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from . import (
    FeedFormat, FeedTriples, ParseContext, ParseError, Parsed, ParseProblem, decode_text,
    RDF_TERMS, SCHEMA_TERMS, XSD_TERMS, head_text, is_web_address, new_blank,
    temporal_literal as _temporal_literal,
)

# each term one object, shared with normalisation (`SameTerms`)
SCHEMA, RDF, XSD = SCHEMA_TERMS, RDF_TERMS, XSD_TERMS

_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifiant", "identifier"),
    "name": ("name", "title", "titre", "nom"),
    "description": ("description",),
    "start": ("start", "start_date", "date", "debut", "date_debut", "date de début"),
    "end": ("end", "end_date", "fin", "date_fin", "date de fin"),
    "venue": ("venue", "lieu"),
    "address": ("address", "adresse"),
    "postal_code": ("postal_code", "code_postal"),
    "city": ("city", "ville"),
    "country": ("country", "pays"),
    "latitude": ("latitude",),
    "longitude": ("longitude",),
    "price": ("price", "prix", "tarif"),
    "currency": ("currency", "devise"),
    "ticket_url": ("ticket_url", "billetterie"),
    "url": ("url", "lien"),
    "image": ("image",),
    "organizer": ("organizer", "organiser", "organisateur"),
    "performer": ("performer", "performers", "interprète", "interprètes", "artiste", "artistes"),
    "category": ("category", "catégorie", "discipline"),
    "status": ("status", "statut"),
    "language": ("language", "langue"),
}
_REQUIRED = ("name", "start")
_DELIMITERS = (";", ",", "\t")
_LIST_SEPARATOR = re.compile(r"\s*[;|]\s*")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")

_STATUS = {
    SCHEMA.EventScheduled: ("scheduled", "prevu", "prevue", "confirme", "confirmee", "maintenu"),
    SCHEMA.EventCancelled: ("cancelled", "canceled", "annule", "annulee"),
    SCHEMA.EventPostponed: ("postponed", "reporte", "reportee"),
    SCHEMA.EventRescheduled: ("rescheduled", "deplace", "deplacee"),
    SCHEMA.EventMovedOnline: ("online", "movedonline", "enligne"),
}

_FREE = {"0", "gratuit", "gratuite", "free", "entreelibre", "libre"}
_CURRENCY_SIGNS = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP", "chf": "CHF",
    "cad": "CAD", "$ca": "CAD", "ca$": "CAD", "usd": "USD", "us$": "USD",
}
_CURRENCY_PATTERN = re.compile(
    "|".join(re.escape(sign) for sign in sorted(_CURRENCY_SIGNS, key=len, reverse=True)) + r"|\$"
)
_NUMBER = r"\d[\d\s\u00a0\u202f.,']*"
_RANGE = re.compile(rf"^(?:de|from)?\s*({_NUMBER})\s*(?:-|–|—|à|a|to)\s*({_NUMBER})$")
_DAY_FIRST = re.compile(
    r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[\sT]+(?:à\s*)?(.+))?$", re.IGNORECASE
)
_TIME = re.compile(r"^(\d{1,2})\s*(?:h\s*(\d{2})?|:(\d{2})(?::(\d{2}))?)$", re.IGNORECASE)


def _fold(text: str) -> str:
    """Header and keyword comparison ignores case, accents, spaces, underscores and punctuation."""
    stripped = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in stripped if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", stripped.lower())


_HEADERS = {_fold(alias): key for key, aliases in _ALIASES.items() for alias in aliases}


def sniff(content: bytes) -> bool:
    """A first line with cell separators and at least one header this module knows."""
    first_line = next(iter(head_text(content).splitlines()), "")
    if not any(delimiter in first_line for delimiter in _DELIMITERS):
        return False
    cells = next(csv.reader([first_line], delimiter=_delimiter(first_line)), [])
    return any(_fold(cell) in _HEADERS for cell in cells)


def parse(content: bytes, ctx: ParseContext) -> Parsed:
    """Turn a spreadsheet export into one schema:Event node per non-empty row."""
    text = _decode(content)
    delimiter = _delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    graph = FeedTriples()
    graph.bind("schema", SCHEMA)
    parsed = Parsed(graph=graph)
    try:
        columns = _read_header(reader, parsed)
        last_line = reader.line_num
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            values = {key: _clean(cells[i]) for key, i in columns.items() if i < len(cells)}
            if any(values.values()):
                row = _Row(values=values, where=f"line {line}", problems=parsed.problems)
                parsed.origins[_add_row(parsed, row)] = row.where
    except csv.Error as error:
        raise ParseError(f"not a readable CSV file (line {reader.line_num}): {error}") from None
    return parsed


def _clean(cell: str) -> str:
    """Trim a cell; a line break inside a quoted cell is kept as a plain newline."""
    return cell.replace("\r\n", "\n").replace("\r", "\n").strip()


def _decode(content: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1252, which French Excel still writes."""
    if b"\x00" in content:
        raise ParseError("not a CSV file: it holds binary data (NUL bytes)")
    text = decode_text(content)
    if not text.strip():
        raise ParseError("the CSV file is empty")
    return text


def _delimiter(header_line: str) -> str:
    """The separator used most in the header line; `;` wins a tie, as French Excel writes it."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_header(reader: Iterator[list[str]], parsed: Parsed) -> dict[str, int]:
    """Map column keys to cell positions; refuse a file without name and start columns."""
    header = next(reader, [])
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header):
        key = _HEADERS.get(_fold(cell))
        if key is None or key in columns:
            if cell.strip():
                ignored.append(cell.strip())
            continue
        columns[key] = index
    missing = [key for key in _REQUIRED if key not in columns]
    if missing:
        raise ParseError(
            f"the CSV header lacks the required column(s) {', '.join(missing)}; "
            f"accepted headers: {_accepted_headers()}"
        )
    if ignored:
        message = f"ignored unknown or repeated column(s): {', '.join(ignored)}"
        parsed.problems.append(ParseProblem(where="header", message=message))
    return columns


def _accepted_headers() -> str:
    return "; ".join(f"{key}: {'/'.join(aliases)}" for key, aliases in _ALIASES.items())


@dataclass
class _Row:
    """One row's cells by column key, where it is, and where its problems go."""

    values: dict[str, str]
    where: str
    problems: list[ParseProblem]
    language: str | None = None

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def text(self, value: str) -> Literal:
        # normalize=False: the same literal for a string (rdflib would only try, type by type,
        # how to write it back as it is)
        return Literal(value, lang=self.language or None, normalize=False)

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append(ParseProblem(where=self.where, field=field_name, message=message))


def _add_row(parsed: Parsed, row: _Row) -> BNode:
    graph = parsed.triples
    row.language = _row_language(row)
    node = new_blank()
    graph.add((node, RDF.type, SCHEMA.Event))
    if row.get("id"):
        graph.add((node, SCHEMA.identifier, Literal(row.get("id"))))
    for key, predicate in (("name", SCHEMA.name), ("description", SCHEMA.description)):
        if row.get(key):
            graph.add((node, predicate, row.text(row.get(key))))
    _add_dates(graph, node, row)
    for key, predicate in (("url", SCHEMA.url), ("image", SCHEMA.image)):
        url = _http_url(row, key, field_name=key)
        if url is not None:
            graph.add((node, predicate, url))
    _add_place(graph, node, row)
    _add_offer(graph, node, row)
    _add_agents(graph, node, row)
    for category in _split(row.get("category")):
        graph.add((node, SCHEMA.keywords, row.text(category)))
    _add_status(graph, node, row)
    return node


def _row_language(row: _Row) -> str | None:
    value = row.get("language")
    if not value:
        return None
    if _LANGUAGE_TAG.match(value):
        return value
    row.problem("inLanguage", f"language {value!r} is not a language tag such as fr, en or nl-BE")
    return None


def _split(cell: str) -> list[str]:
    return [part for part in _LIST_SEPARATOR.split(cell) if part] if cell else []


def _add_dates(graph: FeedTriples, node: Node, row: _Row) -> None:
    start = _when(row, "start", "startDate")
    if start is not None:
        graph.add((node, SCHEMA.startDate, _temporal_literal(start)))
    end = _end(row, start)
    if end is not None:
        graph.add((node, SCHEMA.endDate, _temporal_literal(end)))


def _end(row: _Row, start: date | None) -> date | None:
    """A time alone (`22h30`) ends the event on its start day, or the next one (a ball till 1h)."""
    end_time = _parse_time(row.get("end")) if row.get("end") else None
    if end_time is None or start is None:
        return _when(row, "end", "endDate")
    day = start.date() if isinstance(start, datetime) else start
    end = datetime.combine(day, end_time, tzinfo=getattr(start, "tzinfo", None))
    if isinstance(start, datetime) and end <= start:
        end += timedelta(days=1)
    return end


def _when(row: _Row, key: str, field_name: str) -> date | None:
    text = row.get(key)
    if not text:
        return None
    value = parse_when(text)
    if value is None:
        example = "2027-03-12T20:30 or 12/03/2027 20h30"
        row.problem(field_name, f"{key} {text!r} is not a date such as {example}")
    return value


def parse_when(text: str) -> date | None:
    """ISO 8601 or a day-first date, with an optional time; None when it is neither."""
    text = text.strip()
    match = _DAY_FIRST.match(text)
    if match:
        return _day_first(match)
    try:
        if len(text) <= 10:  # 2027-03-12 or 20270312: a day, not midnight
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _day_first(match: re.Match[str]) -> date | None:
    day, month, year, clock = match.groups()
    try:
        day_value = date(int(year), int(month), int(day))
    except ValueError:
        return None
    if clock is None:
        return day_value
    parsed_time = _parse_time(clock)
    return datetime.combine(day_value, parsed_time) if parsed_time is not None else None


def _parse_time(text: str) -> time | None:
    """`20h30`, `20h`, `20:30`, `20:30:00`."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute_h, minute_colon, second = match.groups()
    try:
        return time(int(hour), int(minute_h or minute_colon or 0), int(second or 0))
    except ValueError:
        return None


def _http_url(row: _Row, key: str, field_name: str) -> URIRef | None:
    text = row.get(key)
    if not text:
        return None
    if is_web_address(text):
        return URIRef(text)
    row.problem(field_name, f"{key} {text!r} is not an http(s) address")
    return None


def _add_place(graph: FeedTriples, node: Node, row: _Row) -> None:
    keys = ("venue", "address", "postal_code", "city", "country", "latitude", "longitude")
    if not any(row.get(key) for key in keys):
        return
    place = new_blank()
    graph.add((node, SCHEMA.location, place))
    graph.add((place, RDF.type, SCHEMA.Place))
    if row.get("venue"):
        graph.add((place, SCHEMA.name, row.text(row.get("venue"))))
    _add_address(graph, place, row)
    _add_geo(graph, place, row)


def _add_address(graph: FeedTriples, place: Node, row: _Row) -> None:
    parts = (
        ("address", SCHEMA.streetAddress, row.text),
        ("postal_code", SCHEMA.postalCode, Literal),
        ("city", SCHEMA.addressLocality, row.text),
        ("country", SCHEMA.addressCountry, Literal),
    )
    present = [(predicate, make(row.get(key))) for key, predicate, make in parts if row.get(key)]
    if not present:
        return
    address = new_blank()
    graph.add((place, SCHEMA.address, address))
    graph.add((address, RDF.type, SCHEMA.PostalAddress))
    for predicate, value in present:
        graph.add((address, predicate, value))


def _add_geo(graph: FeedTriples, place: Node, row: _Row) -> None:
    latitude, longitude = row.get("latitude"), row.get("longitude")
    if not latitude and not longitude:
        return
    if not (latitude and longitude):
        row.problem("geo", "a position needs both latitude and longitude")
        return
    lat = _coordinate(row, "latitude", 90)
    lon = _coordinate(row, "longitude", 180)
    if lat is None or lon is None:
        return
    coordinates = new_blank()
    graph.add((place, SCHEMA.geo, coordinates))
    graph.add((coordinates, RDF.type, SCHEMA.GeoCoordinates))
    graph.add((coordinates, SCHEMA.latitude, Literal(str(lat), datatype=XSD.decimal)))
    graph.add((coordinates, SCHEMA.longitude, Literal(str(lon), datatype=XSD.decimal)))


def _coordinate(row: _Row, key: str, limit: int) -> Decimal | None:
    text = row.get(key)
    value = _number(text.lstrip("-"))
    if value is not None and text.startswith("-"):
        value = -value
    if value is None or abs(value) > limit:
        row.problem(key, f"{key} {text!r} is not a number between -{limit} and {limit}")
        return None
    return value


def _number(text: str) -> Decimal | None:
    """A decimal written the French way (`12,50`, `1 200,00`) or the English way (`1,200.00`)."""
    digits = re.sub(r"[\s\u00a0\u202f']", "", text)
    if "," in digits and "." in digits:
        thousands = "," if digits.rfind(".") > digits.rfind(",") else "."
        digits = digits.replace(thousands, "").replace(",", ".")
    elif digits.count(",") == 1:
        digits = digits.replace(",", ".")
    elif digits.count(",") > 1 or digits.count(".") > 1:
        digits = digits.replace(",", "").replace(".", "")
    if not re.fullmatch(r"\d+(\.\d+)?", digits):
        return None
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Price:
    """What a price cell says: one price, or a range from `low` to `high`."""

    low: Decimal
    high: Decimal | None = None
    currency: str | None = None
    dollar: bool = False  # `$` alone: Canadian or US dollars, the cell does not say


def parse_price(text: str) -> Price | None:
    """`12,50 €`, `€12.50`, `10-25`, `gratuit`; None when the cell is not a price."""
    folded = _fold(text)
    if folded in _FREE or (folded and set(folded) == {"0"}):
        return Price(low=Decimal(0))
    lowered = text.strip().lower()
    signs = _CURRENCY_PATTERN.findall(lowered)
    currency = next((_CURRENCY_SIGNS[s] for s in signs if s in _CURRENCY_SIGNS), None)
    amount = _CURRENCY_PATTERN.sub(" ", lowered).strip()
    dollar = "$" in signs and currency is None
    single = _number(amount)
    if single is not None:
        return Price(low=single, currency=currency, dollar=dollar)
    match = _RANGE.match(amount)
    if match:
        low, high = _number(match.group(1)), _number(match.group(2))
        if low is not None and high is not None and low <= high:
            return Price(low=low, high=high, currency=currency, dollar=dollar)
    return None


def _add_offer(graph: FeedTriples, node: Node, row: _Row) -> None:
    price = _price(row)
    ticket_url = _http_url(row, "ticket_url", "offers")
    if price is None and ticket_url is None:
        return
    offer = new_blank()
    graph.add((node, SCHEMA.offers, offer))
    if ticket_url is not None:
        graph.add((offer, SCHEMA.url, ticket_url))
    if price is None:
        graph.add((offer, RDF.type, SCHEMA.Offer))
        return
    if price.high is None:
        graph.add((offer, RDF.type, SCHEMA.Offer))
        graph.add((offer, SCHEMA.price, _decimal(price.low)))
    else:
        graph.add((offer, RDF.type, SCHEMA.AggregateOffer))
        graph.add((offer, SCHEMA.lowPrice, _decimal(price.low)))
        graph.add((offer, SCHEMA.highPrice, _decimal(price.high)))
    if price.low == 0 and price.high is None:
        graph.add((node, SCHEMA.isAccessibleForFree, Literal(True)))
    currency = _currency(row, price)
    if currency is not None:
        graph.add((offer, SCHEMA.priceCurrency, Literal(currency)))


def _price(row: _Row) -> Price | None:
    text = row.get("price")
    if not text:
        return None
    price = parse_price(text)
    if price is None:
        row.problem("price", f"price {text!r} is not an amount such as 12,50 €, 10-25 or gratuit")
    return price


def _currency(row: _Row, price: Price) -> str | None:
    """The currency column wins, then a sign in the price cell, then EUR; `$` alone stays unsaid."""
    text = row.get("currency")
    if text:
        code = _CURRENCY_SIGNS.get(text.strip().lower(), text.strip().upper())
        if re.fullmatch(r"[A-Z]{3}", code):
            return code
        message = f"currency {text!r} is not an ISO 4217 code such as EUR or CAD"
        row.problem("priceCurrency", message)
        return None
    if price.currency is not None:
        return price.currency
    if price.dollar:
        row.problem("priceCurrency", "the price is in $ but no currency column says CAD or USD")
        return None
    return "EUR"


def _decimal(value: Decimal) -> Literal:
    return Literal(str(value), datatype=XSD.decimal)


def _add_agents(graph: FeedTriples, node: Node, row: _Row) -> None:
    if row.get("organizer"):
        name = row.text(row.get("organizer"))
        _add_agent(graph, node, SCHEMA.organizer, SCHEMA.Organization, name)
    for name in _split(row.get("performer")):
        _add_agent(graph, node, SCHEMA.performer, SCHEMA.PerformingGroup, row.text(name))


def _add_agent(graph: FeedTriples, node: Node, predicate: URIRef, kind: URIRef, name: Literal) -> None:
    agent = new_blank()
    graph.add((node, predicate, agent))
    graph.add((agent, RDF.type, kind))
    graph.add((agent, SCHEMA.name, name))


def _add_status(graph: FeedTriples, node: Node, row: _Row) -> None:
    text = row.get("status")
    if not text:
        return
    folded = _fold(text)
    status = next((iri for iri, words in _STATUS.items() if folded in words), None)
    if status is None:
        known = "scheduled, cancelled, postponed, rescheduled, online (or prévu, annulé, reporté…)"
        row.problem("eventStatus", f"status {text!r} is not one of {known}")
        return
    graph.add((node, SCHEMA.eventStatus, status))


FORMAT = FeedFormat(
    name="csv",
    label="CSV / spreadsheet",
    media_types=("text/csv", "application/csv"),
    extensions=(".csv",),
    sniff=sniff,
    parse=parse,
)
