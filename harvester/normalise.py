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
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property, lru_cache
from itertools import islice
from types import SimpleNamespace
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

import pyoxigraph
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from ontology import AFFICHE, PROV, SCHEMA_HTTPS, discipline_for_type, discipline_keywords
from ontology import SCHEMA as SCHEMA_NAMESPACE

from . import identity
from .formats import FeedTriples, TripleIndex, canonical_iri
# each term one object, shared with the parsers (`formats.SameTerms`)
from .formats import RDF_TERMS as RDF
from .formats import SCHEMA_TERMS as SCHEMA
from .formats import XSD_TERMS as XSD
from .formats._events import EVENT_NODE_TYPES

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
# schema.org terms the identity look-ups read per node, resolved once (a namespace attribute
# is a call each time)
_S = SimpleNamespace(type=RDF.type, **{name: SCHEMA[name] for name in (
    "address", "addressLocality", "identifier", "location", "name", "propertyID", "sameAs",
    "startDate", "taxID", "url", "value", "vatID")})
# the prefixes a normalised graph binds over rdflib's own (whose `schema` is https)
PREFIXES = (("schema", SCHEMA_NAMESPACE), ("affiche", AFFICHE), ("prov", PROV))
Triple = tuple[Node, Node, Node]
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


class Triples(TripleIndex):
    """The normalised graph (a `TripleIndex`), read without a call per look-up: built once, then
    shared by validation, descriptions and the change log."""

    __slots__ = ()

    def add(self, s: Node, p: Node, o: Node) -> None:
        po = self.spo.get(s)
        if po is None:
            po = self.spo[s] = {}
        objects = po.get(p)
        if objects is None:
            po[p] = {o: None}
        else:
            objects[o] = None

    def remove(self, s: Node, p: Node, o: Node) -> None:
        self.spo.get(s, {}).get(p, {}).pop(o, None)

    def set(self, s: Node, p: Node, o: Node) -> None:
        """`Graph.set`: (s, p) has this one object."""
        self.spo.setdefault(s, {})[p] = {o: None}

    def objects(self, s: Node, p: Node) -> list[Node]:
        return list(self.spo.get(s, {}).get(p, ()))

    def value(self, s: Node, p: Node) -> Node | None:
        return next(iter(self.spo.get(s, {}).get(p, ())), None)

    def index(self) -> dict[Node, list[tuple[Node, Node]]]:
        """Each subject's (predicate, object) pairs (`pipeline.node_index` of these triples)."""
        return {s: [(p, o) for p, objects in po.items() for o in objects]
                for s, po in self.spo.items()}


@dataclass
class Normalised:
    triples: Triples
    events: list[URIRef] = field(default_factory=list)
    origins: dict[URIRef, str] = field(default_factory=dict)
    renamed: dict[Node, URIRef] = field(default_factory=dict)  # node as parsed -> minted IRI
    dropped: list[str] = field(default_factory=list)  # statements left out, and why
    warnings: list[NormaliseWarning] = field(default_factory=list)  # kept as written, but doubtful

    @cached_property
    def graph(self) -> Graph:
        """The triples as an rdflib graph, made when asked for (the harvest itself reads
        `triples`); SimpleMemory, as the normaliser's graph always was."""
        out = Graph(store="SimpleMemory")
        add = out.store.add
        for triple in self.triples:
            add(triple, None)
        for prefix, namespace in PREFIXES:
            out.bind(prefix, namespace, replace=True)
        return out


