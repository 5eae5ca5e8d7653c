"""Source pages: what each organiser's last harvest gave, published and quarantined, and why.

`/source/{id}` answers HTML (the report explained, the quality score over time, how the data is
used, and the source's figures next to the sector's as SVG charts), JSON (the saved report, with
`usage` and `sector`) or RDF (the SHACL validation report, `shapes.report_rdf`) by content
negotiation. A source its organiser withdrew answers 410 Gone, in French and English, whatever
report it left.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from harvester.pipeline import load_history, load_report
from harvester.sources import SOURCE_ID
from shapes.report_rdf import report_graph
from sparql.accept import best_match
from sparql.errors import Gone, NotAcceptable, NotFound
from sparql.queries import load_query
from sparql.store import StoreError

from ..accounts import source_withdrawn_at
from ..i18n import page_language
from ..negotiation import BY_MEDIA_TYPE, BY_NAME, rdf_response
from ..templating import template_context
from .stats import cached_sector_figures, comparison_charts, report_score, source_comparison, source_quality

router = APIRouter()
HTML, JSON = "text/html", "application/json"
OFFERED = [HTML, JSON, *BY_MEDIA_TYPE]


@router.get("/source/", include_in_schema=False)
async def source_list(request: Request) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    rows = await run_in_threadpool(request.app.state.store.select, load_query("sources"))
    sources = [{"iri": str(r["source"]), "id": str(r["source"]).rsplit("/", 1)[-1],
                "title": str(r["title"]), "license": str(r.get("license", "") or "")} for r in rows]
    ids = [source["id"] for source in sources]
    scores = await run_in_threadpool(report_scores, settings.reports_dir, ids)
    for source in sources:
        source["score"] = scores[source["id"]]
    return request.app.state.templates.TemplateResponse(
        request, "sources.html", template_context(request, language, sources=sources))


def report_scores(reports_dir, source_ids: list[str]) -> dict[str, float | None]:
    """Each source's last score, all read in one worker-thread hop (None: no report or no score)."""
    return {source_id: report_score(reports_dir, source_id) for source_id in source_ids}


def report_media_type(request: Request) -> str:
    """`?format=` (json, html, or an RDF name) wins over Accept; 406 when nothing fits."""
    requested = (request.query_params.get("format") or "").lower()
    if requested in ("json", "html"):
        return JSON if requested == "json" else HTML
    if requested:
        rdf_format = BY_NAME.get(requested)
        if rdf_format is None:  # `json` was taken above: the saved report, not JSON-LD
            raise NotAcceptable(f"unknown format {requested!r}; use html, json, jsonld, turtle, "
                                "ntriples or rdfxml")
        return rdf_format.media_type
    wanted = best_match(request.headers.get("accept"), OFFERED)
    if wanted is None:
        raise NotAcceptable(f"this report is available as: {', '.join(OFFERED)}")
    return wanted


@router.get("/source/{source_id}", include_in_schema=False)
async def source_page(request: Request, source_id: str) -> Response:
    if not SOURCE_ID.match(source_id):
        raise NotFound(f"no source {source_id!r}")
    settings = request.app.state.settings
    withdrawn = await run_in_threadpool(source_withdrawn_at, settings.data_dir, source_id)
    if withdrawn is not None:
        raise Gone(f"Cette source a été retirée par son organisateur le {withdrawn} : ses "
                   f"événements ne sont plus publiés. — This source was withdrawn by its "
                   f"organiser on {withdrawn}: its events are no longer published.")
    report = await run_in_threadpool(load_report, settings.reports_dir, source_id)
    if report is None:
        raise NotFound(f"no source {source_id!r} has been harvested here")
    media_type = report_media_type(request)
    if media_type not in (JSON, HTML):
        iri = f"{settings.base_url}/source/{source_id}#report"
        return rdf_response(report_graph(report, iri), media_type)
    language = page_language(request, settings.default_language)
    usage, comparison = await run_in_threadpool(feed_back, request, source_id, report, language)
    if media_type == JSON:
        public = {k: v for k, v in report.items() if k != "quarantined_data"}
        return JSONResponse({**public, "usage": usage, "sector": comparison},
                            headers={"Vary": "Accept, Accept-Language"})
    for event in report["events"]:
        for problem in event["problems"]:
            problem["shown"] = problem["messages"].get(language) or problem["message"]
    history = await run_in_threadpool(load_history, settings.reports_dir, source_id)
    return request.app.state.templates.TemplateResponse(
        request, "source.html",
        template_context(request, language, report=report, source_id=source_id,
                         history=list(reversed(history)), usage=usage, comparison=comparison,
                         charts=comparison_charts(comparison, language == "fr"),
                         local=lambda iri: re.sub(r"^https?://[^/]+", "", iri)),
        headers={"Vary": "Accept, Accept-Language"},
    )


def feed_back(request: Request, source_id: str, report: dict,
              language: str) -> tuple[dict, dict | None]:
    """What the organiser gets back: how the source's data is used, and its figures next to the
    sector's (None while the store cannot be read: the report, kept beside it, is still shown)."""
    app = request.app
    usage = app.state.usage.summary(source_id)
    try:
        sector = cached_sector_figures(app, language)
        comparison = source_comparison(app.state.store, app.state.settings.base_url, source_id,
                                       report.get("score"), sector, language)
    except StoreError:
        return usage, None
    comparison["quality_over_time"] = source_quality(app, source_id, sector)
    return usage, comparison
