"""Cutting solutions at the row cap, both ways (pyoxigraph's writer, one solution at a time):
the same solutions, the same verdict, for awkward terms too."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from sparql.answers import cap_solutions, solutions_answer, take_solutions

XSD = "http://www.w3.org/2001/XMLSchema#"
EX = "http://affiche.test/"


@pytest.fixture(scope="module")
def store() -> ox.Store:
    store = ox.Store()
    objects = [
        ox.Literal("Relâche\n« ce soir »\tà 20 h", language="fr"),
        ox.Literal("12.50", datatype=ox.NamedNode(XSD + "decimal")),
        ox.Literal("7", datatype=ox.NamedNode(XSD + "integer")),
        ox.Literal('Le "Off" d\'Avignon \\ bis'),
        ox.BlankNode("salle"),
        ox.NamedNode(EX + "lieu/théâtre-de-l'érable"),
        ox.Triple(ox.NamedNode(EX + "e/1"), ox.NamedNode(EX + "p"), ox.Literal("o")),
    ]
    for number, value in enumerate(objects):
        store.add(ox.Quad(ox.NamedNode(f"{EX}e/{number}"), ox.NamedNode(EX + "p"), value))
    return store


QUERIES = [
    "SELECT ?s ?o ?missing WHERE { ?s ?p ?o OPTIONAL { ?s <http://nope/> ?missing } } ORDER BY ?s",
    "SELECT * WHERE {}",
    "SELECT ?s WHERE { ?s ?p ?o FILTER (false) }",
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("max_rows", [0, 1, 3, 7, 100])
def test_both_ways_cut_alike(store: ox.Store, query: str, max_rows: int) -> None:
    native = cap_solutions(store.query(query), max_rows)
    one_by_one = take_solutions(store.query(query), max_rows)
    whole = list(store.query(query))
    assert native[1] == one_by_one[1] == (len(whole) > max_rows)
    names = [v.value for v in store.query(query).variables]
    expected = [[solution[name] for name in names] for solution in whole[:max_rows]]
    for tsv, _ in (native, one_by_one):
        parsed = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
        assert [v.value for v in parsed.variables] == names
        assert [[solution[name] for name in names] for solution in parsed] == expected


@pytest.mark.parametrize("results_format", ["json", "xml", "tsv"])
def test_an_uncut_answer_holds_every_term_as_written(store: ox.Store,
                                                     results_format: str) -> None:
    query = QUERIES[0]
    answer = solutions_answer(store.query(query), results_format, 100)
    fmt = {"json": ox.QueryResultsFormat.JSON, "xml": ox.QueryResultsFormat.XML,
           "tsv": ox.QueryResultsFormat.TSV}[results_format]
    got = [(s["s"], s["o"]) for s in ox.parse_query_results(answer.body, format=fmt)]
    assert not answer.truncated
    assert got == [(s["s"], s["o"]) for s in store.query(query)]
