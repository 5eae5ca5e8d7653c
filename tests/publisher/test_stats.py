"""The public statistics page: figures from the store and from the score history, drawn as SVG a
reader can parse."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone

import httpx
import lxml.html
import pytest

from harvester import pipeline
from harvester.pipeline import harvest
from harvester.sources import Source
from publisher.app import create_app
from publisher.charts import Bar, Pair, Series, bar_chart, line_chart, paired_chart
from publisher.quality_history import ScoreHistory, periods_between, quality_over_time
from publisher.routes import stats as stats_routes
from publisher.settings import Settings
from publisher.usage import UsageCounter
from sparql.remote import RemoteStore, endpoints_for
from sparql.store import EmbeddedStore
from tests.conftest import BASE_URL, free_port

pytestmark = pytest.mark.anyio
SVG = "{http://www.w3.org/2000/svg}"


def bars(svg_text: str) -> dict[str, float]:
    root = ET.fromstring(svg_text)
    return {g.get("data-label"): float(g.get("data-value")) for g in root.iter(SVG + "g")
            if g.get("class") == "bar"}


def test_a_chart_is_well_formed_svg_with_one_titled_bar_per_value():
    svg = bar_chart("Événements <par> ville", [Bar("Liège & environs", 3), Bar("<script>", 1)])
    root = ET.fromstring(str(svg))
    assert root.find(SVG + "title").text == "Événements <par> ville"
    assert bars(str(svg)) == {"Liège & environs": 3.0, "<script>": 1.0}
    widths = [float(r.get("width")) for r in root.iter(SVG + "rect")]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.5)


def test_an_empty_chart_is_still_valid_svg():
    assert bars(str(bar_chart("Rien", []))) == {}


async def test_the_stats_page_draws_the_demo_figures(client, demo_store):
    figures = (await client.get("/stats?format=json")).json()
    [row] = demo_store.select("SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { ?e <http://schema.org/startDate> ?d }")
    assert figures["events"] == int(row["n"]) == sum(count for _, count in figures["by_month"])
    assert 0 < figures["free"] < figures["events"]
    towns = [town for town, _ in figures["by_city"]]
    assert len(towns) == len(set(towns)) and {"Lyon", "Montréal"} <= set(towns)

    page = await client.get("/stats?lang=en", headers={"Accept": "text/html"})
    assert page.status_code == 200
    charts = re.findall(r"<svg .*?</svg>", page.text, re.S)
    assert len(charts) == 6 and 'class="chart line"' in charts[5]
    by_month, by_city, by_discipline, free, quality = (bars(c) for c in charts[:5])
    assert by_month == {month: count for month, count in figures["by_month"]}
    assert by_city == {town: count for town, count in figures["by_city"]}
    assert "Music" in by_discipline
    assert free == {"free": figures["free"], "paid or not said": figures["events"] - figures["free"]}
    assert set(quality) == {"theatre-lumiere", "festival-marees", "salle-erable"}
    assert "<script" not in page.text


# --- the source page: usage figures and the sector's figures beside its own -------------------

def pairs(svg_text: str) -> dict[str, tuple[float, float]]:
    root = ET.fromstring(svg_text)
    return {g.get("data-label"): (float(g.get("data-first")), float(g.get("data-second")))
            for g in root.iter(SVG + "g") if g.get("class") == "pair"}


def test_a_paired_chart_draws_both_values_on_one_scale():
    svg = str(paired_chart("Part <des> disciplines", [Pair("Musique & chant", 50, 25),
                                                      Pair("<script>", 0, 10)],
                           ("cette source", "le secteur"), " %"))
    root = ET.fromstring(svg)
    assert root.find(SVG + "title").text == "Part <des> disciplines"
    assert pairs(svg) == {"Musique & chant": (50.0, 25.0), "<script>": (0.0, 10.0)}
    first, second, none, ten = (float(r.get("width")) for g in root.iter(SVG + "g")
                                if g.get("class") == "pair" for r in g.iter(SVG + "rect"))
    assert first == pytest.approx(2 * second, abs=0.5) and none == 0 and ten > 0
    legend = [t.text for g in root.iter(SVG + "g") if g.get("class") == "legend"
              for t in g.iter(SVG + "text")]
    assert legend == ["cette source", "le secteur"]
    assert pairs(str(paired_chart("Rien", [], ("a", "b")))) == {}


def source_figures_in_store(store, source_id: str) -> tuple[int, int, dict[str, int]]:
    graph = f"<{BASE_URL}/graph/{source_id}>"
    [events] = store.select(f"SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE {{ GRAPH {graph} "
                            "{ ?e <http://schema.org/startDate> ?d } }")
    by_discipline = {str(r["d"]).rsplit("/", 1)[-1]: int(r["n"]) for r in store.select(
        f"SELECT ?d (COUNT(DISTINCT ?e) AS ?n) WHERE {{ GRAPH {graph} {{ ?e "
        "<http://schema.org/startDate> ?s ; <https://affiche.example/ns#discipline> ?d } } "
        "GROUP BY ?d")}
    return int(events["n"]), by_discipline


async def test_the_source_page_sets_its_figures_beside_the_sectors(client, demo_store, demo_data):
    sector = (await client.get("/stats?format=json&lang=en")).json()
    as_json = (await client.get("/source/festival-marees?lang=en",
                                headers={"Accept": "application/json"})).json()
    events, by_discipline = source_figures_in_store(demo_store, "festival-marees")
    comparison = as_json["sector"]
    assert comparison["events"] == events > 0 and comparison["sector_events"] == sector["events"]
    shares = {d["discipline"]: (d["source"], d["sector"]) for d in comparison["disciplines"]}
    sector_counts = dict(sector["by_discipline"])
    assert set(shares) == set(sector_counts)
    assert sum(source for source, _ in shares.values()) == pytest.approx(
        100 * sum(by_discipline.values()) / events, abs=0.5)
    for name, (source, in_sector) in shares.items():
        assert in_sector == pytest.approx(100 * sector_counts[name] / sector["events"], abs=0.05)
    assert comparison["free_share"]["sector"] == pytest.approx(
        100 * sector["free"] / sector["events"], abs=0.05)
    scores = dict(sector["quality"])
    assert comparison["score"]["source"] == as_json["score"] == demo_data[2]["festival-marees"].score
    assert comparison["score"]["sector_mean"] == pytest.approx(sum(scores.values()) / len(scores),
                                                               abs=0.05)

    page = await client.get("/source/festival-marees?lang=en", headers={"Accept": "text/html"})
    tree = lxml.html.fromstring(page.text)
    charts = [ET.tostring(svg).decode() if not isinstance(svg, str) else svg
              for svg in re.findall(r'<svg [^>]*class="chart paired".*?</svg>', page.text, re.S)]
    assert len(charts) == 5
    disciplines, free, months, towns, quality = (pairs(c) for c in charts)
    assert disciplines == shares
    assert free == {"free": (comparison["free_share"]["source"], comparison["free_share"]["sector"])}
    assert quality == {"score": (comparison["score"]["source"], comparison["score"]["sector_mean"])}
    assert tree.xpath('//section[@id="sector"]//a[starts-with(@href, "/stats")]')
    assert "<script" not in page.text


def usage_cells(tree) -> dict[str, int]:
    return {tr.get("data-kind"): int(tr.xpath("string(td)"))
            for tr in tree.xpath('//table[@class="usage-recent"]/tbody/tr')}


async def test_the_source_page_shows_how_its_data_is_used(client, demo_store):
    [row] = demo_store.select(
        f"SELECT ?e WHERE {{ GRAPH <{BASE_URL}/graph/salle-erable> {{ ?e "
        "<http://schema.org/startDate> ?d } } LIMIT 1")
    path = str(row["e"]).replace(BASE_URL, "")
    before = usage_cells(lxml.html.fromstring(
        (await client.get("/source/salle-erable?lang=fr", headers={"Accept": "text/html"})).text))
    assert set(before) == {"page_human", "page_crawler", "jsonld", "rdf", "dump", "sparql"}
    for headers in ({"Accept": "text/html", "User-Agent": "Mozilla/5.0 Firefox/128.0"},
                    {"Accept": "text/html", "User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"},
                    {"Accept": "application/ld+json"}, {"Accept": "text/turtle"}):
        assert (await client.get(path, headers=headers)).status_code == 200
    await client.head(path, headers={"Accept": "text/html"})  # not a view
    assert (await client.get("/dumps/source-salle-erable.nq.gz")).status_code == 200
    page = await client.get("/source/salle-erable?lang=fr", headers={"Accept": "text/html"})
    tree = lxml.html.fromstring(page.text)
    after = usage_cells(tree)
    assert {k: after[k] - before[k] for k in after} == {
        "page_human": 1, "page_crawler": 1, "jsonld": 1, "rdf": 1, "dump": 1, "sparql": 0}
    month = date.today().isoformat()[:7]
    [current] = tree.xpath(f'//table[@class="usage-months"]/tbody/tr[@data-month="{month}"]')
    assert [int(td.text) for td in current.xpath("td")] == [after[k] for k in (
        "page_human", "page_crawler", "jsonld", "rdf", "dump", "sparql")]
    assert "Pages vues par des personnes" in page.text  # in French
    as_json = (await client.get("/source/salle-erable", headers={"Accept": "application/json"})).json()
    assert as_json["usage"]["last_30_days"] == after
    assert as_json["usage"]["by_month"][0]["month"] == month


def test_usage_summary_counts_the_last_30_days_and_each_month(tmp_path):
    counter = UsageCounter(tmp_path)
    today = date(2026, 11, 29)
    for day, kind, n in (("2026-11-29", "page_human", 3), ("2026-10-31", "page_human", 2),
                         ("2026-10-30", "page_human", 7),  # 31 days ago: outside the window
                         ("2026-10-31", "dump", 1), ("2026-09-02", "jsonld", 4),
                         ("2026-11-30", "page_human", 100)):  # tomorrow: not counted yet
        counter.count("rideau-agenda", kind, day=day, weight=n)
    counter.count("aurores-prog", "page_human", day="2026-11-29", weight=9)
    summary = counter.summary("rideau-agenda", today=today)
    assert summary["since"] == "2026-10-31" and summary["until"] == "2026-11-29"
    assert summary["last_30_days"] == {"page_human": 5, "page_crawler": 0, "jsonld": 0, "rdf": 0,
                                       "dump": 1, "sparql": 0}
    assert [(m["month"], m["page_human"], m["dump"], m["jsonld"]) for m in summary["by_month"]] == [
        ("2026-11", 3, 0, 0), ("2026-10", 9, 1, 0), ("2026-09", 0, 0, 4)]
    empty = counter.summary("nobody", today=today)
    assert set(empty["last_30_days"].values()) == {0} and empty["by_month"] == []


# --- every page links to /stats -------------------------------------------------------------

NAV_PAGES = ["/", "/stats", "/source/", "/source/theatre-lumiere", "/dumps/", "/check", "/sparql",
             "/ns", "/.well-known/void", "/no-such-page"]


@pytest.mark.parametrize("path", NAV_PAGES)
@pytest.mark.parametrize("lang, words", [("fr", "Statistiques"), ("en", "Statistics")])
async def test_every_page_has_a_nav_link_to_the_stats(client, path, lang, words):
    answer = await client.get(path, params={"lang": lang}, headers={"Accept": "text/html"})
    assert answer.headers["content-type"].startswith("text/html"), (path, answer.status_code)
    tree = lxml.html.fromstring(answer.text)
    links = tree.xpath('//header//nav//a[starts-with(@href, "/stats") and not(@hreflang)]')
    assert [a.text_content() for a in links] == [words], path
    assert links[0].get("href") == f"/stats?lang={lang}"


async def test_an_event_page_links_to_the_stats(client, demo_store):
    [row] = demo_store.select("SELECT ?e WHERE { ?e <http://schema.org/startDate> ?d } LIMIT 1")
    answer = await client.get(str(row["e"]).replace(BASE_URL, ""), headers={"Accept": "text/html"})
    assert lxml.html.fromstring(answer.text).xpath('//header//nav//a[starts-with(@href, "/stats")]')


# --- data quality over time: the sector's mean score per period, and each source's beside it ---

CSV_HEADER = ("identifiant;titre;description;debut;fin;lieu;adresse;code_postal;ville;pays;prix;"
              "devise;organisateur;discipline;langue\n")


def csv_row(ident: str, title: str, description: str, start: str, venue: str, town: str,
            country: str, price: str = "12") -> str:
    return (f"{ident};{title};{description};{start};;{venue};3 rue du Port;4000;{town};{country};"
            f"{price};EUR;{venue};Musique;fr\n")


# La Grange aux Notes (Liège): two events in May and June 2027; with descriptions it scores 30,
# without them 20 (each missing description is one more warning).
def grange_feed(described: bool) -> str:
    return CSV_HEADER + "".join([
        csv_row("gan-01", "Quatuor Meuse", "Haydn et Ysaÿe." if described else "",
                "14/05/2027 20h00", "La Grange aux Notes", "Liège", "BE"),
        csv_row("gan-02", "Nuit du piano", "Trois pianistes." if described else "",
                "21/06/2027 21h00", "La Grange aux Notes", "Liège", "BE", "gratuit"),
    ])


# Les Conteurs du Fleuve (Québec): three events in June and July 2027, none described (20); the
# second version loses a title, and that event is quarantined (its score 0: the source's 40/3).
def conteurs_feed(titled: bool = True) -> str:
    return CSV_HEADER + "".join([
        csv_row("cf-01", "Contes de la marée", "", "20/06/2027 19h30", "Les Conteurs du Fleuve",
                "Québec", "CA"),
        csv_row("cf-02", "Veillée boréale" if titled else "", "", "04/07/2027 20h00",
                "Les Conteurs du Fleuve", "Québec", "CA"),
        csv_row("cf-03", "Légendes du Saint-Laurent", "", "11/07/2027 20h00",
                "Les Conteurs du Fleuve", "Québec", "CA"),
    ])


class HistoryDeployment:
    """Real harvests of two invented CSV sources at chosen times (the pipeline's clock set), and
    the app over them with its day set."""

    def __init__(self, root, monkeypatch, today: date) -> None:
        self.root, self.monkeypatch = root, monkeypatch
        self.settings = Settings(base_url=BASE_URL, data_dir=root / "data")
        self.store = EmbeddedStore(self.settings.data_dir / "store")
        self.scores: dict[str, list[float]] = {}
        monkeypatch.setattr(stats_routes, "today", lambda: today)

    def harvest(self, source_id: str, body: str, when: str):
        feed = self.root / f"{source_id}.csv"
        feed.write_text(body, encoding="utf-8")
        moment = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
        self.monkeypatch.setattr(pipeline, "_now", lambda: moment)
        report = harvest(Source(id=source_id, name=source_id, path=feed, format="csv"),
                         self.store, BASE_URL, self.settings.reports_dir)
        assert report.error is None
        return report

    def history_file(self, source_id: str):
        return self.settings.reports_dir / "history" / f"{source_id}.jsonl"

    def client(self) -> httpx.AsyncClient:
        app = create_app(self.settings, store=self.store)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    made = HistoryDeployment(tmp_path, monkeypatch, today=date(2026, 10, 28))
    yield made
    made.store.close()


def run_history(deployment) -> dict[str, float]:
    """Week 37: the Grange's first harvest (20); week 39: the Conteurs' (20); week 41: the Grange
    describes its events (30); week 42: the same feed again (30); week 43: the Conteurs lose
    a title (40/3 = 13.3). The day is in week 44."""
    scores = {
        "grange 1": deployment.harvest("grange", grange_feed(False), "2026-09-08T09:00:00").score,
        "conteurs 1": deployment.harvest("conteurs", conteurs_feed(), "2026-09-23T18:30:00").score,
        "grange 2": deployment.harvest("grange", grange_feed(True), "2026-10-06T09:00:00").score,
    }
    assert deployment.harvest("grange", grange_feed(True), "2026-10-13T09:00:00").score == 30.0
    scores["conteurs 2"] = deployment.harvest("conteurs", conteurs_feed(False),
                                              "2026-10-22T23:59:00").score
    assert (scores["grange 1"], scores["conteurs 1"], scores["grange 2"], scores["conteurs 2"]) == (
        20.0, 20.0, 30.0, 13.3)
    return scores


def line_points(svg_text: str) -> dict[str, dict[str, float]]:
    """{series: {period: value}} from a line chart's points."""
    points: dict[str, dict[str, float]] = {}
    for g in ET.fromstring(svg_text).iter(SVG + "g"):
        if g.get("class") == "point":
            points.setdefault(g.get("data-series"), {})[g.get("data-label")] = float(g.get("data-value"))
    return points


def quality_rows(tree, css_class: str = "quality-over-time") -> dict[str, list[str]]:
    return {tr.get("data-period"): [td.text_content() for td in tr.xpath("td")]
            for tr in tree.xpath(f'//table[@class="{css_class}"]/tbody/tr')}


WEEKS = [f"2026-W{n}" for n in range(37, 45)]
# the Grange from week 37, the Conteurs from week 39, each score holding until the next change
GRANGE = [20.0, 20.0, 20.0, 20.0, 30.0, 30.0, 30.0, 30.0]
CONTEURS = [None, None, 20.0, 20.0, 20.0, 20.0, 13.3, 13.3]
SECTOR = [20.0, 20.0, 20.0, 20.0, 25.0, 25.0, 21.6, 21.6]  # 21.65 rounds to 21.6 (half-even)
COUNTED = [1, 1, 2, 2, 2, 2, 2, 2]


async def test_the_stats_page_draws_the_sectors_quality_per_week(deployment):
    run_history(deployment)
    async with deployment.client() as client:
        figures = (await client.get("/stats?format=json")).json()
        over_time = figures["quality_over_time"]
        assert over_time["unit"] == "week"
        assert [p["period"] for p in over_time["points"]] == WEEKS
        assert [p["mean"] for p in over_time["points"]] == pytest.approx(SECTOR, abs=0.051)
        assert [p["sources"] for p in over_time["points"]] == COUNTED
        assert over_time["points"][0]["start"] == "2026-09-07"  # the Monday of week 37
        assert over_time["points"][-1]["end"] == "2026-11-01"

        for lang, title, series in (("en", "Mean quality score over time", "mean of the sources"),
                                    ("fr", "Score de qualité moyen au fil du temps",
                                     "moyenne des sources")):
            page = await client.get(f"/stats?lang={lang}", headers={"Accept": "text/html"})
            assert page.status_code == 200
            [chart] = re.findall(r'<svg [^>]*class="chart line".*?</svg>', page.text, re.S)
            root = ET.fromstring(chart)
            assert root.find(SVG + "title").text == title
            assert "2026-W37" in root.find(SVG + "desc").text
            drawn = line_points(chart)
            assert drawn == {series: {w: p["mean"] for w, p in zip(WEEKS, over_time["points"])}}
            rows = quality_rows(lxml.html.fromstring(page.text))
            assert list(rows) == WEEKS
            assert [float(mean) for mean, _ in rows.values()] == [p["mean"] for p in over_time["points"]]
            assert [int(counted) for _, counted in rows.values()] == COUNTED


async def test_the_source_page_sets_its_quality_over_time_beside_the_sectors(deployment):
    run_history(deployment)
    async with deployment.client() as client:
        sector = (await client.get("/stats?format=json")).json()["quality_over_time"]["points"]
        as_json = (await client.get("/source/conteurs", headers={"Accept": "application/json"})).json()
        own = as_json["sector"]["quality_over_time"]
        assert own["unit"] == "week" and [p["period"] for p in own["points"]] == WEEKS
        assert [p["source"] for p in own["points"]] == CONTEURS
        assert [p["sector"] for p in own["points"]] == [p["mean"] for p in sector]

        page = await client.get("/source/conteurs?lang=fr", headers={"Accept": "text/html"})
        [chart] = re.findall(r'<svg [^>]*class="chart line".*?</svg>', page.text, re.S)
        drawn = line_points(chart)
        assert drawn["cette source"] == {w: v for w, v in zip(WEEKS, CONTEURS) if v is not None}
        assert drawn["moyenne du secteur"] == {w: p["mean"] for w, p in zip(WEEKS, sector)}
        # the Conteurs have no score before week 39: their line starts there
        root = ET.fromstring(chart)
        [own_line] = [g for g in root.iter(SVG + "g") if g.get("class") == "series"
                      and g.get("data-series") == "cette source"]
        [polyline] = own_line.iter(SVG + "polyline")
        assert len(polyline.get("points").split()) == 6
        rows = quality_rows(lxml.html.fromstring(page.text))
        assert rows["2026-W37"] == ["—", "20.0"] and rows["2026-W43"] == ["13.3", "21.6"]


async def test_the_source_page_compares_its_months_and_towns_with_the_sectors(deployment):
    run_history(deployment)
    async with deployment.client() as client:
        sector = (await client.get("/stats?format=json")).json()
        # the Conteurs' second version has one event quarantined: 2 Grange + 2 Conteurs published
        assert sector["events"] == 4 and dict(sector["by_city"]) == {"Liège": 2, "Québec": 2}
        comparison = (await client.get("/source/grange?lang=en",
                                       headers={"Accept": "application/json"})).json()["sector"]
        assert comparison["events"] == 2
        assert comparison["months"] == [
            {"month": "2027-05", "source": 50.0, "sector": 25.0},
            {"month": "2027-06", "source": 50.0, "sector": 50.0}]  # the Conteurs' June tale too
        assert comparison["towns"] == [{"town": "Liège", "source": 100.0, "sector": 50.0}]
        page = await client.get("/source/grange?lang=en", headers={"Accept": "text/html"})
        charts = [pairs(c) for c in re.findall(r'<svg [^>]*class="chart paired".*?</svg>',
                                               page.text, re.S)]
        assert {"2027-05": (50.0, 25.0), "2027-06": (50.0, 50.0)} in charts
        assert {"Liège": (100.0, 50.0)} in charts


async def test_a_new_harvest_shows_at_once_and_corrupt_history_lines_are_skipped(deployment):
    run_history(deployment)
    async with deployment.client() as client:
        before = (await client.get("/stats?format=json")).json()["quality_over_time"]
        with deployment.history_file("grange").open("a", encoding="utf-8") as history:
            history.write("{not json\n")
            history.write('{"started_at": "mardi dernier", "score": 99}\n')
            history.write('{"started_at": "2026-10-27T10:00:00+00:00", "score": "99"}\n')
            history.write('{"started_at": "2026-10-27T10:00:00+00:00", "score": 250}\n')
            history.write('["2026-10-27T10:00:00+00:00", 99]\n')
            history.write("\x00\xff garbage\n")
        assert (await client.get("/stats?format=json")).json()["quality_over_time"] == before
        page = await client.get("/source/grange", headers={"Accept": "text/html"})
        assert page.status_code == 200

        # a line being written (no newline yet) waits; once complete, it counts
        with deployment.history_file("grange").open("a", encoding="utf-8") as history:
            history.write('{"started_at": "2026-10-27T10:00:00+00:00", "score": 40')
        assert (await client.get("/stats?format=json")).json()["quality_over_time"] == before
        with deployment.history_file("grange").open("a", encoding="utf-8") as history:
            history.write("}\n")
        after = (await client.get("/stats?format=json")).json()["quality_over_time"]
        assert [p["mean"] for p in after["points"]][-1] == pytest.approx((40 + 13.3) / 2, abs=0.051)

        # a real harvest: the Conteurs find their title again (20) in the current week
        deployment.harvest("conteurs", conteurs_feed(), "2026-10-28T08:00:00")
        latest = (await client.get("/stats?format=json")).json()["quality_over_time"]["points"]
        assert latest[-1]["mean"] == 30.0 and latest[-2]["mean"] == pytest.approx(21.6, abs=0.051)


async def test_no_history_draws_an_empty_chart_not_an_error(deployment):
    run_history(deployment)
    for history in (deployment.settings.reports_dir / "history").iterdir():
        history.unlink()
    async with deployment.client() as client:
        figures = (await client.get("/stats?format=json")).json()
        assert figures["quality_over_time"] == {"unit": "", "points": []}
        assert figures["events"] == 4  # the rest of the figures are still there
        for path in ("/stats?lang=fr", "/source/grange?lang=fr"):
            page = await client.get(path, headers={"Accept": "text/html"})
            assert page.status_code == 200
            [chart] = re.findall(r'<svg [^>]*class="chart line".*?</svg>', page.text, re.S)
            assert line_points(chart) == {}
            assert ET.fromstring(chart).find(SVG + "desc").text == "Pas encore d'historique des moissons."
            assert not lxml.html.fromstring(page.text).xpath('//table[@class="quality-over-time"]')
        as_json = (await client.get("/source/grange", headers={"Accept": "application/json"})).json()
        assert as_json["sector"]["quality_over_time"] == {"unit": "", "points": []}


async def test_one_harvest_draws_one_point(tmp_path, monkeypatch):
    deployment = HistoryDeployment(tmp_path, monkeypatch, today=date(2026, 9, 10))
    try:
        deployment.harvest("grange", grange_feed(True), "2026-09-08T09:00:00")
        async with deployment.client() as client:
            over_time = (await client.get("/stats?format=json")).json()["quality_over_time"]
            assert over_time == {"unit": "week", "points": [
                {"period": "2026-W37", "start": "2026-09-07", "end": "2026-09-13", "mean": 30.0,
                 "sources": 1}]}
            page = await client.get("/stats?lang=en", headers={"Accept": "text/html"})
            [chart] = re.findall(r'<svg [^>]*class="chart line".*?</svg>', page.text, re.S)
            assert line_points(chart) == {"mean of the sources": {"2026-W37": 30.0}}
            assert not list(ET.fromstring(chart).iter(SVG + "polyline"))  # a point, no line
    finally:
        deployment.store.close()


def test_long_histories_are_drawn_per_month_and_only_the_last_36():
    unit, periods = periods_between(date(2026, 1, 5), date(2026, 7, 5))
    assert unit == "week" and len(periods) == 26 and periods[-1].id == "2026-W27"
    unit, periods = periods_between(date(2026, 1, 5), date(2026, 7, 6))
    assert unit == "month" and [p.id for p in periods] == [f"2026-{m:02d}" for m in range(1, 8)]
    assert (periods[1].start, periods[1].end) == (date(2026, 2, 1), date(2026, 2, 28))
    unit, periods = periods_between(date(2021, 3, 14), date(2026, 11, 29))
    assert unit == "month" and len(periods) == 36
    assert (periods[0].id, periods[-1].id) == ("2023-12", "2026-11")

    daily = {"rideau": {date(2021, 3, 14): 50.0, date(2026, 6, 1): 70.0},
             "aurores": {date(2026, 11, 2): 90.0}, "retire": {date(2026, 1, 1): 0.0}}
    quality = quality_over_time(daily, ["rideau", "aurores"], until=date(2026, 11, 29))
    assert quality.unit == "month" and len(quality.periods) == 36
    # rideau's 2021 score still counts in December 2023; a source not published is left out
    assert quality.sector[0] == 50.0 and quality.counted[0] == 1
    assert quality.sector[quality.periods.index(next(p for p in quality.periods
                                                     if p.id == "2026-06"))] == 70.0
    assert (quality.sector[-1], quality.counted[-1]) == (80.0, 2)
    assert set(quality.by_source) == {"rideau", "aurores"}
    assert quality_over_time(daily, ["nobody"], until=date(2026, 11, 29)).periods == []


def test_the_history_is_read_incrementally(tmp_path):
    history = ScoreHistory(tmp_path / "history")
    assert history.daily_scores()[1] == {}  # no directory yet
    (tmp_path / "history").mkdir()
    path = tmp_path / "history" / "rideau.jsonl"
    path.write_text('{"started_at": "2026-11-02T08:00:00+00:00", "score": 60}\n'
                    '{"started_at": "2026-11-02T20:00:00+00:00", "score": 70}\n'  # same day: last
                    '{"started_at": "2026-11-03T00:30:00+01:00", "score": 80}\n'  # 23:30 UTC the 2nd
                    '{"started_at": "2026-11-03T09:00:00+00:00", "score": null, "error": "404"}\n')
    version, scores = history.daily_scores()
    assert scores == {"rideau": {date(2026, 11, 2): 80.0}}
    assert history.daily_scores()[0] == version
    with path.open("a", encoding="utf-8") as out:
        out.write('{"started_at": "2026-11-05T08:00:00+00:00", "score": 65.5}\n')
    version_2, scores = history.daily_scores()
    assert version_2 != version
    assert scores["rideau"] == {date(2026, 11, 2): 80.0, date(2026, 11, 5): 65.5}
    # a file written anew (shorter) is read from its start; a file removed is forgotten
    path.write_text('{"started_at": "2026-11-09T08:00:00+00:00", "score": 10}\n')
    assert history.daily_scores()[1] == {"rideau": {date(2026, 11, 9): 10.0}}
    path.unlink()
    assert history.daily_scores()[1] == {}


def test_a_line_chart_is_well_formed_svg_with_a_titled_point_per_value():
    svg = str(line_chart("Qualité <au fil> du temps", ["2026-W45", "2026-W46", "2026-W47"],
                         [Series("cette source", (None, 40.0, 60.0)),
                          Series("le secteur & co", (50.0, None, 70.0))],
                         "De 50 à 70 <en hausse>", "/100", scale=100))
    root = ET.fromstring(svg)
    assert root.find(SVG + "title").text == "Qualité <au fil> du temps"
    assert root.find(SVG + "desc").text == "De 50 à 70 <en hausse>"
    assert line_points(svg) == {"cette source": {"2026-W46": 40.0, "2026-W47": 60.0},
                                "le secteur & co": {"2026-W45": 50.0, "2026-W47": 70.0}}
    # one line for the source (two points); the sector's gap leaves single points, no line
    assert len(list(root.iter(SVG + "polyline"))) == 1
    heights = {g.get("data-value"): float(next(g.iter(SVG + "circle")).get("cy"))
               for g in root.iter(SVG + "g") if g.get("class") == "point"}
    assert heights["40"] > heights["50"] > heights["60"] > heights["70"]  # higher is better
    titles = [g.find(SVG + "title").text for g in root.iter(SVG + "g") if g.get("class") == "point"]
    assert "2026-W46 : cette source 40/100" in titles
    assert line_points(str(line_chart("Rien", [], [Series("a", ())]))) == {}


async def test_a_store_that_does_not_answer_leaves_the_source_report_without_the_comparison(
        deployment):
    """The report and the score history are kept beside the store: while a remote store does not
    answer, the source page still shows them (the sector's side says it cannot be read), and
    /stats, made only of the store's figures, answers 502."""
    run_history(deployment)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(base_url=BASE_URL, data_dir=deployment.settings.data_dir, store=dead,
                        store_timeout_s=2)
    app = create_app(settings, store=RemoteStore(endpoints_for(dead), timeout_s=2))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=BASE_URL) as client:
        page = await client.get("/source/grange?lang=en", headers={"Accept": "text/html"})
        assert page.status_code == 200
        tree = lxml.html.fromstring(page.text)
        assert tree.xpath('//section[@id="sector"]/p[@class="unavailable"]')
        assert not tree.xpath('//section[@id="sector"]//*[local-name()="svg"]')
        assert tree.xpath('//strong[@data-score="30.0"]')  # the report is there
        as_json = (await client.get("/source/grange", headers={"Accept": "application/json"})).json()
        assert as_json["sector"] is None and as_json["score"] == 30.0
        assert (await client.get("/stats?format=json")).status_code == 502


