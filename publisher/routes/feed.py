"""`/feed`: the change feed, a Linked Data Event Stream (LDES) paginated as a TREE collection.

Every creation, update and removal of an event is an immutable member (harvester.changes): a
version of the event, `dct:isVersionOf` the event and `dct:created` at the harvest's time, its
triples in a named graph named after the member (so that the whole description — places,
offers — travels with it and clients need no shape to extract it). A removal is a tombstone: a
member typed `as:Delete` (ActivityStreams) with the same two properties and nothing else.

Pages are numbered from 0 and linked forward by a `tree:GreaterThanOrEqualToRelation` on
`dct:created`. A page that has a next page can no longer change (`Cache-Control: immutable`);
the newest page is short-lived. A page number that does not exist is a 404, never an empty page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from harvester.changes import ChangeLog, Member
from sparql.accept import best_match
from sparql.errors import NotAcceptable, NotFound

router = APIRouter()

LDES = "https://w3id.org/ldes#"
TREE = "https://w3id.org/tree#"
AS = "https://www.w3.org/ns/activitystreams#"
DCT = "http://purl.org/dc/terms/"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDFS_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
XSD_DATETIME = ox.NamedNode("http://www.w3.org/2001/XMLSchema#dateTime")
CREATED = ox.NamedNode(DCT + "created")
IS_VERSION_OF = ox.NamedNode(DCT + "isVersionOf")
PREFIXES = {"ldes": LDES, "tree": TREE, "as": AS, "dct": DCT, "schema": "http://schema.org/",
            "xsd": "http://www.w3.org/2001/XMLSchema#"}

# media type -> serialiser; only formats that carry named graphs (the members' graphs). Pages are
# written by pyoxigraph, like the dumps, so that both spell every literal the same way.
FEED_FORMATS = {
    "application/trig": ox.RdfFormat.TRIG,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=60"


def change_log(request: Request) -> ChangeLog:
    settings = request.app.state.settings
    return ChangeLog(settings.data_dir, page_size=settings.feed_page_size)


def feed_iri(base_url: str) -> ox.NamedNode:
    return ox.NamedNode(f"{base_url}/feed")


def page_iri(base_url: str, number: int) -> ox.NamedNode:
    return ox.NamedNode(f"{base_url}/feed/{number}")


def member_iri(base_url: str, seq: int) -> ox.NamedNode:
    return ox.NamedNode(f"{base_url}/feed/member/{seq}")


@dataclass
class FeedDocument:
    """The quads of one feed resource, and whether it may still change."""

    quads: list[ox.Quad] = field(default_factory=list)
    open_ended: bool = True

    def add(self, s, p, o, g=None) -> None:
        self.quads.append(ox.Quad(s, p, o, g if g is not None else ox.DefaultGraph()))


# --- building the data ----------------------------------------------------------------------


def describe_stream(doc: FeedDocument, base_url: str) -> ox.NamedNode:
    stream = feed_iri(base_url)
    doc.add(stream, RDF_TYPE, ox.NamedNode(LDES + "EventStream"))
    doc.add(stream, RDFS_LABEL, ox.Literal("Affiche: changes to the published events", language="en"))
    doc.add(stream, RDFS_LABEL,
            ox.Literal("Affiche : modifications des événements publiés", language="fr"))
    doc.add(stream, ox.NamedNode(LDES + "timestampPath"), CREATED)
    doc.add(stream, ox.NamedNode(LDES + "versionOfPath"), IS_VERSION_OF)
    doc.add(stream, ox.NamedNode(TREE + "view"), page_iri(base_url, 0))
    return stream


def add_member(doc: FeedDocument, base_url: str, member: Member) -> ox.NamedNode:
    """The member's triples, in the named graph of the member: the event's description with the
    event's own IRI replaced by the member's, or a tombstone."""
    iri = member_iri(base_url, member.seq)
    event = ox.NamedNode(member.event)
    if member.kind == "removed":
        doc.add(iri, RDF_TYPE, ox.NamedNode(AS + "Delete"), iri)
    for triple in ox.parse(member.ntriples.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES):
        subject = iri if triple.subject == event else triple.subject
        doc.add(subject, triple.predicate, triple.object, iri)
    doc.add(iri, IS_VERSION_OF, event, iri)
    doc.add(iri, CREATED, ox.Literal(member.timestamp, datatype=XSD_DATETIME), iri)
    return iri


def build_page(log: ChangeLog, base_url: str, number: int) -> FeedDocument:
    """Page `number`; NotFound past the last page (page 0 always exists)."""
    last = log.last_page()
    if number < 0 or number > last:
        raise NotFound(f"no feed page {number}: pages run from 0 to {last}")
    doc = FeedDocument(open_ended=number == last)
    stream = describe_stream(doc, base_url)
    node = page_iri(base_url, number)
    doc.add(node, RDF_TYPE, ox.NamedNode(TREE + "Node"))
    for member in log.page(number):
        doc.add(stream, ox.NamedNode(TREE + "member"), add_member(doc, base_url, member))
    if number < last:
        relation = ox.BlankNode()
        doc.add(node, ox.NamedNode(TREE + "relation"), relation)
        doc.add(relation, RDF_TYPE, ox.NamedNode(TREE + "GreaterThanOrEqualToRelation"))
        doc.add(relation, ox.NamedNode(TREE + "path"), CREATED)
        doc.add(relation, ox.NamedNode(TREE + "value"),
                ox.Literal(log.first_timestamp(number + 1), datatype=XSD_DATETIME))
        doc.add(relation, ox.NamedNode(TREE + "node"), page_iri(base_url, number + 1))
    return doc


def build_member(log: ChangeLog, base_url: str, seq: int) -> FeedDocument:
    member = log.member(seq)
    if member is None:
        raise NotFound(f"no feed member {seq}")
    doc = FeedDocument(open_ended=False)
    stream = describe_stream(doc, base_url)
    doc.add(stream, ox.NamedNode(TREE + "member"), add_member(doc, base_url, member))
    return doc


def _cursor(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise NotFound(f"no feed page {text!r}: pages are numbered 0, 1, 2…")
    return int(text)


# --- rendering ------------------------------------------------------------------------------


def feed_response(request: Request, doc: FeedDocument) -> Response:
    media_type = best_match(request.headers.get("accept"), list(FEED_FORMATS))
    if media_type is None:
        raise NotAcceptable(f"the feed is available as: {', '.join(FEED_FORMATS)}")
    body = ox.serialize(doc.quads, format=FEED_FORMATS[media_type], prefixes=PREFIXES)
    return Response(body, media_type=f"{media_type}; charset=utf-8",
                    headers={"Cache-Control": SHORT_LIVED if doc.open_ended else IMMUTABLE,
                             "Vary": "Accept"})


@router.get("/feed", include_in_schema=False)
async def feed_root(request: Request) -> Response:
    doc = FeedDocument()
    describe_stream(doc, request.app.state.settings.base_url)
    return feed_response(request, doc)


@router.get("/feed/member/{seq}", include_in_schema=False)
async def feed_member(request: Request, seq: str) -> Response:
    doc = await run_in_threadpool(build_member, change_log(request),
                                  request.app.state.settings.base_url, _cursor(seq))
    return feed_response(request, doc)


@router.get("/feed/{cursor}", include_in_schema=False)
async def feed_page(request: Request, cursor: str) -> Response:
    doc = await run_in_threadpool(build_page, change_log(request),
                                  request.app.state.settings.base_url, _cursor(cursor))
    return feed_response(request, doc)
