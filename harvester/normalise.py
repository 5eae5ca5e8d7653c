"""Normalise a parsed feed into Affiche's one canonical shape.

- one schema.org namespace, `http://schema.org/` (`https://schema.org/` rewritten);
- dates as xsd:date, date-times as xsd:dateTime with an offset (the source's IANA zone when the
  feed gives none, daylight saving included);
- text in language-tagged strings (the source's language unless the data says otherwise);
- URLs as IRIs, enumerations (eventStatus…) as schema.org IRIs, prices and coordinates as decimals;
- IRIs minted by Affiche for events, places, organisations, people and works (see identity.py),
  every other blank node replaced by a stable IRI under its owner, the organiser's own IRIs kept as
  `schema:sameAs`;
- disciplines from schema.org subtypes and feed keywords;
- provenance on every event: `prov:wasDerivedFrom` the source, `affiche:harvestedAt`.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

import pyoxigraph
from rdflib import RDF, BNode, Graph, Literal, URIRef
from rdflib.term import Node

from ontology import (
    AFFICHE, PROV, SCHEMA, SCHEMA_HTTPS, XSD, discipline_for_type, discipline_keywords,
)

from . import identity
from .formats._events import event_nodes

DATE_PROPERTIES = {SCHEMA[p] for p in (
    "startDate", "endDate", "doorTime", "previousStartDate", "validFrom", "validThrough",
    "availabilityStarts", "availabilityEnds",
)}
TEXT_PROPERTIES = {SCHEMA[p] for p in (
    "name", "alternateName", "description", "disambiguatingDescription", "headline", "abstract",
    "keywords", "slogan", "caption",
)}
URL_PROPERTIES = {SCHEMA[p] for p in (
    "url", "sameAs", "image", "logo", "contentUrl", "thumbnailUrl", "embedUrl", "hasMap",
    "additionalType",
)}
ENUM_PROPERTIES = {SCHEMA[p] for p in ("eventStatus", "eventAttendanceMode", "availability")}
DECIMAL_PROPERTIES = {SCHEMA[p] for p in (
    "price", "lowPrice", "highPrice", "minPrice", "maxPrice", "latitude", "longitude",
)}
ENTITY_KINDS = {
    **{SCHEMA[t]: "place" for t in ("Place", "EventVenue", "PerformingArtsTheater", "MusicVenue",
                                     "Museum", "CivicStructure", "LocalBusiness", "Library")},
    **{SCHEMA[t]: "organization" for t in ("Organization", "PerformingGroup", "TheaterGroup",
                                            "DanceGroup", "MusicGroup", "Corporation",
                                            "NGO", "EducationalOrganization")},
    SCHEMA.Person: "person",
    **{SCHEMA[t]: "work" for t in ("CreativeWork", "Play", "MusicComposition", "Movie", "Book")},
    AFFICHE.Production: "work",
}
_SCHEMA_HTTP = str(SCHEMA)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FREE_WORDS = {"free", "gratuit", "gratuite", "entrée libre", "entree libre", "libre", "0"}


@dataclass(frozen=True)
class NormaliseContext:
    base_url: str
    source_id: str
    language: str = "fr"
    timezone: str = "Europe/Paris"
    harvested_at: datetime | None = None

    @property
    def source_iri(self) -> URIRef:
        return URIRef(identity.iri(self.base_url, "source", self.source_id))


@dataclass(frozen=True)
class NormaliseWarning:
    """Something kept as the feed wrote it that looks wrong (a report entry, never a silent fix)."""

    event: URIRef
    field: str
    message: str


@dataclass
class Normalised:
    graph: Graph
    events: list[URIRef] = field(default_factory=list)
    origins: dict[URIRef, str] = field(default_factory=dict)
    renamed: dict[Node, URIRef] = field(default_factory=dict)  # node as parsed -> minted IRI
    dropped: list[str] = field(default_factory=list)  # statements left out, and why
    warnings: list[NormaliseWarning] = field(default_factory=list)  # kept as written, but doubtful


def normalise(graph: Graph, context: NormaliseContext, origins: dict | None = None) -> Normalised:
    """Return the canonical graph of a parsed feed; the input graph is left untouched."""
    dropped: list[str] = []
    parsed = list(graph)  # read once: each pass over an rdflib graph costs more than over a list
    canonical = _rewrite_schema_https(graph, parsed, dropped)
    triples = parsed if canonical is graph else list(canonical)
    parsed_events = event_nodes(canonical)
    renamed = _mint_iris(parsed_events, triples, context)
    # rdflib's default store keeps contexts (named graphs) this graph never has: about a third
    # of the cost of each add. SimpleMemory keeps the same triples without them.
    out = Graph(store="SimpleMemory")
    values: dict[tuple[Node, Node], Node] = {}  # a feed repeats its towns, prices, types…
    for s, p, o in triples:
        o = renamed.get(o, o)
        value = values.get((p, o))
        if value is None:
            value = values[(p, o)] = _well_formed_language(_normalise_object(p, o, context), context)
        if p in URL_PROPERTIES and _is_script_url(value):
            dropped.append(f"left out {_local_name(p)} {str(value)[:60]!r}: not a web address")
            continue
        out.add((renamed.get(s, s), p, value))
    _keep_organiser_iris(out, renamed, context)
    events = sorted({renamed.get(n, n) for n in parsed_events}, key=str)
    _add_disciplines(out, events)
    _add_provenance(out, events, context)
    _normalise_offers(out)
    warnings = _suspicious_offsets(out, events, context)
    event_origins = {}
    for node, where in (origins or {}).items():
        minted = renamed.get(_https_to_http(node), renamed.get(node, node))
        if isinstance(minted, URIRef):
            event_origins[minted] = where
    for prefix, namespace in (("schema", SCHEMA), ("affiche", AFFICHE), ("prov", PROV)):
        out.bind(prefix, namespace, replace=True)
    return Normalised(graph=out, events=events, origins=event_origins, renamed=renamed,
                      dropped=dropped, warnings=warnings)


def _https_to_http(term: Node) -> Node:
    if isinstance(term, URIRef) and str(term).startswith(SCHEMA_HTTPS):
        return URIRef(_SCHEMA_HTTP + str(term)[len(SCHEMA_HTTPS):])
    if isinstance(term, Literal) and term.datatype and str(term.datatype).startswith(SCHEMA_HTTPS):
        return Literal(str(term), datatype=_https_to_http(term.datatype))
    return term


def _is_valid_iri(term: Node) -> bool:
    """An absolute IRI the store can hold (checked by the store's own RFC 3987 parser)."""
    if not isinstance(term, URIRef):
        return True
    try:
        pyoxigraph.NamedNode(str(term))
    except ValueError:
        return False
    return True


def _needs_rewrite(graph: Iterable[tuple[Node, Node, Node]]) -> bool:
    """Whether some term is in https://schema.org/ or is not an IRI the store can hold: most feeds
    have none, and then the graph is used as it is rather than copied triple by triple."""
    checked: set[Node] = set()
    for triple in graph:
        for term in triple:
            if term in checked:
                continue
            checked.add(term)
            if isinstance(term, URIRef):
                if str(term).startswith(SCHEMA_HTTPS) or not _is_valid_iri(term):
                    return True
            elif isinstance(term, Literal) and term.datatype is not None:
                if str(term.datatype).startswith(SCHEMA_HTTPS) or not _is_valid_iri(term.datatype):
                    return True
    return False


def _rewrite_schema_https(graph: Graph, triples: list[tuple[Node, Node, Node]],
                          dropped: list[str]) -> Graph:
    """Rewrite https://schema.org/ to http. A node named by an unusable IRI (relative, with
    spaces…) becomes a blank node, so it gets an IRI of ours; such a property or type is left out.
    A graph with nothing to rewrite is returned as it is (and not changed later); `triples` are
    its triples, read once by the caller."""
    if not _needs_rewrite(triples):
        return graph
    out = Graph()
    unusable: dict[Node, BNode] = {}

    def usable(term: Node) -> Node:
        if isinstance(term, Literal) and term.datatype and not _is_valid_iri(term.datatype):
            dropped.append(f"the datatype {str(term.datatype)[:120]!r} is not an IRI; kept as text")
            return Literal(str(term))
        if _is_valid_iri(term):
            return _https_to_http(term)
        if term not in unusable:
            unusable[term] = BNode()
            dropped.append(f"{str(term)[:120]!r} is not a valid absolute IRI; Affiche names it itself")
        return unusable[term]

    for s, p, o in triples:
        if not _is_valid_iri(p) or (p == RDF.type and not _is_valid_iri(o)):
            dropped.append(f"left out a statement with an invalid IRI: {str(p if not _is_valid_iri(p) else o)[:120]!r}")
            continue
        out.add((usable(s), _https_to_http(p), usable(o)))
    return out


# --- identity -------------------------------------------------------------------------------


class _Lookups:
    """The look-ups minting makes, over a graph read once into dictionaries: rdflib's own cost
    several times more each, and minting makes several per node. Objects come in the graph's
    order, as rdflib gives them."""

    def __init__(self, graph: Iterable[tuple[Node, Node, Node]]) -> None:
        self._pairs: dict[Node, list[tuple[Node, Node]]] = defaultdict(list)
        self._objects: dict[tuple[Node, Node], list[Node]] = defaultdict(list)
        self.located: set[Node] = set()  # objects of schema:location
        location = SCHEMA.location  # a namespace attribute costs a call: once, not per triple
        for s, p, o in graph:
            self._pairs[s].append((p, o))
            self._objects[(s, p)].append(o)
            if p == location:
                self.located.add(o)

    def objects(self, node: Node, prop: URIRef) -> Iterator[Node]:
        return iter(self._objects.get((node, prop), ()))

    def predicate_objects(self, node: Node) -> Iterator[tuple[Node, Node]]:
        return iter(self._pairs.get(node, ()))

    def subjects(self) -> Iterable[Node]:
        return self._pairs.keys()


def _first_text(graph: _Lookups, node: Node, prop: URIRef) -> str:
    values = sorted(str(v) for v in graph.objects(node, prop) if isinstance(v, Literal))
    return values[0] if values else ""


def _organiser_id(graph: _Lookups, node: Node) -> str:
    """What the organiser identifies the event by: identifier, own IRI, URL (+ start), or content."""
    identifier = _first_text(graph, node, SCHEMA.identifier)
    if identifier:
        return f"id:{identifier}"
    if isinstance(node, URIRef):
        return f"iri:{node}"
    start = _first_text(graph, node, SCHEMA.startDate)
    urls = sorted(str(u) for u in graph.objects(node, SCHEMA.url))
    if urls:
        return f"url:{urls[0]}|{start}"
    location = next(graph.objects(node, SCHEMA.location), None)
    place = _first_text(graph, location, SCHEMA.name) if location is not None else ""
    return f"content:{_first_text(graph, node, SCHEMA.name)}|{start}|{place}"


def _entity_identity(graph: _Lookups, node: Node) -> tuple[str, str]:
    """(label, identity) for a place, organisation, person or work."""
    name = _first_text(graph, node, SCHEMA.name)
    shared = identity.strongest(_external_ids(graph, node))
    if shared:  # the key must not depend on how each source spells the name
        return shared, f"ext:{shared}"
    address = next(graph.objects(node, SCHEMA.address), None)
    locality = ""
    if address is not None:
        locality = _first_text(graph, address, SCHEMA.addressLocality) or (
            str(address) if isinstance(address, Literal) else "")
    if name:
        return name, f"name:{_fold(name)}|{_fold(locality)}"
    return str(node), f"node:{node}"


def _external_ids(graph: _Lookups, node: Node) -> set[str]:
    """Wikidata, Artsdata, ISNI, SIRET, KBO identifiers of a node: its own IRI, its sameAs, its
    identifier (text or PropertyValue with a propertyID), its vatID/taxID."""
    found = set()
    candidates: list[tuple[str, str | None]] = [(str(node), None)] if isinstance(node, URIRef) else []
    candidates += [(str(v), None) for v in graph.objects(node, SCHEMA.sameAs)]
    candidates += [(str(v), "vat") for v in graph.objects(node, SCHEMA.vatID)]
    candidates += [(str(v), "siret") for v in graph.objects(node, SCHEMA.taxID)]
    for value in graph.objects(node, SCHEMA.identifier):
        if isinstance(value, Literal):
            label, _, rest = str(value).partition(":")
            candidates.append((rest, label) if rest else (str(value), None))
        else:
            scheme = _first_text(graph, value, SCHEMA.propertyID) or _first_text(graph, value, SCHEMA.name)
            candidates += [(str(v), scheme) for v in graph.objects(value, SCHEMA.value)]
            candidates += [(str(v), None) for v in graph.objects(value, SCHEMA.url)]
    for text, scheme in candidates:
        found.add(identity.external_id(text, scheme))
    found.discard(None)
    return found


def _fold(text: str) -> str:
    return identity.slugify(text, limit=200)


def _entity_kind(graph: _Lookups, node: Node) -> str | None:
    for rdf_type in graph.objects(node, RDF.type):
        if rdf_type in ENTITY_KINDS:
            return ENTITY_KINDS[rdf_type]
    return None


def _mint_iris(events: list[Node], triples: list[tuple[Node, Node, Node]],
               context: NormaliseContext) -> dict[Node, URIRef]:
    renamed: dict[Node, URIRef] = {}
    lookups = _Lookups(triples)
    for node in events:
        key = identity.event_key(context.source_id, _organiser_id(lookups, node))
        renamed[node] = URIRef(identity.iri(context.base_url, "event", key))
    for node in set(lookups.subjects()):
        if node in renamed or _is_ours(node, context):
            continue
        kind = _entity_kind(lookups, node)
        if kind is None and node in lookups.located and isinstance(node, BNode):
            kind = "place"
        if kind is None:
            continue
        label, ident = _entity_identity(lookups, node)
        renamed[node] = URIRef(identity.iri(context.base_url, kind, identity.entity_key(label, ident)))
    _skolemise_rest(lookups, renamed)
    return renamed


def _is_ours(node: Node, context: NormaliseContext) -> bool:
    return isinstance(node, URIRef) and identity.parse_iri(context.base_url, str(node)) is not None


def _skolemise_rest(graph: _Lookups, renamed: dict[Node, URIRef]) -> None:
    """Give every remaining blank node a stable IRI under the first minted node that reaches it."""
    queue = deque(sorted(renamed, key=lambda n: str(renamed[n])))
    while queue:
        owner = queue.popleft()
        for p, o in sorted(graph.predicate_objects(owner), key=lambda po: (str(po[0]), str(po[1]))):
            if not isinstance(o, BNode) or o in renamed:
                continue
            fragment = f"{_local_name(p)}-{identity.digest(_content_signature(graph, o), length=8)}"
            base = str(renamed[owner]).split("#", 1)[0]
            renamed[o] = URIRef(f"{base}#{fragment}")
            queue.append(o)


def _content_signature(graph: _Lookups, node: Node, depth: int = 0) -> str:
    parts = []
    for p, o in graph.predicate_objects(node):
        if isinstance(o, BNode):
            value = _content_signature(graph, o, depth + 1) if depth < 4 else "_"
        else:
            value = o.n3()
        parts.append(f"{p.n3()} {value}")
    return ";".join(sorted(parts))


def _keep_organiser_iris(out: Graph, renamed: dict[Node, URIRef], context: NormaliseContext) -> None:
    for original, minted in renamed.items():
        if isinstance(original, URIRef) and str(original).startswith(("http://", "https://")):
            out.add((minted, SCHEMA.sameAs, original))


# --- values ---------------------------------------------------------------------------------


def _normalise_object(predicate: URIRef, value: Node, context: NormaliseContext) -> Node:
    if not isinstance(value, Literal):
        if predicate in ENUM_PROPERTIES:
            return _enum_iri(str(value)) or value
        return value
    if predicate in DATE_PROPERTIES:
        return normalise_date(value, context.timezone)
    if predicate in URL_PROPERTIES and re.match(r"^https?://\S+$", str(value).strip()):
        return URIRef(str(value).strip())
    if predicate in ENUM_PROPERTIES:
        return _enum_iri(str(value)) or value
    if predicate in DECIMAL_PROPERTIES:
        return normalise_decimal(value)
    if predicate in TEXT_PROPERTIES and _is_plain_string(value):
        text = re.sub(r"[ \t]+", " ", str(value)).strip()
        return Literal(text, lang=value.language or context.language)
    return value


def _is_language_tag(tag: str) -> bool:
    """A well-formed BCP 47 tag, as the store checks it."""
    try:
        pyoxigraph.Literal("", language=tag)
    except ValueError:
        return False
    return True


def _well_formed_language(value: Node, context: NormaliseContext) -> Node:
    """A BCP 47 tag the store accepts; a malformed one (`A`, `fr_FR`) gives way to the source's."""
    if isinstance(value, Literal) and value.language and not _is_language_tag(value.language):
        fixed = value.language.replace("_", "-")
        return Literal(str(value), lang=fixed if _is_language_tag(fixed) else context.language)
    return value


_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")


def _is_script_url(value: Node) -> bool:
    """A URL that runs code or reads local files when followed: never published."""
    return str(value).strip().lower().startswith(_SCRIPT_SCHEMES)


def _local_name(term: URIRef) -> str:
    return str(term).rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _is_plain_string(value: Literal) -> bool:
    return value.datatype in (None, XSD.string) or value.language is not None


def _enum_iri(text: str) -> URIRef | None:
    name = text.strip().rsplit("/", 1)[-1]
    return SCHEMA[name] if re.match(r"^[A-Z][A-Za-z]+$", name) else None


def normalise_date(value: Literal, timezone: str) -> Literal:
    """An xsd:date, or an xsd:dateTime with an offset; unreadable values are kept as written."""
    text = str(value).strip()
    if _DATE_ONLY.match(text):
        try:
            return Literal(date.fromisoformat(text).isoformat(), datatype=XSD.date)
        except ValueError:
            return Literal(text)
    candidate = text.replace(" ", "T", 1)
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return Literal(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return Literal(moment.isoformat(), datatype=XSD.dateTime)


def normalise_decimal(value: Literal) -> Literal:
    text = str(value).strip().lower()
    if text in _FREE_WORDS:
        return Literal(Decimal("0"), datatype=XSD.decimal)
    cleaned = re.sub(r"[€$£\s\u00a0]|eur|chf|cad|usd", "", text).replace(",", ".")
    try:
        return Literal(Decimal(cleaned), datatype=XSD.decimal)
    except InvalidOperation:
        return Literal(str(value))


# --- enrichment -----------------------------------------------------------------------------


def _add_disciplines(graph: Graph, events: list[URIRef]) -> None:
    by_type = discipline_for_type()
    keywords = discipline_keywords()
    for event in events:
        # Aggregators ask for `?e a schema:Event`; subtypes alone would hide theatre, dance…
        graph.add((event, RDF.type, SCHEMA.Event))
        for rdf_type in graph.objects(event, RDF.type):
            if rdf_type in by_type:
                graph.add((event, AFFICHE.discipline, by_type[rdf_type]))
        for keyword in graph.objects(event, SCHEMA.keywords):
            for word in re.split(r"[,;]", str(keyword)):
                concept = keywords.get(word.strip().lower())
                if concept is not None:
                    graph.add((event, AFFICHE.discipline, concept))


def _add_provenance(graph: Graph, events: list[URIRef], context: NormaliseContext) -> None:
    for event in events:
        graph.add((event, PROV.wasDerivedFrom, context.source_iri))
        if context.harvested_at is not None:
            graph.add((event, AFFICHE.harvestedAt,
                       Literal(context.harvested_at.isoformat(), datatype=XSD.dateTime)))


# --- checks and offers ----------------------------------------------------------------------

_CHECKED_TIMES = ("startDate", "endDate", "doorTime")


def _suspicious_offsets(graph: Graph, events: list[URIRef], context: NormaliseContext) -> list[NormaliseWarning]:
    """A time whose offset is not the one the source's zone has at that moment (`+00:00` for a
    Paris venue in July) is most often a local time with a wrong offset: it is reported, and kept
    as written, since Affiche cannot know which of the two the organiser meant."""
    zone = ZoneInfo(context.timezone)
    warnings = []
    for event in events:
        for name in _CHECKED_TIMES:
            for value in graph.objects(event, SCHEMA[name]):
                if not isinstance(value, Literal) or value.datatype != XSD.dateTime:
                    continue
                try:
                    moment = datetime.fromisoformat(str(value))
                except ValueError:
                    continue
                if moment.tzinfo is None:
                    continue
                expected = moment.astimezone(zone).utcoffset()
                if moment.utcoffset() != expected:
                    warnings.append(NormaliseWarning(event, name, (
                        f"{name} {value} has the offset {_offset(moment.utcoffset())}, but "
                        f"{context.timezone} is at {_offset(expected)} then; if {moment.strftime('%H:%M')} "
                        "is the local time, the feed's offset is wrong (kept as written)")))
    return warnings


def _offset(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


_CURRENCY_WORDS = {"€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP",
                   "chf": "CHF", "cad": "CAD", "$ca": "CAD", "ca$": "CAD", "usd": "USD", "us$": "USD"}


def _normalise_offers(graph: Graph) -> None:
    """Prices the feed wrote as text: a range (`10-25 €`) becomes an AggregateOffer with lowPrice
    and highPrice, a sign gives the ISO 4217 currency, `€`/`euros` as a currency becomes EUR."""
    from .formats.csv import parse_price  # the one reader of prices as people write them

    for offer in set(graph.subjects(RDF.type, SCHEMA.Offer)) | set(graph.subjects(RDF.type, SCHEMA.AggregateOffer)):
        for currency in list(graph.objects(offer, SCHEMA.priceCurrency)):
            code = _CURRENCY_WORDS.get(str(currency).strip().lower(), str(currency).strip().upper())
            if re.fullmatch(r"[A-Z]{3}", code) and code != str(currency):
                graph.set((offer, SCHEMA.priceCurrency, Literal(code)))
        for price in list(graph.objects(offer, SCHEMA.price)):
            if not isinstance(price, Literal) or price.datatype == XSD.decimal:
                continue
            read = parse_price(str(price))
            if read is None:
                continue  # left as written: validation says the price is not a number
            graph.remove((offer, SCHEMA.price, price))
            if read.high is None:
                graph.add((offer, SCHEMA.price, Literal(str(read.low), datatype=XSD.decimal)))
            else:
                graph.remove((offer, RDF.type, SCHEMA.Offer))
                graph.add((offer, RDF.type, SCHEMA.AggregateOffer))
                graph.add((offer, SCHEMA.lowPrice, Literal(str(read.low), datatype=XSD.decimal)))
                graph.add((offer, SCHEMA.highPrice, Literal(str(read.high), datatype=XSD.decimal)))
            if read.currency and graph.value(offer, SCHEMA.priceCurrency) is None:
                graph.add((offer, SCHEMA.priceCurrency, Literal(read.currency)))
