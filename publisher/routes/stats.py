"""`/stats`: figures for the whole sector, drawn as server-rendered SVG charts.

Events per month, per town and per discipline, the share of free events, each source's data
quality (its last harvest's score) and the sector's quality over time (`publisher.quality_history`).
`?format=json` gives the same figures as JSON. The figures are computed once per state of the data
(`store_cache`), the quality over time once per state of the history files; each source page
compares its own figures with them (`source_comparison`, `comparison_charts`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rdflib import URIRef

from harvester import identity
from harvester.pipeline import load_report
from ontology import disciplines
from sparql.queries import load_query

from ..charts import Bar, Pair, Series, bar_chart, line_chart, paired_chart
from ..http_cache import app_state_once, data_modified, store_cache
from ..quality_history import QualityOverTime, ScoreHistory, quality_over_time, source_over_time
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
    sources: list[str] = field(default_factory=list)  # every published source
    towns: dict[str, int] = field(default_factory=dict)  # every town (by_city: the busiest)

    def to_json(self) -> dict:
        return {"events": self.events, "free": self.free, "by_month": self.by_month,
                "by_city": self.by_city, "by_discipline": self.by_discipline,
                "quality": self.quality}


def _counts(store, name: str) -> list[tuple[str, int]]:
    return [(str(r["label"]), int(r["count"])) for r in store.select(load_query(name))]


def sector_figures(store, reports_dir, language: str) -> Figures:
    events = store.select(load_query("count_events"))
    free = store.select(load_query("stats_free"))
    labels = disciplines()
    by_discipline = [(labels.get(r["discipline"], {}).get(language, str(r["discipline"]).rsplit("/", 1)[-1]),
                      int(r["count"])) for r in store.select(load_query("stats_by_discipline"))]
    quality, sources = [], []
    for row in store.select(load_query("sources")):
        source_id = str(row["source"]).rsplit("/", 1)[-1]
        sources.append(source_id)
        score = report_score(reports_dir, source_id)
        if score is not None:
            quality.append((source_id, round(float(score), 1)))
    return Figures(events=int(events[0]["events"]) if events else 0,
                   free=int(free[0]["count"]) if free else 0,
                   by_month=_counts(store, "stats_by_month"), by_city=_counts(store, "stats_by_city"),
                   by_discipline=by_discipline, quality=sorted(quality, key=lambda q: (-q[1], q[0])),
                   sources=sources, towns=dict(_counts(store, "stats_towns")))


_SCORES: dict[str, tuple[tuple[int, int], float | None]] = {}
_SCORES_LOCK = threading.Lock()


def report_score(reports_dir: Path, source_id: str) -> float | None:
    """A source's last quality score, read again only when its report file changed: a report
    lists every event's problems (megabytes for a large feed), the listings need one number."""
    path = reports_dir / f"{source_id}.json"
    try:
        stat = path.stat()
    except OSError:
        return None
    key, version = str(path), (stat.st_mtime_ns, stat.st_size)
    with _SCORES_LOCK:
        kept = _SCORES.get(key)
    if kept is not None and kept[0] == version:
        return kept[1]
    try:
        report = load_report(reports_dir, source_id)
    except (OSError, ValueError):  # replaced atomically by harvests: only a hand-edited file
        return None
    score = report.get("score") if isinstance(report, dict) else None
    with _SCORES_LOCK:
        _SCORES[key] = (version, score)
    return score


def _discipline_label(labels: dict, discipline, language: str) -> str:
    return labels.get(discipline, {}).get(language, str(discipline).rsplit("/", 1)[-1])


def cached_sector_figures(app, language: str) -> Figures:
    """The sector's figures, computed again only when the data or the reports changed (a
    withdrawal changes no harvest time, but it rewrites the dumps)."""
    settings, store = app.state.settings, app.state.store
    reports, dumps = settings.reports_dir, settings.dumps_dir
    version = (data_modified(store), *(d.stat().st_mtime_ns if d.exists() else 0
                                       for d in (reports, dumps)))
    return store_cache(app).get(("stats", language), version,
                                lambda: sector_figures(store, reports, language))


