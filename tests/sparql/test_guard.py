"""The guard in front of the public endpoint: the query kind, updates and SERVICE refused wherever
they hide, and words inside strings, IRIs, comments and names left alone."""

from __future__ import annotations

import time

import pytest

from sparql.errors import BadQuery, Forbidden, PayloadTooLarge
from sparql.guard import SparqlLimits, check_query, keywords

LIMITS = SparqlLimits()


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("SELECT * WHERE { ?s ?p ?o }", "SELECT"),
        ("ask { ?s ?p ?o }", "ASK"),
        ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "CONSTRUCT"),
        ("DESCRIBE <http://example.org/x>", "DESCRIBE"),
        ("PREFIX schema: <http://schema.org/>\nBASE <http://example.org/>\n"
         "SELECT ?e WHERE { ?e a schema:Event }", "SELECT"),
        ("# a comment that says CONSTRUCT\nPREFIX select: <http://x/>\nASK { ?s select:p ?o }",
         "ASK"),
        ("PREFIX : <http://x/> DESCRIBE :thing", "DESCRIBE"),
    ],
)
def test_the_first_keyword_after_the_prologue_gives_the_kind(query: str, kind: str) -> None:
    assert check_query(query, LIMITS) == kind


@pytest.mark.parametrize(
    "query",
    [
        'SELECT * WHERE { ?s ?p "please DELETE me" }',
        "SELECT * WHERE { ?s ?p 'INSERT here' }",
        'SELECT * WHERE { ?s ?p """a long\nDROP ALL\nstring with "quotes" """ }',
        "SELECT * WHERE { ?s ?p '''CLEAR ''it'' LOAD''' }",
        r'SELECT * WHERE { ?s ?p "an escaped \" quote, then DELETE" }',
        "SELECT * WHERE { ?s <http://x/service> ?o }",
        "SELECT * WHERE { ?s <http://example.org/delete#insert> ?o }",
        "SELECT * WHERE { ?s ?p ?o } # DELETE WHERE { ?s ?p ?o }",
        "SELECT ?delete ?service $load WHERE { ?delete ?service $load }",
        "PREFIX drop: <http://x/> SELECT * WHERE { ?s drop:copy ?o . ?o drop:with _:add }",
        r"PREFIX ex: <http://x/> SELECT * WHERE { ?s ex:a\#SERVICE ?o }",
        'SELECT * WHERE { ?s ?p "x"@move }',
        "SELECT * WHERE { ?s ?p ?o FILTER(?o < 3 && ?o > 1) }",
    ],
)
def test_words_in_strings_iris_comments_and_names_are_not_refused(query: str) -> None:
    assert check_query(query, LIMITS) == "SELECT"


@pytest.mark.parametrize(
    ("query", "keyword"),
    [
        ("INSERT DATA { <http://x/a> <http://x/b> <http://x/c> }", "INSERT"),
        ("DELETE WHERE { ?s ?p ?o }", "DELETE"),
        ("PREFIX ex: <http://x/> delete { ?s ?p ?o } where { ?s ?p ?o }", "DELETE"),
        ("LOAD <http://evil/data.ttl>", "LOAD"),
        ("CLEAR ALL", "CLEAR"),
        ("DROP GRAPH <http://x/g>", "DROP"),
        ("CREATE GRAPH <http://x/g>", "CREATE"),
        ("ADD <http://x/a> TO <http://x/b>", "ADD"),
        ("MOVE DEFAULT TO <http://x/b>", "MOVE"),
        ("COPY DEFAULT TO <http://x/b>", "COPY"),
        ("WITH <http://x/g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", "WITH"),
        ("SELECT * WHERE { ?s ?p ?o } ; INSERT DATA { <http://x/a> <http://x/b> 1 }", "INSERT"),
        ('SELECT * WHERE { ?s ?p "str" } # comment\nDROP ALL', "DROP"),
    ],
)
def test_updates_are_forbidden_naming_the_keyword(query: str, keyword: str) -> None:
    with pytest.raises(Forbidden) as refused:
        check_query(query, LIMITS)
    assert refused.value.status == 403
    assert keyword in refused.value.detail
    assert "read-only" in refused.value.detail


@pytest.mark.parametrize(
    "query",
    [
        "select * { service <http://evil> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE SILENT <http://evil/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { Service<http://evil/sparql>{ ?s ?p ?o } }",
        "PREFIX ex: <http://x/> SELECT * WHERE { ?s ex:p ?o . SERVICE ?endpoint { ?o ?q ?r } }",
        "ASK { ?s ?p 'x' SERVICE <http://evil> {} }",
    ],
)
def test_service_is_forbidden_in_any_case_and_place(query: str) -> None:
    with pytest.raises(Forbidden) as refused:
        check_query(query, LIMITS)
    assert "SERVICE" in refused.value.detail


@pytest.mark.parametrize("query", ["", "   \n\t", "# only a comment", "PREFIX ex: <http://x/>"])
def test_an_empty_query_is_a_bad_query(query: str) -> None:
    with pytest.raises(BadQuery) as refused:
        check_query(query, LIMITS)
    assert refused.value.status == 400


def test_a_query_that_is_not_a_query_is_a_bad_query() -> None:
    with pytest.raises(BadQuery, match="SELECT, ASK, CONSTRUCT or DESCRIBE"):
        check_query("FROBNICATE { ?s ?p ?o }", LIMITS)


def test_an_unterminated_string_is_a_bad_query_with_its_position() -> None:
    with pytest.raises(BadQuery, match="2:15"):
        check_query('SELECT *\nWHERE { ?s ?p "no end DELETE }', LIMITS)


def test_an_update_before_a_broken_string_is_still_forbidden() -> None:
    with pytest.raises(Forbidden):
        check_query('DELETE DATA { <http://x/a> <http://x/b> "broken }', LIMITS)


def test_over_length_is_payload_too_large() -> None:
    limits = SparqlLimits(max_query_length=40)
    at_limit = "ASK { ?s ?p ?o }".ljust(40)
    assert check_query(at_limit, limits) == "ASK"
    with pytest.raises(PayloadTooLarge) as refused:
        check_query(at_limit + " ", limits)
    assert refused.value.status == 413
    assert "41" in refused.value.detail and "40" in refused.value.detail


def test_keywords_skips_everything_that_is_not_a_bare_word() -> None:
    query = 'PREFIX ex: <http://x/select> SELECT ?ask WHERE { ?s ex:p "construct" } LIMIT 10'
    assert list(keywords(query)) == ["PREFIX", "SELECT", "WHERE", "LIMIT"]


@pytest.mark.parametrize(
    "hostile", ['\\"' * 9_000, "'''\\'''" * 2_800, "<a" * 9_999, "?" * 19_999, "a:" * 9_999]
)
def test_hostile_input_is_checked_in_linear_time(hostile: str) -> None:
    started = time.perf_counter()
    with pytest.raises((BadQuery, Forbidden)):
        check_query(hostile, LIMITS)
    assert time.perf_counter() - started < 0.5
