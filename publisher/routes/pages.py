"""Entity pages (`/event/{key}`, `/place/{key}`…) and the agenda home page with its filters.

An entity's HTML page is built from its description read straight from the store's index
(`description.read_description`: no SPARQL, no rdflib graph), then a view, the embedded JSON-LD
and the template; the rendered page is kept by path and language until the store's next write
(`http_cache.PageCache`). RDF formats go through the store's CONSTRUCT and `negotiation`. An
unknown key is a 404, a key the change log says was removed from its feed a 410. Each route does
its store work and rendering in one worker-thread call: fewer hops between the event loop and the
thread pool.
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
    parse_filters, summaries, today
from ..description import NodeCache, read_description, term_text
from ..http_cache import CachedPage, PageCache, app_state_once, cache_control, last_modified_header, \
    listing_modified, sole_writer, store_cache
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


@dataclass(frozen=True)
class AgendaMatch:
    """One page of an agenda's matching events, whatever the language: what is slow to compute."""

    events: list
    total: int


def agenda_match(store, filters: AgendaFilters, page: int, size: int) -> AgendaMatch:
    total = count_events(store, filters)
    shown = matching_events(store, filters, limit=size, offset=(page - 1) * size) if total else []
    return AgendaMatch(shown, total)


def agenda_page(app, filters: AgendaFilters, page: int, size: int, language: str) -> AgendaPage:
    """The page's events in the visitor's language, from the matches kept until the data changes
    (or the day changes, which moves "from today")."""
    store, cache = app.state.store, store_cache(app)
    version = (listing_modified(app), filters.first_day)
    match = cache.get(("agenda-match", filters, page, size), version,
                      lambda: agenda_match(store, filters, page, size))
    # The match is part of the version: summaries are never kept for matches a write replaced.
    return cache.get(("agenda", filters, page, size, language), (*version, match),
                     lambda: AgendaPage(summaries(store, match.events, language), page,
                                        max(1, math.ceil(match.total / size)), match.total))


def agenda_cities(app, day=None) -> list[str]:
    """The towns the city filter offers: those with upcoming events, until the data or day changes."""
    store = app.state.store
    first_day = day or today()
    return store_cache(app).get(("cities",), (listing_modified(app), first_day),
                                lambda: cities(store, first_day))


@router.get("/", include_in_schema=False)
async def home(request: Request, page: int = 1) -> Response:
    if page < 1 or page > 10_000:
        raise BadRequest("page must be between 1 and 10000")
    filters = parse_filters(request.query_params)
    return await run_in_threadpool(home_answer, request, filters, page)


def home_answer(request: Request, filters: AgendaFilters, page: int) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    modified = listing_modified(request.app)
    agenda = agenda_page(request.app, filters, page, settings.page_size, language)
    city_names = agenda_cities(request.app)
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
    path = f"/{kind}/{key}"
    if media_type != HTML:
        return entity_rdf(request, kind, path, media_type)
    language = page_language(request, settings.default_language)
    store = request.app.state.store
    pages = page_cache(request.app)
    generation = store.generation if pages is not None else None
    cache_key = (path, language)
    if pages is not None:
        cached = pages.get(cache_key, generation)
        if cached is not None:
            return Response(cached.body, media_type=cached.media_type, headers=cached.headers)
    response = entity_html(request, kind, path, language)
    if pages is not None:
        pages.put(cache_key, CachedPage(response.body, response.media_type,
                                        page_headers(settings, response.headers.get("last-modified"),
                                                     HTML_VARY)), generation)
    return response


HTML_VARY = "Accept, Accept-Language"


def entity_rdf(request: Request, kind: str, path: str, media_type: str) -> Response:
    """The entity's graph in an RDF format (rdflib's serialisers, from the store's CONSTRUCT)."""
    settings, store = request.app.state.settings, request.app.state.store
    iri = URIRef(f"{settings.base_url}{path}")
    graph = store.construct(load_query("describe"), {"root": iri})
    if (iri, None, None) not in graph:
        raise_if_gone(settings, iri, kind)
        raise NotFound(f"no {kind} with key {path.rsplit('/', 1)[-1]!r}")
    harvested = sorted(str(v) for v in graph.objects(iri, AFFICHE.harvestedAt))
    modified = last_modified_header(harvested[-1]) if harvested else listing_modified(request.app)
    return rdf_response(graph, media_type, page_headers(settings, modified, "Accept"))


def entity_html(request: Request, kind: str, path: str, language: str) -> Response:
    """The entity's page: its description read from the store, a view, the template."""
    settings, store = request.app.state.settings, request.app.state.store
    iri = f"{settings.base_url}{path}"
    data = read_description(store, iri, node_cache(request.app))
    if iri not in data:
        raise_if_gone(settings, URIRef(iri), kind)
        raise NotFound(f"no {kind} with key {path.rsplit('/', 1)[-1]!r}")
    harvested = sorted(term_text(v) for v in data.objects(iri, HARVESTED_AT))
    modified = last_modified_header(harvested[-1]) if harvested else listing_modified(request.app)
    values = {"kind": kind, "path": path, "alternates": _alternates(request, path),
              "jsonld": embedded_jsonld(data, iri, language)}
    if kind == "event":
        values["event"] = event_view(data, iri, language)
        template = "event.html"
    else:
        rows = store.select(load_query("events_of"), {"entity": URIRef(iri)})
        values["entity"] = entity_view(data, iri, language)
        values["events"] = listing(rows, language)
        template = "entity.html"
    return request.app.state.templates.TemplateResponse(
        request, template, template_context(request, language, **values),
        headers=page_headers(settings, modified, HTML_VARY))


HARVESTED_AT = str(AFFICHE.harvestedAt)
NODE_CACHE_SIZE = 50_000  # venues, organisers, performers, enumerations: a few hundred bytes each


def page_cache(app) -> PageCache | None:
    """Rendered pages, when the store says when it changes (`sole_writer`) and the cache is on."""
    if not sole_writer(app.state.store) or app.state.settings.page_cache_size <= 0:
        return None
    return app_state_once(app, "page_cache", lambda: PageCache(app.state.settings.page_cache_size))


def node_cache(app) -> NodeCache | None:
    """What pages share (a venue, an organiser), read once per store generation."""
    if not sole_writer(app.state.store):
        return None
    return app_state_once(app, "node_cache", lambda: NodeCache(NODE_CACHE_SIZE))


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


SPARQL_EXAMPLES = ("next_in_town", "weekend_in_town", "by_discipline", "at_venue",
                   "towns_by_month")


def sparql_page(request: Request, query: str | None) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    # The examples are queries like any other (sparql/queries/example_*.rq), written to be fast.
    examples = [(name, load_query(f"example_{name}")) for name in SPARQL_EXAMPLES]
    context = template_context(request, language, query=query or examples[0][1],
                       examples=examples)
    return request.app.state.templates.TemplateResponse(request, "sparql.html", context)



