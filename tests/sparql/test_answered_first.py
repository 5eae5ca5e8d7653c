"""`/sparql` in the real app is answered ahead of the router (`sparql.router.AnsweredFirst`): what
the app's layers give every answer still holds there — HEAD, gzip (at the endpoint's own level),
ETag/304, CORS on answers and problems — and what goes wrong still ends as it did."""

from __future__ import annotations

import json
import zlib

import httpx
import pytest
from rdflib import Graph

from publisher.app import create_app
from sparql.answers import Answer
from sparql.router import CORS_HEADERS, GZIP_LEVEL, SparqlEndpoint
from sparql.guard import SparqlLimits

pytestmark = pytest.mark.anyio

SELECT = "PREFIX schema: <http://schema.org/> SELECT ?e ?name WHERE { ?e a schema:Event ; " \
         "schema:name ?name } ORDER BY ?e ?name"
CONSTRUCT = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
RESULTS_JSON = "application/sparql-results+json"


@pytest.fixture
def app(demo_data):
    settings, store, _ = demo_data
    return create_app(settings, store=store)


def client(app, **options) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, **options),
                             base_url="http://test")


def gzipped(body: bytes, level: int) -> bytes:
    """`body` as Starlette's GZipMiddleware compresses it at `level`."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


def no_sparql_route(app) -> bool:
    return all(getattr(route, "path", None) != "/sparql" for route in app.routes)


async def test_sparql_is_answered_ahead_of_the_router_with_cors(app) -> None:
    assert no_sparql_route(app)
    async with client(app) as http:
        answer = await http.get("/sparql", params={"query": SELECT},
                                headers={"Accept": RESULTS_JSON})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(RESULTS_JSON)
    assert len(answer.json()["results"]["bindings"]) > 3
    for name, value in CORS_HEADERS.items():
        assert answer.headers[name] == value


async def test_sparql_answers_are_gzipped_at_the_endpoint_s_level_pages_at_theirs(app) -> None:
    async with client(app) as http:
        plain = await http.post("/sparql", content=CONSTRUCT, headers={
            "Content-Type": "application/sparql-query", "Accept": "application/n-triples",
            "Accept-Encoding": "identity"})
        packed = await http.post("/sparql", content=CONSTRUCT, headers={
            "Content-Type": "application/sparql-query", "Accept": "application/n-triples",
            "Accept-Encoding": "gzip"})
        page_plain = await http.get("/", headers={"Accept-Encoding": "identity"})
        page_packed = await http.get("/", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["vary"] and "Accept" in packed.headers["vary"]
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.content == plain.content  # decoded by httpx: the same triples
    assert len(Graph().parse(data=packed.content, format="nt")) > 100
    # The bytes on the wire are level 1's (GZIP_LEVEL), not the pages' level 6.
    raw = await raw_body(app, "POST", CONSTRUCT)
    assert raw == gzipped(plain.content, GZIP_LEVEL) != gzipped(plain.content, 6)
    assert page_packed.headers["content-encoding"] == "gzip"
    assert page_packed.content == page_plain.content


async def raw_body(app, method: str, query: str) -> bytes:
    """The body as sent, gzip and all (httpx would decode it)."""
    async with client(app) as http:
        request = http.build_request(method, "/sparql", content=query, headers={
            "Content-Type": "application/sparql-query", "Accept": "application/n-triples",
            "Accept-Encoding": "gzip"})
        response = await http.send(request, stream=True)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
    return raw


async def test_a_sparql_get_has_an_etag_and_answers_304_when_it_matches(app) -> None:
    params = {"query": SELECT}
    async with client(app) as http:
        first = await http.get("/sparql", params=params, headers={"Accept": RESULTS_JSON})
        etag = first.headers["etag"]
        again = await http.get("/sparql", params=params, headers={
            "Accept": RESULTS_JSON, "If-None-Match": etag})
        other = await http.get("/sparql", params=params, headers={
            "Accept": RESULTS_JSON, "If-None-Match": 'W/"something-else"'})
    assert etag.startswith('W/"')
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert other.status_code == 200 and other.json() == first.json()


async def test_head_of_a_query_is_its_get_without_the_body(app) -> None:
    params = {"query": SELECT}
    headers = {"Accept": RESULTS_JSON, "Accept-Encoding": "identity"}
    async with client(app) as http:
        get = await http.get("/sparql", params=params, headers=headers)
        head = await http.head("/sparql", params=params, headers=headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["access-control-allow-origin"] == "*"


async def test_problems_are_rendered_by_the_app_with_cors(app) -> None:
    async with client(app) as http:
        malformed = await http.get("/sparql", params={"query": "SELECT ?e WHERE { ?e"},
                                   headers={"Accept": RESULTS_JSON})
        for_people = await http.get("/sparql", params={"query": "DELETE WHERE { ?s ?p ?o }"},
                                    headers={"Accept": "text/html"})
        put = await http.put("/sparql", content=SELECT)
        preflight = await http.options("/sparql", headers={
            "Origin": "https://agenda.example", "Access-Control-Request-Method": "POST"})
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/problem+json"
    assert json.loads(malformed.content)["title"] == "Malformed query"
    assert malformed.headers["access-control-allow-origin"] == "*"
    assert for_people.status_code == 403
    assert for_people.headers["content-type"].startswith("text/html")
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert put.headers["access-control-allow-origin"] == "*"
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]


class Broken:
    """A query runner with a bug: not a store failure, not a problem with a status."""

    async def answer(self, query):
        raise RuntimeError("a bug in the runner")


class Fixed:
    async def answer(self, query):
        return Answer(b'{"head": {}, "boolean": true}', RESULTS_JSON)


async def test_a_bug_is_the_server_s_500_and_the_next_query_is_answered(app) -> None:
    app.state.sparql_runner = Broken()
    async with client(app, raise_app_exceptions=False) as http:
        broken = await http.get("/sparql", params={"query": "ASK {}"},
                                headers={"Accept": RESULTS_JSON})
        app.state.sparql_runner = Fixed()
        fixed = await http.get("/sparql", params={"query": "ASK {}"},
                               headers={"Accept": RESULTS_JSON})
    assert broken.status_code == 500
    assert fixed.status_code == 200 and fixed.json()["boolean"] is True


async def test_the_bare_endpoint_answers_head_as_get(demo_data) -> None:
    _, store, _ = demo_data
    endpoint = SparqlEndpoint(lambda: store, SparqlLimits(), lambda request: "http://x/sparql")

    def never(request, problem):
        raise AssertionError(problem.detail)

    async with client(endpoint.asgi(never)) as http:
        head = await http.head("/sparql", params={"query": "ASK {}"},
                               headers={"Accept": RESULTS_JSON})
    assert head.status_code == 200
    assert head.headers["content-type"].startswith(RESULTS_JSON)


async def test_the_trailing_slash_form_is_the_same_endpoint_for_get_and_post(app) -> None:
    async with client(app) as http:
        plain = await http.get("/sparql", params={"query": SELECT},
                               headers={"Accept": RESULTS_JSON})
        slashed = await http.get("/sparql/", params={"query": SELECT},
                                 headers={"Accept": RESULTS_JSON})
        posted = await http.post("/sparql/", content=SELECT,
                                 headers={"Content-Type": "application/sparql-query",
                                          "Accept": RESULTS_JSON})
        other = await http.get("/sparql/more")
    assert slashed.status_code == posted.status_code == 200
    assert slashed.json() == posted.json() == plain.json()
    assert other.status_code == 404
