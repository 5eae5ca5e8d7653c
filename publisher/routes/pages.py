"""Entity pages (`/event/{key}`, `/place/{key}`…) and the agenda home page with its filters.

Each entity route reads the entity's graph once, then `negotiation` renders it as HTML (with the
embedded JSON-LD) or as an RDF format. An unknown key is a 404, a key the change log says was
removed from its feed a 410. Each route does its store work and rendering in one worker-thread
call: fewer hops between the event loop and the thread pool.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from rdflib import Literal, URIRef
from starlette.concurrency import run_in_threadpool

from harvester.changes import ChangeLog
from ontology import AFFICHE, disciplines
from sparql.errors import BadRequest, Gone, NotFound
from sparql.queries import load_query

from ..agenda import AgendaFilters, cities, count_events, discipline_names, matching_events, \
    parse_filters, summaries
from ..http_cache import cache_control, data_modified, last_modified_header, store_cache
from ..i18n import page_language
from ..jsonld_tree import embedded_jsonld
from ..negotiation import HTML, RDF_FORMATS, choose, rdf_response, split_suffix
from ..templating import template_context
from ..views import STATUS_WORDS, entity_view, event_view

router = APIRouter()
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,200}$")
ENTITY_KINDS = ("event", "place", "organization", "person", "work")


def listing(rows: list[dict], language: str) -> list[dict]:
    """Rows of events_of (one per name language) -> one entry per event."""
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


def page_headers(settings, last_modified: str | None, vary: str) -> dict[str, str]:
    """Validators and caching for a public page (the ETag is added by `ConditionalMiddleware`)."""
    headers = {"Cache-Control": cache_control(settings.page_max_age), "Vary": vary}
    if last_modified:
        headers["Last-Modified"] = last_modified
    return headers


@dataclass
class AgendaPage:
    events: list[dict]
    page: int
    pages: int
    total: int


def agenda_page(store, filters: AgendaFilters, page: int, size: int, language: str) -> AgendaPage:
    total = count_events(store, filters)
    shown = matching_events(store, filters, limit=size, offset=(page - 1) * size) if total else []
    return AgendaPage(summaries(store, shown, language), page, max(1, math.ceil(total / size)), total)


@router.get("/", include_in_schema=False)
async def home(request: Request, page: int = 1) -> Response:
    if page < 1 or page > 10_000:
        raise BadRequest("page must be between 1 and 10000")
    filters = parse_filters(request.query_params)
    return await run_in_threadpool(home_answer, request, filters, page)


def home_answer(request: Request, filters: AgendaFilters, page: int) -> Response:
    settings = request.app.state.settings
    store = request.app.state.store
    language = page_language(request, settings.default_language)
    modified = data_modified(store)
    # Sorting every upcoming event takes seconds at 100,000 events: kept until the next harvest
    # (or the next day, which moves "from today").
    cache, version = store_cache(request.app), (modified, filters.first_day)
    agenda = cache.get(("agenda", filters, page, settings.page_size, language), version,
                       lambda: agenda_page(store, filters, page, settings.page_size, language))
    city_names = cache.get(("cities",), version, lambda: cities(store))
    labels = disciplines()
    choices = sorted(((name, labels[concept].get(language, name))
                      for name, concept in discipline_names().items()), key=lambda c: c[1].lower())
    context = template_context(
        request, language, events=agenda.events, page=agenda.page, pages=agenda.pages,
        total=agenda.total, has_next=agenda.page < agenda.pages, filters=filters,
        filtered=filters.any, cities=city_names, disciplines=choices, path="/",
        canonical_query=filters.query_string(page=page if page > 1 else ""),
    )
    return request.app.state.templates.TemplateResponse(
        request, "home.html", context,
        headers=page_headers(settings, modified, "Accept-Language"))


async def entity_page(request: Request, kind: str, key: str) -> Response:
    key, suffix = split_suffix(key)
    if not KEY.match(key):
        raise NotFound(f"no {kind} with key {key!r}")
    media_type = choose(request, suffix)
    return await run_in_threadpool(entity_answer, request, kind, key, media_type)


def entity_answer(request: Request, kind: str, key: str, media_type: str) -> Response:
    settings = request.app.state.settings
    store = request.app.state.store
    path = f"/{kind}/{key}"
    iri = URIRef(f"{settings.base_url}{path}")
    graph = store.construct(load_query("describe"), {"root": iri})
    if (iri, None, None) not in graph:
        raise_if_gone(settings, iri, kind)
        raise NotFound(f"no {kind} with key {key!r}")
    harvested = sorted(str(v) for v in graph.objects(iri, AFFICHE.harvestedAt))
    modified = last_modified_header(harvested[-1]) if harvested else data_modified(store)
    if media_type != HTML:
        return rdf_response(graph, media_type, page_headers(settings, modified, "Accept"))
    language = page_language(request, settings.default_language)
    values = {"kind": kind, "path": path, "alternates": _alternates(request, path),
              "jsonld": embedded_jsonld(graph, iri, language)}
    if kind == "event":
        values["event"] = event_view(graph, iri, language)
        template = "event.html"
    else:
        rows = store.select(load_query("events_of"), {"entity": iri})
        values["entity"] = entity_view(graph, iri, language)
        values["events"] = listing(rows, language)
        template = "entity.html"
    return request.app.state.templates.TemplateResponse(
        request, template, template_context(request, language, **values),
        headers=page_headers(settings, modified, "Accept, Accept-Language"))


def raise_if_gone(settings, iri: URIRef, kind: str) -> None:
    """410 for what the change log says was withdrawn or dropped from its feed."""
    removed = ChangeLog(settings.data_dir).removed_at(str(iri))
    if removed:
        raise Gone(f"this {kind} was withdrawn from its source on {removed}")


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



