"""Entity pages (`/event/{key}`, `/place/{key}`…) and the agenda home page.

Each route reads the entity's graph once, then `negotiation` renders it as HTML (with the embedded
JSON-LD) or as an RDF format.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response
from rdflib import Graph, Literal, URIRef
from starlette.concurrency import run_in_threadpool

from sparql.errors import BadRequest, NotFound
from sparql.queries import load_query

from ..i18n import page_language
from ..templating import template_context
from ..jsonld_tree import embedded_jsonld
from ..negotiation import HTML, RDF_FORMATS, choose, rdf_response, split_suffix
from ..views import STATUS_WORDS, entity_view, event_view

router = APIRouter()
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,200}$")
ENTITY_KINDS = ("event", "place", "organization", "person", "work")


async def _describe(request: Request, iri: URIRef) -> Graph:
    store = request.app.state.store
    return await run_in_threadpool(store.construct, load_query("describe"), {"root": iri})


def listing(rows: list[dict], language: str) -> list[dict]:
    """Rows of events_of / upcoming_events (one per name language) -> one entry per event."""
    events: dict[str, dict] = {}
    for row in rows:
        iri = str(row["event"])
        name = row.get("name")
        entry = events.get(iri)
        if entry is None:
            entry = events[iri] = {
                "iri": iri, "name": str(name) if name is not None else iri,
                "start": str(row.get("start", "")),
                "place": str(row.get("placeName", "") or ""),
                "locality": str(row.get("locality", "") or ""),
                "status": STATUS_WORDS.get(row.get("status")),
            }
        elif isinstance(name, Literal) and name.language == language:
            entry["name"] = str(name)
    return list(events.values())


def _alternates(request: Request, path: str) -> list[dict]:
    return [{"media_type": f.media_type, "href": f"{path}{f.suffix}", "name": f.name}
            for f in RDF_FORMATS]


def _cache_headers() -> dict[str, str]:
    return {"Cache-Control": "public, max-age=300"}


@router.get("/", include_in_schema=False)
async def home(request: Request, page: int = 1) -> Response:
    if page < 1 or page > 10_000:
        raise BadRequest("page must be between 1 and 10000")
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    today = datetime.now(timezone.utc).date().isoformat()
    store = request.app.state.store
    rows = await run_in_threadpool(store.select, load_query("upcoming_events"),
                                   {"today": Literal(today)})
    events = listing(rows, language)
    size = settings.page_size
    shown = events[(page - 1) * size: page * size]
    context = template_context(request, language, events=shown, page=page,
                       has_next=len(events) > page * size, path="/")
    return request.app.state.templates.TemplateResponse(
        request, "home.html", context, headers={"Vary": "Accept-Language", **_cache_headers()})


async def entity_page(request: Request, kind: str, key: str) -> Response:
    key, suffix = split_suffix(key)
    if not KEY.match(key):
        raise NotFound(f"no {kind} with key {key!r}")
    settings = request.app.state.settings
    path = f"/{kind}/{key}"
    iri = URIRef(f"{settings.base_url}{path}")
    media_type = choose(request, suffix)
    graph = await _describe(request, iri)
    if (iri, None, None) not in graph:
        raise NotFound(f"no {kind} with key {key!r}")
    if media_type != HTML:
        return rdf_response(graph, media_type, _cache_headers())
    language = page_language(request, settings.default_language)
    values = {"kind": kind, "path": path, "alternates": _alternates(request, path),
              "jsonld": embedded_jsonld(graph, iri, language)}
    if kind == "event":
        values["event"] = event_view(graph, iri, language)
        template = "event.html"
    else:
        store = request.app.state.store
        rows = await run_in_threadpool(store.select, load_query("events_of"), {"entity": iri})
        values["entity"] = entity_view(graph, iri, language)
        values["events"] = listing(rows, language)
        template = "entity.html"
    return request.app.state.templates.TemplateResponse(
        request, template, template_context(request, language, **values),
        headers={"Vary": "Accept, Accept-Language", **_cache_headers()})


def _route(kind: str):
    async def handler(request: Request, key: str) -> Response:
        return await entity_page(request, kind, key)

    handler.__name__ = f"{kind}_page"
    return handler


for _kind in ENTITY_KINDS:
    router.add_api_route(f"/{_kind}/{{key}}", _route(_kind), methods=["GET"],
                         include_in_schema=False)


def sparql_page(request: Request, query: str | None) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    examples = [
        ("upcoming", "SELECT ?event ?start ?name WHERE {\n  ?event a schema:Event ;\n"
                     "    schema:startDate ?start ;\n    schema:name ?name .\n}\nORDER BY ?start\nLIMIT 50"),
        ("by_city", "SELECT ?event ?name ?city WHERE {\n  ?event schema:name ?name ;\n"
                    "    schema:location/schema:address/schema:addressLocality ?city .\n"
                    "  FILTER (CONTAINS(LCASE(?city), \"lyon\"))\n}"),
    ]
    prefix = "PREFIX schema: <http://schema.org/>\n"
    context = template_context(request, language, query=query or prefix + examples[0][1],
                       examples=[(name, prefix + text) for name, text in examples])
    return request.app.state.templates.TemplateResponse(request, "sparql.html", context)