def normalise(graph: Iterable[Triple], context: NormaliseContext,
              origins: dict | None = None) -> Normalised:
    """Return the canonical triples of a parsed feed (a graph, or its triples); the input is
    left untouched."""
    dropped: list[str] = []
    # read once: each pass over an rdflib graph costs more than over a list (and through
    # `iter`: `list` would first ask the graph its length, which counts every triple). One object
    # per IRI and blank node: every look-up keyed by one afterwards finds it by identity, where an
    # equal but distinct one costs a Python call (some parsers make a new IRI per statement).
    # Literals are left as they are: hashing one is itself a Python call.
    nodes: dict[Node, Node] = dict(_KNOWN)
    parsed = _read_interned(graph, nodes.setdefault)
    # what might need rewriting is checked once per distinct IRI (the feed's own, interned after
    # the known ones, and the literals' datatypes), not once per statement
    datatypes = {o.datatype for _, _, o in parsed if type(o) is Literal}
    terms = (*islice(nodes, len(_KNOWN), None), *datatypes)
    triples = _rewrite_schema_https(parsed, dropped, terms)
    lookups = _Lookups(triples)
    parsed_events = sorted(lookups.events, key=str)
    renamed = _mint_iris(parsed_events, lookups, context)
    out = Triples()
    spo = out.spo
    # a feed repeats its towns, prices, types…: each (property, value) is normalised once, and
    # kept as (value, whether it is left out)
    values: dict[tuple[Node, Node], tuple[Node, bool]] = {}
    get_renamed = renamed.get
    for s, p, o in triples:
        o = get_renamed(o, o)
        known = values.get((p, o))
        if known is None:
            value = _well_formed_language(_normalise_object(p, o, context), context)
            known = values[(p, o)] = (value, p in URL_PROPERTIES and _is_script_url(value))
        value, left_out = known
        if left_out:
            dropped.append(f"left out {_local_name(p)} {str(value)[:60]!r}: not a web address")
            continue
        s = get_renamed(s, s)
        po = spo.get(s)
        if po is None:
            spo[s] = {p: {value: None}}
            continue
        objects = po.get(p)
        if objects is None:
            po[p] = {value: None}
        else:
            objects[value] = None
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
    return Normalised(triples=out, events=events, origins=event_origins, renamed=renamed,
                      dropped=dropped, warnings=warnings)


def _read_interned(graph: Iterable[Triple], intern: Callable[[Node, Node], Node]) -> list[Triple]:
    """The triples, each IRI and blank node interned (see `normalise`). A parser's `FeedTriples`
    are read as they are held, each subject and each of its properties interned once."""
    if not isinstance(graph, FeedTriples):
        return [(intern(s, s), intern(p, p), o if type(o) is Literal else intern(o, o))
                for s, p, o in iter(graph)]
    parsed: list[Triple] = []
    for s, po in graph.spo.items():
        s = intern(s, s)
        for p, objects in po.items():
            p = intern(p, p)
            parsed += [(s, p, o if type(o) is Literal else intern(o, o)) for o in objects]
    return parsed


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
    return _needs_rewrite_terms(term for triple in graph for term in triple)


def _needs_rewrite_terms(terms: Iterable[Node]) -> bool:
    """`_needs_rewrite` of the triples these terms are all the terms of."""
    checked: set[Node] = set()  # IRIs only: hashing a Literal is a Python call, an IRI's is not
    kinds: dict[type, type | None] = {}  # isinstance(…, Literal) is a Python call (an ABC)
    for term in terms:
        kind = kinds.get(type(term), _UNKNOWN)
        if kind is _UNKNOWN:
            kind = kinds[type(term)] = next(
                (k for k in (URIRef, Literal) if isinstance(term, k)), None)
        if kind is Literal:
            term = term.datatype
            if term is None:
                continue
        elif kind is None:
            continue
        if term in checked:
            continue
        checked.add(term)
        if str(term).startswith(SCHEMA_HTTPS) or not _is_valid_iri(term):
            return True
    return False


_UNKNOWN = object()