def today() -> date:
    """The day the scores are carried up to (UTC, like the history's days)."""
    return datetime.now(timezone.utc).date()


def score_history(app) -> ScoreHistory:
    """The app's reader of the score history (it keeps what it has read: one per app)."""
    return app_state_once(app, "score_history",
                          lambda: ScoreHistory(app.state.settings.reports_dir / "history"))


def sector_quality(app, sources: list[str]) -> tuple[dict, QualityOverTime]:
    """Every source's daily scores and the sector's quality over time, computed again only when a
    history file, the published sources or the day changed."""
    version, daily = score_history(app).daily_scores()
    until = today()
    key = (version, until, tuple(sorted(sources)))
    kept = getattr(app.state, "sector_quality", None)
    if kept is not None and kept[0] == key:
        return daily, kept[1]
    quality = quality_over_time(daily, sources, until)
    app.state.sector_quality = (key, quality)
    return daily, quality


def _share(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def source_comparison(store, base_url: str, source_id: str, score: float | None,
                      sector: Figures, language: str) -> dict:
    """One source's events per discipline, per month and per town, share of free events and
    quality score, next to the sector's (shares in % of each one's events; the score next to the
    mean of every source's). Months run from the source's first to its last; towns are the
    source's own."""
    graph = {"graph": URIRef(identity.graph_iri(base_url, source_id))}
    counted = store.select(load_query("count_events_in_graph"), graph)
    events = int(counted[0]["count"]) if counted else 0
    free = store.select(load_query("source_free"), graph)
    labels = disciplines()
    own = {_discipline_label(labels, r["discipline"], language): int(r["count"])
           for r in store.select(load_query("source_by_discipline"), graph)}
    sector_by_discipline = dict(sector.by_discipline)
    names = list(sector_by_discipline) + [d for d in own if d not in sector_by_discipline]
    scores = [value for _, value in sector.quality]
    by_month = dict(_counts_in_graph(store, "source_by_month", graph))
    by_town = _counts_in_graph(store, "source_by_city", graph)
    return {
        "events": events,
        "sector_events": sector.events,
        "disciplines": [{"discipline": name, "source": _share(own.get(name, 0), events),
                         "sector": _share(sector_by_discipline.get(name, 0), sector.events)}
                        for name in names],
        "months": [{"month": month, "source": _share(by_month.get(month, 0), events),
                    "sector": _share(count, sector.events)}
                   for month, count in _months_around(by_month, sector.by_month)],
        "towns": [{"town": town, "source": _share(count, events),
                   "sector": _share(sector.towns.get(town, 0), sector.events)}
                  for town, count in by_town],
        "free_share": {"source": _share(int(free[0]["count"]) if free else 0, events),
                       "sector": _share(sector.free, sector.events)},
        "score": {"source": score,
                  "sector_mean": round(sum(scores) / len(scores), 1) if scores else None},
    }


def _counts_in_graph(store, name: str, graph: dict) -> list[tuple[str, int]]:
    return [(str(r["label"]), int(r["count"])) for r in store.select(load_query(name), graph)]


def _months_around(own: dict[str, int], sector: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The sector's count for each month from the source's first month to its last."""
    if not own:
        return []
    first, last = min(own), max(own)
    counts = dict(sector)
    return [(month, counts.get(month, 0))
            for month in sorted(set(own) | {m for m in counts if first <= m <= last})]


def source_quality(app, source_id: str, sector: Figures) -> dict:
    """The source's score at the end of each period next to the sector's mean then."""
    daily, quality = sector_quality(app, sector.sources)
    own = source_over_time(daily, source_id, quality)
    return {"unit": quality.unit, "points": [
        {"period": p.id, "start": p.start.isoformat(), "end": p.end.isoformat(),
         "source": mine, "sector": mean}
        for p, mine, mean in zip(quality.periods, own, quality.sector)]}


def _period_words(unit: str, fr: bool) -> str:
    return {"week": "par semaine" if fr else "per week",
            "month": "par mois" if fr else "per month"}.get(unit, "")


def quality_description(points: list[dict], names: dict[str, str], unit: str, fr: bool) -> str:
    """The time chart in words (its `<desc>`): each line's first and last value, lowest and
    highest."""
    if not points:
        return ("Pas encore d'historique des moissons." if fr
                else "No harvest history yet.")
    sentences = [(f"Du {points[0]['start']} au {points[-1]['end']}, {_period_words(unit, fr)}."
                  if fr else f"From {points[0]['start']} to {points[-1]['end']}, "
                  f"{_period_words(unit, fr)}.")]
    for key, name in names.items():
        values = [(p["period"], p[key]) for p in points if p[key] is not None]
        if not values:
            continue
        low, high = min(v for _, v in values), max(v for _, v in values)
        sentences.append(
            f"{name} : {values[0][1]:g} ({values[0][0]}) puis {values[-1][1]:g} ({values[-1][0]}), "
            f"entre {low:g} et {high:g}." if fr else
            f"{name}: {values[0][1]:g} ({values[0][0]}) then {values[-1][1]:g} "
            f"({values[-1][0]}), between {low:g} and {high:g}.")
    return " ".join(sentences)


def quality_chart(title: str, quality: dict, names: dict[str, str], fr: bool):
    points = quality["points"]
    return line_chart(title, [p["period"] for p in points],
                      [Series(name, tuple(p[key] for p in points)) for key, name in names.items()],
                      quality_description(points, names, quality["unit"], fr), "/100", scale=100)


def comparison_charts(comparison: dict | None, fr: bool) -> dict:
    if comparison is None:
        return {}
    names = ("cette source" if fr else "this source", "le secteur" if fr else "the sector")
    score = comparison["score"]

    def shares(key: str, label: str, title_fr: str, title_en: str) -> str:
        """The source's share of events per discipline, month or town beside the sector's."""
        return paired_chart(title_fr if fr else title_en,
                            [Pair(row[label], row["source"], row["sector"]) for row in comparison[key]],
                            names, " %", scale=100)

    return {
        "disciplines": shares("disciplines", "discipline", "Part des événements par discipline",
                              "Share of events per discipline"),
        "free": paired_chart(
            "Part des événements gratuits" if fr else "Share of free events",
            [Pair("gratuits" if fr else "free", comparison["free_share"]["source"],
                  comparison["free_share"]["sector"])], names, " %", scale=100),
        "quality": paired_chart(
            "Score de qualité" if fr else "Quality score",
            [Pair("score", score["source"] or 0, score["sector_mean"] or 0)],
            (names[0], "moyenne du secteur" if fr else "the sector's mean"), "/100", scale=100),
        "months": shares("months", "month", "Part des événements par mois", "Share of events per month"),
        "towns": shares("towns", "town", "Part des événements par ville", "Share of events per town"),
        "quality_over_time": quality_chart(
            "Score de qualité au fil du temps" if fr else "Quality score over time",
            comparison.get("quality_over_time") or {"unit": "", "points": []},
            {"source": names[0], "sector": "moyenne du secteur" if fr else "the sector's mean"}, fr),
    }


def charts(figures: Figures, quality: dict, fr: bool) -> dict:
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
        "quality_over_time": quality_chart(
            "Score de qualité moyen au fil du temps" if fr else "Mean quality score over time",
            quality, {"mean": "moyenne des sources" if fr else "mean of the sources"}, fr),
    }


@router.get("/stats", include_in_schema=False)
async def stats_page(request: Request) -> Response:
    settings = request.app.state.settings
    language = page_language(request, settings.default_language)
    figures = await run_in_threadpool(cached_sector_figures, request.app, language)
    _, over_time = await run_in_threadpool(sector_quality, request.app, figures.sources)
    quality = over_time.to_json()
    if request.query_params.get("format") == "json":
        return JSONResponse({**figures.to_json(), "quality_over_time": quality})
    context = template_context(request, language, figures=figures, quality_over_time=quality,
                               charts=charts(figures, quality, language == "fr"))
    return request.app.state.templates.TemplateResponse(
        request, "stats.html", context, headers={"Vary": "Accept-Language"})
