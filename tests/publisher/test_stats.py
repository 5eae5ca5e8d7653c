"""The public statistics page: figures from the store, drawn as SVG a reader can parse."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from publisher.charts import Bar, bar_chart

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
    assert len(charts) == 5
    by_month, by_city, by_discipline, free, quality = (bars(c) for c in charts)
    assert by_month == {month: count for month, count in figures["by_month"]}
    assert by_city == {town: count for town, count in figures["by_city"]}
    assert "Music" in by_discipline
    assert free == {"free": figures["free"], "paid or not said": figures["events"] - figures["free"]}
    assert set(quality) == {"theatre-lumiere", "festival-marees", "salle-erable"}
    assert "<script" not in page.text