def _rewrite_schema_https(triples: list[Triple], dropped: list[str],
                          terms: Iterable[Node] | None = None) -> list[Triple]:
    """Rewrite https://schema.org/ to http. A node named by an unusable IRI (relative, with
    spaces…) becomes a blank node, so it gets an IRI of ours; such a property or type is left out.
    Triples with nothing to rewrite are returned as they are (and not changed later). `terms`,
    when given, are all the triples' distinct terms (or more)."""
    if not (_needs_rewrite(triples) if terms is None else _needs_rewrite_terms(terms)):
        return triples
    out = Graph()  # the rewritten triples, each once, in the order rdflib gives them
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
            invalid = p if not _is_valid_iri(p) else o
            dropped.append(f"left out a statement with an invalid IRI: {str(invalid)[:120]!r}")
            continue
        out.add((usable(s), _https_to_http(p), usable(o)))
    return list(out)


# The IRIs normalisation compares with, as the objects the feed's own are interned to (above).
# Only http://schema.org/ ones (the rewriting makes new objects of https ones anyway): none of them
# needs rewriting, so only what a feed adds after them is checked.
_KNOWN = {term: term for term in (
    *vars(_S).values(), *ENTITY_KINDS, *EVENT_NODE_TYPES, *URL_PROPERTIES, *DATE_PROPERTIES,
    *TEXT_PROPERTIES, *ENUM_PROPERTIES, *DECIMAL_PROPERTIES, SCHEMA.Offer, SCHEMA.AggregateOffer,
    SCHEMA.price, SCHEMA.priceCurrency, SCHEMA.keywords, SCHEMA.Event)
    if not str(term).startswith(SCHEMA_HTTPS)}


# --- identity -------------------------------------------------------------------------------


class _Lookups:
    """The look-ups minting makes, over a graph read once into dictionaries: rdflib's own cost
    several times more each, and minting makes several per node. Objects come in the graph's
    order, as rdflib gives them."""

    def __init__(self, graph: Iterable[Triple]) -> None:
        self._pairs: dict[Node, list[tuple[Node, Node]]] = {}
        self._objects: dict[Node, dict[Node, list[Node]]] = {}  # made per node when asked
        self.located: set[Node] = set()  # objects of schema:location
        self.events: set[Node] = set()  # nodes typed as a schema.org Event (`event_nodes`)
        self.types: dict[Node, list[Node]] = {}  # each node's rdf:type, in the graph's order
        # a dict, not `p == …`: an IRI's hash is cached, its equality is a Python call
        special = {SCHEMA.location: self.located, RDF.type: self.events}
        event_types, types = EVENT_NODE_TYPES, self.types
        pairs = self._pairs
        subject, current = None, None
        for s, p, o in graph:
            if s is not subject:  # a graph gives each subject's triples together
                subject, current = s, pairs.get(s)
                if current is None:
                    current = pairs[s] = []
            current.append((p, o))
            found = special.get(p)
            if found is self.located:
                found.add(o)
            elif found is not None:
                types.setdefault(s, []).append(o)
                if o in event_types:
                    found.add(s)

    def objects(self, node: Node, prop: URIRef) -> Iterator[Node]:
        by_property = self._objects.get(node)
        if by_property is None:
            by_property = self._objects[node] = {}
            for p, o in self._pairs.get(node, ()):
                objects = by_property.get(p)
                if objects is None:
                    by_property[p] = [o]
                else:
                    objects.append(o)
        return iter(by_property.get(prop, ()))

    def predicate_objects(self, node: Node) -> Iterator[tuple[Node, Node]]:
        return iter(self._pairs.get(node, ()))

    def subjects(self) -> Iterable[Node]:
        return self._pairs.keys()


def _first_text(graph: _Lookups, node: Node, prop: URIRef) -> str:
    values = sorted(str(v) for v in graph.objects(node, prop) if isinstance(v, Literal))
    return values[0] if values else ""


