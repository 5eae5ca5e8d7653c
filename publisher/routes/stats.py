"""`/stats`: figures for the whole sector, drawn as server-rendered SVG charts.

Events per month, per town and per discipline, the share of free events, and each source's data
quality (its last harvest's score). `?format=json` gives the same figures as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from harvester.pipeline import load_report
from ontology import disciplines
from sparql.queries import load_query

from ..charts import Bar, bar_chart
from ..i18n import page_language
from ..templating import template_context

router = APIRouter()


@dataclass
class Figures:
    events: int
    free: int
    by_month: list[tuple[str, int]]
    by_city: list[tuple[str, int]]
    by_discipline: list[tuple[str, int]]
    quality: list[tuple[str, float]]  # source id, last score


def _counts(store, name: str) -> list[tuple[str, int]]:
    return [(str(r["label"]), int(r["count"])) for r in store.select(load_query(name))]


def sector_figures(store, reports_dir, language: str) -> Figures:
    events = store.select(load_query("count_events"))
    free = store.select(load_query("stats_free"))
    labels = disciplines()
    by_discipline = [(labels.get(r["discipline"], {}).get(language, str(r["discipline"]).rsplit("/", 1)[-1]),
                      int(r["count"])) for r in store.select(load_query("stats_by_discipline"))]
    quality = []
    for row in store.select(load_query("sources")):
        source_id = str(row["source"]).rsplit("/", 1)[-1]
        report = load_report(reports_dir, source_id)
        if report and report.get("score") is not None:
            quality.append((source_id, round(float(report["score"]), 1)))
    return Figures(events=int(events[0]["events"]) if events else 0,
                   free=int(free[0]["count"]) if free else 0,
                   by_month=_counts(store, "stats_by_month"), by_city=_counts(store, "stats_by_city"),
                   by_discipline=by_discipline, quality=sorted(quality, key=lambda q: (-q[1], q[0])))


def charts(figures: Figures, fr: bool) -> dict:
    paid = figures.events - figures.free
    share = f"{100 * figures.free / figures.events:.0f} %" if figures.events else "—"
    return {
        "by_month": bar_chart("Événements par mois" if fr else "Events per month",
                              [Bar(m, c) for m, c in figures.by_month]),
        "by_city": bar_chart("Événements par ville" if fr else "Events per town",
                             [Bar(c, n) for c, n in figures.by_city]),
        "by_discipline": bar_chart("Événements par discipline" if fr else "Events per discipline",
                                   [Bar(d, n) for d, n in figures.by_discipline]),
        "free": bar_chart(("Gratuits : " if fr else "Free: ") + share,
                          [Bar("gratuits" if fr else "free", figures.free),
                           Bar("payants ou non précisé" if fr else "paid or not said", paid)]),
        "quality": bar_chart("Score de qualité par source" if fr else "Quality score by source",
                             [Bar(s, v, f"{v:g}/100") for s, v in figures.quality]),
    }


@router.get("/stats", include_in_schema=False)
async def stats_page(request: Request) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    figures = await run_in_threadpool(sector_figures, request.app.state.store,
                                      settings.reports_dir, language)
    if request.query_params.get("format") == "json":
        return JSONResponse(asdict(figures))
    context = template_context(request, language, figures=figures,
                               charts=charts(figures, language == "fr"))
    return request.app.state.templates.TemplateResponse(
        request, "stats.html", context, headers={"Vary": "Accept-Language"})