def test_report_scores_are_read_again_only_when_the_report_changes(tmp_path, monkeypatch):
    import json
    import os

    reads = []
    real_load = stats_routes.load_report

    def counting_load(reports_dir, source_id):
        reads.append(source_id)
        return real_load(reports_dir, source_id)

    monkeypatch.setattr(stats_routes, "load_report", counting_load)
    report = tmp_path / "salle-des-tilleuls.json"
    report.write_text(json.dumps({"score": 71.5, "events": [{"iri": "x"}] * 50}), encoding="utf-8")
    assert stats_routes.report_score(tmp_path, "salle-des-tilleuls") == 71.5
    assert stats_routes.report_score(tmp_path, "salle-des-tilleuls") == 71.5
    assert reads == ["salle-des-tilleuls"]  # the second answer came from what was kept

    report.write_text(json.dumps({"score": 88.0}), encoding="utf-8")
    stat = report.stat()
    os.utime(report, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert stats_routes.report_score(tmp_path, "salle-des-tilleuls") == 88.0
    assert len(reads) == 2

    report.write_text("{ edited by hand", encoding="utf-8")  # harvests replace reports atomically
    assert stats_routes.report_score(tmp_path, "salle-des-tilleuls") is None
    report.unlink()
    assert stats_routes.report_score(tmp_path, "salle-des-tilleuls") is None
    assert stats_routes.report_score(tmp_path, "jamais-moissonnee") is None