def _organiser_id(graph: _Lookups, node: Node) -> str:
    """What the organiser identifies the event by: identifier, own IRI, URL (+ start), or content."""
    identifier = _first_text(graph, node, _S.identifier)
    if identifier:
        return f"id:{identifier}"
    if isinstance(node, URIRef):
        return f"iri:{node}"
    start = _first_text(graph, node, _S.startDate)
    urls = sorted(str(u) for u in graph.objects(node, _S.url))
    if urls:
        return f"url:{urls[0]}|{start}"
    location = next(graph.objects(node, _S.location), None)
    place = _first_text(graph, location, _S.name) if location is not None else ""
    return f"content:{_first_text(graph, node, _S.name)}|{start}|{place}"


def _entity_identity(graph: _Lookups, node: Node) -> tuple[str, str]:
    """(label, identity) for a place, organisation, person or work."""
    name = _first_text(graph, node, _S.name)
    shared = identity.strongest(_external_ids(graph, node))
    if shared:  # the key must not depend on how each source spells the name
        return shared, f"ext:{shared}"
    address = next(graph.objects(node, _S.address), None)
    locality = ""
    if address is not None:
        locality = _first_text(graph, address, _S.addressLocality) or (
            str(address) if isinstance(address, Literal) else "")
    if name:
        return name, f"name:{_fold(name)}|{_fold(locality)}"
    return str(node), f"node:{node}"


def _external_ids(graph: _Lookups, node: Node) -> set[str]:
    """Wikidata, Artsdata, ISNI, SIRET, KBO identifiers of a node: its own IRI, its sameAs, its
    identifier (text or PropertyValue with a propertyID), its vatID/taxID."""
    found = set()
    candidates: list[tuple[str, str | None]] = [(str(node), None)] if isinstance(node, URIRef) else []
    candidates += [(str(v), None) for v in graph.objects(node, _S.sameAs)]
    candidates += [(str(v), "vat") for v in graph.objects(node, _S.vatID)]
    candidates += [(str(v), "siret") for v in graph.objects(node, _S.taxID)]
    for value in graph.objects(node, _S.identifier):
        if isinstance(value, Literal):
            label, _, rest = str(value).partition(":")
            candidates.append((rest, label) if rest else (str(value), None))
        else:
            scheme = _first_text(graph, value, _S.propertyID) or _first_text(graph, value, _S.name)
            candidates += [(str(v), scheme) for v in graph.objects(value, _S.value)]
            candidates += [(str(v), None) for v in graph.objects(value, _S.url)]
    for text, scheme in candidates:
        found.add(identity.external_id(text, scheme))
    found.discard(None)
    return found


@lru_cache(maxsize=4096)
def _fold(text: str) -> str:
    """A name or town for comparing (a feed names its venues and towns again and again)."""
    return identity.slugify(text, limit=200)


@lru_cache(maxsize=4096)
def _entity_key(label: str, ident: str) -> str:
    """`identity.entity_key`, once per entity of a feed (each event's venue is a node of its own
    that names the same venue)."""
    return identity.entity_key(label, ident)


@lru_cache(maxsize=4096)
def _signature_digest(signature: str) -> str:
    """The digest naming a blank node by its content: the same addresses and prices recur."""
    return identity.digest(signature, length=8)


def _entity_kind(graph: _Lookups, node: Node) -> str | None:
    for rdf_type in graph.types.get(node, ()):
        if rdf_type in ENTITY_KINDS:
            return ENTITY_KINDS[rdf_type]
    return None


def _mint_iris(events: list[Node], lookups: _Lookups, context: NormaliseContext) -> dict[Node, URIRef]:
    renamed: dict[Node, URIRef] = {}
    # one object per minted IRI: each event names its venue with a node of its own, all minted to
    # the same IRI, which every later look-up then finds by identity (equality is a Python call)
    minted = _Minted()
    for node in events:
        key = identity.event_key(context.source_id, _organiser_id(lookups, node))
        renamed[node] = minted[identity.iri(context.base_url, "event", key)]
    for node in set(lookups.subjects()):
        if node in renamed or _is_ours(node, context):
            continue
        kind = _entity_kind(lookups, node)
        if kind is None and node in lookups.located and isinstance(node, BNode):
            kind = "place"
        if kind is None:
            continue
        label, ident = _entity_identity(lookups, node)
        renamed[node] = minted[identity.iri(context.base_url, kind, _entity_key(label, ident))]
    _skolemise_rest(lookups, renamed, minted)
    return renamed


