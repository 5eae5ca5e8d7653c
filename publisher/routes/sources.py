"""Source pages: what each organiser's last harvest gave, published and quarantined, and why."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from harvester.pipeline import load_report
from harvester.sources import SOURCE_ID
from sparql.accept import best_match
from sparql.errors import NotFound
from sparql.queries import load_query

from ..i18n import page_language
from ..templating import template_context

router = APIRouter()


@router.get("/source/", include_in_schema=False)
async def source_list(request: Request) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    rows = await run_in_threadpool(request.app.state.store.select, load_query("sources"))
    sources = [{"iri": str(r["source"]), "id": str(r["source"]).rsplit("/", 1)[-1],
                "title": str(r["title"]), "license": str(r.get("license", "") or "")} for r in rows]
    return request.app.state.templates.TemplateResponse(
        request, "sources.html", template_context(request, language, sources=sources))


@router.get("/source/{source_id}", include_in_schema=False)
async def source_page(request: Request, source_id: str) -> Response:
    if not SOURCE_ID.match(source_id):
        raise NotFound(f"no source {source_id!r}")
    settings = request.app.state.settings
    report = await run_in_threadpool(load_report, settings.reports_dir, source_id)
    if report is None:
        raise NotFound(f"no source {source_id!r} has been harvested here")
    language = page_language(request, settings.default_language)
    wanted = best_match(request.headers.get("accept"), ["text/html", "application/json"])
    if request.query_params.get("format") == "json" or wanted == "application/json":
        public = {k: v for k, v in report.items() if k != "quarantined_data"}
        return JSONResponse(public, headers={"Vary": "Accept"})
    for event in report["events"]:
        for problem in event["problems"]:
            problem["shown"] = problem["messages"].get(language) or problem["message"]
    return request.app.state.templates.TemplateResponse(
        request, "source.html",
        template_context(request, language, report=report, source_id=source_id,
                         local=lambda iri: re.sub(r"^https?://[^/]+", "", iri)),
        headers={"Vary": "Accept, Accept-Language"},
    )
