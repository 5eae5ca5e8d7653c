"""The example queries of the /sparql page: each runs on the demo data and finds something, the
fast forms answer exactly what their plain forms answer (on the demo and on synthetic towns of
thousands of events), and the page shows them."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from bench.bench_sparql import synthetic_nquads
from publisher.routes.pages import SPARQL_EXAMPLES
from sparql.queries import load_query
from sparql.store import EmbeddedStore, solution_rows

PLAIN_NEXT_IN_TOWN = """PREFIX schema: <http://schema.org/>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
SELECT ?event ?name ?start WHERE {
  ?event schema:startDate ?start ; schema:name ?name ;
         schema:location/schema:address/schema:addressLocality ?town .
  FILTER (STR(?town) = "TOWN" && ?start >= "FROM"^^xsd:dateTime)
} ORDER BY ?start ?event LIMIT 20"""
PLAIN_TOWNS_BY_MONTH = """PREFIX schema: <http://schema.org/>
SELECT ?town ?month (COUNT(DISTINCT ?event) AS ?events) WHERE {
  ?event schema:startDate ?start ;
         schema:location/schema:address/schema:addressLocality ?town .
  BIND (SUBSTR(STR(?start), 1, 7) AS ?month)
} GROUP BY ?town ?month ORDER BY ?town ?month"""


def rows(store: EmbeddedStore | ox.Store, query: str) -> list[dict[str, str]]:
    if isinstance(store, ox.Store):
        found = solution_rows(store.query(query, use_default_graph_as_union=True))
    else:
        found = store.select(query)
    return [{name: str(value) for name, value in row.items()} for row in found]


def in_town(query: str, town: str, start: str) -> str:
    """An example, or the plain form, asked about another town and date."""
    return (query.replace('"Lyon"', f'"{town}"').replace("TOWN", town)
            .replace("2027-01-01T00:00:00+01:00", start).replace("FROM", start))


@pytest.fixture(scope="module")
def synthetic_store() -> ox.Store:
    """3,000 synthetic events over ten towns (the SPARQL benchmark's data, smaller)."""
    store = ox.Store()
    store.bulk_load(synthetic_nquads(3000), format=ox.RdfFormat.N_QUADS)
    return store


@pytest.mark.parametrize("name", SPARQL_EXAMPLES)
def test_every_example_finds_something_in_the_demo(demo_store, name: str) -> None:
    assert rows(demo_store, load_query(f"example_{name}"))


def test_the_next_events_in_a_town_as_the_plain_form_has_them(demo_store,
                                                                synthetic_store) -> None:
    fast = load_query("example_next_in_town")
    lyon = rows(demo_store, fast)
    assert lyon == rows(demo_store, in_town(PLAIN_NEXT_IN_TOWN, "Lyon",
                                             "2027-01-01T00:00:00+01:00"))
    assert [row["name"] for row in lyon] == ["Le Phare des songes", "Vertiges",
                                              "Jazz au foyer : Trio Nocturne"]
    for town, start in [("Montréal", "2027-09-01T00:00:00-04:00"),
                        ("Liège", "2027-03-15T00:00:00+01:00")]:
        answered = rows(synthetic_store, in_town(fast, town, start))
        assert len(answered) == 20
        assert answered == rows(synthetic_store, in_town(PLAIN_NEXT_IN_TOWN, town, start))


def test_towns_by_month_as_the_plain_form_counts_them(demo_store, synthetic_store) -> None:
    fast = load_query("example_towns_by_month")
    for store in (demo_store, synthetic_store):
        counted = rows(store, fast)
        assert counted and counted == rows(store, PLAIN_TOWNS_BY_MONTH)
    assert sum(int(row["events"]) for row in rows(synthetic_store, fast)) == 3000


@pytest.mark.anyio
async def test_the_page_shows_the_examples(client) -> None:
    page = await client.get("/sparql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    for name in SPARQL_EXAMPLES:
        first_line = load_query(f"example_{name}").splitlines()[0]
        assert first_line.replace("'", "&#39;") in page.text