class _Minted(dict):
    """IRI text -> its one URIRef."""

    def __missing__(self, text: str) -> URIRef:
        iri = self[text] = URIRef(text)
        return iri


def _is_ours(node: Node, context: NormaliseContext) -> bool:
    return isinstance(node, URIRef) and identity.parse_iri(context.base_url, str(node)) is not None


def _skolemise_rest(graph: _Lookups, renamed: dict[Node, URIRef], minted: _Minted) -> None:
    """Give every remaining blank node a stable IRI under the first minted node that reaches it."""
    queue = deque(sorted(renamed, key=lambda n: str(renamed[n])))
    spelled: dict[Node, str] = {}  # term -> n3(): the same prices, types, towns again and again
    while queue:
        owner = queue.popleft()
        blank = [(p, o) for p, o in graph.predicate_objects(owner) if isinstance(o, BNode)]
        for p, o in sorted(blank, key=lambda po: (str(po[0]), str(po[1]))):
            if o in renamed:
                continue
            signature = _content_signature(graph, o, spelled=spelled)
            fragment = f"{_local_name(p)}-{_signature_digest(signature)}"
            base = str(renamed[owner]).split("#", 1)[0]
            renamed[o] = minted[f"{base}#{fragment}"]
            queue.append(o)


def _content_signature(graph: _Lookups, node: Node, depth: int = 0,
                       spelled: dict[Node, str] | None = None) -> str:
    spelled = {} if spelled is None else spelled
    parts = []
    for p, o in graph.predicate_objects(node):
        if isinstance(o, BNode):
            value = _content_signature(graph, o, depth + 1, spelled) if depth < 4 else "_"
        else:
            value = spelled.get(o)
            if value is None:
                value = spelled[o] = o.n3()
        predicate = spelled.get(p)
        if predicate is None:
            predicate = spelled[p] = p.n3()
        parts.append(f"{predicate} {value}")
    return ";".join(sorted(parts))


def _keep_organiser_iris(out: Triples, renamed: dict[Node, URIRef], context: NormaliseContext) -> None:
    same_as = SCHEMA.sameAs
    for original, minted in renamed.items():
        if isinstance(original, URIRef) and str(original).startswith(("http://", "https://")):
            out.add(minted, same_as, original)


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
        # normalize=False: the same literal for a string, made without rdflib's casts
        return Literal(text, lang=value.language or context.language, normalize=False)
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


_PLAIN_DATATYPES = (None, XSD.string)


def _is_plain_string(value: Literal) -> bool:
    return value.datatype in _PLAIN_DATATYPES or value.language is not None


def _enum_iri(text: str) -> URIRef | None:
    name = text.strip().rsplit("/", 1)[-1]
    # a name a feed wrote: looked up among the vocabulary's objects, never added to them
    return canonical_iri(_SCHEMA_HTTP + name) if re.match(r"^[A-Z][A-Za-z]+$", name) else None


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


def _add_disciplines(graph: Triples, events: list[URIRef]) -> None:
    by_type = discipline_for_type()
    keywords = discipline_keywords()
    rdf_type, event_type, discipline = _S.type, SCHEMA.Event, AFFICHE.discipline
    schema_keywords = SCHEMA.keywords
    for event in events:
        # Aggregators ask for `?e a schema:Event`; subtypes alone would hide theatre, dance…
        graph.add(event, rdf_type, event_type)
        for type_ in graph.objects(event, rdf_type):
            if type_ in by_type:
                graph.add(event, discipline, by_type[type_])
        for keyword in graph.objects(event, schema_keywords):
            for word in re.split(r"[,;]", str(keyword)):
                concept = keywords.get(word.strip().lower())
                if concept is not None:
                    graph.add(event, discipline, concept)


def _add_provenance(graph: Triples, events: list[URIRef], context: NormaliseContext) -> None:
    source, derived, harvested = context.source_iri, PROV.wasDerivedFrom, AFFICHE.harvestedAt
    moment = None
    if context.harvested_at is not None:
        moment = Literal(context.harvested_at.isoformat(), datatype=XSD.dateTime)
    for event in events:
        graph.add(event, derived, source)
        if moment is not None:
            graph.add(event, harvested, moment)


# --- checks and offers ----------------------------------------------------------------------

_CHECKED_TIMES = ("startDate", "endDate", "doorTime")


def _suspicious_offsets(graph: Triples, events: list[URIRef],
                        context: NormaliseContext) -> list[NormaliseWarning]:
    """A time whose offset is not the one the source's zone has at that moment (`+00:00` for a
    Paris venue in July) is most often a local time with a wrong offset: it is reported, and kept
    as written, since Affiche cannot know which of the two the organiser meant."""
    zone = ZoneInfo(context.timezone)
    warnings = []
    # the properties as the graph holds them (interned): found by identity
    properties = [(name, _KNOWN[SCHEMA[name]]) for name in _CHECKED_TIMES]
    for event in events:
        for name, prop in properties:
            for value in graph.objects(event, prop):
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


def _offers(graph: Triples) -> list[Node]:
    """The nodes typed schema:Offer or schema:AggregateOffer."""
    rdf_type, kinds = RDF.type, (SCHEMA.Offer, SCHEMA.AggregateOffer)
    return [s for s, po in graph.spo.items()
            if (types := po.get(rdf_type)) and (kinds[0] in types or kinds[1] in types)]


def _normalise_offers(graph: Triples) -> None:
    """Prices the feed wrote as text: a range (`10-25 €`) becomes an AggregateOffer with lowPrice
    and highPrice, a sign gives the ISO 4217 currency, `€`/`euros` as a currency becomes EUR."""
    price_currency, schema_price, decimal = SCHEMA.priceCurrency, SCHEMA.price, XSD.decimal
    for offer in _offers(graph):
        for currency in graph.objects(offer, price_currency):
            code = _currency_code(str(currency))
            if code is not None and code != str(currency):
                graph.set(offer, price_currency, Literal(code))
        for price in graph.objects(offer, schema_price):
            if not isinstance(price, Literal) or price.datatype == decimal:
                continue
            read = _read_price(str(price))
            if read is None:
                continue  # left as written: validation says the price is not a number
            graph.remove(offer, schema_price, price)
            if read.high is None:
                graph.add(offer, schema_price, Literal(str(read.low), datatype=decimal))
            else:
                graph.remove(offer, RDF.type, SCHEMA.Offer)
                graph.add(offer, RDF.type, SCHEMA.AggregateOffer)
                graph.add(offer, SCHEMA.lowPrice, Literal(str(read.low), datatype=decimal))
                graph.add(offer, SCHEMA.highPrice, Literal(str(read.high), datatype=decimal))
            if read.currency and graph.value(offer, price_currency) is None:
                graph.add(offer, price_currency, Literal(read.currency))


@cache
def _currency_code(text: str) -> str | None:
    """The ISO 4217 code a feed's currency stands for, or None (a feed repeats its currency)."""
    code = _CURRENCY_WORDS.get(text.strip().lower(), text.strip().upper())
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


@lru_cache(maxsize=4096)
def _read_price(text: str):
    """`csv.parse_price`, once per spelling (a feed repeats its prices)."""
    from .formats.csv import parse_price  # the one reader of prices as people write them

    return parse_price(text)
